"""Run a hub service's event loop until JupyterHub stops it.

JupyterHub stops its managed services with SIGINT (then SIGTERM): without handlers, Python turns SIGINT
into a KeyboardInterrupt traceback in the hub's log at every hub stop or restart.
"""

from __future__ import annotations

import logging
import signal

from tornado import ioloop


def run_until_stopped(log: logging.Logger, name: str) -> None:
    """Run the current IOLoop; on SIGINT or SIGTERM, log one line and return."""
    loop = ioloop.IOLoop.current()

    def stop(signum: int) -> None:
        log.info("%s stopping (%s)", name, signal.Signals(signum).name)
        loop.stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.asyncio_loop.add_signal_handler(signum, stop, signum)
    loop.start()
