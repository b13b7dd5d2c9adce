"""Class sessions for real: a hub on a real Swarm, the scheduler's core run in-process with a patched clock
(``Scheduler.tick(now=...)``), a real registry on loopback, and jupyterhub-idle-culler's own culling
function driven against the hub with its clock patched.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import subprocess
import threading
import time
import uuid

import jupyterhub_idle_culler
import pytest
import requests

from mydocker_hub import culling
from mydocker_hub.scheduler.core import HubClient, Scheduler
from mydocker_hub.scheduler.prepull import NO_PROGRAM, PrePuller
from mydocker_hub.swarm.client import AsyncDocker
from mydocker_hub.swarm.names import home_volume_name, service_name

from .conftest import sessions_prefix
from .hubprocess import TEST_IMAGE, Hub, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def at(minutes: float) -> str:
    return (NOW + dt.timedelta(minutes=minutes)).isoformat()


ENVIRONMENTS = {
    "lab.yaml": f"title: Lab\nimage: {TEST_IMAGE}\nresources: {{cpu_limit: 0.5, memory_limit: 512M}}\n",
    "quick.yaml": f"title: Quick\nimage: {TEST_IMAGE}\nidle_timeout: 15s\nhome: {{type: none}}\n",
    "short.yaml": f"title: Short\nimage: {TEST_IMAGE}\nmax_lifetime: 30m\nhome: {{type: none}}\n",
    # two groups in class now; group A's session ends first and stops its servers (not its viewer's)
    "endclass.yaml": f"""
title: End of class
image: {TEST_IMAGE}
home: {{type: environment, mount_path: /home/jovyan}}
access: {{viewers: [carol]}}
sessions:
  - {{start: "{at(-60)}", end: "{at(60)}", students: 2, groups: [groupa], stop_at_end: true, warn_before_end: 10}}
  - {{start: "{at(-60)}", end: "{at(180)}", students: 2, groups: [groupb], stop_at_end: true}}
""",
    "later.yaml": f"""
title: Opens later
image: {TEST_IMAGE}
sessions:
  - {{start: "{at(10)}", end: "{at(120)}", students: 20, block_before_start: true}}
""",
    "tomorrow.yaml": f"""
title: {{en: "Tomorrow's class", fr: "Séance de demain"}}
image: {TEST_IMAGE}
sessions:
  - {{start: "{at(24 * 60)}", end: "{at(26 * 60)}", students: 20}}
""",
}

ACCOUNTS = """
c.MyDockerAuthenticator.demo_accounts = {
    "alice": {"role": "student", "groups": ["groupa"]},
    "bob": {"role": "student", "groups": ["groupb"]},
    "carol": {"role": "student", "groups": ["groupa"]},
    "teacher": {"role": "teacher"},
    "admin": {"role": "admin"},
    "dave": {"role": "student", "groups": ["groupa"]},
}
c.JupyterHub.api_page_max_limit = 2  # the scheduler must follow the hub's pages to find every server
"""


@pytest.fixture(scope="module")
def shub(tmp_path_factory, run_prefix, docker_api):
    workdir = tmp_path_factory.mktemp("sessions-hub")
    hub = Hub(workdir, sessions_prefix(run_prefix), environments=ENVIRONMENTS)
    (hub.config_d / "20-sessions.py").write_text(ACCOUNTS)
    hub.env["MYDOCKER_CULL_EVERY"] = "5"  # the culler service's round, seconds (default 60)
    hub.start()
    for name in ("alice", "bob", "carol", "teacher", "dave"):
        hub.login(name)  # the demo login sets their groups (and the hub lists users in this order)
    yield hub
    hub.stop()


def scheduler_for(hub: Hub, run_prefix: str, tmp_path) -> Scheduler:
    return Scheduler(
        environments_dir=str(hub.environments),
        hub=HubClient(f"{hub.url}/hub/api", hub.token),
        prepuller=PrePuller(AsyncDocker.shared(4), label=sessions_prefix(run_prefix)),
        state_file=str(tmp_path / "scheduler-state.json"),
    )


def run(coroutine):
    return asyncio.run(coroutine)


def tick(scheduler: Scheduler, now: dt.datetime | None = None) -> None:
    """One round, then the pre-pulls it started (the service's rounds do not wait for them; a test does)."""

    async def round_and_prepulls():
        await scheduler.tick(now=now)
        if scheduler.prepulling:
            await scheduler.prepulling

    run(round_and_prepulls())


def image_present(reference: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", reference], capture_output=True).returncode == 0


# -- what students see ------------------------------------------------------------------------------------
def test_blocked_before_start_shows_the_opening_time_instead_of_a_start_button(shub):
    page = shub.login("alice").get(f"{shub.url}/hub/spawn").text
    card = page.split('data-environment="later"', 1)[1].split('class="col"', 1)[0]
    assert "mydocker-opens-at" in card and "mydocker-start" not in card
    assert 'data-environment="tomorrow"' not in page  # outside its sessions: hidden
    response = shub.api("POST", "users/alice/servers/later")
    assert response.status_code == 403 and "opens at" in response.json()["message"]
    join = shub.login("alice").get(f"{shub.url}/hub/join/later")
    assert join.status_code == 403 and "opens at" in join.text
    # teachers are not bound by sessions
    assert 'data-environment="tomorrow"' in shub.login("teacher").get(f"{shub.url}/hub/spawn").text


# -- pre-pull ------------------------------------------------------------------------------------------------
def test_prepull_puts_an_absent_image_on_the_node_before_the_session(shub, registry, run_prefix, tmp_path):
    repository = f"mdt-prepull-{uuid.uuid4().hex[:8]}"
    image = f"{registry.host}/{repository}:1"
    build = subprocess.run(
        ["docker", "build", "-q", "-t", image, "-"],
        input=f"FROM {TEST_IMAGE}\nUSER 0\nRUN head -c 8000000 /dev/urandom > /opt/course-data\nUSER 1000\n",
        text=True,
        capture_output=True,
    )
    assert build.returncode == 0, build.stderr
    assert subprocess.run(["docker", "push", "-q", image], capture_output=True).returncode == 0
    assert subprocess.run(["docker", "rmi", image], capture_output=True).returncode == 0
    assert not image_present(image)
    start = NOW + dt.timedelta(hours=3)
    (shub.environments / "prepulled.yaml").write_text(
        f"""title: Pre-pulled
image: {image}
sessions:
  - {{start: "{start.isoformat()}", end: "{(start + dt.timedelta(hours=2)).isoformat()}", students: 30}}
"""
    )
    scheduler = scheduler_for(shub, run_prefix, tmp_path)
    tick(scheduler, start - dt.timedelta(hours=1))  # an hour before: nothing to do yet
    assert not image_present(image)
    log_before = registry.log_size()
    tick(scheduler, start - dt.timedelta(minutes=25))  # within the 30-minute lead
    assert image_present(image)
    assert registry.blob_downloads(repository, since=log_before), "the node downloaded the image's layers"
    (session,) = [s for s in scheduler.report(now=start)["sessions"] if s["environment"] == "prepulled"]
    assert [p["status"] for p in session["prepull"]] == ["pulled"]
    assert session["fits"] is True

    # a spawn right after the pre-pull downloads no layer
    log_before = registry.log_size()
    shub.spawn("teacher", "prepulled")
    assert registry.blob_downloads(repository, since=log_before) == []
    shub.stop_server("teacher", "prepulled")


def test_prepull_failure_is_reported_per_node_with_the_reason(shub, registry, run_prefix, tmp_path):
    image = f"{registry.host}/mdt-missing-{uuid.uuid4().hex[:6]}:1"
    start = NOW + dt.timedelta(hours=5)
    (shub.environments / "missing.yaml").write_text(
        f"""title: Missing image
image: {image}
sessions:
  - {{start: "{start.isoformat()}", end: "{(start + dt.timedelta(hours=1)).isoformat()}", students: 3}}
"""
    )
    scheduler = scheduler_for(shub, run_prefix, tmp_path)
    tick(scheduler, start - dt.timedelta(minutes=10))
    (session,) = [s for s in scheduler.report(now=start)["sessions"] if s["environment"] == "missing"]
    (pull,) = session["prepull"]
    assert pull["status"] == "failed" and pull["reason"]
    (shub.environments / "missing.yaml").unlink()


def test_prepull_runs_the_image_only_a_moment_and_confined(run_prefix):
    """The image pre-pulled is a teacher's, maybe a draft nobody reviewed: nothing of it runs (here its
    ``true`` would run for five minutes), and its container is confined anyway (nobody, no capabilities,
    little CPU and memory)."""
    image = f"mdt-prepull-payload-{uuid.uuid4().hex[:8]}:1"
    payload = r"#!/bin/sh\nsleep 300\n"  # printf turns the \n into new lines
    dockerfile = f"FROM {TEST_IMAGE}\nUSER 0\nRUN printf '{payload}' > /usr/local/bin/true"
    dockerfile += " && chmod 755 /usr/local/bin/true\n"
    build = subprocess.run(
        ["docker", "build", "-q", "-t", image, "-"],
        input=dockerfile,
        text=True,
        capture_output=True,
    )
    assert build.returncode == 0, build.stderr
    label = sessions_prefix(run_prefix)
    service = f"{label}-prepull-{hashlib.sha256(image.encode()).hexdigest()[:10]}"
    containers = ["docker", "ps", "-aq", "--filter", f"label=com.docker.swarm.service.name={service}"]
    seen: dict = {}
    watching = threading.Event()
    watching.set()

    def watch_its_container():
        while watching.is_set() and not seen:
            found = subprocess.run(containers, capture_output=True, text=True).stdout.split()
            if found:
                inspected = subprocess.run(["docker", "inspect", found[0]], capture_output=True, text=True)
                if inspected.returncode == 0:
                    seen.update(json.loads(inspected.stdout)[0])
            time.sleep(0.1)

    watcher = threading.Thread(target=watch_its_container, daemon=True)
    watcher.start()
    try:
        began = time.monotonic()
        (pull,) = run(PrePuller(AsyncDocker.shared(4), label=label).pull(image, None))
        took = time.monotonic() - began
        assert pull.status == "pulled", pull
        assert took < 60, f"the pre-pull waited {took:.0f} s for the image's program to end"
        wait_for(
            lambda: not subprocess.run(containers, capture_output=True, text=True).stdout.strip(),
            60,
            message="the pre-pull's container to be gone",
        )
    finally:
        watching.clear()
        watcher.join(10)
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True)
    assert seen, "the pre-pull's container was never seen"
    assert seen["State"]["Status"] != "running" and seen["Path"] == NO_PROGRAM, seen["State"]
    assert seen["Config"]["User"] == "65534:65534"
    host = seen["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert host["NanoCpus"] == 100_000_000 and host["Memory"] == 64 * 1024 * 1024


def test_capacity_verdict_warns_when_a_class_does_not_fit(shub, run_prefix, tmp_path):
    start = NOW + dt.timedelta(days=2)
    (shub.environments / "huge.yaml").write_text(
        f"""title: Huge class
image: {TEST_IMAGE}
resources: {{cpu_reservation: 1, memory_limit: 4G}}
sessions:
  - {{start: "{start.isoformat()}", end: "{(start + dt.timedelta(hours=2)).isoformat()}", students: 400}}
"""
    )
    scheduler = scheduler_for(shub, run_prefix, tmp_path)
    tick(scheduler)
    (session,) = [s for s in scheduler.report()["sessions"] if s["environment"] == "huge"]
    assert session["fits"] is False and "CPU 400 needed" in session["capacity"]
    (shub.environments / "huge.yaml").unlink()


# -- end of a session ----------------------------------------------------------------------------------------
def test_stop_at_end_stops_exactly_that_sessions_servers_and_keeps_their_data(shub, run_prefix, tmp_path):
    for user in ("alice", "bob", "carol", "teacher", "dave"):
        shub.spawn(user, "endclass")
    headers = {"Authorization": f"token {shub.user_token('alice')}"}
    body = {"type": "file", "format": "text", "content": "my class work"}
    put = requests.put(f"{shub.url}/user/alice/endclass/api/contents/work.txt", json=body, headers=headers, timeout=30)
    assert put.status_code in (200, 201)
    # the end is announced on the student's page, and in the environment's shells
    home = shub.login("alice").get(f"{shub.url}/hub/home").text
    assert "mydocker-session-end" in home
    service = service_name(sessions_prefix(run_prefix), "alice", "endclass")
    container = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}"],
        capture_output=True,
        text=True,
    ).stdout.split()[0]
    shell = subprocess.run(["docker", "exec", container, "bash", "-ic", "true"], capture_output=True, text=True)
    assert "Class session ends at" in shell.stdout + shell.stderr

    scheduler = scheduler_for(shub, run_prefix, tmp_path)
    tick(scheduler, NOW + dt.timedelta(minutes=50))  # before the end: nothing stops
    assert shub.server_model("alice", "endclass")
    tick(scheduler, NOW + dt.timedelta(minutes=61))  # group A's session has ended
    for student in ("alice", "dave"):  # dave is on the hub's third page of users with servers
        wait_for(lambda s=student: shub.server_model(s, "endclass") is None, 120, message=f"{student}'s server stopped")
    assert shub.server_model("bob", "endclass"), "group B's session goes on"
    assert shub.server_model("teacher", "endclass"), "teachers are not bound by sessions"
    assert shub.server_model("carol", "endclass"), "the environment's viewers are not bound by sessions"
    ended = scheduler.state["ended"]
    stopped = [v["stopped"] for k, v in ended.items() if k.startswith("endclass@")]
    assert stopped == [["alice/endclass", "dave/endclass"]]
    # a second round repeats nothing, and the home is kept
    tick(scheduler, NOW + dt.timedelta(minutes=62))
    volume = home_volume_name(sessions_prefix(run_prefix), "alice", "endclass")
    kept = subprocess.run(
        ["docker", "run", "--rm", "-v", f"{volume}:/h", TEST_IMAGE, "cat", "/h/work.txt"],
        capture_output=True,
        text=True,
    )
    assert kept.stdout == "my class work"
    for user in ("bob", "carol", "teacher"):
        shub.stop_server(user, "endclass")


# -- idle culling and lifetime ---------------------------------------------------------------------------------
def cull_at(hub: Hub, now: dt.datetime, monkeypatch):
    """One round of jupyterhub-idle-culler (its own function, our arbiter), its clock moved to ``now``."""
    monkeypatch.setattr(jupyterhub_idle_culler, "utcnow", lambda: now)
    monkeypatch.setattr(culling, "current_time", lambda: now.timestamp())
    monkeypatch.setenv("MYDOCKER_ENVIRONMENTS_DIR", str(hub.environments))
    run(
        jupyterhub_idle_culler.cull_idle(
            url=f"{hub.url}/hub/api",
            api_token=hub.token,
            inactive_limit=1200,
            cull_arbiter=culling.cull_arbiter,
            cull_users=False,
            remove_named_servers=False,
            max_age=0,
            concurrency=5,
            logger=logging.getLogger("test-culler"),
        )
    )


def report_activity(hub: Hub, user: str, server: str, moment: dt.datetime) -> None:
    """What jupyterhub-singleuser does while someone works: report the server's last activity to the hub."""
    activity = moment.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    body = {"servers": {server: {"last_activity": activity}}, "last_activity": activity}
    response = hub.api("POST", f"users/{user}/activity", json=body)
    assert response.status_code in (200, 204), response.text


def test_culler_stops_an_idle_server_and_leaves_an_active_one(shub, monkeypatch):
    shub.spawn("alice", "lab")
    shub.spawn("carol", "lab")
    now = dt.datetime.now(dt.timezone.utc)
    later = now + dt.timedelta(minutes=25)  # lab's idle_timeout: the default 20 minutes
    # carol kept working: her server reported activity a minute before "later"
    activity = (later - dt.timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    report = shub.api(
        "POST",
        "users/carol/activity",
        json={"servers": {"lab": {"last_activity": activity}}, "last_activity": activity},
    )
    assert report.status_code in (200, 204), report.text
    cull_at(shub, later, monkeypatch)
    wait_for(lambda: shub.server_model("alice", "lab") is None, 60, message="alice's idle server culled")
    assert shub.server_model("carol", "lab"), "an active server is left alone"
    shub.stop_server("carol", "lab")


def test_lifetime_countdown_and_extend_only_on_click(shub, monkeypatch):
    shub.spawn("bob", "short")
    session = shub.login("bob")
    page = session.get(f"{shub.url}/hub/environments/bob/short")
    assert "mydocker-lifetime" in page.text and "mydocker-extend" in page.text
    state = shub.api("GET", "users/bob").json()["servers"]["short"]["state"]
    first_deadline = state["lifetime_deadline"]
    # displaying the pages again does not move the deadline (MyDocker's bug)
    session.get(f"{shub.url}/hub/home")
    session.get(f"{shub.url}/hub/environments/bob/short")
    assert shub.api("GET", "users/bob").json()["servers"]["short"]["state"]["lifetime_deadline"] == first_deadline
    # ... an explicit click does
    xsrf = session.cookies.get("_xsrf")
    extended = session.post(f"{shub.url}/hub/environments/bob/short/extend", headers={"X-XSRFToken": xsrf}, timeout=30)
    assert extended.status_code == 200, extended.text
    new_deadline = extended.json()["lifetime_deadline"]
    assert new_deadline > first_deadline
    assert shub.api("GET", "users/bob").json()["servers"]["short"]["state"]["lifetime_deadline"] == new_deadline
    # past the first deadline but before the extended one: kept; past the extended one: stopped (bob keeps
    # working all along: only the lifetime can stop him)
    between = dt.datetime.fromtimestamp((first_deadline + new_deadline) / 2, dt.timezone.utc)
    between = min(between, dt.datetime.fromtimestamp(new_deadline - 1, dt.timezone.utc))
    report_activity(shub, "bob", "short", between - dt.timedelta(minutes=1))
    cull_at(shub, between, monkeypatch)
    assert shub.server_model("bob", "short")
    after = dt.datetime.fromtimestamp(new_deadline + 60, dt.timezone.utc)
    report_activity(shub, "bob", "short", after - dt.timedelta(minutes=1))
    cull_at(shub, after, monkeypatch)
    wait_for(lambda: shub.server_model("bob", "short") is None, 60, message="bob's server stopped at its lifetime")
    # another user cannot extend someone else's environment
    shub.spawn("bob", "short")
    stranger = shub.login("alice")
    refused = stranger.post(
        f"{shub.url}/hub/environments/bob/short/extend", headers={"X-XSRFToken": stranger.cookies.get("_xsrf")}
    )
    assert refused.status_code == 404
    shub.stop_server("bob", "short")


def test_the_culler_service_stops_an_idle_server_by_its_environment_timeout(shub):
    shub.spawn("alice", "quick")  # idle_timeout: 15s; the hub-managed culler runs every 5 s here
    wait_for(lambda: shub.server_model("alice", "quick") is None, 90, 1, "the culler service stopping it")
    assert "Service idle-culler exited" not in shub.log()
    assert "Culling server alice/quick" in shub.log()  # stopped by the service, not by anything else


# -- services ---------------------------------------------------------------------------------------------------
def test_culler_and_scheduler_run_as_hub_services_and_the_sessions_page_is_for_teachers(shub):
    services = shub.api("GET", "services").json()
    assert {"idle-culler", "scheduler"} <= set(services)
    teacher = shub.login("teacher")
    page = teacher.get(f"{shub.url}/services/scheduler/")
    assert page.status_code == 200 and "Class sessions" in page.text and "data-environment='endclass'" in page.text
    # in the reader's language, with the hub's navigation bar
    french = teacher.get(f"{shub.url}/services/scheduler/", headers={"Accept-Language": "fr-FR,fr;q=0.9"}).text
    assert "<h1 class='h3'>Séances</h1>" in french and "Pré-téléchargement par nœud" in french
    assert "Mes environnements" in french and "/hub/spawn" in french and "Se déconnecter" in french
    row = french.split("data-environment='tomorrow'", 1)[1].split("</tr>", 1)[0]
    assert "Séance de demain" in row  # the environment's title in the reader's language
    assert "class='local-time'" in row  # times shown in the reader's time zone and language, not as ISO text
    capacity = row.split("class='capacity", 1)[1]
    assert "tient" in capacity or "ne tient pas" in capacity or "pas encore calculée" in capacity, capacity
    data = teacher.get(f"{shub.url}/services/scheduler/api/sessions").json()
    assert {s["environment"] for s in data["sessions"]} >= {"endclass", "later", "tomorrow"}
    # a session a teacher just added (git pull) is listed at once, not at the scheduler's next round
    (shub.environments / "just-added.yaml").write_text(
        f"title: Just added\nimage: {TEST_IMAGE}\n"
        f"sessions:\n  - {{start: '{at(300)}', end: '{at(400)}', students: 5}}\n"
    )
    try:
        page = teacher.get(f"{shub.url}/services/scheduler/").text
        assert "data-environment='just-added'" in page
    finally:
        (shub.environments / "just-added.yaml").unlink()
    student = shub.login("alice").get(f"{shub.url}/services/scheduler/")
    assert student.status_code == 403
