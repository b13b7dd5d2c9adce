"""One shared watch of the managed Swarm services and their tasks.

Like kubespawner's reflector: a single loop lists services and tasks for the whole hub, and every spawner
reads that snapshot (``poll``) or waits for the next one (``start``), instead of each spawner polling
Docker on its own. The loop runs fast while some spawner waits on it and slowly otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import docker.errors

from .client import AsyncDocker
from .removals import DeferredRemovals
from .specs import MANAGED_LABEL, SECRET_SERVICE_LABEL, SERVER_LABEL, USER_LABEL


@dataclass
class Snapshot:
    services: dict[str, dict] = field(default_factory=dict)  # service name -> service JSON
    tasks: dict[str, list[dict]] = field(default_factory=dict)  # service ID -> tasks, newest created first
    nodes: dict[str, dict] = field(default_factory=dict)  # node ID -> node JSON
    taken_at: float = 0.0  # time.monotonic() of the listing
    published_ports: set[int] = field(default_factory=set)  # host ports published by any service of the Swarm


class SwarmWatcher:
    def __init__(
        self,
        docker: AsyncDocker,
        hub_label: str,
        interval: float = 5.0,
        fast_interval: float = 0.25,
        follow_interval: float = 1.0,
        log: logging.Logger | None = None,
        secret_sweep_interval: float = 600.0,
        queue_length: Callable[[], int] = lambda: 0,
        stopped_servers: Callable[[], set[tuple[str, str]]] | None = None,
        removal_settle_time: float = 1.0,
    ):
        self.docker = docker
        self.hub_label = hub_label
        self.interval = interval
        self.fast_interval = fast_interval
        self.follow_interval = follow_interval
        self.log = log or logging.getLogger(__name__)
        self.snapshot = Snapshot()
        self.healthy = False
        self.last_error = ""
        self._waiters = 0  # starts waiting for the next listing
        self._followers = 0  # starts probing their server, reading the listings as they come
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._nodes_at = 0.0
        # how many starts wait in line for a start slot: they count in the pace like waiters, so that
        # letting a few start at a time adds no listings
        self.queue_length = queue_length
        self.secret_sweep_interval = secret_sweep_interval
        self._swept_at = time.monotonic()
        self._orphan_secrets: set[str] = set()
        # (user, server) pairs the hub's database knows and lists as stopped; None: services are never swept
        self.stopped_servers = stopped_servers
        self._orphan_services: set[str] = set()  # service IDs whose server was listed as stopped at the last sweep
        # secrets of stopped servers, removed once their container is gone: secret ID -> (attempts, due at)
        self._secrets_to_remove: dict[str, tuple[int, float]] = {}
        # stopped servers' services, removed once a burst of stops has settled
        self.removals = DeferredRemovals(docker, self.service_removed, quiet=removal_settle_time, log=self.log)

    _instances: dict[tuple, SwarmWatcher] = {}

    @classmethod
    def shared(cls, docker: AsyncDocker, hub_label: str, **kwargs) -> SwarmWatcher:
        key = (id(docker), hub_label)
        watcher = cls._instances.get(key)
        if watcher is None:
            watcher = cls._instances[key] = cls(docker, hub_label, **kwargs)
        watcher.ensure_running()
        return watcher

    def ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the engine may be restarting: keep the last snapshot, mark unhealthy
                if self.healthy or str(e) != self.last_error:
                    self.log.warning("Swarm watcher cannot list services: %s", e)
                self.healthy = False
                self.last_error = str(e)
            if self.healthy and self._secrets_to_remove:
                await self._remove_due_secrets()
            if self.healthy and time.monotonic() - self._swept_at > self.secret_sweep_interval:
                self._swept_at = time.monotonic()
                await self._sweep_quietly()
            await self._pause()

    #: tries to remove a stopped server's secret before leaving it to the sweep, and the pause between them
    SECRET_REMOVAL_ATTEMPTS = 40

    @staticmethod
    def _secret_retry_delay(attempt: int) -> float:
        return min(2.0 + attempt, 10.0)  # the old container takes a moment to stop

    def remove_secrets_when_free(self, secret_ids: list[str]) -> None:
        """Remove a stopped server's secrets once its container has stopped using them (409 until then).

        Done by this loop, not by a task per stop: a stop does not wait for it, and a hub that exits
        meanwhile leaves no half-done task behind (the sweep removes what is left at its next start).
        """
        due = time.monotonic() + self._secret_retry_delay(0)
        for secret_id in secret_ids:
            self._secrets_to_remove.setdefault(secret_id, (0, due))

    async def _remove_due_secrets(self) -> None:
        now = time.monotonic()
        for secret_id, (attempt, due) in list(self._secrets_to_remove.items()):
            if due > now:
                continue
            try:
                await self.docker.call("remove_secret", secret_id)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                status = getattr(getattr(e, "response", None), "status_code", None)
                # still in use (409, or 400 "is in use by the following service" while Swarm removes it)
                in_use = status == 409 or (status == 400 and "in use" in str(e))
                if in_use and attempt + 1 < self.SECRET_REMOVAL_ATTEMPTS:
                    self._secrets_to_remove[secret_id] = (attempt + 1, now + self._secret_retry_delay(attempt + 1))
                    continue
                if in_use:
                    self.log.warning("Secret %s is still in use; the sweep will remove it later", secret_id[:12])
                elif status != 404:
                    self.log.warning("Cannot remove secret %s: %s", secret_id[:12], e)
            self._secrets_to_remove.pop(secret_id, None)

    async def _sweep_quietly(self) -> None:
        """A sweep that fails is retried at the next one; it never marks the listing unhealthy."""
        for what, sweep in (("services", self.sweep_orphan_services), ("secrets", self.sweep_orphan_secrets)):
            try:
                await sweep()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.log.warning(
                    "Sweeping orphan Swarm %s failed (next try in %.0f s): %s", what, self.secret_sweep_interval, e
                )

    async def _pause(self) -> None:
        """Sleep until the next listing is due; the pace is re-read as waiters come and go."""
        while True:
            remaining = self.snapshot.taken_at + self._delay() - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, self.fast_interval))

    async def refresh(self) -> Snapshot:
        for attempt in range(3):
            every_service = await self.docker.call("services")
            services = [
                s for s in every_service if s.get("Spec", {}).get("Labels", {}).get(MANAGED_LABEL) == self.hub_label
            ]
            ids = [service["ID"] for service in services]
            try:
                listed_tasks = await self.docker.call("tasks", filters={"service": ids}) if ids else []
                break
            except docker.errors.NotFound:
                # the engine refuses a task filter naming a service removed since the first listing (a class
                # stopping): list both again
                if attempt == 2:
                    raise
        published = set()
        for service in every_service:  # ports of every service on the Swarm, ours or not
            for port in service.get("Spec", {}).get("EndpointSpec", {}).get("Ports", []) or []:
                if port.get("PublishedPort"):
                    published.add(port["PublishedPort"])
        tasks: dict[str, list[dict]] = {service_id: [] for service_id in ids}
        for task in listed_tasks:
            if task.get("ServiceID") in tasks:
                tasks[task["ServiceID"]].append(task)
        for task_list in tasks.values():
            task_list.sort(key=lambda t: t.get("CreatedAt", ""), reverse=True)
        now = time.monotonic()
        nodes = self.snapshot.nodes
        if now - self._nodes_at > 30 or not nodes:
            nodes = {node["ID"]: node for node in await self.docker.call("nodes")}
            self._nodes_at = now
        self.snapshot = Snapshot(
            services={service["Spec"]["Name"]: service for service in services},
            tasks=tasks,
            nodes=nodes,
            taken_at=now,
            published_ports=published,
        )
        self.healthy = True
        self.last_error = ""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        return self.snapshot

    def _delay(self) -> float:
        """Seconds until the next listing: fast while starts wait, but with a whole class waiting at once
        at most a couple of listings a second, so that the engine and the hub leave the CPU to the servers;
        at least every ``follow_interval`` while a few started servers are being probed (a class of them
        gets no more listings than when nobody waits: each listing costs the engine more CPU)."""
        if self._waiters:
            return min(self.interval, max(self.fast_interval, 0.02 * (self._waiters + self.queue_length())))
        if self._followers:
            return min(self.interval, max(self.follow_interval, 0.05 * self._followers))
        return self.interval

    @contextlib.contextmanager
    def following(self):
        """While held, listings come at least every ``follow_interval``: a start probing its server's port
        wants a container that exits meanwhile seen within a second, before Swarm replaces it."""
        self._followers += 1
        try:
            yield
        finally:
            self._followers -= 1

    async def next_snapshot(self, timeout: float | None = None) -> Snapshot:
        """Wait for the next listing, then return it (the loop paces listings by the number of waiters)."""
        self._waiters += 1
        try:
            changed = self._changed
            await asyncio.wait_for(changed.wait(), timeout)
            return self.snapshot
        finally:
            self._waiters -= 1

    async def sweep_orphan_services(self) -> list[str]:
        """Remove this hub's services of servers that its database knows and lists as stopped, once seen so at
        two sweeps in a row: what a stop leaves when the engine failed to remove the service (JupyterHub marks
        the server stopped anyway), e.g. a class stopped while the engine restarted. Only such pairs: a
        service whose user or server this database does not know (another hub on the same prefix, a renamed
        user, a database restored from a backup) is left alone, and a start's server is listed as running
        from its first moment. Services without a user and server label (pre-pulls) are not servers.
        Returns the names removed."""
        if self.stopped_servers is None:
            return []
        stopped = self.stopped_servers()
        orphans: dict[str, tuple[str, list[str]]] = {}  # service ID -> (name, its secrets' IDs)
        for name, service in self.snapshot.services.items():
            labels = service.get("Spec", {}).get("Labels", {})
            if (labels.get(USER_LABEL), labels.get(SERVER_LABEL)) in stopped:
                orphans[service["ID"]] = (name, secret_ids_of(service))
        removed = []
        for service_id in orphans.keys() & self._orphan_services:
            name, secret_ids = orphans.pop(service_id)
            self.log.warning("Removing service %s: the hub lists its server as stopped", name)
            try:
                await self.docker.call("remove_service", service_id)  # by ID: a new start's service is another
            except docker.errors.NotFound:
                pass
            except Exception as e:  # the engine unsteady: the next sweep tries again, the others go on
                self.log.warning("Cannot remove service %s yet: %s", name, e)
                orphans[service_id] = (name, secret_ids)
                continue
            self.service_removed(service_id, name, secret_ids)
            removed.append(name)
        self._orphan_services = set(orphans)  # seen once: removed at the next sweep if still so
        return removed

    async def sweep_orphan_secrets(self) -> int:
        """Remove this hub's Swarm secrets whose service is gone, once seen so at two sweeps in a row.

        A stopped server's secrets are removed in the background seconds after its service; a hub that
        exits or crashes meanwhile leaves them. A start creates its secrets moments before its service, so
        a secret is only removed when the previous sweep (minutes earlier) found it orphaned too.
        Returns how many were removed.
        """
        listed = await self.docker.call("secrets", filters={"label": f"{MANAGED_LABEL}={self.hub_label}"})
        live_services = set(self.snapshot.services)
        orphans = {
            secret["ID"]
            for secret in listed
            if secret.get("Spec", {}).get("Labels", {}).get(SECRET_SERVICE_LABEL) not in live_services
        }
        removed = 0
        for secret_id in orphans & self._orphan_secrets:
            try:
                await self.docker.call("remove_secret", secret_id)
                removed += 1
            except Exception as e:  # in use by a container still stopping, or gone: the next sweep sees
                self.log.debug("Orphan secret %s not removed yet: %s", secret_id[:12], e)
        self._orphan_secrets = orphans
        if removed:
            self.log.info("Removed %d Swarm secrets of servers that no longer exist", removed)
        return removed

    # -- reads of the current snapshot -------------------------------------------------------------
    def service(self, name: str) -> dict | None:
        return self.snapshot.services.get(name)

    def forget_service(self, name: str, service_id: str | None = None) -> None:
        """Drop a service just removed from the current listing (the next listing will not have it), and its
        node ports: a restart may take them again. With ``service_id``, only if the listed one is that service
        (not a new start's of the same name)."""
        listed = self.snapshot.services.get(name)
        if listed is None or (service_id is not None and listed.get("ID") != service_id):
            return
        del self.snapshot.services[name]
        for port in listed.get("Spec", {}).get("EndpointSpec", {}).get("Ports", []) or []:
            self.snapshot.published_ports.discard(port.get("PublishedPort"))

    def service_removed(self, service_id: str | None, name: str, secret_ids: list[str]) -> None:
        """A removal the engine has taken (by ID, or by name when ``service_id`` is None): out of the listing,
        its secrets removed once no container uses them (a stop does not wait for that)."""
        self.forget_service(name, service_id)
        if secret_ids:
            self.remove_secrets_when_free(secret_ids)

    def tasks(self, name: str) -> list[dict]:
        service = self.service(name)
        return self.snapshot.tasks.get(service["ID"], []) if service else []

    def used_host_ports(self) -> set[int]:
        return set(self.snapshot.published_ports)

    def ready_cpus(self) -> float:
        """CPUs of the Swarm nodes that take new tasks (ready and active), from the last listing."""
        total = 0.0
        for node in self.snapshot.nodes.values():
            if node.get("Status", {}).get("State") == "ready" and node.get("Spec", {}).get("Availability") == "active":
                total += node.get("Description", {}).get("Resources", {}).get("NanoCPUs", 0) / 1e9
        return total

    def node_address(self, node_id: str) -> str | None:
        node = self.snapshot.nodes.get(node_id)
        return node.get("Status", {}).get("Addr") if node else None


def secret_ids_of(service: dict) -> list[str]:
    """IDs of the Swarm secrets a service's containers read (from its listing: no Docker call)."""
    container_spec = service.get("Spec", {}).get("TaskTemplate", {}).get("ContainerSpec", {})
    return [secret["SecretID"] for secret in container_spec.get("Secrets") or []]
