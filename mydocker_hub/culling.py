"""What jupyterhub-idle-culler should stop, environment by environment (its ``cull_arbiter_hook``).

- a server past its **lifetime deadline** (the environment's ``max_lifetime``, moved only by an explicit
  "extend"; kept in the server's state, which the culler reads with ``admin:server_state``);
- a web server idle for longer than **its environment's** ``idle_timeout`` (default 20 minutes);
- SSH/TCP-only environments report no activity to the hub: they are not culled for idleness (only for
  their lifetime and at the end of their class session).

``culler_config.py`` next to this file installs it; ``mydocker_hub.config`` starts the culler as a
hub-managed service with it.
"""

from __future__ import annotations

import os
import time

from .environments import get_catalog


def current_time() -> float:
    """The clock (patched by tests)."""
    return time.time()


def cull_arbiter(*, inactive, inactive_limit, server, environments_dir: str | None = None, **kwargs) -> bool:
    state = server.get("state") or {}
    deadline = state.get("lifetime_deadline")
    if deadline and current_time() >= float(deadline):
        return True
    directory = environments_dir or os.environ.get("MYDOCKER_ENVIRONMENTS_DIR", "environments")
    catalog = get_catalog(directory)
    catalog.reload_if_changed()
    env = catalog.get(server.get("name", ""))
    if env is None:
        return inactive.total_seconds() >= inactive_limit
    if not env.serves_http:
        return False
    return inactive.total_seconds() >= env.idle_timeout
