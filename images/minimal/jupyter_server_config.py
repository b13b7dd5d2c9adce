# mydocker-hub image contract: the hub may let an LMS (Moodle) frame this server.
# MYDOCKER_FRAME_ANCESTORS: space-separated origins allowed to frame it (empty = same origin only).
# MYDOCKER_COOKIE_PARTITIONED=1: the server's cookies (login and _xsrf) must be
# "SameSite=None; Secure; Partitioned" (CHIPS), the only ones kept in the LMS's iframe by browsers that
# block third-party cookies.
import json
import os
from http.cookies import Morsel

_settings = {}
_origins = os.environ.get("MYDOCKER_FRAME_ANCESTORS", "").split()
if _origins:
    _settings["headers"] = {"Content-Security-Policy": "frame-ancestors 'self' " + " ".join(_origins)}
if os.environ.get("MYDOCKER_COOKIE_PARTITIONED") == "1":
    if "partitioned" not in Morsel._reserved:  # Python < 3.14 does not know the attribute yet
        Morsel._reserved["partitioned"] = "Partitioned"
        Morsel._flags.add("partitioned")
    _options = json.loads(os.environ.get("JUPYTERHUB_COOKIE_OPTIONS") or "{}")
    os.environ["JUPYTERHUB_COOKIE_OPTIONS"] = json.dumps({**_options, "Partitioned": True})
    _settings["xsrf_cookie_kwargs"] = {"samesite": "None", "secure": True, "partitioned": True}
# MYDOCKER_IDLE_TIMEOUT: seconds; idle kernels and terminals are shut down after it (frees memory while
# the hub's idle culler decides when to stop the whole server)
_idle = int(os.environ.get("MYDOCKER_IDLE_TIMEOUT", "0") or 0)
if _idle > 0:
    c.MappingKernelManager.cull_idle_timeout = _idle  # noqa: F821
    c.MappingKernelManager.cull_interval = 60  # noqa: F821
    c.TerminalManager.cull_inactive_timeout = _idle  # noqa: F821
    c.TerminalManager.cull_interval = 60  # noqa: F821
if _settings:
    c.ServerApp.tornado_settings = _settings  # noqa: F821 (c is provided by Jupyter)
