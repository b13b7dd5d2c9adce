"""Start a hub service so that it ends with the hub, even when the hub is killed outright.

JupyterHub starts its services in sessions of their own and stops them when it stops. A hub killed with
SIGKILL (or by the kernel's out-of-memory killer) cannot: its services would run on, and at the hub's next
start the new scheduler and builder could not listen on their ports while the old ones, holding tokens the
new hub no longer knows, answer instead. ``python -m mydocker_hub.service_launcher -m <module> [args]``
asks the kernel to send the service SIGTERM when the hub's process ends (``PR_SET_PDEATHSIG``, kept across
``exec``), then becomes the service.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -m mydocker_hub.service_launcher -m <module> [arguments]")
    hub = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        print(f"service_launcher: prctl failed ({os.strerror(ctypes.get_errno())}); starting anyway", file=sys.stderr)
    if os.getppid() != hub:
        sys.exit(0)  # the hub ended before the request was in place: nothing to serve
    os.execv(sys.executable, [sys.executable, *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
