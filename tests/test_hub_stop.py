"""Stopping the hub, as an administrator does at every upgrade or restart: its log stays readable."""

import requests

from .hubprocess import TEST_ENVIRONMENTS, Hub, wait_for


def test_stopping_the_hub_leaves_no_traceback_from_its_services(tmp_path, run_prefix):
    hub = Hub(tmp_path, run_prefix + "q", environments={"lab.yaml": TEST_ENVIRONMENTS["lab.yaml"]})
    hub.start()
    try:
        for service in ("scheduler", "builder"):  # both serving (JupyterHub stops them with SIGINT)
            url = f"{hub.url}/services/{service}/"
            wait_for(lambda url=url: requests.get(url, allow_redirects=False).status_code in (200, 302), 60)
    finally:
        hub.stop()
    log = hub.log()
    assert hub.process.returncode == 0
    assert "Cleaning up 3 services" in log, "the hub stopped its services itself"
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-3000:]
