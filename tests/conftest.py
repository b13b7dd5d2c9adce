"""Shared fixtures: a real JupyterHub process with our config on a real Docker Swarm.

Everything a test creates in Docker carries a per-run prefix (services, volumes, secrets) and is removed at
the end of the session; container logs are printed only when a test fails.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

import docker
import pytest

from .hubprocess import Hub, wait_for  # noqa: F401  (wait_for is re-exported for the tests)


@pytest.fixture(scope="session")
def docker_api():
    client = docker.APIClient(version="auto")
    info = client.info()
    assert info["Swarm"]["LocalNodeState"] == "active", "the tests need Swarm mode: run scripts/ensure-system.sh"
    return client


def identity_prefix(run_prefix: str) -> str:
    """Prefix of the second hub (LTI + federation tests); its names start with the run prefix too."""
    return run_prefix + "i"


def sessions_prefix(run_prefix: str) -> str:
    """Prefix of the class-session tests' hub."""
    return run_prefix + "s"


@pytest.fixture(scope="session")
def run_prefix():
    return f"mdt{secrets.token_hex(3)}"


@pytest.fixture(scope="session", autouse=True)
def cleanup_docker(request, run_prefix):
    yield
    try:
        client = docker.APIClient(version="auto")
    except Exception:
        return
    # every hub of the run uses a prefix that starts with the run prefix
    for service in client.services(filters={"label": "org.mydocker.managed"}):
        if service["Spec"].get("Labels", {}).get("org.mydocker.managed", "").startswith(run_prefix):
            client.remove_service(service["ID"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and client.containers(all=True, filters={"name": run_prefix}):
        time.sleep(0.5)
    for secret in client.secrets(filters={"label": "org.mydocker.managed"}):
        if secret["Spec"].get("Labels", {}).get("org.mydocker.managed", "").startswith(run_prefix):
            try:
                client.remove_secret(secret["ID"])
            except docker.errors.APIError:
                pass
    for volume in (client.volumes(filters={"name": run_prefix}) or {}).get("Volumes") or []:
        try:
            client.remove_volume(volume["Name"], force=True)
        except docker.errors.APIError:
            pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "run_prefix" in item.fixturenames:
        prefix = item.funcargs["run_prefix"]
        try:
            client = docker.APIClient(version="auto")
            for container in client.containers(all=True, filters={"name": prefix}):
                logs = client.logs(container["Id"], tail=40).decode(errors="replace")
                report.sections.append((f"container {container['Names'][0]}", logs))
        except Exception as e:  # never hide the real failure
            report.sections.append(("container logs", f"unavailable: {e}"))


@pytest.fixture(scope="session")
def hub(tmp_path_factory, run_prefix, docker_api):
    workdir = tmp_path_factory.mktemp("hub")
    hub = Hub(workdir, run_prefix)
    hub.start()
    yield hub
    hub.stop()
    if os.environ.get("MYDOCKER_KEEP_HUB_LOGS"):
        shutil.copy(hub.log_path, os.environ["MYDOCKER_KEEP_HUB_LOGS"])


# -- a real browser (Debian's Chromium driven by Playwright) ------------------------------------------
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def playwright_driver():
    """One Playwright (sync API) per test module: it allows no second one at the same time."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_driver):
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def browser_one_process(playwright_driver):
    """Chromium with every frame of a page in the page's renderer process (site isolation off).

    For tests of an LTI launch in Moodle's iframe that do not depend on how the browser treats third-party
    storage: the launch moves the frame between Moodle's site and the hub's several times, and with site
    isolation each move changes the frame's renderer process; Playwright (1.65, Chromium 156) now and then
    loses track of the frame at such a move and every later query on it waits forever, whatever its timeout
    (seen in CI, and about one run in three with both cores busy). What the hub serves is the same.
    """
    one_process = ["--disable-site-isolation-trials", "--disable-features=IsolateOrigins,site-per-process"]
    browser = playwright_driver.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS + one_process, headless=True
    )
    yield browser
    browser.close()


@pytest.fixture
def shots(tmp_path):
    directory = Path(os.environ.get("MYDOCKER_SCREENSHOTS", tmp_path))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """A real image registry on loopback (Debian's docker-registry), for the whole run."""
    from .registry import Registry

    registry = Registry(tmp_path_factory.mktemp("registry"))
    yield registry
    registry.stop()
