"""Unit tables for the pieces the spawner relies on: failure diagnosis, ports, credentials, languages."""

import random

import pytest

from mydocker_hub.credentials import CredentialKeyError, Credentials, CredentialStore, generate_password
from mydocker_hub.i18n import browser_languages, pick_language
from mydocker_hub.swarm import diagnose
from mydocker_hub.swarm.ports import PortRangeExhausted, parse_port_range, pick_free_ports
from mydocker_hub.swarm.watcher import SwarmWatcher


def task(state, err="", exit_code=None):
    status = {"State": state, "Err": err}
    if exit_code is not None:
        status["ContainerStatus"] = {"ExitCode": exit_code}
    return {"Status": status}


@pytest.mark.parametrize(
    "tasks, attempts, expected",
    [
        pytest.param([task("running")], 2, (None, 0), id="running"),
        pytest.param([task("failed", "task: non-zero exit (4)", 4)], 2, (None, 1), id="one-exit-tolerated"),
        pytest.param(
            [task("starting"), task("failed", "task: non-zero exit (4)", 4)], 2, (None, 1), id="replacement-starting"
        ),
        pytest.param(
            [task("failed", "task: non-zero exit (4)", 4), task("failed", "task: non-zero exit (4)", 4)],
            2,
            ("exited", 2),
            id="second-exit-fails",
        ),
        pytest.param([task("failed", "task: non-zero exit (4)", 4)], 1, ("exited", 1), id="one-attempt"),
        pytest.param([task("complete", "finished", 0)], 1, ("exited", 1), id="exit-0-before-answering"),
        pytest.param([task("rejected", "No such image: mydocker/x:1")], 2, ("image_missing", 1), id="image-at-once"),
        pytest.param([task("failed", "task: non-zero exit (137)", 137)], 2, ("oom", 1), id="oom-at-once"),
    ],
)
def test_which_task_failures_end_a_start(tasks, attempts, expected):
    failure, failed_count = diagnose.latest_failure(tasks, "mydocker/x:1")
    ends = failure is not None and diagnose.ends_start(failure, failed_count, attempts)
    assert ((failure.reason if ends else None), failed_count) == expected


@pytest.mark.parametrize(
    "the_task, reason, fragment",
    [
        pytest.param(
            task("rejected", "No such image: mydocker/x:1"), "image_missing", "not available", id="no-such-image"
        ),
        pytest.param(
            task("rejected", "pull access denied for x, repository does not exist"),
            "image_missing",
            "Ask",
            id="pull-denied",
        ),
        pytest.param(task("failed", "task: non-zero exit (3)", 3), "exited", "exit code 3", id="exit-3"),
        pytest.param(task("failed", "task: non-zero exit (127)", 127), "exited", "not in its image", id="not-found"),
        pytest.param(task("failed", "task: non-zero exit (126)", 126), "exited", "cannot be run", id="not-executable"),
        pytest.param(task("failed", "task: non-zero exit (137)", 137), "oom", "out of memory", id="oom"),
        pytest.param(
            task("rejected", "Bind for 0.0.0.0:30001 failed: port is already allocated"),
            "port_conflict",
            "try again",
            id="port",
        ),
        pytest.param(task("rejected", "something odd"), "rejected", "something odd", id="other-rejection"),
    ],
)
def test_failed_tasks_are_explained(the_task, reason, fragment):
    failure = diagnose.diagnose_failed(the_task, "mydocker/x:1")
    assert failure.reason == reason
    assert fragment in str(failure.message)


@pytest.mark.parametrize(
    "err, reason",
    [
        pytest.param("no suitable node (insufficient resources on 1 node)", "no_resources", id="resources"),
        pytest.param("no suitable node (scheduling constraints not satisfied on 1 node)", "no_node", id="constraints"),
        pytest.param("no suitable node (host-mode port already in use on 1 node)", "port_conflict", id="port-taken"),
        pytest.param("", None, id="just-waiting"),
    ],
)
def test_unschedulable_pending_tasks(err, reason):
    failure = diagnose.diagnose_pending(task("pending", err))
    assert (failure.reason if failure else None) == reason


def test_port_range_parsing_and_errors():
    assert parse_port_range("30000-30002") == range(30000, 30003)
    with pytest.raises(ValueError, match="LOW-HIGH"):
        parse_port_range("30000")
    with pytest.raises(ValueError, match="1024-65535"):
        parse_port_range("80-90")


def test_free_ports_avoid_used_ones_and_run_out_clearly():
    port_range = range(30000, 30005)
    chosen = pick_free_ports(port_range, {30000, 30001}, 3, rng=random.Random(1))
    assert sorted(chosen) == [30002, 30003, 30004]
    with pytest.raises(PortRangeExhausted, match="only 3 free ports"):
        pick_free_ports(port_range, {30000, 30001}, 4)


def test_credentials_round_trip_and_never_show_in_repr():
    store = CredentialStore(["a-secret-key"])
    credentials = Credentials("alice", generate_password())
    token = store.encrypt(credentials)
    assert credentials.password not in token
    assert store.decrypt(token) == credentials
    assert credentials.password not in repr(credentials)
    with pytest.raises(CredentialKeyError, match="MYDOCKER_CRYPT_KEY"):
        CredentialStore(["another-key"]).decrypt(token)
    # key rotation: new key first, old key kept
    assert CredentialStore(["new-key", "a-secret-key"]).decrypt(token) == credentials


def test_generated_passwords_are_distinct_and_long():
    passwords = {generate_password() for _ in range(200)}
    assert len(passwords) == 200 and all(len(p) == 16 for p in passwords)


@pytest.mark.parametrize(
    "header, expected",
    [
        pytest.param(None, "en", id="none"),
        pytest.param("fr-FR,fr;q=0.9,en;q=0.8", "fr", id="french-browser"),
        pytest.param("en-US,en;q=0.9,fr;q=0.8", "en", id="english-browser"),
        pytest.param("de-DE,fr;q=0.5", "fr", id="german-then-french"),
        pytest.param("fr;q=0.2,en;q=0.7", "en", id="q-values"),
        pytest.param("de", "en", id="unsupported"),
    ],
)
def test_language_from_accept_language(header, expected):
    assert pick_language(header) == expected


@pytest.mark.parametrize(
    "header, expected",
    [
        pytest.param(None, [], id="none"),
        pytest.param("fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7", ["fr-FR", "fr", "en-US", "en"], id="french-browser"),
        pytest.param("en;q=0.3, de-CH ,fr;q=0.5", ["de-CH", "fr", "en"], id="q-values-then-order"),
        pytest.param("*,fr;q=0", [], id="wildcard-and-refused"),
        # what reaches a server's environment is only ever language tags
        pytest.param('fr"; rm -rf /,en\n$(id),es', ["es"], id="hostile"),
    ],
)
def test_browser_languages_keep_well_formed_tags_in_order(header, expected):
    assert browser_languages(header) == expected


def test_browser_languages_are_limited():
    assert len(browser_languages(",".join(f"x-{i}" for i in range(100)))) == 8


@pytest.mark.parametrize(
    "daemon_json, enforced",
    [
        pytest.param('{"icc": false, "no-new-privileges": true}', True, id="set"),
        pytest.param('{"icc": false}', False, id="absent"),
        pytest.param('{"no-new-privileges": "yes"}', False, id="not-a-boolean"),
        pytest.param("{not json", False, id="unreadable"),
    ],
)
def test_the_engine_setting_for_no_new_privileges_is_read_from_daemon_json(tmp_path, daemon_json, enforced):
    """Engines with API < 1.44 ignore the service spec's setting: the spawner warns unless the engine sets it."""
    import asyncio

    from mydocker_hub.swarm.client import AsyncDocker

    config = tmp_path / "daemon.json"
    config.write_text(daemon_json)
    client = AsyncDocker(max_workers=1)
    assert asyncio.run(client.daemon_enforces_no_new_privileges(str(config))) is enforced


def test_listing_pace_follows_who_is_waiting():
    watcher = SwarmWatcher(docker=None, hub_label="pace", interval=5.0, fast_interval=0.25, follow_interval=1.0)
    assert watcher._delay() == 5.0, "nobody starting: the slow pace"
    with watcher.following():
        assert watcher._delay() == 1.0, "a server being probed: a container exiting is seen within a second"
        watcher._waiters = 1
        assert watcher._delay() == 0.25, "a start waiting for Swarm: the fast pace"
        watcher._waiters = 0
    assert watcher._delay() == 5.0
    watcher._followers = 40
    assert watcher._delay() == 2.0, "a class of 40 probed at once: one listing every 2 s"
    watcher._followers = 100
    assert watcher._delay() == 5.0, "a class of 100 probed at once: no more listings than when idle"


def test_progress_events_added_while_the_page_reads_one_are_not_lost():
    """The progress page reads one event while the start goes on: what the start says meanwhile (its place in
    line, say) must still reach the page (it was skipped when the reader was slow, under load)."""
    import asyncio

    from mydocker_hub.i18n import Message
    from mydocker_hub.spawner import SwarmEnvironmentSpawner

    async def read_progress():
        spawner = SwarmEnvironmentSpawner()
        spawner._events, spawner._events_changed = [], asyncio.Event()
        spawner._start_done, spawner._spawn_pending = False, True
        spawner._emit(5, Message("Requesting %(title)s", title="Lab"))
        received = []
        async for event in spawner.progress():
            received.append(event["message"])
            if len(received) == 1:  # the start goes on while the page handles its first event
                spawner._emit(8, Message("Many servers are starting: yours is next"))
                spawner._emit(100, Message("Environment ready"))
                spawner._start_done, spawner._spawn_pending = True, False
        return received

    assert asyncio.run(read_progress()) == [
        "Requesting Lab",
        "Many servers are starting: yours is next",
        "Environment ready",
    ]


def test_a_stopped_server_forgets_its_service_but_keeps_its_login_and_ports():
    """JupyterHub clears a spawner's state when it stops without calling ``stop()`` (a service removed by hand,
    a task already failed): the old service ID must go too, or the hub takes the next start's service, cut
    short by a crash, for a running server it has no address for."""
    from mydocker_hub.spawner import SwarmEnvironmentSpawner

    spawner = SwarmEnvironmentSpawner()
    spawner.object_name = "mydocker-student-lab"
    spawner.object_id, spawner._credentials_token = "service-id-of-the-last-start", "encrypted-login"
    spawner._last_node_ports, spawner.lifetime_deadline = {22: 30022}, 1.5e9
    spawner.clear_state()
    state = spawner.get_state()
    assert spawner.object_id == "" and "object_id" not in state
    assert state == {"credentials": "encrypted-login", "node_ports": {"22": 30022}}
