"""A real JupyterHub process started from the repository's jupyterhub_config.py, driven like a user would.

Used by the integration tests and by the benchmarks in bench/.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
TEST_IMAGE = os.environ.get("MYDOCKER_TEST_IMAGE", "mydocker/minimal:latest")
SSH_IMAGE = os.environ.get("MYDOCKER_TEST_SSH_IMAGE", "mydocker/ssh:latest")


class LoopbackSession(requests.Session):
    """Sends Secure cookies over http://127.0.0.1 as Chromium does for loopback (requests only over https).

    Needed when the hub marks its cookies Secure (LTI embedding enabled) while the tests speak plain http.
    """

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", 60)  # a hub that stops answering fails the test instead of hanging the run
        return super().request(method, url, **kwargs)

    def send(self, request, **kwargs):
        response = super().send(request, **kwargs)
        for cookie in self.cookies:
            cookie.secure = False
        return response


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, interval: float = 0.25, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


TEST_ENVIRONMENTS = {
    "lab.yaml": f"""
title: {{en: Test lab, fr: Labo de test}}
description: "A *small* JupyterLab for the tests"
image: {TEST_IMAGE}
resources: {{cpu_limit: 0.5, memory_limit: 512M}}
home: {{type: global, mount_path: /home/jovyan}}
""",
    "ssh.yaml": f"""
title: SSH terminal
image: {SSH_IMAGE}
interface: ssh
ports: [{{name: SSH, port: 2222, type: ssh}}]
home: {{type: environment, mount_path: /home/jovyan}}
display: {{show_username: true, show_password: true}}
""",
    "broken-image.yaml": """
title: Broken image
image: mydocker/this-image-does-not-exist:latest
""",
    "crash.yaml": f"""
title: Crashes at start
image: {TEST_IMAGE}
interface: custom
command: ["/bin/sh", "-c", "echo starting; exit 3"]
ports: [{{name: web, port: 8888, type: http}}]
""",
    "exits-once.yaml": f"""
title: Exits at its first start only
image: {TEST_IMAGE}
interface: custom
command:
  - /bin/sh
  - -c
  - test -e ~/.started-once && exec jupyterhub-singleuser --ip=0.0.0.0 --port=8888; touch ~/.started-once; exit 4
ports: [{{name: web, port: 8888, type: http}}]
home: {{type: environment, mount_path: /home/jovyan}}
""",
    "too-big.yaml": f"""
title: Needs more CPU than any node has
image: {TEST_IMAGE}
resources: {{cpu_limit: 64, cpu_reservation: 64}}
""",
    "tiny-memory.yaml": f"""
title: Runs out of memory at start
image: {TEST_IMAGE}
interface: custom
command: ["python3", "-c", "x = bytearray(200 * 1024 * 1024)"]
ports: [{{name: web, port: 8888, type: http}}]
resources: {{memory_limit: 64M}}
""",
    "teachers-only.yaml": f"""
title: Draft of a teacher
image: {TEST_IMAGE}
status: draft
access: {{owners: [teacher]}}
""",
}


class Hub:
    """A JupyterHub process started from the repository's jupyterhub_config.py in demo mode."""

    def __init__(self, workdir: Path, prefix: str, environments: dict[str, str] | None = None, extra_config: str = ""):
        self.workdir = workdir
        self.prefix = prefix
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(8)
        self.token = secrets.token_hex(16)
        self.environments = workdir / "environments"
        self.environments.mkdir(exist_ok=True)
        for name, text in (TEST_ENVIRONMENTS if environments is None else environments).items():
            (self.environments / name).write_text(text)
        self.config_d = workdir / "config.d"
        self.config_d.mkdir(exist_ok=True)
        (self.config_d / "10-test.py").write_text(
            f"""
c.SwarmEnvironmentSpawner.service_prefix = {prefix!r}
c.SwarmEnvironmentSpawner.connection_stub_port = {free_port()}
c.JupyterHub.services.append({{"name": "test-admin", "api_token": {self.token!r}}})
c.JupyterHub.load_roles.append({{"name": "test-admin", "scopes": ["admin:users", "admin:servers", "admin:groups",
    "access:servers", "read:metrics", "tokens", "admin:server_state",
    "list:services", "read:services"], "services": ["test-admin"]}})
c.JupyterHub.log_level = "DEBUG"
c.MyDockerAuthenticator.demo_accounts = {{
    "student": {{"role": "student"}},
    "student2": {{"role": "student"}},
    "teacher": {{"role": "teacher"}},
    "admin": {{"role": "admin"}},
}}
"""
            + extra_config
        )
        self.env = dict(
            os.environ,
            MYDOCKER_DEMO="1",
            MYDOCKER_DEMO_PASSWORD=self.password,
            MYDOCKER_BIND_URL=self.url,
            MYDOCKER_HUB_PORT=str(free_port()),
            MYDOCKER_PROXY_API_URL=f"http://127.0.0.1:{free_port()}",
            MYDOCKER_DATA_DIR=str(workdir / "data"),
            MYDOCKER_EXTRA_ENVIRONMENTS_DIRS=str(workdir / "data" / "build-environments"),
            MYDOCKER_ENVIRONMENTS_DIR=str(self.environments),
            MYDOCKER_CONFIG_D=str(self.config_d),
            MYDOCKER_SCHEDULER_URL=f"http://127.0.0.1:{free_port()}",
            MYDOCKER_BUILDER_URL=f"http://127.0.0.1:{free_port()}",
            PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        )
        self.log_path = workdir / "hub.log"
        self.process: subprocess.Popen | None = None

    # -- process ----------------------------------------------------------------------------------
    def start(self, sigint_ignored: bool = False):
        """``sigint_ignored``: as when started in the background by a non-interactive shell (``cmd &``)."""
        self.log_file = open(self.log_path, "a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(REPO / "jupyterhub_config.py")],
            cwd=self.workdir,
            env=self.env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: what it starts can be found when it is gone
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None,
        )
        wait_for(self._answers, 60, message=f"the hub at {self.url} (log: {self.log_path})")

    def _answers(self):
        if self.process.poll() is not None:
            raise AssertionError(f"hub exited: {self.log_path.read_text()[-3000:]}")
        try:
            return requests.get(f"{self.url}/hub/api/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                self.log_file.write("[test harness] the hub did not exit within 30 s of SIGTERM and was killed\n")
        if self.process:
            # a hub that was killed leaves its proxy and services running: end them with it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            self._end_orphaned_proxy()
        if getattr(self, "log_file", None):
            self.log_file.close()

    def _end_orphaned_proxy(self):
        """A hub restarted after a crash reuses the proxy the dead hub started, and leaves it running when it
        stops (JupyterHub ends only a proxy it started itself): end it, found by its pid file."""
        pid_file = self.workdir / "data" / "jupyterhub-proxy.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().strip())
            if b"configurable-http-proxy" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGTERM)

    def restart(self):
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text()

    def log_lines(self, fragment: str) -> list[str]:
        """The hub's log lines above DEBUG that contain ``fragment`` (shortened): for assertion messages."""
        return [line[:200] for line in self.log().splitlines() if fragment in line and not line.startswith("[D")]

    # -- API --------------------------------------------------------------------------------------
    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        headers.setdefault("Authorization", f"token {self.token}")
        return requests.request(method, f"{self.url}/hub/api/{path}", headers=headers, timeout=30, **kwargs)

    def metrics(self) -> str:
        response = requests.get(f"{self.url}/hub/metrics", headers={"Authorization": f"token {self.token}"}, timeout=30)
        assert response.status_code == 200, response.status_code
        return response.text

    def ensure_user(self, name: str, groups: tuple[str, ...] = ()):
        if self.api("GET", f"users/{name}").status_code == 404:
            assert self.api("POST", f"users/{name}").status_code == 201
        for group in groups:
            if self.api("GET", f"groups/{group}").status_code == 404:
                self.api("POST", f"groups/{group}")
            self.api("POST", f"groups/{group}/users", json={"users": [name]})

    def server_model(self, user: str, server: str) -> dict | None:
        model = self.api("GET", f"users/{user}").json()
        return model.get("servers", {}).get(server)

    def spawn(self, user: str, server: str) -> float:
        """Start a named server through the REST API and wait until it is ready or failed; seconds."""
        began = time.monotonic()
        response = self.api("POST", f"users/{user}/servers/{server}")
        assert response.status_code in (201, 202), response.text
        wait_for(
            lambda: (self.server_model(user, server) or {}).get("ready"),
            300,
            message=f"{user}/{server} ready",
        )
        return time.monotonic() - began

    def spawn_failure(self, user: str, server: str) -> tuple[str, float]:
        """Start a server that must fail; return the user-facing failure message and the seconds it took."""
        began = time.monotonic()
        response = self.api("POST", f"users/{user}/servers/{server}")
        if response.status_code >= 400:
            return response.json().get("message", ""), time.monotonic() - began
        with self.api("GET", f"users/{user}/servers/{server}/progress", stream=True) as events:
            message = ""
            for line in events.iter_lines(decode_unicode=True):
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    message = event.get("message", message)
                    if event.get("failed") or event.get("ready"):
                        break
        return message, time.monotonic() - began

    def progress_messages(self, user: str, server: str) -> list[str]:
        """Messages of the spawn-progress event stream, as the spawn-pending page shows them."""
        messages = []
        with self.api("GET", f"users/{user}/servers/{server}/progress", stream=True) as events:
            for line in events.iter_lines(decode_unicode=True):
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    messages.append(event.get("message", ""))
                    if event.get("failed") or event.get("ready"):
                        break
        return messages

    def spawn_watching_progress(self, user: str, server: str) -> list[str]:
        """Request a spawn and follow its progress stream from the start, as the spawn-pending page does."""
        import threading

        request = threading.Thread(target=self.api, args=("POST", f"users/{user}/servers/{server}"))
        request.start()
        wait_for(lambda: (self.server_model(user, server) or {}).get("pending") == "spawn", 30, 0.05, "spawn pending")
        messages = self.progress_messages(user, server)
        request.join()
        return messages

    def stop_server(self, user: str, server: str):
        response = self.api("DELETE", f"users/{user}/servers/{server}")
        assert response.status_code in (202, 204), response.text
        wait_for(lambda: self.server_model(user, server) is None, 120, message=f"{user}/{server} stopped")

    def user_token(self, user: str) -> str:
        response = self.api("POST", f"users/{user}/tokens", json={"note": "test", "expires_in": 3600})
        assert response.status_code == 201, response.text
        return response.json()["token"]

    def login(self, user: str) -> requests.Session:
        """A browser-like session logged in through the login form."""
        session = LoopbackSession()
        page = session.get(f"{self.url}/hub/login")
        xsrf = session.cookies.get("_xsrf")
        response = session.post(
            f"{self.url}/hub/login",
            data={"username": user, "password": self.password, "_xsrf": xsrf},
        )
        assert response.status_code == 200 and "/hub/login" not in response.url, page.text[:500]
        return session
