"""Environment files as teachers write them: every mistake gets file:line: field: what to write instead."""

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mydocker_hub.environments import EnvironmentCatalog, load_directory, load_file, load_text
from mydocker_hub.environments.docs import schema_markdown
from mydocker_hub.environments.units import parse_cpu, parse_duration, parse_size

REPO = Path(__file__).resolve().parent.parent
VALID = "title: Python\nimage: mydocker/jupyterlab:latest\n"


@pytest.mark.parametrize(
    "text, line, field, fragment",
    [
        pytest.param("title: [broken\n", 2, "(file)", "is not valid YAML", id="yaml-syntax"),
        pytest.param("", 1, "(file)", "is empty", id="empty"),
        pytest.param("- a\n- b\n", 1, "(file)", "must be a mapping", id="top-level-list"),
        pytest.param("title: x\n", 1, "image", "is missing", id="no-image"),
        pytest.param(VALID + "titel: y\n", 3, "titel", "did you mean `title`", id="typo-suggests"),
        pytest.param(
            VALID + "interface: jupyter\n", 3, "interface", "jupyterlab, vscode, desktop, ssh, custom", id="enum"
        ),
        pytest.param(VALID + "resources:\n  cpu_limit: lots\n", 4, "resources.cpu_limit", "0.5", id="cpu"),
        pytest.param(VALID + "resources:\n  memory_limit: 4 gigs\n", 4, "resources.memory_limit", "4G", id="memory"),
        pytest.param(
            VALID + "resources: {cpu_limit: 1, cpu_reservation: 2}\n",
            3,
            "resources.cpu_reservation",
            "more than cpu_limit",
            id="reservation-over-limit",
        ),
        pytest.param(VALID + "idle_timeout: soon\n", 3, "idle_timeout", "20m", id="duration"),
        pytest.param(
            VALID + "ports:\n  - {name: a, port: 22, type: ssh}\n  - {name: b, port: 22, type: tcp}\n",
            5,
            "ports[1].port",
            "already declared",
            id="duplicate-port",
        ),
        pytest.param(VALID + "ports: [{name: a, port: 70000}]\n", 3, "ports[0].port", "<= 65535", id="port-range"),
        pytest.param(VALID + "interface: ssh\n", 3, "interface", "type: ssh", id="ssh-without-port"),
        pytest.param(VALID + "interface: custom\n", 3, "interface", "command", id="custom-without-command"),
        pytest.param(
            VALID + "command: [run, '{token}']\n", 3, "command", "{username} and {password}", id="command-placeholder"
        ),
        pytest.param(
            VALID + "display:\n  links:\n    - {title: t, url: 'http://{HOST[8888]}/'}\n",
            5,
            "display.links[0].url",
            "not in `ports`",
            id="link-port-undeclared",
        ),
        pytest.param(
            VALID + "env: {JUPYTERHUB_API_TOKEN: x}\n",
            3,
            "env.JUPYTERHUB_API_TOKEN",
            "set by the hub",
            id="env-reserved",
        ),
        pytest.param(VALID + "slug: Python_Intro\n", 3, "slug", "lowercase", id="slug"),
        pytest.param(VALID + "home: {mount_path: /etc}\n", 3, "home.mount_path", "hide system files", id="home-on-etc"),
        pytest.param(
            VALID + "sessions:\n  - {start: 2026-01-12T10:00:00, end: 2026-01-12T09:00:00, students: 3}\n",
            4,
            "sessions[0].end",
            "not after start",
            id="session-order",
        ),
        pytest.param(
            VALID + "sessions:\n  - {start: '0001-01-01T00:00:00+00:00', end: 2099-01-01T00:00:00, students: 5}\n",
            4,
            "sessions[0].start",
            "between 2000 and 2199",
            id="session-in-year-1",
        ),
        pytest.param(
            VALID + "sessions:\n  - {start: 2026-01-12T08:00:00, end: 2026-01-12T10:00:00, students: 5,"
            " warn_before_end: 1100000000}\n",
            4,
            "sessions[0].warn_before_end",
            "<= 1440",
            id="session-warning-too-early",
        ),
        pytest.param(
            VALID + "sessions:\n  - {start: 2026-01-12T08:00:00, end: 2026-01-12T10:00:00, students: 1000001}\n",
            4,
            "sessions[0].students",
            "<= 100000",
            id="session-students-beyond-a-count",
        ),
        pytest.param("a: &x [1]\nb: *x\n", 2, "(file)", "aliases", id="no-yaml-aliases"),
        pytest.param(VALID + "idle_timeout: .inf\n", 3, "idle_timeout", "20m", id="infinite-duration"),
        pytest.param(VALID + "max_lifetime: .nan\n", 3, "max_lifetime", "a second and a year", id="nan-duration"),
        pytest.param(VALID + "resources: {cpu_limit: 1e-12}\n", 3, "resources.cpu_limit", "0.01", id="tiny-cpu"),
        pytest.param(VALID + "title: B\n", 3, "title", "written twice (lines 1 and 3)", id="duplicate-key"),
        pytest.param(
            VALID + "description: {de: Hallo}\n", 3, "description", "de is not a language", id="unknown-language"
        ),
        pytest.param(
            VALID + "display:\n  links:\n    - {title: t, url: 'javascript:alert(1)//{PASSWORD}'}\n",
            5,
            "display.links[0].url",
            "cannot be a link button",
            id="javascript-link",
        ),
        pytest.param(
            VALID + "display:\n  links:\n    - {title: t, url: ' data:text/html,x'}\n",
            5,
            "display.links[0].url",
            "https://",
            id="data-link",
        ),
        pytest.param(
            VALID + "display:\n  links:\n    - {title: t, url: '{USERNAME}:x'}\n",
            5,
            "display.links[0].url",
            "cannot be a link button",
            id="link-starting-with-a-value",
        ),
        pytest.param(
            VALID + "home: {mount_path: /home/jovyan/../../etc}\n", 3, "home.mount_path", "plain", id="home-dotdot"
        ),
        pytest.param(VALID + "home: {mount_path: //etc}\n", 3, "home.mount_path", "plain", id="home-double-slash"),
        pytest.param(
            "title: x\nimage: 'Python 3; rm -rf /'\n", 2, "image", "registry/]name[:tag]", id="image-reference"
        ),
    ],
)
def test_bad_files_are_explained(text, line, field, fragment):
    environment, errors = load_text(text, "environments/course.yaml")
    assert environment is None
    assert any(e.line == line and e.field == field and fragment in e.message for e in errors), [str(e) for e in errors]
    assert all(str(e).startswith("environments/course.yaml:") for e in errors)


def test_one_validation_shows_every_mistake_of_a_file():
    """A schema error (a misspelt interface) does not hide the values that do not convert."""
    text = (
        "title: Bad\nimage: mydocker/minimal:latest\ninterface: jupyterlabb\n"
        "resources: {cpu_limit: two, memory_limit: 4 gigs}\nidle_timeout: soon\n"
    )
    environment, errors = load_text(text, "environments/bad.yaml")
    assert environment is None
    assert [(e.line, e.field) for e in errors] == [
        (3, "interface"),
        (4, "resources.cpu_limit"),
        (4, "resources.memory_limit"),
        (5, "idle_timeout"),
    ], [str(e) for e in errors]


def test_hostile_input_never_crashes():
    for text in ["\x00\x01binary", "a: " + "[" * 500, "title: x\nimage: y\nports: " + "1" * 5000, "{" * 10000]:
        environment, errors = load_text(text, "x.yaml")
        assert environment is None and errors


def test_oversized_file_is_refused(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(VALID + "description: '" + "x" * 300_000 + "'\n")
    environment, errors = load_file(path)
    assert environment is None and "256 KiB" in errors[0].message


def test_full_example_uses_every_field():
    environment, errors = load_file(REPO / "docs" / "example-environment.yaml")
    assert errors == []
    assert environment.slug == "deep-learning"
    assert environment.title == {"en": "Deep learning with PyTorch", "fr": "Apprentissage profond avec PyTorch"}
    assert environment.interface == "custom" and "{password}" in " ".join(environment.command)
    assert [(p.port, p.type, p.required) for p in environment.ports] == [
        (8888, "http", True),
        (2222, "ssh", False),
        (6006, "tcp", False),
    ]
    resources = environment.resources
    assert (resources.cpu_limit, resources.cpu_reservation, resources.gpus, resources.node_pool) == (4, 1, 1, "gpu")
    assert (resources.memory_limit, resources.memory_reservation) == (16 * 1024**3, 8 * 1024**3)
    assert (environment.home.type, environment.home.size) == ("environment", 10 * 1024**3)
    assert environment.env == {"LANG": "fr_FR.UTF-8", "OMP_NUM_THREADS": "4", "DEBUG": "false"}
    assert (environment.idle_timeout, environment.max_lifetime) == (30 * 60, 4 * 3600)
    assert environment.status == "test"
    assert environment.access.groups == ("course-ia-3a",) and environment.access.viewers == ("support@example.edu",)
    assert environment.display.show_password and len(environment.display.links) == 2
    first, second = environment.sessions
    assert first.start == dt.datetime(2026, 1, 12, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert first.students == 120 and first.block_before_start and first.stop_at_end and first.warn_before_end == 15
    assert second.start.tzinfo is not None and second.start.utcoffset() == dt.timedelta(hours=1)  # Paris in January
    every_field = set(
        __import__("json").loads((REPO / "mydocker_hub/environments/schema.json").read_text())["properties"]
    )
    written = set(__import__("yaml").safe_load((REPO / "docs" / "example-environment.yaml").read_text()))
    assert written == every_field


def test_starter_catalogue_is_valid():
    environments, errors = load_directory(REPO / "environments")
    assert errors == []
    assert {"python", "openssl-ssh", "vscode", "desktop"} <= set(environments)


def test_reference_docs_are_generated_from_the_schema():
    assert (REPO / "docs" / "environments.md").read_text() == schema_markdown()


def test_duplicate_slug_names_both_files(tmp_path):
    (tmp_path / "a.yaml").write_text(VALID + "slug: same\n")
    (tmp_path / "b.yaml").write_text(VALID + "slug: same\n")
    environments, errors = load_directory(tmp_path)
    assert list(environments) == ["same"]
    assert errors[0].file.endswith("b.yaml") and "a.yaml" in errors[0].message


@pytest.mark.parametrize(
    "parser, value, expected",
    [
        pytest.param(parse_size, "4G", 4 * 1024**3, id="4G"),
        pytest.param(parse_size, "512Mi", 512 * 1024**2, id="512Mi"),
        pytest.param(parse_size, "1.5G", int(1.5 * 1024**3), id="1.5G"),
        pytest.param(parse_size, 1000, 1000, id="bytes"),
        pytest.param(parse_duration, "20m", 1200, id="20m"),
        pytest.param(parse_duration, "1h30m", 5400, id="1h30m"),
        pytest.param(parse_duration, 20, 1200, id="minutes"),
        pytest.param(parse_cpu, "500m", 0.5, id="millicores"),
        pytest.param(parse_cpu, 2, 2.0, id="cores"),
    ],
)
def test_units(parser, value, expected):
    assert parser(value) == expected


def touch(path: Path, text: str):
    path.write_text(text)
    later = time.time() + 1
    os.utime(path, (later, later))


def test_catalog_reloads_and_keeps_the_last_good_version(tmp_path):
    catalog = EnvironmentCatalog(tmp_path)
    assert catalog.reload_if_changed() is True and catalog.environments == {}
    touch(tmp_path / "python.yaml", VALID)
    assert catalog.reload_if_changed() is True and "python" in catalog.environments
    assert catalog.reload_if_changed() is False  # nothing changed: nothing re-read
    touch(tmp_path / "python.yaml", VALID + "resources: {cpu_limit: lots}\n")
    assert catalog.reload_if_changed() is True
    assert catalog.environments["python"].title == {"en": "Python"}, "the previous version is still served"
    assert "still serving the previous version" in catalog.errors[0].message
    (tmp_path / "python.yaml").unlink()
    assert catalog.reload_if_changed() is True and catalog.environments == {}


@pytest.mark.parametrize(
    "extra, user, groups, admin, visible",
    [
        pytest.param("", "anyone", set(), False, True, id="ready-for-all"),
        pytest.param("access: {groups: [course-a]}\n", "s", {"course-b"}, False, False, id="other-course"),
        pytest.param("access: {groups: [course-a]}\n", "s", {"course-a"}, False, True, id="own-course"),
        pytest.param("status: draft\naccess: {owners: [t]}\n", "s", set(), False, False, id="draft-hidden"),
        pytest.param("status: draft\naccess: {owners: [t]}\n", "t", set(), False, True, id="draft-owner"),
        pytest.param("status: test\naccess: {viewers: [v]}\n", "v", set(), False, True, id="test-viewer"),
        pytest.param("status: archived\naccess: {owners: [t]}\n", "t", set(), False, False, id="archived-owner"),
        pytest.param("status: archived\n", "root", set(), True, True, id="archived-admin"),
    ],
)
def test_visibility(tmp_path, extra, user, groups, admin, visible):
    (tmp_path / "env.yaml").write_text(VALID + extra)
    catalog = EnvironmentCatalog(tmp_path)
    assert [e.slug for e in catalog.visible_to(user, groups, admin)] == (["env"] if visible else [])


def test_validate_command_prints_errors_and_exits_nonzero(tmp_path):
    (tmp_path / "good.yaml").write_text(VALID)
    (tmp_path / "bad.yaml").write_text(VALID + "resources:\n  memory_limit: lots\n")
    result = subprocess.run(
        [sys.executable, "-m", "mydocker_hub.cli", "validate", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert f"{tmp_path / 'bad.yaml'}:4: resources.memory_limit:" in result.stdout
    assert "1 environments valid, 1 files with errors" in result.stdout
    ok = subprocess.run(
        [sys.executable, "-m", "mydocker_hub.cli", "validate", str(REPO / "environments")], capture_output=True
    )
    assert ok.returncode == 0


def test_a_slug_used_twice_is_reported_at_its_line(tmp_path):
    (tmp_path / "a.yaml").write_text(VALID + "slug: dup\n")
    (tmp_path / "b.yaml").write_text("# the same course again\n" + VALID + "slug: dup\n")
    environments, errors = load_directory(tmp_path)
    assert list(environments) == ["dup"]
    (error,) = errors
    assert str(error).startswith(f"{tmp_path / 'b.yaml'}:4: slug: 'dup' is already used by"), str(error)


def test_safe_links_are_kept():
    text = VALID + (
        "ports: [{name: tb, port: 6006}]\n"
        "display:\n  links:\n"
        "    - {title: a, url: 'http://{HOST[6006]}/'}\n"
        "    - {title: b, url: '{SERVER_URL}lab?token={PASSWORD}'}\n"
        "    - {title: c, url: 'ssh://{USERNAME}@example.org'}\n"
        "    - {title: d, url: '/hub/home'}\n"
    )
    environment, errors = load_text(text, "environments/course.yaml")
    assert not errors and len(environment.display.links) == 4


def test_a_filled_link_is_shown_only_when_a_browser_would_open_it_as_written():
    from mydocker_hub.handlers.views import render_link

    def fill(template):
        return render_link(
            template, host_of_port=lambda port: f"hub.example.fr:{port}", password="pw", username="u", server_url="/s/"
        )

    assert fill("http://{HOST[6006]}/?u={USERNAME}") == "http://hub.example.fr:6006/?u=u"
    assert fill("{SERVER_URL}lab") == "/s/lab"
    # "hub.example.fr:6006/" would be read by the browser as a link of scheme "hub.example.fr": not shown
    assert fill("{HOST[6006]}/") == ""
