"""An asyncio face for docker-py: every call runs in one shared, bounded thread pool.

Stock DockerSpawner funnels every user's Docker call through a single thread; here ``max_workers`` calls
run at once (and the HTTP connection pool is sized to match), so one slow call never stalls every spawn.
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker


class AsyncDocker:
    """``await client.call("services", filters=...)`` runs ``APIClient.services(...)`` off the event loop."""

    _instances: dict[tuple, AsyncDocker] = {}
    _lock = threading.Lock()

    def __init__(self, max_workers: int = 16, client_kwargs: dict | None = None):
        kwargs = {"version": "auto", "max_pool_size": max_workers}
        kwargs.update(docker.utils.kwargs_from_env())
        kwargs.update(client_kwargs or {})
        self._client_kwargs = kwargs
        self._api: docker.APIClient | None = None
        self.executor = ThreadPoolExecutor(max_workers, thread_name_prefix="mydocker-docker")

    @classmethod
    def shared(cls, max_workers: int = 16, client_kwargs: dict | None = None) -> AsyncDocker:
        """One instance per configuration, shared by every spawner of the hub."""
        key = (max_workers, tuple(sorted((client_kwargs or {}).items())))
        with cls._lock:
            if key not in cls._instances:
                cls._instances[key] = cls(max_workers, client_kwargs)
            return cls._instances[key]

    @property
    def client_kwargs(self) -> dict:
        """What ``docker.APIClient`` is built with (for a client of one's own, e.g. at the hub's exit)."""
        return dict(self._client_kwargs)

    @property
    def api(self) -> docker.APIClient:
        if self._api is None:
            self._api = docker.APIClient(**self._client_kwargs)
        return self._api

    def _call(self, method: str, args, kwargs):
        return getattr(self.api, method)(*args, **kwargs)

    async def call(self, method: str, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self._call, method, args, kwargs)

    async def api_version(self) -> tuple[int, int]:
        version = await self.call("version")
        major, minor = version.get("ApiVersion", "1.41").split(".")[:2]
        return int(major), int(minor)

    async def daemon_enforces_no_new_privileges(self, daemon_config: str = "/etc/docker/daemon.json") -> bool:
        """Whether the engine sets no-new-privileges on every container (daemon.json ``"no-new-privileges": true``).

        Newer engines list it in ``docker info``; 20.10 does not, so for an engine on this machine's socket its
        ``daemon_config`` file is read.
        """
        info = await self.call("info")
        if any(option.startswith("name=no-new-privileges") for option in info.get("SecurityOptions") or []):
            return True
        if not str(self.api.base_url).startswith("http+docker://localhost"):
            return False  # a remote engine: only its own report counts

        def read_config() -> dict:
            try:
                return json.loads(Path(daemon_config).read_text())
            except (OSError, ValueError):
                return {}

        return (await asyncio.to_thread(read_config)).get("no-new-privileges") is True
