"""The Docker engine restarts under running servers (named zz: it runs last, as it disturbs the engine).

Swarm restarts the tasks (restart policy "any") on the same host ports, the hub keeps its routes, and the
student finds their server and their files again. After the restart the engine runs with the node
settings of scripts/ensure-system.sh (icc=false): users' containers cannot reach each other.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import docker
import pytest
import requests

from .hubprocess import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def restart_engine():
    if subprocess.run(["systemctl", "is-active", "--quiet", "docker"], capture_output=True).returncode == 0:
        subprocess.run(["systemctl", "restart", "docker"], check=True)
    else:
        with open("/var/run/docker.pid") as f:
            pid = int(f.read())
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 60, message="dockerd to stop")
        log = open("/var/log/dockerd.log", "a")
        subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def answers():
        try:
            return docker.APIClient(version="auto").info()["Swarm"]["LocalNodeState"] == "active"
        except Exception:
            return False

    wait_for(answers, 90, 0.5, "the engine to answer again")


def test_servers_come_back_after_an_engine_restart(hub, docker_api, run_prefix):
    hub.ensure_user("student")
    if not (hub.server_model("student", "lab") or {}).get("ready"):
        if hub.server_model("student", "lab"):
            hub.stop_server("student", "lab")
        hub.spawn("student", "lab")
    token = hub.user_token("student")
    headers = {"Authorization": f"token {token}"}
    contents = f"{hub.url}/user/student/lab/api/contents/before-engine-restart.txt"
    body = {"type": "file", "format": "text", "content": "still here"}
    assert requests.put(contents, json=body, headers=headers, timeout=30).status_code in (200, 201)

    restart_engine()

    def answers_again():
        try:
            return requests.get(f"{hub.url}/user/student/lab/api/status", headers=headers, timeout=3).status_code == 200
        except requests.RequestException:
            return False

    began = time.monotonic()
    wait_for(answers_again, 180, 1, "the student's server to answer again after the engine restart")
    print(f"server answered again {time.monotonic() - began:.1f}s after the engine came back")
    assert hub.server_model("student", "lab")["ready"] is True
    assert requests.get(contents, headers=headers, timeout=30).json()["content"] == "still here"


def test_users_containers_cannot_reach_each_other(hub, docker_api, run_prefix):
    """With the node settings of ensure-system.sh (icc=false), one user's container cannot open another's port."""
    info = docker_api.inspect_network("bridge")
    if info.get("Options", {}).get("com.docker.network.bridge.enable_icc") != "false":
        pytest.fail("the engine runs with icc enabled: start it with scripts/ensure-system.sh (daemon.json icc=false)")
    hub.ensure_user("student")
    hub.ensure_user("student2")
    for user in ("student", "student2"):
        if not (hub.server_model(user, "lab") or {}).get("ready"):
            hub.spawn(user, "lab")
    containers = {}
    for user in ("student", "student2"):
        [service] = docker_api.services(
            filters={"label": [f"org.mydocker.managed={run_prefix}", f"org.mydocker.user={user}"]}
        )
        tasks = docker_api.tasks(filters={"service": service["ID"], "desired-state": "running"})
        containers[user] = next(t for t in tasks if t["Status"]["State"] == "running")["Status"]["ContainerStatus"][
            "ContainerID"
        ]
    networks = docker_api.inspect_container(containers["student"])["NetworkSettings"]["Networks"]
    victim_ip = networks["bridge"]["IPAddress"]
    probe = (
        "import socket,sys\n"
        "s=socket.socket(); s.settimeout(3)\n"
        f"sys.exit(0 if s.connect_ex(({victim_ip!r}, 8888)) == 0 else 1)\n"
    )
    exec_id = docker_api.exec_create(containers["student2"], ["python3", "-c", probe])
    docker_api.exec_start(exec_id)
    assert docker_api.exec_inspect(exec_id)["ExitCode"] == 1, "student2's container reached student's server port"
