"""Stopped servers' services, removed from the engine once a burst of stops has settled.

Removing a service makes the engine stop and delete its container: dockerd, containerd and the server's own
shutdown take both CPUs of a small node for seconds when a class of 100 stops at once, while the hub does
JupyterHub's own bookkeeping of each stop (proxy route, tokens, OAuth client, database) and waits its turn
for the CPU. So the hub does its part first: JupyterHub takes the server off the proxy and revokes its
tokens at once (the hub no longer leads anyone to it), and the engine's removals start together once no server
has stopped for ``quiet`` seconds (at most ``longest`` after the first one waiting). ``bench/spawn_bench.py``
reports both moments: "stop all" (the hub lists no server) and "released" (no container left).

Meanwhile the container runs on (an open SSH session or terminal ends when it goes) and keeps its CPU and
memory reservations. A start of the same server removes the old service itself (by name) before creating
its own; a removal here is by service ID, so it never touches the new one. A removal the engine refuses
(restarting?) is tried again, less and less often, a few times. A hub that exits meanwhile removes what waits
on its way out; one that crashes leaves it to the watcher's sweep of stopped servers' services.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic

import docker
import docker.errors

from .client import AsyncDocker


@dataclass
class _Waiting:
    name: str
    secret_ids: list[str]
    attempts: int = 0


class DeferredRemovals:
    """``defer(service_id, name, secret_ids)`` from a stop; the removals run later, all together."""

    #: tries of a removal the engine refuses (restarting?) before leaving the service to the sweep
    ATTEMPTS = 5

    def __init__(
        self,
        docker_pool: AsyncDocker,
        removed: Callable[[str, str, list[str]], None],
        quiet: float = 1.0,
        longest: float = 10.0,
        log: logging.Logger | None = None,
    ):
        self.docker = docker_pool
        self.removed = removed  # called with (service ID, name, secret IDs) once the engine has taken a removal
        self.quiet = quiet
        self.longest = max(longest, quiet)
        self.log = log or logging.getLogger(__name__)
        self._waiting: dict[str, _Waiting] = {}  # service ID -> what to remove
        self._in_flight: dict[str, _Waiting] = {}  # asked of the engine, not answered yet
        self._first_at = 0.0  # monotonic() of the oldest removal waiting
        self._last_at = 0.0  # of the newest
        self._task: asyncio.Task | None = None
        self._exit_hook = False

    def __len__(self) -> int:
        """Removals not done yet (waiting, or asked of the engine)."""
        return len(self._waiting) + len(self._in_flight)

    def defer(self, service_id: str, name: str, secret_ids: list[str]) -> None:
        now = monotonic()
        if not self._waiting:
            self._first_at = now
        self._last_at = now
        self._waiting.setdefault(service_id, _Waiting(name, list(secret_ids)))
        if not self._exit_hook:
            atexit.register(self.remove_all_now)
            self._exit_hook = True
        # a task of an event loop that has ended (a test's, a restarted app's) never runs again
        if self._task is None or self._task.done() or self._task.get_loop() is not asyncio.get_running_loop():
            self._task = asyncio.ensure_future(self._run())

    def _due_in(self) -> float:
        return min(self._last_at + self.quiet, self._first_at + self.longest) - monotonic()

    async def _run(self) -> None:
        while self._waiting:
            delay = self._due_in()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            await self.flush()
            if self._waiting:
                # refused by the engine (restarting?): again later, less and less often (a stop meanwhile
                # still waits for its quiet moment, not longer than that)
                attempts = max(waiting.attempts for waiting in self._waiting.values())
                due = monotonic() + min(2.0**attempts, 30.0)
                self._first_at, self._last_at = due - self.longest, due - self.quiet

    async def flush(self) -> None:
        """Remove every service waiting now, all at once (a refused one waits for the next flush)."""
        batch, self._waiting = self._waiting, {}
        if not batch:
            return
        self._in_flight.update(batch)
        outcomes = await asyncio.gather(
            *(self.docker.call("remove_service", service_id) for service_id in batch), return_exceptions=True
        )
        removed = 0
        for (service_id, waiting), outcome in zip(batch.items(), outcomes, strict=True):
            del self._in_flight[service_id]
            if isinstance(outcome, docker.errors.NotFound) or not isinstance(outcome, BaseException):
                self.removed(service_id, waiting.name, waiting.secret_ids)  # gone already is fine
                removed += 1
                continue
            waiting.attempts += 1
            if waiting.attempts < self.ATTEMPTS:
                self._waiting.setdefault(service_id, waiting)
            else:
                self.log.warning(
                    "Cannot remove service %s of a stopped server (%s); the sweep will", waiting.name, outcome
                )
        if removed > 1:
            self.log.info("Removed %d service(s) of stopped servers", removed)

    def remove_all_now(self, timeout: float = 5.0) -> None:
        """At the hub's exit: remove what still waits or was being removed, without the event loop (gone by
        then), giving up on an engine that does not answer (the next hub's sweep removes what is left, and the
        secrets, still in use until the containers have stopped)."""
        left = {**self._in_flight, **self._waiting}
        if not left:
            return
        try:
            client = docker.APIClient(**{**self.docker.client_kwargs, "timeout": timeout})
        except Exception as e:  # the engine unreachable: nothing more to do on the way out
            self.log.warning("Left %d stopped servers' services to the next sweep: %s", len(left), e)
            return
        removed = 0
        for service_id, waiting in left.items():
            try:
                client.remove_service(service_id)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as e:
                self.log.warning("Left service %s to the next sweep: %s", waiting.name, e)
                continue
            except Exception as e:  # no answer: the others would not get one either
                self.log.warning("Left %d stopped servers' services to the next sweep: %s", len(left) - removed, e)
                break
            removed += 1
        self._waiting.clear()
        self._in_flight.clear()
        if removed:
            self.log.info("Removed %d service(s) of stopped servers on the way out", removed)
