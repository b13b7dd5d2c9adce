"""Class sessions without a hub: availability, capacity verdicts, pre-pull results, the culler's rules, and
the scheduler's round with stand-ins for the hub and Docker."""

from __future__ import annotations

import asyncio
import datetime as dt

import docker.errors
import pytest

from mydocker_hub import culling
from mydocker_hub.environments.loader import load_text
from mydocker_hub.scheduler.app import SchedulerApp
from mydocker_hub.scheduler.capacity import NodeCapacity, verdicts
from mydocker_hub.scheduler.core import Scheduler
from mydocker_hub.scheduler.prepull import NodePull, classify, eligible_nodes
from mydocker_hub.sessions.policy import availability, closed_message

PARIS = dt.timezone(dt.timedelta(hours=1))
START = dt.datetime(2026, 1, 12, 14, 0, tzinfo=PARIS)


def env_with(sessions: str = "", extra: str = "", slug: str = "tp"):
    text = f"title: TP\nimage: mydocker/minimal:latest\n{extra}\n"
    if sessions:
        text += "sessions:\n" + sessions
    environment, errors = load_text(text, f"{slug}.yaml")
    assert not errors, errors
    return environment


CLASS = """  - {start: "2026-01-12T14:00:00+01:00", end: "2026-01-12T16:00:00+01:00", students: 30, groups: [g1]}
"""
BLOCKED = """  - {start: "2026-01-12T14:00:00+01:00", end: "2026-01-12T16:00:00+01:00", students: 30,
     block_before_start: true, stop_at_end: true, warn_before_end: 15}
"""

AVAILABILITY = {
    "no session: always open": ("", 0, ["g1"], False, (True, True, None)),
    "during the session": (CLASS, 30, ["g1"], False, (True, True, None)),
    "20 min before, not blocked": (CLASS, -20, ["g1"], False, (True, True, None)),
    "20 min before, blocked": (BLOCKED, -20, [], False, (True, False, START)),
    "2 h before: hidden": (CLASS, -120, ["g1"], False, (False, False, START)),
    "after the end: hidden": (CLASS, 121, ["g1"], False, (False, False, None)),
    "another group's session": (CLASS, 30, ["g2"], False, (False, False, None)),
    "teacher outside sessions": (CLASS, -600, [], True, (True, True, None)),
}


@pytest.mark.parametrize("sessions, minutes, groups, privileged, expected", AVAILABILITY.values(), ids=AVAILABILITY)
def test_availability(sessions, minutes, groups, privileged, expected):
    env = env_with(sessions)
    now = START + dt.timedelta(minutes=minutes)
    result = availability(env, now, groups=groups, privileged=privileged)
    assert (result.visible, result.startable, result.opens_at) == expected


def test_blocked_message_gives_the_opening_time_and_end_warning_starts_on_time():
    env = env_with(BLOCKED)
    result = availability(env, START - dt.timedelta(minutes=10))
    assert str(closed_message(env, result)) == "TP opens at 2026-01-12 14:00 (UTC+01:00): come back then."
    assert result.warning_from() == START + dt.timedelta(minutes=105)


def node(cpus, memory_gib, pool="", ready=True):
    return NodeCapacity(f"n{cpus}{pool}", f"node-{pool or 'x'}", cpus, memory_gib * 1024**3, pool, ready)


def test_capacity_adds_overlapping_sessions_per_pool():
    a = env_with(CLASS, "resources: {cpu_reservation: 0.5, memory_limit: 1G}", slug="a")
    b = env_with(CLASS, "resources: {cpu_reservation: 0.5, memory_limit: 1G}", slug="b")
    gpu = env_with(CLASS, "resources: {cpu_reservation: 1, memory_limit: 1G, node_pool: gpu}", slug="g")
    nodes = [node(32, 64), node(8, 16, "gpu"), node(64, 256, ready=False)]
    results = {
        v.environment: v for v in verdicts([a, b, gpu], nodes, START - dt.timedelta(days=1), dt.timedelta(days=7))
    }
    assert results["a"].cpu_needed == 30 and results["a"].fits is True  # 30 × 0.5 + 30 × 0.5 ≤ 32
    assert results["a"].overlapping == ["b"]
    assert results["a"].memory_needed == 60 * 1024**3
    assert results["g"].fits is False and "node pool 'gpu'" in results["g"].message
    assert "CPU 30 needed, 8 available" in results["g"].message
    # the page says it in the teacher's language, and which other classes share the machines
    assert (
        results["g"]
        .explanation()
        .in_language("fr")
        .startswith(
            "ne tient pas sur le groupe de nœuds 'gpu' : CPU : 30 nécessaires, 8 disponibles ; "
            "mémoire : 30,0 Gio nécessaires, 16,0 Gio disponibles. Ajoutez des nœuds"
        )
    )
    c = env_with(CLASS, "resources: {cpu_reservation: 1, memory_limit: 1G}", slug="c")
    crowded = verdicts([a, b, c], [node(32, 64)], START - dt.timedelta(days=1), dt.timedelta(days=7))
    assert "(with a, b at the same time)" in next(v for v in crowded if v.environment == "c").message


def test_capacity_adds_only_the_classes_that_meet_and_counts_what_pools_take():
    """An all-day lab beside a morning class and an afternoon class never has both classes at once: 40 CPUs at
    the peak, not 70 (a false "does not fit" before). A class without a pool may run on a pool's nodes, but not
    on what that pool's own class takes of them at the same time."""
    day = 'start: "2026-01-12T08:00:00+01:00", end: "2026-01-12T18:00:00+01:00"'
    morning = 'start: "2026-01-12T08:00:00+01:00", end: "2026-01-12T10:00:00+01:00"'
    afternoon = 'start: "2026-01-12T14:00:00+01:00", end: "2026-01-12T16:00:00+01:00"'
    one_cpu = "resources: {cpu_reservation: 1, memory_limit: 1G}"
    lab = env_with(f"  - {{{day}, students: 10}}\n", one_cpu, slug="lab")
    first = env_with(f"  - {{{morning}, students: 30}}\n", one_cpu, slug="first")
    second = env_with(f"  - {{{afternoon}, students: 30}}\n", one_cpu, slug="second")
    day_before = dt.datetime(2026, 1, 11, 12, 0, tzinfo=PARIS)
    results = {v.environment: v for v in verdicts([lab, first, second], [node(50, 100)], day_before, dt.timedelta(7))}
    assert all(v.fits for v in results.values()), [v.message for v in results.values()]
    assert results["lab"].cpu_needed == 40 and results["lab"].overlapping == ["first"]
    # the morning class on a 10-CPU node and an 8-CPU GPU node, while the GPU pool's own class takes all 8
    gpu = env_with(f"  - {{{morning}, students: 8}}\n", "resources: {cpu_reservation: 1, node_pool: gpu}", slug="g")
    nodes = [node(22, 100), node(8, 16, "gpu")]
    crowded = {v.environment: v for v in verdicts([first, gpu], nodes, day_before, dt.timedelta(days=7))}
    assert crowded["g"].fits and not crowded["first"].fits
    assert "CPU 30 needed, 22 available" in crowded["first"].message


def test_capacity_ignores_sessions_beyond_the_horizon_or_ended():
    env = env_with(CLASS)
    assert verdicts([env], [node(1, 1)], START + dt.timedelta(days=1), dt.timedelta(days=7)) == []
    assert verdicts([env], [node(1, 1)], START - dt.timedelta(days=30), dt.timedelta(days=7)) == []


@pytest.mark.parametrize(
    "state, error, expected",
    [
        ("complete", "", ("pulled", "")),
        ("running", "", ("pulled", "")),  # its container exists: the image is on the node
        ("failed", 'starting container failed: exec: "true": executable file not found', ("pulled", "")),
        ("rejected", "No such image: 127.0.0.1:5000/x:1", ("failed", "No such image: 127.0.0.1:5000/x:1")),
        ("failed", "pull access denied for x", ("failed", "pull access denied for x")),
    ],
)
def test_prepull_task_outcomes(state, error, expected):
    assert classify({"Status": {"State": state, "Err": error}}) == expected


def test_prepull_targets_ready_active_nodes_of_the_pool():
    nodes = [
        {
            "ID": "a",
            "Status": {"State": "ready"},
            "Spec": {"Availability": "active", "Labels": {"org.mydocker.pool": "gpu"}},
        },
        {"ID": "b", "Status": {"State": "ready"}, "Spec": {"Availability": "active", "Labels": {}}},
        {"ID": "c", "Status": {"State": "down"}, "Spec": {"Availability": "active", "Labels": {}}},
        {"ID": "d", "Status": {"State": "ready"}, "Spec": {"Availability": "drain", "Labels": {}}},
    ]
    assert [n["ID"] for n in eligible_nodes(nodes, "org.mydocker.pool", None)] == ["a", "b"]
    assert [n["ID"] for n in eligible_nodes(nodes, "org.mydocker.pool", "gpu")] == ["a"]


@pytest.fixture
def culled_environments(tmp_path):
    (tmp_path / "quick.yaml").write_text("title: Q\nimage: x:1\nidle_timeout: 5m\n")
    (tmp_path / "slow.yaml").write_text("title: S\nimage: x:1\nidle_timeout: 2h\n")
    (tmp_path / "ssh.yaml").write_text(
        "title: SSH\nimage: x:1\ninterface: ssh\nports: [{name: SSH, port: 2222, type: ssh}]\nidle_timeout: 5m\n"
    )
    return str(tmp_path)


CULL = {
    "idle past its environment's timeout": ("quick", 6, None, True),
    "idle, within a longer timeout": ("slow", 30, None, False),
    "ssh-only: no activity signal, not culled for idleness": ("ssh", 600, None, False),
    "unknown environment: the culler's --timeout": ("gone", 21, None, True),
    "lifetime deadline passed": ("slow", 1, -1, True),
    "lifetime deadline ahead": ("slow", 1, 60, False),
}


@pytest.mark.parametrize("name, idle_minutes, deadline_in, expected", CULL.values(), ids=CULL)
def test_cull_arbiter(culled_environments, monkeypatch, name, idle_minutes, deadline_in, expected):
    monkeypatch.setattr(culling, "current_time", lambda: 1_000_000.0)
    state = {"lifetime_deadline": 1_000_000.0 + deadline_in} if deadline_in is not None else {}
    server = {"name": name, "state": state}
    decision = culling.cull_arbiter(
        inactive=dt.timedelta(minutes=idle_minutes),
        inactive_limit=1200,
        server=server,
        environments_dir=culled_environments,
    )
    assert decision is expected


# -- the scheduler's round, with stand-ins for the hub and Docker ---------------------------------------------
END = START + dt.timedelta(hours=2)
ENDING = """title: TP
image: registry.example/tp:1
access: {owners: [olga], editors: [ed], viewers: [vic]}
sessions:
  - {start: "2026-01-12T14:00:00+01:00", end: "2026-01-12T16:00:00+01:00", students: 30, groups: [g1],
     stop_at_end: true}
"""
# in class when the first one ends: its image is due for pre-pull
NEXT_CLASS = """title: Next
image: registry.example/next:1
sessions:
  - {start: "2026-01-12T16:10:00+01:00", end: "2026-01-12T18:00:00+01:00", students: 30}
"""


class FakeHub:
    """``refuse``: users whose servers the hub fails to stop, as its class stop reports them."""

    def __init__(self, users: list[dict], refuse: tuple[str, ...] = ()):
        self.users = users
        self.refuse = refuse
        self.stopped: list[str] = []

    async def users_with_servers(self) -> list[dict]:
        return self.users

    async def stop_servers(self, environment: str, users: list[str]) -> dict:
        stopped = [user for user in users if user not in self.refuse]
        self.stopped.extend(f"{user}/{environment}" for user in stopped)
        return {"stopped": stopped, "stopping": [], "failed": {user: "engine error" for user in self.refuse}}


class FakeDocker:
    def __init__(self, error: Exception | None = None):
        self.error = error

    async def call(self, method: str, *args, **kwargs):
        if self.error:
            raise self.error
        return []


class FakePrePuller:
    """``slow``: ``pull`` waits until ``release`` is set, as a large image on a slow registry does (up to 900 s)."""

    pool_label = "org.mydocker.pool"

    def __init__(self, docker_error: Exception | None = None, slow: bool = False):
        self.docker = FakeDocker(docker_error)
        self.release = asyncio.Event()
        if not slow:
            self.release.set()

    async def nodes(self, pool):
        return [{"ID": "n1"}]

    async def pull(self, image, pool, only_nodes=None):
        await self.release.wait()
        return [NodePull("n1", "node-1", "pulled")]


def scheduler_with(tmp_path, users: list[dict], prepuller: FakePrePuller | None = None) -> Scheduler:
    environments = tmp_path / "environments"
    environments.mkdir()
    (environments / "tp.yaml").write_text(ENDING)
    (environments / "next.yaml").write_text(NEXT_CLASS)
    return Scheduler(
        environments_dir=str(environments),
        hub=FakeHub(users),
        prepuller=prepuller or FakePrePuller(),
        state_file=str(tmp_path / "state.json"),
    )


def running_tp(name: str, groups: list[str], admin: bool = False) -> dict:
    return {"name": name, "admin": admin, "groups": groups, "servers": {"tp": {"name": "tp"}}}


STOP_AT_END = {
    "student of the session": (running_tp("sam", ["g1"]), True),
    "student of another group": (running_tp("sue", ["g2"]), False),
    "teacher": (running_tp("tess", ["teacher"]), False),
    "admin": (running_tp("root", [], admin=True), False),
    "environment's owner": (running_tp("olga", ["g1"]), False),
    "environment's editor": (running_tp("ed", ["g1"]), False),
    "environment's viewer": (running_tp("vic", ["g1"]), False),
}


@pytest.mark.parametrize("user, stopped", STOP_AT_END.values(), ids=STOP_AT_END)
def test_stop_at_end_spares_whom_sessions_do_not_bind(tmp_path, user, stopped):
    scheduler = scheduler_with(tmp_path, [user])
    asyncio.run(scheduler.tick(now=END + dt.timedelta(minutes=1)))
    assert scheduler.hub.stopped == ([f"{user['name']}/tp"] if stopped else [])


def test_a_docker_error_in_the_capacity_check_does_not_skip_the_end_of_a_session(tmp_path):
    prepuller = FakePrePuller(docker_error=docker.errors.APIError("Cannot connect to the Docker daemon"))
    scheduler = scheduler_with(tmp_path, [running_tp("sam", ["g1"])], prepuller)
    asyncio.run(scheduler.tick(now=END + dt.timedelta(minutes=1)))
    assert scheduler.hub.stopped == ["sam/tp"]
    assert "tp@" + START.isoformat() in scheduler.state["ended"]


def test_a_session_whose_servers_could_not_all_be_stopped_is_tried_again(tmp_path):
    scheduler = scheduler_with(tmp_path, [running_tp("sam", ["g1"])])
    scheduler.hub.refuse = ("sam",)
    asyncio.run(scheduler.tick(now=END + dt.timedelta(minutes=1)))
    assert "tp@" + START.isoformat() not in scheduler.state["ended"]  # not marked ended
    scheduler.hub.refuse = ()
    asyncio.run(scheduler.tick(now=END + dt.timedelta(minutes=2)))
    assert scheduler.hub.stopped == ["sam/tp"]
    assert scheduler.state["ended"]["tp@" + START.isoformat()]["stopped"] == ["sam/tp"]


def test_slow_prepulls_do_not_delay_the_end_of_a_session(tmp_path):
    scheduler = scheduler_with(tmp_path, [running_tp("sam", ["g1"])], FakePrePuller(slow=True))

    async def rounds():
        await asyncio.wait_for(scheduler.tick(now=END - dt.timedelta(minutes=1)), timeout=5)  # pulls start
        await asyncio.wait_for(scheduler.tick(now=END + dt.timedelta(minutes=1)), timeout=5)  # still pulling
        assert scheduler.hub.stopped == ["sam/tp"]
        scheduler.prepuller.release.set()
        await scheduler.prepulling
        assert scheduler.state["prepull"]["registry.example/next:1"]["n1"]["status"] == "pulled"

    asyncio.run(rounds())


def test_an_image_pulled_for_a_class_is_pulled_again_for_the_next_one_not_before(tmp_path):
    """A pull is good for the class it was made for: by the next one (a week later) a tag like :latest may have
    moved, or the node's images been pruned; the page said "image ready" from the week before."""
    environments = tmp_path / "environments"
    environments.mkdir()
    (environments / "weekly.yaml").write_text(
        "title: Weekly\nimage: registry.example/weekly:latest\nsessions:\n"
        '  - {start: "2026-01-12T14:00:00+01:00", end: "2026-01-12T16:00:00+01:00", students: 30}\n'
        '  - {start: "2026-01-19T14:00:00+01:00", end: "2026-01-19T16:00:00+01:00", students: 30}\n'
    )
    pulls = []

    class CountingPrePuller(FakePrePuller):
        async def pull(self, image, pool, only_nodes=None):
            pulls.append(image)
            return await super().pull(image, pool, only_nodes)

    scheduler = Scheduler(
        environments_dir=str(environments),
        hub=FakeHub([]),
        prepuller=CountingPrePuller(),
        state_file=str(tmp_path / "state.json"),
    )

    async def tick_at(moment):
        await scheduler.tick(now=moment)
        await scheduler.prepulling

    week = dt.timedelta(days=7)
    for moment in (START - dt.timedelta(minutes=20), START - dt.timedelta(minutes=10), START + dt.timedelta(hours=1)):
        asyncio.run(tick_at(moment))
    assert pulls == ["registry.example/weekly:latest"], "once for the first class"
    first, second = scheduler.report(now=START + dt.timedelta(hours=1))["sessions"]
    assert [p["status"] for p in first["prepull"]] == ["pulled"] and second["prepull"] == [], "not ready for next week"
    asyncio.run(tick_at(START + week - dt.timedelta(minutes=20)))
    asyncio.run(tick_at(START + week))
    assert pulls == ["registry.example/weekly:latest"] * 2, "once more for the next class"


def test_scheduler_uses_the_spawners_prefix_and_pool_label_passed_by_the_hub(monkeypatch):
    monkeypatch.delenv("MYDOCKER_SERVICE_PREFIX", raising=False)
    monkeypatch.delenv("MYDOCKER_NODE_POOL_LABEL", raising=False)
    assert (SchedulerApp().service_label, SchedulerApp().node_pool_label) == ("mydocker", "org.mydocker.pool")
    monkeypatch.setenv("MYDOCKER_SERVICE_PREFIX", "mydocker-staging")
    monkeypatch.setenv("MYDOCKER_NODE_POOL_LABEL", "example.org/pool")
    app = SchedulerApp()
    assert (app.service_label, app.node_pool_label) == ("mydocker-staging", "example.org/pool")


def test_who_was_stopped_at_a_sessions_end_is_named_only_to_admins_and_the_environments_managers(tmp_path):
    scheduler = scheduler_with(tmp_path, [running_tp("sam", ["g1"])])
    now = END + dt.timedelta(minutes=1)
    asyncio.run(scheduler.tick(now=now))

    def ended_as(user: dict) -> dict:
        (session,) = [s for s in scheduler.report_for(user, now=now)["sessions"] if s["environment"] == "tp"]
        return session["ended"]

    assert ended_as({"name": "another-teacher", "admin": False}) == {"at": now.isoformat(), "count": 1}
    for reader in ({"name": "olga"}, {"name": "ed"}, {"name": "root", "admin": True}):
        assert ended_as(reader)["stopped"] == ["sam/tp"], reader
    assert "stopped" not in ended_as({"name": "vic"})  # a viewer reads the file, not the class list
