"""Stopping the hub, as an administrator does at every upgrade or restart: its log stays readable."""

from pathlib import Path

import requests

from .hubprocess import TEST_ENVIRONMENTS, Hub, wait_for


def test_stopping_the_hub_leaves_no_traceback_from_its_services(tmp_path, run_prefix):
    hub = Hub(tmp_path, run_prefix + "q", environments={"lab.yaml": TEST_ENVIRONMENTS["lab.yaml"]})
    hub.start()
    try:
        for service in ("scheduler", "builder"):  # both serving (JupyterHub stops them with SIGINT)
            url = f"{hub.url}/services/{service}/"
            wait_for(lambda url=url: requests.get(url, allow_redirects=False, timeout=10).status_code in (200, 302), 60)
    finally:
        hub.stop()
    log = hub.log()
    assert hub.process.returncode == 0
    assert "Cleaning up 3 services" in log, "the hub stopped its services itself"
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-3000:]


def _children_of(pid: int) -> dict[int, str]:
    """Processes whose parent is ``pid``: their command lines."""
    children = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"\nPPid:\t{pid}\n" in status:
            children[int(proc.name)] = cmdline
    return children


def _ignores_sigint(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (2 - 1)))  # bit of signal 2, SIGINT
    raise AssertionError(f"no SigIgn line for {pid}")


def test_a_hub_started_in_the_background_can_still_interrupt_its_services(tmp_path, run_prefix):
    # `scripts/demo &` or nohup from a script: the shell starts the hub with SIGINT ignored, and every service
    # would inherit that; JupyterHub stops services with SIGINT, so the idle culler would ignore it and each
    # hub stop or restart would wait for JupyterHub's interrupt timeout before a SIGTERM
    hub = Hub(tmp_path, run_prefix + "b", environments={"lab.yaml": TEST_ENVIRONMENTS["lab.yaml"]})
    hub.start(sigint_ignored=True)
    try:
        services = wait_for(
            lambda: {pid: cmd for pid, cmd in _children_of(hub.process.pid).items() if "culler" in cmd}, 30
        )
        for pid, command in services.items():
            assert not _ignores_sigint(pid), command
    finally:
        hub.stop()
    assert hub.process.returncode == 0


def test_a_server_stopped_just_before_the_hub_exits_leaves_no_service(tmp_path, run_prefix, docker_api):
    # the engine removes a stopped server's service once the stops of a class have settled; a hub stopped
    # meanwhile (an upgrade right after the end of a lab) removes it on its way out
    hub = Hub(
        tmp_path,
        run_prefix + "e",
        environments={"lab.yaml": TEST_ENVIRONMENTS["lab.yaml"]},
        extra_config="c.SwarmEnvironmentSpawner.removal_settle_time = 600\n",
    )
    hub.start()
    labels = {"label": f"org.mydocker.managed={run_prefix}e"}
    try:
        hub.ensure_user("alice")
        hub.spawn("alice", "lab")
        [service] = docker_api.services(filters=labels)
        hub.stop_server("alice", "lab")
        assert [s["ID"] for s in docker_api.services(filters=labels)] == [service["ID"]], "waiting to be removed"
    finally:
        hub.stop()
    assert hub.process.returncode == 0
    assert docker_api.services(filters=labels) == []
    assert "Removed 1 service(s) of stopped servers on the way out" in hub.log()
