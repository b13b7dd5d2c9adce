"""The hub on a real PostgreSQL (as production runs it, MYDOCKER_DB_URL): users, groups, servers and their
state live there and survive a hub restart, with a server running.
"""

from __future__ import annotations

import pytest
import requests

from .hubprocess import TEST_ENVIRONMENTS, Hub
from .postgres import PostgresServer

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def pg_hub(tmp_path_factory, run_prefix, docker_api):
    workdir = tmp_path_factory.mktemp("pg-hub")
    postgres = PostgresServer()
    hub = Hub(workdir, run_prefix + "p", environments={"lab.yaml": TEST_ENVIRONMENTS["lab.yaml"]})
    hub.env["MYDOCKER_DB_URL"] = postgres.url
    hub.start()
    hub.postgres = postgres
    yield hub
    hub.stop()
    postgres.stop()


def test_the_hub_keeps_its_state_in_postgresql_across_a_restart(pg_hub):
    pg_hub.login("teacher")
    pg_hub.spawn("teacher", "lab")
    tables = pg_hub.postgres.psql("SELECT name FROM users ORDER BY name").split()
    assert "teacher" in tables
    assert (
        pg_hub.postgres.psql("SELECT count(*) FROM spawners WHERE name = 'lab' AND server_id IS NOT NULL").strip()
        == "1"
    )
    groups = pg_hub.postgres.psql(
        "SELECT g.name FROM groups g JOIN user_group_map m ON m.group_id = g.id JOIN users u ON u.id = m.user_id "
        "WHERE u.name = 'teacher'"
    ).split()
    assert "teacher" in groups
    headers = {"Authorization": f"token {pg_hub.user_token('teacher')}"}
    started = requests.get(f"{pg_hub.url}/user/teacher/lab/api/status", headers=headers, timeout=30).json()["started"]
    pg_hub.restart()
    model = pg_hub.server_model("teacher", "lab")
    assert model and model["ready"], "the running server is found again from PostgreSQL"
    after = requests.get(f"{pg_hub.url}/user/teacher/lab/api/status", headers=headers, timeout=30)
    assert after.json()["started"] == started
    pg_hub.stop_server("teacher", "lab")
