"""The shared Swarm watcher on a real Swarm: secrets removed when free or swept, listings during removals."""

import asyncio
import secrets
import time

import docker

from mydocker_hub.swarm.client import AsyncDocker
from mydocker_hub.swarm.specs import MANAGED_LABEL, SECRET_SERVICE_LABEL
from mydocker_hub.swarm.watcher import SwarmWatcher
from tests.hubprocess import TEST_IMAGE, wait_for


def test_orphan_secrets_are_removed_at_the_second_sweep_and_live_ones_kept(docker_api, run_prefix):
    label = f"{run_prefix}w{secrets.token_hex(2)}"
    live_service = f"{label}-alice--lab"

    def secret(service):
        return docker_api.create_secret(
            name=f"{service}-pw-{secrets.token_hex(4)}",
            data=b"x",
            labels={MANAGED_LABEL: label, SECRET_SERVICE_LABEL: service},
        )["ID"]

    docker_api.create_service(
        docker.types.TaskTemplate(
            container_spec=docker.types.ContainerSpec(image=TEST_IMAGE, command=["sleep", "600"])
        ),
        name=live_service,
        labels={MANAGED_LABEL: label},
    )
    try:
        kept, orphan = secret(live_service), secret(f"{label}-bob--lab")

        async def sweep_twice():
            watcher = SwarmWatcher(AsyncDocker(max_workers=2), label)
            await watcher.refresh()
            first = await watcher.sweep_orphan_secrets()
            remaining_after_first = {s["ID"] for s in docker_api.secrets(filters={"label": f"{MANAGED_LABEL}={label}"})}
            second = await watcher.sweep_orphan_secrets()
            return first, remaining_after_first, second

        first, remaining_after_first, second = asyncio.run(sweep_twice())
        assert first == 0 and {kept, orphan} <= remaining_after_first  # a start may be about to use it
        assert second == 1
        remaining = {s["ID"] for s in docker_api.secrets(filters={"label": f"{MANAGED_LABEL}={label}"})}
        assert remaining == {kept}
    finally:
        docker_api.remove_service(live_service)
        for s in docker_api.secrets(filters={"label": f"{MANAGED_LABEL}={label}"}):
            try:
                docker_api.remove_secret(s["ID"])
            except docker.errors.APIError:
                pass


def remove_services(docker_api, service_ids) -> None:
    """A test's clean-up: these services, those already gone included."""
    for service_id in service_ids:
        try:
            docker_api.remove_service(service_id)
        except docker.errors.NotFound:
            pass


def sleeping_service(docker_api, name: str, label: str, secret_id: str | None = None, secret_name: str = ""):
    secret_refs = [docker.types.SecretReference(secret_id, secret_name)] if secret_id else None
    return docker_api.create_service(
        docker.types.TaskTemplate(
            container_spec=docker.types.ContainerSpec(
                image=TEST_IMAGE, command=["sleep", "600"], secrets=secret_refs, stop_grace_period=1_000_000_000
            )
        ),
        name=name,
        labels={MANAGED_LABEL: label},
    )["ID"]


def test_a_stopped_servers_secret_is_removed_once_nothing_uses_it(docker_api, run_prefix, monkeypatch):
    label = f"{run_prefix}w{secrets.token_hex(2)}"
    service = f"{label}-carol--lab"
    secret_name = f"{service}-pw-{secrets.token_hex(4)}"
    secret_id = docker_api.create_secret(
        name=secret_name, data=b"x", labels={MANAGED_LABEL: label, SECRET_SERVICE_LABEL: service}
    )["ID"]

    def secret_left():
        return [s["ID"] for s in docker_api.secrets(filters={"label": f"{MANAGED_LABEL}={label}"})]

    def container_running():
        tasks = docker_api.tasks(filters={"service": service})
        return any(t["Status"]["State"] == "running" for t in tasks)

    monkeypatch.setattr(SwarmWatcher, "_secret_retry_delay", staticmethod(lambda attempt: 0.3))
    sleeping_service(docker_api, service, label, secret_id, secret_name)
    loop = asyncio.new_event_loop()
    watcher = SwarmWatcher(AsyncDocker(max_workers=2), label, interval=0.2)
    try:
        wait_for(container_running, 60, message="the server's container")
        loop.call_soon(watcher.ensure_running)  # its loop runs while this test runs the event loop
        watcher.remove_secrets_when_free([secret_id])
        loop.run_until_complete(asyncio.sleep(2))  # several tries while the server still uses it: refused
        assert secret_left() == [secret_id] and secret_id in watcher._secrets_to_remove
        docker_api.remove_service(service)  # the server stops
        for _ in range(120):
            loop.run_until_complete(asyncio.sleep(0.5))
            if not secret_left():
                break
        assert secret_left() == [] and watcher._secrets_to_remove == {}
    finally:
        if watcher._task:
            watcher._task.cancel()
            loop.run_until_complete(asyncio.gather(watcher._task, return_exceptions=True))
        loop.close()
        for s in docker_api.services(filters={"name": service}):
            docker_api.remove_service(s["ID"])


def test_a_service_removed_between_the_two_listings_leaves_the_listing_healthy(docker_api, run_prefix):
    """The engine answers 404 to a task listing that names a service removed since the service listing (a
    class stopping while the hub lists): the watcher lists again instead of reporting the engine unreachable."""
    label = f"{run_prefix}w{secrets.token_hex(2)}"
    kept, removed = f"{label}-dan--lab", f"{label}-eve--lab"
    sleeping_service(docker_api, kept, label)
    sleeping_service(docker_api, removed, label)

    class RemovesOneAfterListing(AsyncDocker):
        """A real engine, with one service removed right after the first service listing."""

        removed_once = False

        def _call(self, method, args, kwargs):
            result = super()._call(method, args, kwargs)
            if method == "services" and not self.removed_once:
                self.removed_once = True
                docker_api.remove_service(removed)
            return result

    try:

        async def list_once():
            watcher = SwarmWatcher(RemovesOneAfterListing(max_workers=2), label)
            return await watcher.refresh(), watcher.healthy

        snapshot, healthy = asyncio.run(list_once())
        assert healthy and set(snapshot.services) == {kept}
    finally:
        for name in (kept, removed):
            for s in docker_api.services(filters={"name": name}):
                docker_api.remove_service(s["ID"])


def test_services_of_servers_the_hub_lists_as_stopped_are_swept_at_the_second_sweep_only(docker_api, run_prefix):
    """Only a service whose (user, server) the hub's database lists as stopped, at two sweeps in a row: not
    one it lists as running, nor one it does not know (another hub, a renamed user), nor a pre-pull service,
    nor one whose server was started again between the sweeps."""
    from mydocker_hub.swarm.specs import SERVER_LABEL, USER_LABEL

    label = f"{run_prefix}v{secrets.token_hex(2)}"

    def service(name, user=None, server=None):
        labels = {MANAGED_LABEL: label}
        if user:
            labels.update({USER_LABEL: user, SERVER_LABEL: server})
        return docker_api.create_service(
            docker.types.TaskTemplate(
                container_spec=docker.types.ContainerSpec(image=TEST_IMAGE, command=["sleep", "600"])
            ),
            name=f"{label}-{name}",
            labels=labels,
        )["ID"]

    ids = {
        "stopped": service("alice--lab", "alice", "lab"),
        "running": service("bob--lab", "bob", "lab"),
        "unknown": service("carol--lab", "carol", "lab"),
        "prepull": service("prepull"),
        "restarted": service("dan--lab", "dan", "lab"),
    }
    try:
        listed_as_stopped = {("alice", "lab"), ("dan", "lab")}

        async def sweep_twice():
            watcher = SwarmWatcher(AsyncDocker(max_workers=2), label, stopped_servers=lambda: set(listed_as_stopped))
            await watcher.refresh()
            first = await watcher.sweep_orphan_services()
            listed_as_stopped.discard(("dan", "lab"))  # started again meanwhile
            await watcher.refresh()
            second = await watcher.sweep_orphan_services()
            return first, second

        first, second = asyncio.run(sweep_twice())
        assert first == []  # seen once: kept
        assert second == [f"{label}-alice--lab"]
        remaining = {s["ID"] for s in docker_api.services(filters={"label": f"{MANAGED_LABEL}={label}"})}
        assert remaining == {ids["running"], ids["unknown"], ids["prepull"], ids["restarted"]}
    finally:
        remove_services(docker_api, ids.values())


def test_stopped_servers_services_are_removed_together_once_the_stops_settle(docker_api, run_prefix):
    """The removals of a class's services wait until no stop has come for ``quiet`` seconds, then go together;
    a removal the engine refuses is tried again; an already removed service counts as removed."""
    from mydocker_hub.swarm.removals import DeferredRemovals

    label = f"{run_prefix}d{secrets.token_hex(2)}"
    names = [f"{label}-{user}--lab" for user in ("ann", "ben", "cid")]
    ids = {sleeping_service(docker_api, name, label): name for name in names}

    class RefusesFirstRemoval(AsyncDocker):
        """A real engine that answers the first removal with an error, as one restarting does."""

        refused = False

        def _call(self, method, args, kwargs):
            if method == "remove_service" and not self.refused:
                self.refused = True
                raise docker.errors.APIError("engine restarting")
            return super()._call(method, args, kwargs)

    removed = []
    try:

        async def stop_a_class():
            removals = DeferredRemovals(
                RefusesFirstRemoval(max_workers=2), lambda *done: removed.append(done), quiet=2.0, longest=10.0
            )
            for service_id, name in ids.items():
                removals.defer(service_id, name, [f"secret-of-{name}"])
                await asyncio.sleep(0.1)
            kept_meanwhile = {s["ID"] for s in docker_api.services(filters={"label": f"{MANAGED_LABEL}={label}"})}
            docker_api.remove_service(next(iter(ids)))  # removed by someone else meanwhile: fine
            for _ in range(200):
                if not len(removals):
                    break
                await asyncio.sleep(0.1)
            return kept_meanwhile, len(removals)

        kept_meanwhile, left = asyncio.run(stop_a_class())
        assert kept_meanwhile == set(ids), "nothing is removed while the stops keep coming"
        assert left == 0
        assert docker_api.services(filters={"label": f"{MANAGED_LABEL}={label}"}) == []
        assert sorted(removed) == sorted((i, n, [f"secret-of-{n}"]) for i, n in ids.items())
    finally:
        remove_services(docker_api, ids)


def test_removals_wait_for_a_quiet_moment_but_no_longer_than_their_limit(monkeypatch):
    from mydocker_hub.swarm import removals as removals_module

    now = [100.0]
    monkeypatch.setattr(removals_module, "monotonic", lambda: now[0])
    monkeypatch.setattr(removals_module.atexit, "register", lambda hook: None)  # nothing to remove at exit

    async def a_stop_every_half_second():  # never awaits: the removals' own task never runs
        removals = removals_module.DeferredRemovals(None, lambda *done: None, quiet=1.0, longest=10.0)
        removals.defer("id-0", "s0", [])
        due_after_one = removals._due_in()
        for step in range(1, 20):
            now[0] = 100.0 + step * 0.5
            removals.defer(f"id-{step}", f"s{step}", [])
        removals._task.cancel()
        return due_after_one, removals._due_in()

    due_after_one, due_after_a_burst = asyncio.run(a_stop_every_half_second())
    assert due_after_one == 1.0
    assert now[0] == 109.5 and due_after_a_burst == 0.5, "ten seconds after the first at most"


def test_removals_still_waiting_when_the_hub_exits_are_done_on_its_way_out(docker_api, run_prefix):
    """Those waiting for their quiet moment, and those asked of the engine whose answer never came (the hub's
    event loop ended first)."""
    from mydocker_hub.swarm.removals import DeferredRemovals

    label = f"{run_prefix}x{secrets.token_hex(2)}"
    waiting, asked = f"{label}-dee--lab", f"{label}-eli--lab"
    ids = {sleeping_service(docker_api, name, label): name for name in (waiting, asked)}
    waiting_id, asked_id = list(ids)

    class NeverAnswers(AsyncDocker):
        """A removal stuck behind the pool's busy workers: no answer before the loop ends."""

        def _call(self, method, args, kwargs):
            if method == "remove_service":
                time.sleep(1)
                return None  # never reached the engine
            return super()._call(method, args, kwargs)

    try:

        async def stop_then_exit():
            removals = DeferredRemovals(NeverAnswers(max_workers=2), lambda *done: None, quiet=600.0)
            removals.defer(asked_id, asked, [])
            flushing = asyncio.ensure_future(removals.flush())
            await asyncio.sleep(0.2)  # asked of the engine, no answer yet
            removals.defer(waiting_id, waiting, [])
            flushing.cancel()  # the hub's shutdown cancels its tasks
            return removals

        removals = asyncio.run(stop_then_exit())  # the event loop has ended: neither removal was done
        assert {s["ID"] for s in docker_api.services(filters={"label": f"{MANAGED_LABEL}={label}"})} == set(ids)
        removals.remove_all_now()
        assert docker_api.services(filters={"label": f"{MANAGED_LABEL}={label}"}) == []
    finally:
        remove_services(docker_api, ids)
