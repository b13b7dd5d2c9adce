# mydocker-hub image contract: the hub may let an LMS (Moodle) frame this server.
# MYDOCKER_FRAME_ANCESTORS is a space-separated list of origins set by the spawner; empty = same origin only.
import os

_origins = os.environ.get("MYDOCKER_FRAME_ANCESTORS", "").split()
if _origins:
    c.ServerApp.tornado_settings = {  # noqa: F821 (c is provided by Jupyter)
        "headers": {"Content-Security-Policy": "frame-ancestors 'self' " + " ".join(_origins)}
    }
