"""The distribution's defaults, applied to JupyterHub's config object by ``jupyterhub_config.py``.

Everything here is a value, not logic: the behaviour lives in traits of our classes. Settings a site may
change are read from environment variables (``MYDOCKER_*``) or overridden in ``jupyterhub_config.d/``,
loaded last (the escape hatch, as in TLJH).
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from .handlers.pages import TEACHER_GROUP
from .i18n import I18nExtension, LanguageTransform
from .scheduler.app import READ_SCOPE as SESSIONS_READ_SCOPE

REPO_ROOT = Path(__file__).resolve().parent.parent


def docker_bridge_gateway(default: str = "172.17.0.1") -> str:
    """Host address that containers on Docker's default bridge reach the hub at."""
    try:
        output = subprocess.run(
            ["docker", "network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        for entry in json.loads(output) or []:
            if entry.get("Gateway"):
                return entry["Gateway"]
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    return default


def _read_or_create_secret(path: Path, length: int = 12) -> str:
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(length)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def apply(c, *, base_dir: Path | str = REPO_ROOT, demo: bool = False, data_dir: Path | str | None = None) -> None:
    """Apply mydocker-hub's defaults to the JupyterHub config ``c``."""
    base_dir = Path(base_dir)
    data_dir = Path(data_dir or os.environ.get("MYDOCKER_DATA_DIR") or base_dir / ".mydocker")
    data_dir.mkdir(parents=True, exist_ok=True)
    environments_dir = os.environ.get("MYDOCKER_ENVIRONMENTS_DIR") or str(base_dir / "environments")

    # -- hub and proxy ----------------------------------------------------------------------------
    c.JupyterHub.bind_url = os.environ.get("MYDOCKER_BIND_URL", "http://127.0.0.1:8000")
    gateway = os.environ.get("MYDOCKER_HUB_IP") or docker_bridge_gateway()
    c.JupyterHub.hub_ip = gateway  # containers call the hub API here
    c.JupyterHub.hub_connect_ip = gateway
    c.JupyterHub.hub_port = int(os.environ.get("MYDOCKER_HUB_PORT", "8081"))
    c.ConfigurableHTTPProxy.api_url = os.environ.get("MYDOCKER_PROXY_API_URL", "http://127.0.0.1:8001")
    c.JupyterHub.db_url = os.environ.get("MYDOCKER_DB_URL", f"sqlite:///{data_dir / 'jupyterhub.sqlite'}")
    c.JupyterHub.cookie_secret_file = str(data_dir / "jupyterhub_cookie_secret")
    c.ConfigurableHTTPProxy.pid_file = str(data_dir / "jupyterhub-proxy.pid")
    c.JupyterHub.cleanup_servers = False  # servers outlive hub restarts
    c.JupyterHub.allow_named_servers = True
    # every environment a student ever used is a named server: no cap on their number (running ones use resources)
    c.JupyterHub.named_server_limit_per_user = 0
    c.JupyterHub.default_url = "/hub/home"
    c.JupyterHub.template_paths = [str(base_dir / "templates")]
    c.JupyterHub.jinja_environment_options = {"extensions": [I18nExtension]}
    c.JupyterHub.tornado_settings = {
        "transforms": [LanguageTransform],
        "mydocker_environments_dir": environments_dir,
    }
    # a class of 100+ starting at once: let them all queue instead of refusing at JupyterHub's defaults
    c.JupyterHub.concurrent_spawn_limit = 0
    c.JupyterHub.active_server_limit = 0
    c.JupyterHub.authenticate_prometheus = True

    # -- spawner ------------------------------------------------------------------------------------
    c.JupyterHub.spawner_class = "mydocker_hub.spawner.SwarmEnvironmentSpawner"
    c.SwarmEnvironmentSpawner.environments_dir = environments_dir
    c.SwarmEnvironmentSpawner.credentials_key_file = str(data_dir / "mydocker_crypt_key")
    c.Spawner.start_timeout = 600
    c.Spawner.http_timeout = 300
    c.Spawner.consecutive_failure_limit = 0

    # -- hub-managed services: idle culler and class-session scheduler --------------------------------
    services_environment = {
        "MYDOCKER_ENVIRONMENTS_DIR": environments_dir,
        "MYDOCKER_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(base_dir),
    }
    c.JupyterHub.services = [
        {
            "name": "idle-culler",
            "command": [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                f"--config-file={Path(__file__).parent / 'culler_config.py'}",
                "--cull-every=60",
                "--timeout=1200",  # environments without their own idle_timeout (default 20 min)
                "--concurrency=10",
            ],
            "environment": services_environment,
        },
        {
            "name": "scheduler",
            "url": os.environ.get("MYDOCKER_SCHEDULER_URL", "http://127.0.0.1:8090"),
            "command": [sys.executable, "-m", "mydocker_hub.scheduler"],
            "environment": services_environment,
            "oauth_client_allowed_scopes": [SESSIONS_READ_SCOPE],
            "oauth_no_confirm": True,  # our own service: no "authorize access" page
            "display": True,
        },
    ]
    c.JupyterHub.custom_scopes = {
        SESSIONS_READ_SCOPE: {"description": "See upcoming class sessions, pre-pull state and capacity verdicts."},
    }
    c.JupyterHub.load_roles = [
        {
            "name": "idle-culler",
            "description": "jupyterhub-idle-culler: stop idle servers and servers past their lifetime",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers", "admin:server_state"],
            "services": ["idle-culler"],
        },
        {
            "name": "mydocker-scheduler",
            "description": "Class-session scheduler: find the servers of a session and stop them at its end",
            "scopes": ["list:users", "read:users", "read:users:groups", "read:servers", "servers"],
            "services": ["scheduler"],
        },
        {
            "name": "mydocker-session-viewers",
            "description": "Teachers (and admins, who are in the teacher group) see the class-session page",
            "scopes": [SESSIONS_READ_SCOPE, "access:services!service=scheduler"],
            "groups": [TEACHER_GROUP],
        },
    ]

    # -- authentication -----------------------------------------------------------------------------
    # one authenticator with several doors: federation (OIDC), LTI 1.3 platforms, demo accounts
    c.JupyterHub.authenticator_class = "mydocker_hub.auth.authenticator.MyDockerAuthenticator"
    c.MyDockerAuthenticator.lti_tool_key_file = str(data_dir / "lti_tool_key.pem")
    if demo:
        c.MyDockerAuthenticator.demo_mode = True
        c.MyDockerAuthenticator.demo_password = os.environ.get("MYDOCKER_DEMO_PASSWORD") or _read_or_create_secret(
            data_dir / "demo_password"
        )
        c.Authenticator.admin_users = {"admin"}
        c.JupyterHub.template_vars = {"mydocker_demo_accounts": ["student", "teacher", "admin"]}


def finalize(c) -> None:
    """Settings derived from others, applied after the escape hatch.

    When an admin lets a registered LTI platform embed the hub (``allow_embedding``), the hub's and the
    servers' cookies become ``SameSite=None; Secure; Partitioned`` (the only ones that survive in Moodle's
    iframe) and
    every page may be framed by that platform (``Content-Security-Policy: frame-ancestors``).
    """
    from .lti.platforms import PlatformRegistry, parse_platforms

    entries = c.MyDockerAuthenticator.lti_platforms if "lti_platforms" in c.MyDockerAuthenticator else []
    origins = PlatformRegistry(parse_platforms(list(entries))).embedding_origins
    if not origins:
        return
    settings = dict(c.JupyterHub.tornado_settings) if "tornado_settings" in c.JupyterHub else {}
    from .cookies import enable_partitioned_cookies

    enable_partitioned_cookies()
    settings["cookie_options"] = {
        **settings.get("cookie_options", {}),
        "SameSite": "None",
        "Secure": True,
        "Partitioned": True,  # kept by browsers that block third-party cookies (CHIPS)
    }
    headers = dict(settings.get("headers", {}))
    headers["Content-Security-Policy"] = "frame-ancestors 'self' " + " ".join(origins)
    settings["headers"] = headers
    c.JupyterHub.tornado_settings = settings
    c.SwarmEnvironmentSpawner.frame_ancestors = origins


def load_escape_hatch(c, directory: Path | str) -> None:
    """Execute ``*.py`` files of ``directory`` in name order, with ``c`` in scope (loaded last)."""
    for path in sorted(glob.glob(os.path.join(str(directory), "*.py"))):
        with open(path) as f:
            exec(compile(f.read(), path, "exec"), {"c": c, "__file__": path})  # noqa: S102
