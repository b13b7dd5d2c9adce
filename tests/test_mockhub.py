"""In-process tier: the spawner inside JupyterHub's own test hub (MockHub, from pytest-jupyterhub), on the real Swarm.

The hub runs in the test's event loop, so a test reads JupyterHub's and the spawner's objects directly. MockHub
serves under a base URL with an ``@`` and a space (``/@/space%20word/``), as a hub behind an unusual prefix.
Environments without a web interface (SSH) need no way back from the container to the hub.
"""

from __future__ import annotations

import asyncio
import json
import time

import docker
import pytest
import requests
from jupyterhub import orm
from jupyterhub.tests.utils import add_user, api_request, auth_header, public_url

from mydocker_hub.config import NAMED_SERVERS_BEYOND_CATALOGUE, _named_server_limit
from mydocker_hub.i18n import LanguageTransform
from mydocker_hub.spawner import SwarmEnvironmentSpawner

from .hubprocess import TEST_ENVIRONMENTS, TEST_IMAGE, free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow]


async def swarm_hub(hub_app, tmp_path, service_prefix: str, files: dict[str, str], jupyterhub=None, **spawner):
    """MockHub with SwarmEnvironmentSpawner on the real Swarm: the environment ``files`` (name -> YAML), a watcher
    of its own (``service_prefix``), its own credentials key and connection stub port; ``jupyterhub`` and
    ``spawner`` add JupyterHub's and the spawner's settings."""
    environments = tmp_path / "environments"
    environments.mkdir()
    for name, text in files.items():
        (environments / name).write_text(text)
    return await hub_app(
        {
            "JupyterHub": {"spawner_class": SwarmEnvironmentSpawner, "allow_named_servers": True, **(jupyterhub or {})},
            "SwarmEnvironmentSpawner": {
                "environments_dir": str(environments),
                "service_prefix": service_prefix,
                "credentials_key_file": str(tmp_path / "crypt_key"),
                "connection_stub_port": free_port(),
                **spawner,
            },
        }
    )


@pytest.fixture
async def mockhub(hub_app, tmp_path, run_prefix, docker_api):
    return await swarm_hub(
        hub_app,
        tmp_path,
        run_prefix + "m",
        {"ssh.yaml": TEST_ENVIRONMENTS["ssh.yaml"]},
        jupyterhub={"named_server_limit_per_user": 0, "tornado_settings": {"transforms": [LanguageTransform]}},
    )


def _read_progress(url: str, headers: dict) -> list[dict]:
    """The spawn-progress event stream, from the start's first event to JupyterHub's last one (run in a
    thread: the hub serves from this test's event loop)."""
    for _ in range(200):  # JupyterHub answers 404, then 400, until the start has begun
        response = requests.get(url, headers=headers, timeout=120)
        if response.status_code not in (400, 404):
            break
        time.sleep(0.05)
    assert response.status_code == 200, response.text
    return [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]


async def test_jupyterhub_starts_follows_and_stops_an_environment_through_its_api(mockhub, docker_api):
    add_user(mockhub.db, mockhub, name="alice")
    start = asyncio.ensure_future(api_request(mockhub, "users", "alice", "servers", "ssh", method="post"))
    # the progress stream, read by a French browser while the start goes on
    url = public_url(mockhub, path="hub/api/users/alice/servers/ssh/progress")
    french_browser = {**auth_header(mockhub.db, "alice"), "Accept-Language": "fr-FR,fr;q=0.9"}
    events = await asyncio.to_thread(_read_progress, url, french_browser)
    started = await start
    assert started.status_code in (201, 202), started.text
    messages = [event.get("message", "") for event in events]
    assert events[-1].get("ready"), messages
    assert messages[0] == "Démarrage demandé" and "Demande de démarrage : SSH terminal" in messages, messages
    assert events[-1]["message"].startswith("Votre environnement est prêt : /@/space%20word/user/alice/ssh/")
    # JupyterHub's objects and Swarm agree: one service, running, for alice's "ssh"
    spawner = mockhub.users["alice"].spawners["ssh"]
    assert spawner.ready and spawner.profile.slug == "ssh"
    services = docker_api.services(filters={"name": spawner.service_name})
    assert [s["Spec"]["Name"] for s in services] == [spawner.service_name]
    assert await spawner.poll() is None
    # stopping through the API removes the service (once the stops of a class have settled: a second later)
    stopped = await api_request(mockhub, "users", "alice", "servers", "ssh", method="delete")
    assert stopped.status_code in (202, 204), stopped.text
    assert not mockhub.users["alice"].spawners["ssh"].active
    for _ in range(60):
        if not docker_api.services(filters={"name": spawner.service_name}):
            break
        await asyncio.sleep(0.5)
    assert docker_api.services(filters={"name": spawner.service_name}) == []


async def test_a_server_started_again_before_its_old_service_is_removed_keeps_its_new_one(
    hub_app, tmp_path, run_prefix, docker_api
):
    """The engine removes a stopped server's service a moment after the hub's stop (``removal_settle_time``);
    a start of the same server meanwhile replaces the old service, and the late removal leaves the new one."""
    ssh = {"ssh.yaml": TEST_ENVIRONMENTS["ssh.yaml"]}
    hub = await swarm_hub(hub_app, tmp_path, run_prefix + "r", ssh, removal_settle_time=600.0)  # a long settle time
    add_user(hub.db, hub, name="carl")

    async def start():
        response = await api_request(hub, "users", "carl", "servers", "ssh", method="post")
        assert response.status_code in (201, 202), response.text
        spawner = hub.users["carl"].spawners["ssh"]
        for _ in range(240):
            if spawner.ready:
                return spawner
            await asyncio.sleep(0.5)
        raise AssertionError("carl's server did not start")

    def service_ids(spawner):
        return [s["ID"] for s in docker_api.services(filters={"name": spawner.service_name})]

    spawner = await start()
    [first_id] = service_ids(spawner)
    stopped = await api_request(hub, "users", "carl", "servers", "ssh", method="delete")
    assert stopped.status_code in (202, 204), stopped.text
    assert not hub.users["carl"].spawners["ssh"].active
    assert "/user/carl/ssh/" not in json.dumps(await hub.proxy.get_all_routes()), "off the proxy at once"
    assert service_ids(spawner) == [first_id], "the engine's removal waits for the settle time"

    spawner = await start()  # before the old service's removal
    [second_id] = service_ids(spawner)
    assert second_id != first_id, "the start replaced the old service"
    await spawner.watcher.removals.flush()  # the late removal of the first one
    assert service_ids(spawner) == [second_id] and await spawner.poll() is None

    stopped = await api_request(hub, "users", "carl", "servers", "ssh", method="delete")
    assert stopped.status_code in (202, 204), stopped.text
    await spawner.watcher.removals.flush()
    assert service_ids(spawner) == []


async def test_an_unknown_environment_is_refused_with_its_reason_in_the_callers_language(mockhub):
    add_user(mockhub.db, mockhub, name="bob")
    refused = await api_request(
        mockhub, "users", "bob", "servers", "nothing-here", method="post", headers={"Accept-Language": "fr"}
    )
    assert refused.status_code == 404, refused.text
    assert refused.json()["message"] == (
        "Il n'y a pas (ou plus) d'environnement nommé 'nothing-here'. Choisissez-en un dans le catalogue."
    )
    assert not docker.APIClient(version="auto").services(filters={"name": "nothing-here"})


async def test_a_student_beyond_the_running_cap_is_told_which_to_stop_and_a_teacher_is_not_capped(
    hub_app, tmp_path, run_prefix, docker_api
):
    files = {
        "ssh.yaml": TEST_ENVIRONMENTS["ssh.yaml"],
        "second.yaml": TEST_ENVIRONMENTS["ssh.yaml"].replace("SSH terminal", "Second"),
    }
    hub = await swarm_hub(hub_app, tmp_path, run_prefix + "c", files, running_servers_per_student=1)
    add_user(hub.db, hub, name="dora")
    add_user(hub.db, hub, name="prof")
    teachers = orm.Group(name="teacher")
    hub.db.add(teachers)
    teachers.users.append(orm.User.find(hub.db, "prof"))
    hub.db.commit()

    async def start(user: str, slug: str):
        response = await api_request(hub, "users", user, "servers", slug, method="post")
        if response.status_code in (201, 202):
            spawner = hub.users[user].spawners[slug]
            for _ in range(240):
                if spawner.ready:
                    break
                await asyncio.sleep(0.5)
            assert spawner.ready, f"{user}/{slug} did not start"
        return response

    assert (await start("dora", "ssh")).status_code in (201, 202)
    refused = await start("dora", "second")
    assert refused.status_code == 403, refused.text
    assert refused.json()["message"] == "Already running: ssh (at most 1 at once). Stop one of them to start this one."
    assert not docker_api.services(filters={"name": hub.users["dora"].spawners["second"].service_name})
    stopped = await api_request(hub, "users", "dora", "servers", "ssh", method="delete")
    assert stopped.status_code in (202, 204), stopped.text
    assert (await start("dora", "second")).status_code in (201, 202), "with ssh stopped, second starts"

    for slug in ("ssh", "second"):  # a teacher is not capped
        assert (await start("prof", slug)).status_code in (201, 202), slug
    for user, slug in (("dora", "second"), ("prof", "ssh"), ("prof", "second")):
        assert (await api_request(hub, "users", user, "servers", slug, method="delete")).status_code in (202, 204)
    await hub.users["dora"].spawners["second"].watcher.removals.flush()


async def test_server_names_that_are_no_environment_cannot_pile_up_records(hub_app, tmp_path, run_prefix):
    limit = {"named_server_limit_per_user": _named_server_limit(str(tmp_path / "environments"))}  # read when asked
    hub = await swarm_hub(hub_app, tmp_path, run_prefix + "n", {"ssh.yaml": TEST_ENVIRONMENTS["ssh.yaml"]}, limit)
    add_user(hub.db, hub, name="scripted")
    as_student = auth_header(hub.db, "scripted")
    allowed = 1 + NAMED_SERVERS_BEYOND_CATALOGUE  # the catalogue's one environment, and the margin
    for number in range(allowed):
        refused = await api_request(
            hub, "users", "scripted", "servers", f"bogus{number}", method="post", headers=as_student
        )
        assert refused.status_code == 404, refused.text  # no such environment; JupyterHub keeps its record
    one_more = await api_request(hub, "users", "scripted", "servers", "bogus-more", method="post", headers=as_student)
    assert one_more.status_code == 400 and "maximum of 21 named servers" in one_more.json()["message"]
    assert "bogus-more" not in orm.User.find(hub.db, "scripted").orm_spawners
    # an administrator (api_request's default) is not limited
    admin = await api_request(hub, "users", "scripted", "servers", "bogus-by-admin", method="post")
    assert admin.status_code == 404, admin.text


async def test_a_server_swarm_starts_again_on_another_node_is_routed_there(hub_app, tmp_path, run_prefix, docker_api):
    """A node is drained or lost: Swarm starts the server again on another node (same host-mode port). The hub
    must route to it there, instead of showing a server listed as running that never answers (and stopping it
    at its next restart). This machine has one node: the other node is simulated in the watcher's listing (a
    second loopback address of this machine, where the published port answers too); everything else is real."""
    web = (
        "title: A plain web server\n"
        f"image: {TEST_IMAGE}\n"
        "interface: custom\n"
        'command: ["python3", "-m", "http.server", "8888"]\n'
        "ports: [{name: web, port: 8888, type: http}]\n"
    )
    hub = await swarm_hub(hub_app, tmp_path, run_prefix + "w", {"web.yaml": web})
    add_user(hub.db, hub, name="dora")
    started = await api_request(hub, "users", "dora", "servers", "web", method="post")
    assert started.status_code in (201, 202), started.text
    spawner = hub.users["dora"].spawners["web"]
    for _ in range(240):
        if spawner.ready:
            break
        await asyncio.sleep(0.5)
    assert spawner.ready, "dora's server did not start"
    first_address = spawner.server.ip
    route = "/user/dora/web/"

    async def route_target() -> str:
        routes = await hub.proxy.get_all_routes()
        return next(r["target"] for spec, r in routes.items() if spec.endswith(route))

    assert first_address in await route_target()
    # the listing now shows its task running on another node
    watcher = spawner.watcher
    other_address = "127.0.0.2" if first_address != "127.0.0.2" else "127.0.0.3"
    watcher.snapshot.nodes["node-b"] = {"ID": "node-b", "Status": {"Addr": other_address, "State": "ready"}}
    watcher.tasks(spawner.service_name)[0]["NodeID"] = "node-b"
    assert await spawner.poll() is None
    assert spawner.server.ip == other_address
    hub.db.expire_all()
    assert hub.db.query(orm.Server).filter_by(id=spawner.orm_spawner.server.id).one().ip == other_address
    assert other_address in await route_target()
    # the new route works: the answer comes from the server (Python's http.server: a 404 for the hub's path),
    # not the proxy's "service unavailable" (on this one node the old address would answer too: the route's
    # target above is what shows the move)
    through_proxy = await asyncio.to_thread(requests.get, public_url(hub, path="user/dora/web/"), timeout=30)
    assert through_proxy.status_code == 404 and "SimpleHTTP" in through_proxy.headers.get("Server", "")
    # the next real listing shows it on this node again: the route follows back
    await watcher.next_snapshot(timeout=30)
    assert await spawner.poll() is None
    assert spawner.server.ip == first_address and first_address in await route_target()
    stopped = await api_request(hub, "users", "dora", "servers", "web", method="delete")
    assert stopped.status_code in (202, 204), stopped.text
    await spawner.watcher.removals.flush()
