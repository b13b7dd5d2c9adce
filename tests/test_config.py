"""mydocker_hub.config: the defaults, and what the escape hatch (jupyterhub_config.d/) may change."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from traitlets.config import Config

from mydocker_hub import config as mydocker_config


@pytest.fixture(autouse=True)
def no_side_effects(monkeypatch, tmp_path):
    """apply() reads and sets process-wide things: keep them to this test."""
    monkeypatch.delenv("MYDOCKER_ENVIRONMENTS_DIR", raising=False)
    monkeypatch.setenv("MYDOCKER_EXTRA_ENVIRONMENTS_DIRS", str(tmp_path / "build-environments"))  # apply() sets it
    monkeypatch.setenv("MYDOCKER_HUB_IP", "127.0.0.1")  # no docker call for the bridge's address
    monkeypatch.setenv("MYDOCKER_DB_URL", "postgresql://hub@db.example/jupyterhub")  # no process-wide SQLite hook


def test_an_environments_directory_set_in_the_escape_hatch_is_read_by_every_page_and_service(tmp_path):
    c = Config()
    mydocker_config.apply(c, base_dir=tmp_path, data_dir=tmp_path / "data")
    escape_hatch = tmp_path / "jupyterhub_config.d"
    escape_hatch.mkdir()
    (escape_hatch / "50-site.py").write_text('c.SwarmEnvironmentSpawner.environments_dir = "/srv/teachers-git"\n')
    mydocker_config.load_escape_hatch(c, escape_hatch)
    mydocker_config.finalize(c)
    assert c.JupyterHub.tornado_settings["mydocker_environments_dir"] == "/srv/teachers-git"
    readers = [s["name"] for s in c.JupyterHub.services if "MYDOCKER_ENVIRONMENTS_DIR" in s.get("environment", {})]
    assert readers == ["idle-culler", "scheduler", "builder"]
    for service in c.JupyterHub.services:
        assert service["environment"]["MYDOCKER_ENVIRONMENTS_DIR"] == "/srv/teachers-git", service["name"]
    assert "mydocker_environment_of" in c.JupyterHub.template_vars


def test_the_services_read_class_times_in_the_hubs_time_zone(tmp_path, monkeypatch):
    """A session written without an offset is in the hub's TZ: the scheduler (which pre-pulls before it and
    stops it at its end) must not read it in its own default time zone."""
    monkeypatch.setenv("TZ", "Indian/Reunion")
    c = Config()
    mydocker_config.apply(c, base_dir=tmp_path, data_dir=tmp_path / "data")
    mydocker_config.finalize(c)
    assert {s["name"]: s["environment"].get("TZ") for s in c.JupyterHub.services} == {
        "idle-culler": "Indian/Reunion",
        "scheduler": "Indian/Reunion",
        "builder": "Indian/Reunion",
    }


def test_without_an_escape_hatch_the_directory_is_the_repository_s(tmp_path):
    c = Config()
    mydocker_config.apply(c, base_dir=tmp_path, data_dir=tmp_path / "data")
    mydocker_config.finalize(c)
    assert c.JupyterHub.tornado_settings["mydocker_environments_dir"] == str(tmp_path / "environments")
    assert c.SwarmEnvironmentSpawner.environments_dir == str(tmp_path / "environments")


def test_the_scheduler_names_and_places_its_pre_pulls_like_the_spawner(tmp_path):
    c = Config()
    mydocker_config.apply(c, base_dir=tmp_path, data_dir=tmp_path / "data")
    escape_hatch = tmp_path / "jupyterhub_config.d"
    escape_hatch.mkdir()
    (escape_hatch / "50-site.py").write_text(
        'c.SwarmEnvironmentSpawner.service_prefix = "mydocker-staging"\n'
        'c.SwarmEnvironmentSpawner.node_pool_label = "fr.univ.pool"\n'
    )
    mydocker_config.load_escape_hatch(c, escape_hatch)
    mydocker_config.finalize(c)
    [scheduler] = [s for s in c.JupyterHub.services if s["name"] == "scheduler"]
    assert scheduler["environment"]["MYDOCKER_SERVICE_PREFIX"] == "mydocker-staging"
    assert scheduler["environment"]["MYDOCKER_NODE_POOL_LABEL"] == "fr.univ.pool"


def test_every_spawner_and_login_setting_is_listed_with_its_help_by_jupyterhub_help_all():
    """An administrator looks settings up with ``jupyterhub --help-all`` (README, Configuration): JupyterHub
    lists the classes the package registers as its spawner and authenticator."""
    jupyterhub = Path(sys.executable).with_name("jupyterhub")
    listing = subprocess.run([jupyterhub, "--help-all"], capture_output=True, text=True, timeout=120, check=True)
    assert "--SwarmEnvironmentSpawner.environments_dir=<Unicode>" in listing.stdout
    assert "--SwarmEnvironmentSpawner.running_servers_per_student=<Int>" in listing.stdout
    assert "--MyDockerAuthenticator." in listing.stdout
