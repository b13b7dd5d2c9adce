"""A real hub spawning real Swarm services: what students, teachers and admins would notice."""

from __future__ import annotations

import concurrent.futures
import html
import json
import re
import time
from pathlib import Path

import paramiko
import pytest
import requests

from .hubprocess import TEST_IMAGE, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def service_of(docker_api, prefix: str, user: str, server: str) -> dict:
    services = docker_api.services(
        filters={
            "label": [f"org.mydocker.managed={prefix}", f"org.mydocker.user={user}", f"org.mydocker.server={server}"]
        }
    )
    assert len(services) == 1, services
    return services[0]


def running_container(docker_api, service_id: str) -> str:
    def find():
        tasks = docker_api.tasks(filters={"service": service_id, "desired-state": "running"})
        running = [t for t in tasks if t["Status"]["State"] == "running"]
        return running and running[0]["Status"]["ContainerStatus"]["ContainerID"]

    return wait_for(find, 60, message="a running container")


def docker_exec(docker_api, container: str, command: list[str], user: str | None = None) -> str:
    exec_id = docker_api.exec_create(container, command, user=user or "")
    return docker_api.exec_start(exec_id).decode()


@pytest.fixture(scope="module")
def lab(hub):
    """The student's lab environment, started once for this module."""
    hub.ensure_user("student")
    hub.ensure_user("student2")
    if hub.server_model("student", "lab"):
        hub.stop_server("student", "lab")  # another module may have left it running
    seconds = hub.spawn("student", "lab")
    return {"seconds": seconds}


def test_student_reaches_their_server_through_the_proxy(hub, lab):
    session = hub.login("student")
    # the browser path: the hub's OAuth handshake, then JupyterLab itself behind the proxy
    page = session.get(f"{hub.url}/user/student/lab/lab")
    assert page.status_code == 200 and page.url == f"{hub.url}/user/student/lab/lab"
    assert "JupyterLab" in page.text
    # the API path, with the page's XSRF token as the browser sends it
    xsrf = session.cookies.get("_xsrf", path="/user/student/lab/") or session.cookies.get("_xsrf")
    status = session.get(f"{hub.url}/user/student/lab/api/status", headers={"X-XSRFToken": xsrf})
    assert status.status_code == 200 and "started" in status.json()


def test_service_has_the_profile_limits_volume_and_user(hub, lab, docker_api, run_prefix):
    service = service_of(docker_api, run_prefix, "student", "lab")
    template = service["Spec"]["TaskTemplate"]
    assert template["Resources"]["Limits"]["NanoCPUs"] == 500_000_000
    assert template["Resources"]["Limits"]["MemoryBytes"] == 512 * 1024**2
    container_spec = template["ContainerSpec"]
    assert container_spec["User"] == "1000:100"
    assert container_spec["CapabilityDrop"] == ["ALL"]
    [mount] = container_spec["Mounts"]
    assert (mount["Type"], mount["Source"], mount["Target"]) == (
        "volume",
        f"{run_prefix}-home-student",
        "/home/jovyan",
    )
    container = running_container(docker_api, service["ID"])
    # the server's hub API token reaches it as a secret file: no listing of the service or the container shows it
    for listed_env in (container_spec["Env"], docker_api.inspect_container(container)["Config"]["Env"]):
        assert not [v for v in listed_env if v.startswith(("JUPYTERHUB_API_TOKEN=", "JPY_API_TOKEN="))]
    assert docker_exec(docker_api, container, ["id", "-u"]).strip() == "1000"
    # the kernel's view of the server's processes: no capability, and none may gain privileges
    # (setuid programs, file capabilities), whatever the engine's API version
    status = docker_exec(docker_api, container, ["cat", "/proc/1/status"])
    assert "CapEff:\t0000000000000000" in status
    assert "NoNewPrivs:\t1" in status, (
        'no-new-privileges is not enforced: the engine needs "no-new-privileges": true in /etc/docker/daemon.json '
        "(scripts/ensure-system.sh writes it)"
    )
    # no Docker socket inside
    assert "No such file" in docker_exec(docker_api, container, ["ls", "/var/run/docker.sock"])


def test_another_user_cannot_reach_the_server_or_its_page(hub, lab):
    other = hub.login("student2")
    response = other.get(f"{hub.url}/user/student/lab/api/status", allow_redirects=True)
    assert response.status_code in (403, 404)
    token = hub.user_token("student2")
    response = requests.get(
        f"{hub.url}/user/student/lab/api/status",
        headers={"Authorization": f"token {token}"},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code in (403, 404)
    assert other.get(f"{hub.url}/hub/environments/student/lab").status_code == 404


def test_cpu_burner_is_throttled_not_killed(hub, lab, docker_api, run_prefix):
    service = service_of(docker_api, run_prefix, "student", "lab")
    container = running_container(docker_api, service["ID"])
    docker_exec(
        docker_api,
        container,
        [
            "sh",
            "-c",
            "for i in 1 2; do nohup timeout 8 python3 -c 'while True: pass' >/dev/null 2>&1 & done",
        ],
    )
    time.sleep(5)
    stats = docker_api.stats(container, stream=False)
    cpu = stats["cpu_stats"]["cpu_usage"]["total_usage"] - stats["precpu_stats"]["cpu_usage"]["total_usage"]
    system = stats["cpu_stats"]["system_cpu_usage"] - stats["precpu_stats"]["system_cpu_usage"]
    online = stats["cpu_stats"].get("online_cpus") or 1
    used_cores = cpu / system * online if system else 0
    throttled = stats["cpu_stats"].get("throttling_data", {}).get("throttled_periods", 0)
    assert throttled > 0, stats["cpu_stats"]
    assert used_cores < 0.75, f"two burners used {used_cores:.2f} cores under a 0.5 limit"
    time.sleep(4)
    # still the same container, still running: throttled, never killed
    assert docker_api.inspect_container(container)["State"]["Running"] is True
    assert hub.server_model("student", "lab")["ready"] is True


def test_home_survives_stop_start_and_hub_restart(hub, lab):
    token = hub.user_token("student")
    headers = {"Authorization": f"token {token}"}
    contents = f"{hub.url}/user/student/lab/api/contents/kept.txt"
    body = {"type": "file", "format": "text", "content": "written before the restart"}
    assert requests.put(contents, json=body, headers=headers, timeout=30).status_code in (200, 201)

    hub.stop_server("student", "lab")
    hub.spawn("student", "lab")
    token = hub.user_token("student")
    headers = {"Authorization": f"token {token}"}
    assert requests.get(contents, headers=headers, timeout=30).json()["content"] == "written before the restart"

    started = requests.get(f"{hub.url}/user/student/lab/api/status", headers=headers, timeout=30).json()["started"]
    hub.restart()
    model = hub.server_model("student", "lab")
    assert model and model["ready"], "the running server must be found again after a hub restart"
    after = requests.get(f"{hub.url}/user/student/lab/api/status", headers=headers, timeout=30)
    assert after.status_code == 200 and after.json()["started"] == started, "same server, not a new one"
    assert requests.get(contents, headers=headers, timeout=30).json()["content"] == "written before the restart"


def services_of(hub) -> list[int]:
    """Processes of ``hub``'s managed services (found by the data directory in their environment)."""
    marker = f"MYDOCKER_DATA_DIR={hub.workdir / 'data'}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
            if not any(
                name in command
                for name in (b"jupyterhub_idle_culler", b"mydocker_hub.scheduler", b"mydocker_hub.builder")
            ):
                continue
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue  # ended meanwhile
    return found


def test_a_start_cut_short_by_a_hub_crash_is_cleaned_up_at_restart(hub, docker_api, run_prefix):
    """The hub is killed (kill -9) while a student's start is under way: after its restart the student sees the
    environment stopped and can start it again, instead of a start "pending" for the HTTP timeout (5 min)."""
    (hub.environments / "slow-server.yaml").write_text(
        f"""title: A server that takes its time
image: {TEST_IMAGE}
interface: custom
command: ["/bin/sh", "-c", "sleep 600"]
ports: [{{name: web, port: 8888, type: http}}]
"""
    )
    hub.ensure_user("student2")
    assert hub.api("POST", "users/student2/servers/slow-server").status_code == 202
    label = [f"org.mydocker.managed={run_prefix}", "org.mydocker.user=student2", "org.mydocker.server=slow-server"]
    wait_for(lambda: docker_api.services(filters={"label": label}), 60, message="the service of the start")
    assert len(services_of(hub)) == 3, "the culler, the scheduler and the builder run"
    hub.process.kill()  # no clean-up of any kind, as in a crash
    hub.process.wait()
    # its services end with it (otherwise the next hub's scheduler and builder find their ports taken)
    wait_for(lambda: not services_of(hub), 20, message="the dead hub's services to end")
    hub.stop()  # ends the proxy the dead hub started
    hub.start()

    # before: JupyterHub waited for a server it had no address for, showing it "pending: check" for 5 minutes
    gone = lambda: hub.server_model("student2", "slow-server") is None  # noqa: E731
    wait_for(gone, 60, message="the interrupted start to show as stopped")
    wait_for(lambda: not docker_api.services(filters={"label": label}), 30, message="its service to be removed")
    assert any("whose start the hub did not finish" in line for line in hub.log_lines("student2:slow-server"))
    (hub.environments / "slow-server.yaml").unlink()


def test_a_teachers_web_command_gets_the_password_the_student_sees_and_the_hub_token_unlisted(
    hub, docker_api, run_prefix
):
    """A teacher's own web server started with ``{password}`` (e.g. ``--IdentityProvider.token={password}``)
    receives the password shown to the student on the connection page, not an empty one; the hub API token
    it needs reaches it as stock spawners name it, and neither shows in the service's or the container's
    listing."""
    (hub.environments / "teachers-server.yaml").write_text(
        f"""title: A teacher's own web server
image: {TEST_IMAGE}
interface: custom
command:
  - /bin/sh
  - -c
  - >-
    printf %s {{password}} > /tmp/given-password;
    printf %s "$JPY_API_TOKEN" > /tmp/given-token;
    exec jupyterhub-singleuser --ip=0.0.0.0 --port=8888
ports: [{{name: web, port: 8888, type: http}}]
display: {{show_password: true}}
"""
    )
    try:
        hub.ensure_user("student")
        hub.spawn("student", "teachers-server")  # jupyterhub-singleuser authenticates to the hub with the token
        page = hub.login("student").get(f"{hub.url}/hub/environments/student/teachers-server").text
        shown = html.unescape(re.search(r'data-secret="([^"]+)"', page).group(1))
        service = service_of(docker_api, run_prefix, "student", "teachers-server")
        container = running_container(docker_api, service["ID"])
        given = docker_exec(docker_api, container, ["cat", "/tmp/given-password"])
        assert len(shown) >= 12 and given == shown
        token = docker_exec(docker_api, container, ["cat", "/tmp/given-token"])
        assert len(token) >= 32
        listings = json.dumps([service, docker_api.inspect_container(container)])
        assert shown not in listings and token not in listings
    finally:
        if hub.server_model("student", "teachers-server"):
            hub.stop_server("student", "teachers-server")
        (hub.environments / "teachers-server.yaml").unlink()


def test_a_command_missing_from_the_image_fails_fast_saying_so(hub):
    (hub.environments / "typo.yaml").write_text(
        f"""title: A command with a typo
image: {TEST_IMAGE}
interface: custom
command: [jupyterhub-singleusr, --ip=0.0.0.0, --port=8888]
ports: [{{name: web, port: 8888, type: http}}]
"""
    )
    try:
        hub.ensure_user("student")
        message, seconds = hub.spawn_failure("student", "typo")
        assert "is not in its image, or cannot be run (exit code 127)" in message, message
        assert "check the image and the command in the environment file" in message
        assert seconds < 60
    finally:
        (hub.environments / "typo.yaml").unlink()


def test_missing_image_fails_fast_with_its_reason(hub):
    hub.ensure_user("student")
    message, seconds = hub.spawn_failure("student", "broken-image")
    assert "mydocker/this-image-does-not-exist:latest" in message and "not available" in message, message
    assert seconds < 60, f"took {seconds:.0f}s to report a missing image"
    assert hub.server_model("student", "broken-image") is None
    metrics = hub.metrics()
    assert 'mydocker_spawn_failures_total{environment="broken-image",reason="image_missing"}' in metrics


def test_crashing_program_fails_fast_with_exit_code(hub):
    hub.ensure_user("student")
    message, seconds = hub.spawn_failure("student", "crash")
    assert "exit code 3" in message, message
    assert seconds < 60
    # it failed at its second attempt (one exit may be a passing accident), not at the start timeout
    assert re.search(r"student:crash: task 1 failed .*; Swarm starts it again", hub.log()), hub.log_lines(
        "student:crash"
    )


def test_a_server_that_exits_once_while_starting_is_started_again(hub):
    # a server may exit once for a reason that passes (its hub briefly unreachable while a class starts):
    # Swarm starts it again and the student gets it, instead of an error
    hub.ensure_user("student")
    hub.spawn("student", "exits-once")
    assert hub.server_model("student", "exits-once")["ready"]
    expected = r"student:exits-once: task 1 failed \(.*exit \(4\).*\); Swarm starts it again"
    assert re.search(expected, hub.log()), hub.log_lines("exits-once")
    hub.stop_server("student", "exits-once")


def test_no_node_with_the_resources_fails_with_that_reason(hub, docker_api, run_prefix):
    hub.ensure_user("student")
    message, seconds = hub.spawn_failure("student", "too-big")
    assert "No server currently has enough free CPU" in message, message
    assert seconds < 60, f"took {seconds:.0f}s (the start timeout is 600s)"
    labels = [f"org.mydocker.managed={run_prefix}", "org.mydocker.server=too-big"]
    assert not docker_api.services(filters={"label": labels}), "the failed service is removed"


def test_out_of_memory_at_start_is_named(hub):
    hub.ensure_user("student")
    message, seconds = hub.spawn_failure("student", "tiny-memory")
    assert "ran out of memory" in message, message
    assert seconds < 60


def test_ssh_only_environment_gives_working_credentials(hub, docker_api, run_prefix):
    hub.ensure_user("student")
    hub.spawn("student", "ssh")
    session = hub.login("student")
    # the server URL of an SSH-only environment leads to its connection page
    page = session.get(f"{hub.url}/user/student/ssh/")
    assert page.status_code == 200 and "/hub/environments/student/ssh" in page.url
    text = page.text
    command = html.unescape(
        re.search(r'class="form-control font-monospace mydocker-command"[^>]*value="([^"]+)"', text).group(1)
    )
    password = html.unescape(re.search(r'data-secret="([^"]+)"', text).group(1))
    match = re.match(r"ssh -p (\d+) ([a-z0-9_]+)@(\S+)", command)
    assert match, command
    port, login = int(match.group(1)), match.group(2)
    assert password not in hub.log(), "the password must never reach the hub's log"

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(
        "127.0.0.1", port=port, username=login, password=password, timeout=20, allow_agent=False, look_for_keys=False
    )
    try:
        _, stdout, _ = client.exec_command("id -un; id -u; openssl version")
        output = stdout.read().decode()
    finally:
        client.close()
    assert output.splitlines()[0] == login and output.splitlines()[1] == "1000", output
    assert "OpenSSL" in output

    bad = paramiko.SSHClient()
    bad.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    with pytest.raises(paramiko.AuthenticationException):
        bad.connect(
            "127.0.0.1",
            port=port,
            username=login,
            password=password + "x",
            timeout=20,
            allow_agent=False,
            look_for_keys=False,
        )
    bad.close()
    # a restart (stop, start) keeps the node port: the command the student saved still works
    hub.stop_server("student", "ssh")
    hub.spawn("student", "ssh")
    again = session.get(f"{hub.url}/hub/environments/student/ssh").text
    assert f"ssh -p {port} {login}@" in html.unescape(again), "the SSH port changed at the restart"
    hub.stop_server("student", "ssh")
    # the password's Swarm secret does not outlive the server
    wait_for(
        lambda: not docker_api.secrets(filters={"label": f"org.mydocker.service={run_prefix}-student--ssh"}),
        60,
        message="the password secret to be removed",
    )


def test_progress_and_metrics_report_phases(hub, lab):
    if hub.server_model("student", "lab"):
        hub.stop_server("student", "lab")
    messages = hub.spawn_watching_progress("student", "lab")
    assert any("Starting the container" in m or "Container running" in m for m in messages), messages
    assert messages[-1].startswith("Server ready") or "ready" in messages[-1].lower(), messages
    text = hub.metrics()
    for phase in ("scheduling", "pull", "start", "server_ready", "total"):
        assert f'mydocker_spawn_duration_seconds_count{{environment="lab",phase="{phase}"}}' in text, phase


def test_a_port_taken_outside_swarm_is_avoided(tmp_path, run_prefix, docker_api):
    """A node port held by a process Swarm does not know about: the start picks another port and succeeds."""
    import socket

    from .hubprocess import Hub, free_port

    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    taken = free_port()
    holder.bind(("0.0.0.0", taken))
    holder.listen()
    small_hub = Hub(
        tmp_path, run_prefix, extra_config=f'\nc.SwarmEnvironmentSpawner.host_port_range = "{taken}-{taken + 1}"\n'
    )
    small_hub.start()
    try:
        small_hub.ensure_user("porter")
        small_hub.spawn("porter", "lab")
        service = service_of(docker_api, run_prefix, "porter", "lab")
        published = [p["PublishedPort"] for p in service["Spec"]["EndpointSpec"]["Ports"]]
        assert published == [taken + 1]
        # the range is now full (one port used, one taken outside Swarm): the next start says so at once
        small_hub.ensure_user("latecomer")
        message, seconds = small_hub.spawn_failure("latecomer", "lab")
        assert "All the network ports the hub may give servers are in use" in message, message
        assert seconds < 30
        assert "widen SwarmEnvironmentSpawner.host_port_range" in small_hub.log()
        assert 'mydocker_spawn_failures_total{environment="lab",reason="no_port"}' in small_hub.metrics()
        small_hub.stop_server("porter", "lab")
    finally:
        small_hub.stop()
        holder.close()


def test_web_ports_come_from_their_own_range_so_a_firewall_can_open_only_ssh_and_tcp_to_users(
    tmp_path, run_prefix, docker_api
):
    from .hubprocess import TEST_IMAGE, Hub, free_port

    web, tcp = free_port(), free_port()
    environments = {
        "labtcp.yaml": f"""
title: Lab with a TCP port
image: {TEST_IMAGE}
home: {{type: none}}
ports: [{{name: Database, port: 5432, type: tcp, required: false}}]
"""
    }
    ranges = f'c.SwarmEnvironmentSpawner.web_port_range = "{web}-{web}"\n'
    ranges += f'c.SwarmEnvironmentSpawner.host_port_range = "{tcp}-{tcp}"\n'
    ranged_hub = Hub(tmp_path, run_prefix, environments=environments, extra_config="\n" + ranges)
    ranged_hub.start()
    try:
        ranged_hub.ensure_user("ranger")
        ranged_hub.spawn("ranger", "labtcp")
        service = service_of(docker_api, run_prefix, "ranger", "labtcp")
        published = {p["TargetPort"]: p["PublishedPort"] for p in service["Spec"]["EndpointSpec"]["Ports"]}
        assert published == {8888: web, 5432: tcp}, published
        # the lab answers through the proxy, reached on its web port
        token = {"Authorization": f"token {ranged_hub.user_token('ranger')}"}
        lab = requests.get(f"{ranged_hub.url}/user/ranger/labtcp/api/status", headers=token, timeout=30)
        assert lab.status_code == 200, lab.status_code
        ranged_hub.stop_server("ranger", "labtcp")
    finally:
        ranged_hub.stop()


def test_an_environment_is_ready_when_its_required_ports_answer_not_its_optional_ones(hub, docker_api, run_prefix):
    """An optional port nobody listens on (yet) does not hold the start; the required SSH port is waited for."""
    import socket

    from .hubprocess import SSH_IMAGE

    (hub.environments / "optional-port.yaml").write_text(
        f"""
title: SSH with an optional tunnel
image: {SSH_IMAGE}
interface: ssh
ports:
  - {{name: Tunnel, port: 9999, type: tcp, required: false}}
  - {{name: SSH, port: 2222, type: ssh}}
"""
    )
    try:
        hub.ensure_user("student2")
        seconds = hub.spawn("student2", "optional-port")
        assert seconds < 120, f"took {seconds:.0f}s"
        service = service_of(docker_api, run_prefix, "student2", "optional-port")
        published = {p["TargetPort"]: p["PublishedPort"] for p in service["Endpoint"].get("Ports", [])}
        assert set(published) == {9999, 2222}
        with socket.create_connection(("127.0.0.1", published[2222]), timeout=5) as ssh:
            assert ssh.recv(64).startswith(b"SSH-")  # ready meant: its SSH server answers
        hub.stop_server("student2", "optional-port")
    finally:
        (hub.environments / "optional-port.yaml").unlink()


def test_an_admin_acting_for_a_student_is_told_whose_environments_they_see(hub, lab):
    admin = hub.login("admin")
    catalogue = admin.get(f"{hub.url}/hub/spawn/student").content.decode()
    assert "These are the environments of student: what you start here runs as them." in catalogue
    details = admin.get(f"{hub.url}/hub/environments/student/lab").content.decode()
    assert "An environment of student." in details and "Back to the administration" in details
    panel = admin.get(f"{hub.url}/hub/admin").content.decode()
    assert "mydocker-admin-hint" in panel and "react-admin-hook" in panel  # JupyterHub's panel, with our note
    own = hub.login("student").get(f"{hub.url}/hub/environments/student/lab").content.decode()
    assert "An environment of" not in own and "Back to my environments" in own


def test_join_link_starts_the_environment_and_carries_the_path(hub):
    hub.ensure_user("student2")
    if hub.server_model("student2", "lab"):
        hub.stop_server("student2", "lab")
    session = hub.login("student2")
    response = session.get(f"{hub.url}/hub/join/lab/user-redirect/lab/tree/notes.ipynb")
    # the spawn-pending page, then the environment, at the path the link asked for
    wait_for(lambda: (hub.server_model("student2", "lab") or {}).get("ready"), 120, message="join started lab")
    response = session.get(response.url)
    assert response.url == f"{hub.url}/user/student2/lab/lab/tree/notes.ipynb", response.url
    assert response.status_code == 200
    # a link to an environment the student may not see says so, and starts nothing
    hidden = session.get(f"{hub.url}/hub/join/teachers-only")
    assert hidden.status_code == 404 and "teachers-only" in hidden.text
    assert hub.server_model("student2", "teachers-only") is None
    # an nbgitpuller link keeps its query; a path cannot climb out of the server; a broken one is refused
    join = f"{hub.url}/hub/join/lab/user-redirect"
    pull = session.get(f"{join}/git-pull?repo=https%3A%2F%2Fgit.example.org%2Fcours&urlpath=lab", allow_redirects=False)
    assert (
        pull.headers["Location"] == "/user/student2/lab/git-pull?repo=https%3A%2F%2Fgit.example.org%2Fcours&urlpath=lab"
    )
    climb = session.get(f"{join}/..%2F..%2F..%2Fhub%2Fadmin", allow_redirects=False)
    assert climb.headers["Location"] == "/user/student2/lab/hub/admin"
    broken = session.get(f"{join}/%0d%0aSet-Cookie:x=1", allow_redirects=False)
    assert broken.status_code == 400 and "control characters" in broken.text
    hub.stop_server("student2", "lab")


def test_a_file_added_by_git_pull_is_startable_without_restart(hub):
    hub.ensure_user("student2")
    (hub.environments / "added-later.yaml").write_text("title: Added later\nimage: mydocker/minimal:latest\n")
    try:
        hub.spawn("student2", "added-later")
        hub.stop_server("student2", "added-later")
    finally:
        (hub.environments / "added-later.yaml").unlink()


def slow_web_environment(seconds: int) -> str:
    """A web environment whose server answers only after ``seconds``: its start can be caught under way."""
    return f"""
title: Slow to answer
image: {TEST_IMAGE}
interface: custom
command: ["/bin/sh", "-c", "sleep {seconds}; exec jupyterhub-singleuser --ip=0.0.0.0 --port=8888"]
ports: [{{name: web, port: 8888, type: http}}]
"""


def test_a_class_starting_at_once_waits_in_line_and_a_stop_in_line_starts_nothing(tmp_path, run_prefix, docker_api):
    """With one start slot: the second student is told theirs starts next and still gets it;
    a student who gives up while in line leaves no server behind."""
    import threading

    from .hubprocess import TEST_ENVIRONMENTS, Hub

    slow = slow_web_environment(6)
    line_hub = Hub(
        tmp_path,
        run_prefix,
        environments={"lab.yaml": TEST_ENVIRONMENTS["lab.yaml"], "slow.yaml": slow},
        extra_config="\nc.SwarmEnvironmentSpawner.concurrent_starts = 1\n",
    )
    line_hub.start()
    try:
        for user in ("first", "second", "quitter"):
            line_hub.ensure_user(user)

        def first_holds_the_slot():  # its service exists: created once the slot was taken
            labels = [f"org.mydocker.managed={run_prefix}", "org.mydocker.user=first"]
            return docker_api.services(filters={"label": labels})

        first = threading.Thread(target=line_hub.spawn, args=("first", "slow"))
        first.start()
        wait_for(first_holds_the_slot, 30, 0.05)
        messages = line_hub.spawn_watching_progress("second", "lab")
        assert "Many servers are starting: yours is next" in messages, messages
        assert "Environment ready" in messages, messages
        first.join()
        assert line_hub.server_model("first", "slow")["ready"] and line_hub.server_model("second", "lab")["ready"]

        # the quitter asks while "first" holds the only slot again, then stops before their turn
        line_hub.stop_server("first", "slow")
        requests_made = [
            threading.Thread(target=line_hub.api, args=("POST", f"users/{user}/servers/{server}"))
            for user, server in (("first", "slow"), ("quitter", "lab"))
        ]
        requests_made[0].start()
        wait_for(first_holds_the_slot, 30, 0.05)
        requests_made[1].start()
        wait_for(lambda: (line_hub.server_model("quitter", "lab") or {}).get("pending") == "spawn", 30, 0.05)
        assert line_hub.api("DELETE", "users/quitter/servers/lab").status_code in (202, 204)
        for request in requests_made:
            request.join()
        wait_for(lambda: (line_hub.server_model("first", "slow") or {}).get("ready"), 120, message="first ready")
        time.sleep(3)  # the slot is free: a start still in line would now create its service
        assert line_hub.server_model("quitter", "lab") is None
        quitter_services = docker_api.services(
            filters={"label": [f"org.mydocker.managed={run_prefix}", "org.mydocker.user=quitter"]}
        )
        assert quitter_services == []
        for user, server in (("first", "slow"), ("second", "lab")):
            line_hub.stop_server(user, server)
    finally:
        line_hub.stop()


def test_a_start_stopped_while_the_engine_is_busy_stops_at_once_and_starting_again_works(
    tmp_path, run_prefix, docker_api
):
    """ "Stop" while a server starts, on an engine slow to answer (a class starting): JupyterHub gives the
    cancelled start one second, then stops the server. The stop used to fail (500) while the start cleaned
    up, leaving the server listed as running and unreachable; now it stops, nothing is left, and the student
    can start it again at once."""
    from .hubprocess import Hub

    slow = slow_web_environment(15)
    # an engine busy with a class's starts (what cannot be made to happen on demand here): while the file
    # "busy" exists, listing secrets (the first thing a cancelled start's clean-up asks) takes 3 s in this hub
    busy = tmp_path / "busy"
    busy_engine = f"""
import asyncio, os
from mydocker_hub.swarm.client import AsyncDocker
_answer_at_once = AsyncDocker.call
async def _answer_slowly(self, method, *args, **kwargs):
    if method == "secrets" and os.path.exists({str(busy)!r}):
        await asyncio.sleep(3)
    return await _answer_at_once(self, method, *args, **kwargs)
AsyncDocker.call = _answer_slowly
"""
    busy_hub = Hub(tmp_path, run_prefix, environments={"slow.yaml": slow}, extra_config=busy_engine)
    busy_hub.start()
    labels = [f"org.mydocker.managed={run_prefix}", "org.mydocker.user=student", "org.mydocker.server=slow"]
    try:
        busy_hub.ensure_user("student")
        asked = concurrent.futures.ThreadPoolExecutor(1).submit(busy_hub.api, "POST", "users/student/servers/slow")
        wait_for(lambda: docker_api.services(filters={"label": labels}), 60, 0.1, message="the service")
        assert busy_hub.server_model("student", "slow")["pending"] == "spawn"
        busy.touch()
        stopped = busy_hub.api("DELETE", "users/student/servers/slow")
        busy.unlink()  # the engine answers the next start at once; the clean-up's listing still takes its 3 s
        assert stopped.status_code in (202, 204), stopped.text
        asked.result(timeout=30)  # the start request ends too (JupyterHub answers 500 for a start cancelled so soon)
        wait_for(lambda: busy_hub.server_model("student", "slow") is None, 30, message="the server to stop")
        # at once again (a new spawner object for JupyterHub): the new start waits for the old one's clean-up,
        # which removes by name, so that it does not remove the new service
        assert busy_hub.api("POST", "users/student/servers/slow").status_code in (201, 202)
        wait_for(lambda: (busy_hub.server_model("student", "slow") or {}).get("ready"), 90, message="started again")
        assert len(docker_api.services(filters={"label": labels})) == 1
        assert busy_hub.api("GET", "users/student").json()["servers"]["slow"]["ready"]
        busy_hub.stop_server("student", "slow")
        wait_for(lambda: not docker_api.services(filters={"label": labels}), 60, message="the service removed")
        secrets_left = lambda: docker_api.secrets(  # noqa: E731
            filters={"label": f"org.mydocker.service={run_prefix}-student--slow"}
        )
        wait_for(lambda: not secrets_left(), 60, message="its secrets removed")
    finally:
        busy_hub.stop()


def test_two_slugs_cut_to_one_service_name_never_touch_each_others_server(hub, docker_api, run_prefix):
    """Service names are cut to Docker's 63 characters (with a hash) for a long username and a long slug: a
    teacher's slug written to equal another environment's cut name must not replace, adopt or stop that
    environment's server; its start fails at once saying why."""
    from mydocker_hub.swarm import names

    user = "jean-dupont-universite-example"  # hashed in names: longer than 24 characters
    long_slug = "introduction-to-machine-learni"  # 30 characters: the pair is cut
    shared = names.service_name(run_prefix, user, long_slug)
    clashing_slug = shared.split("--", 1)[1]
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{0,29}", clashing_slug), clashing_slug
    assert names.service_name(run_prefix, user, clashing_slug) == shared  # not cut: the same name
    for slug in (long_slug, clashing_slug):
        (hub.environments / f"{slug}.yaml").write_text(f"title: {slug}\nimage: {TEST_IMAGE}\nhome: {{type: none}}\n")
    hub.ensure_user(user)
    try:
        hub.spawn(user, long_slug)
        [running] = docker_api.services(filters={"name": shared})
        message, seconds = hub.spawn_failure(user, clashing_slug)
        assert "their server names clash" in message and long_slug in message, message
        assert seconds < 30
        assert hub.api("DELETE", f"users/{user}/servers/{clashing_slug}").status_code in (202, 204, 400)
        time.sleep(2)  # a removal would be under way
        assert [s["ID"] for s in docker_api.services(filters={"name": shared})] == [running["ID"]]
        assert hub.server_model(user, long_slug)["ready"]
        hub.stop_server(user, long_slug)
    finally:
        for slug in (long_slug, clashing_slug):
            (hub.environments / f"{slug}.yaml").unlink()


def test_a_stopped_environments_page_offers_to_start_it_and_a_wrong_one_says_not_found(hub):
    hub.ensure_user("student2")
    if not hub.server_model("student2", "lab"):
        hub.spawn("student2", "lab")
    hub.stop_server("student2", "lab")
    session = hub.login("student2")
    # after a stop (or a hub restart) the server is no longer loaded: its page still answers
    page = session.get(f"{hub.url}/hub/environments/student2/lab")
    assert page.status_code == 200 and "This environment is not running." in page.text
    assert 'href="/hub/spawn/student2/lab"' in page.text
    home = session.get(f"{hub.url}/hub/home").content.decode()
    assert re.search(r"<title>\s*My environments · MyDocker\s*</title>", home), "the tab says which page it is"
    row = home.split('data-server-name="lab"', 1)[1].split("</tr>", 1)[0]
    assert "Test lab" in row and 'class="mydocker-ago"' in row  # its title and last activity, though not loaded
    # a wrong address: a page in the reader's language, who is signed in, and the way back
    missing = session.get(f"{hub.url}/hub/environments/student2/no-such-thing", headers={"Accept-Language": "fr"})
    text = missing.content.decode()  # JupyterHub's error pages say their charset in a <meta>, as browsers read
    assert missing.status_code == 404
    assert "Page introuvable" in text and "Il n&#39;y a pas d&#39;environnement no-such-thing ici." in text
    assert "Se déconnecter" in text and "Retour à mes environnements" in text
    assert "moons" not in session.get(f"{hub.url}/hub/no-such-page").text
    # a start of an environment that does not exist (an old link) is refused and leaves no row on the home page
    refused = session.post(
        f"{hub.url}/hub/api/users/student2/servers/gone-course", headers={"X-XSRFToken": session.cookies["_xsrf"]}
    )
    assert refused.status_code == 404, refused.text
    assert 'data-server-name="gone-course"' not in session.get(f"{hub.url}/hub/home").content.decode()


def test_a_changed_credentials_key_asks_for_a_restart_instead_of_breaking_the_page(tmp_path, run_prefix):
    """The hub's credentials key replaced (e.g. moved to MYDOCKER_CRYPT_KEY without the old one): the
    connection page of a running SSH environment says what to do instead of answering 500."""
    from cryptography.fernet import Fernet

    from .hubprocess import Hub

    keyed_hub = Hub(tmp_path, run_prefix)
    keyed_hub.start()
    try:
        keyed_hub.ensure_user("student")
        keyed_hub.spawn("student", "ssh")
        page = f"{keyed_hub.url}/hub/environments/student/ssh"
        assert "data-secret=" in keyed_hub.login("student").get(page).content.decode()
        keyed_hub.stop()
        (tmp_path / "data" / "mydocker_crypt_key").write_text(Fernet.generate_key().decode())
        keyed_hub.start()
        response = keyed_hub.login("student").get(page)
        assert response.status_code == 200
        body = response.content.decode()
        assert "mydocker-credentials-lost" in body and "Restart the environment to get a new one" in body
        assert "data-secret=" not in body
        # a restart gives the environment a new password, readable again
        keyed_hub.stop_server("student", "ssh")
        keyed_hub.spawn("student", "ssh")
        assert "data-secret=" in keyed_hub.login("student").get(page).content.decode()
        keyed_hub.stop_server("student", "ssh")
    finally:
        keyed_hub.stop()


def test_a_home_size_is_enforced_by_a_volume_driver_configured_for_it(tmp_path, run_prefix, docker_api):
    """home.size reaches the home volume's driver through home_volume_driver_options' {size}. Shown here
    with the local driver's tmpfs (a size-limited file system this machine has; production would use XFS
    project quotas or NFS, which it has not): the student cannot write more than the environment says."""
    from .hubprocess import TEST_IMAGE, Hub

    environments = {
        "small-home.yaml": f"title: Small home\nimage: {TEST_IMAGE}\nhome: {{type: environment, size: 8M}}\n",
    }
    options = {"type": "tmpfs", "device": "tmpfs", "o": "size={size},uid=1000,gid=100"}
    sized_hub = Hub(
        tmp_path,
        run_prefix,
        environments=environments,
        extra_config=f"\nc.SwarmEnvironmentSpawner.home_volume_driver_options = {options!r}\n",
    )
    sized_hub.start()
    try:
        sized_hub.ensure_user("quota")
        sized_hub.spawn("quota", "small-home")
        service = service_of(docker_api, run_prefix, "quota", "small-home")
        [mount] = service["Spec"]["TaskTemplate"]["ContainerSpec"]["Mounts"]
        volume = docker_api.inspect_volume(mount["Source"])
        assert volume["Options"]["o"] == f"size={8 * 1024**2},uid=1000,gid=100"
        container = running_container(docker_api, service["ID"])
        small = docker_exec(docker_api, container, ["sh", "-c", "head -c 4000000 /dev/zero > ~/fits && echo ok"])
        assert small.strip() == "ok"
        big = docker_exec(docker_api, container, ["sh", "-c", "head -c 16000000 /dev/zero > ~/too-big; echo $?"])
        assert big.strip().splitlines()[-1] != "0" and "No space left" in big, big
        sized_hub.stop_server("quota", "small-home")
    finally:
        sized_hub.stop()


def test_a_service_the_hub_no_longer_lists_as_running_is_swept_and_live_ones_kept(tmp_path, run_prefix, docker_api):
    """A stop during which the engine failed leaves the service running while JupyterHub marks the server
    stopped (it swallows the spawner's error). Shown by a hub database whose row says stopped while the
    service runs: the next sweeps remove that service (two in a row must find it so), not a running one."""
    import sqlite3

    from .hubprocess import Hub

    # a prefix of its own: a sweep removes every service of its prefix that its hub does not run, so it must
    # not see the other hubs' servers of this test run (two hubs sharing a Swarm need different prefixes)
    prefix = run_prefix + "w"
    environments = {"sweep.yaml": f"title: Sweep\nimage: {TEST_IMAGE}\nhome: {{type: none}}\n"}
    sweep_hub = Hub(
        tmp_path,
        prefix,
        environments=environments,
    )
    sweep_hub.start()
    try:
        for user in ("left", "kept"):
            sweep_hub.ensure_user(user)
            sweep_hub.spawn(user, "sweep")
        left_service = service_of(docker_api, prefix, "left", "sweep")
        kept_service = service_of(docker_api, prefix, "kept", "sweep")
        sweep_hub.stop()  # servers outlive the hub
        database = sqlite3.connect(tmp_path / "data" / "jupyterhub.sqlite")
        with database:
            [(server_id,)] = database.execute(
                "SELECT spawners.server_id FROM spawners JOIN users ON users.id = spawners.user_id"
                " WHERE users.name = 'left' AND spawners.name = 'sweep'"
            ).fetchall()
            database.execute("UPDATE spawners SET server_id = NULL WHERE server_id = ?", (server_id,))
            database.execute("DELETE FROM servers WHERE id = ?", (server_id,))
        database.close()
        # sweeps every 2 s from now on (not during the starts above, whose secrets a fast sweep could race)
        (sweep_hub.config_d / "sweep.py").write_text("c.SwarmEnvironmentSpawner.sweep_interval = 2\n")
        sweep_hub.start()

        def left_is_gone():
            return not docker_api.services(filters={"id": left_service["ID"]})

        wait_for(left_is_gone, 60, message="the service of a server the hub lists as stopped removed")
        assert any("Removing service" in line and "left" in line for line in sweep_hub.log_lines("Removing service"))
        # the running server was not touched: same service, still answering through the hub
        assert (sweep_hub.server_model("kept", "sweep") or {}).get("ready")
        assert service_of(docker_api, prefix, "kept", "sweep")["ID"] == kept_service["ID"]
        kept = requests.get(
            f"{sweep_hub.url}/user/kept/sweep/api/status",
            headers={"Authorization": f"token {sweep_hub.user_token('kept')}"},
            timeout=30,
        )
        assert kept.status_code == 200, kept.status_code
        sweep_hub.stop_server("kept", "sweep")
    finally:
        sweep_hub.stop()


def test_a_class_stop_revokes_the_servers_tokens_and_a_new_start_gets_working_ones(hub, docker_api, run_prefix, lab):
    # a class stop is JupyterHub's stop of each server: their API tokens and OAuth clients (with the tokens
    # the students' browsers got from them) are revoked, and a new start gets working ones
    import sqlite3

    def server_token(user: str) -> str:
        container = running_container(docker_api, service_of(docker_api, run_prefix, user, "lab")["ID"])
        return docker_exec(docker_api, container, ["cat", "/run/secrets/mydocker-hub-token"]).strip()

    def answers(token: str) -> int:
        headers = {"Authorization": f"token {token}"}
        return requests.get(f"{hub.url}/hub/api/user", headers=headers, timeout=30).status_code

    def oauth_clients(user: str) -> list[str]:
        database = sqlite3.connect(hub.workdir / "data" / "jupyterhub.sqlite")
        try:
            rows = database.execute(
                "SELECT identifier FROM oauth_clients WHERE identifier = ?", (f"jupyterhub-user-{user}-lab",)
            )
            return [row[0] for row in rows]
        finally:
            database.close()

    users = ("student2", "classmate")
    hub.ensure_user("classmate")
    for user in users:
        if not hub.server_model(user, "lab"):
            hub.spawn(user, "lab")
    old_tokens = {user: server_token(user) for user in users}
    assert {user: answers(token) for user, token in old_tokens.items()} == dict.fromkeys(users, 200)
    assert all(oauth_clients(user) for user in users)
    # the student's browser has an OAuth token of that server
    browser = hub.login("student2")
    assert browser.get(f"{hub.url}/user/student2/lab/lab", timeout=60).status_code == 200

    stopped = hub.api("POST", "mydocker/environments/lab/stop", json={"users": list(users)})
    assert stopped.status_code == 200 and sorted(stopped.json()["stopped"]) == sorted(users), stopped.text
    assert {user: answers(token) for user, token in old_tokens.items()} == dict.fromkeys(users, 403)
    assert [oauth_clients(user) for user in users] == [[], []]
    assert hub.server_model("student", "lab")["ready"], "another user's server, not named, keeps running"

    # started again: new tokens that work, and the student reaches the server through a new OAuth handshake
    hub.spawn("student2", "lab")
    new_token = server_token("student2")
    assert new_token != old_tokens["student2"] and answers(new_token) == 200
    page = browser.get(f"{hub.url}/user/student2/lab/lab", timeout=60)
    assert page.status_code == 200 and page.url == f"{hub.url}/user/student2/lab/lab" and "JupyterLab" in page.text
    hub.stop_server("student2", "lab")
