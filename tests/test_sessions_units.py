"""Class sessions without a hub: availability, capacity verdicts, pre-pull results, the culler's rules."""

from __future__ import annotations

import datetime as dt

import pytest

from mydocker_hub import culling
from mydocker_hub.environments.loader import load_text
from mydocker_hub.scheduler.capacity import NodeCapacity, verdicts
from mydocker_hub.scheduler.prepull import classify, eligible_nodes
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


def test_capacity_ignores_sessions_beyond_the_horizon_or_ended():
    env = env_with(CLASS)
    assert verdicts([env], [node(1, 1)], START + dt.timedelta(days=1), dt.timedelta(days=7)) == []
    assert verdicts([env], [node(1, 1)], START - dt.timedelta(days=30), dt.timedelta(days=7)) == []


@pytest.mark.parametrize(
    "state, error, expected",
    [
        ("complete", "", ("pulled", "")),
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
