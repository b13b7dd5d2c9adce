"""The image builder for real: a hub with its builder service, a registry on loopback, the Swarm node
pulling the pushed build and a teacher's server running it; Chromium on the build page.
"""

from __future__ import annotations

import asyncio
import html
import io
import subprocess
import uuid
import zipfile
from pathlib import Path
from urllib.parse import unquote

import pytest
import requests
from playwright.sync_api import expect

from mydocker_hub.builder.records import BuildStore
from mydocker_hub.builder.runner import BuildRunner
from mydocker_hub.builder.sources import load_sources
from mydocker_hub.i18n import Message

from .hubprocess import TEST_ENVIRONMENTS, TEST_IMAGE, Hub, wait_for
from .test_browser import login

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MARK = uuid.uuid4().hex[:8]
IMAGES = {
    "course-good": (
        f"FROM {TEST_IMAGE}\nUSER 0\nRUN echo 'built {MARK}' > /opt/built.txt\nUSER 1000\n"
        "LABEL org.mydocker.interface=jupyterlab\n",
        "owners: [teacher]\n",
    ),
    "course-broken": (f"FROM {TEST_IMAGE}\nRUN echo one\nRUN exit 3\nRUN echo never\n", "owners: [teacher]\n"),
    "admins-only": (f"FROM {TEST_IMAGE}\n", None),
    "course-viewed": (f"FROM {TEST_IMAGE}\n", "owners: [colleague]\nviewers: [teacher]\n"),
    "course-typo": (f"FROM {TEST_IMAGE}\n", "owners: [teacher]\npublc: true\n"),
    # hub-secret.txt: a link to the hub's cookie secret (made by the fixture)
    "course-secret": (f"FROM {TEST_IMAGE}\nUSER 0\nCOPY hub-secret.txt /s\nRUN cat /s\n", "owners: [teacher]\n"),
}


@pytest.fixture(scope="module")
def bhub(tmp_path_factory, run_prefix, docker_api, registry):
    workdir = tmp_path_factory.mktemp("builder-hub")
    images = workdir / "teacher-images"
    for name, (dockerfile, metadata) in IMAGES.items():
        (images / name).mkdir(parents=True)
        (images / name / "Dockerfile").write_text(dockerfile)
        if metadata:
            (images / name / "mydocker-image.yaml").write_text(metadata)
    (images / "course-secret" / "hub-secret.txt").symlink_to(workdir / "data" / "jupyterhub_cookie_secret")
    hub = Hub(workdir, run_prefix + "b", environments={"lab.yaml": TEST_ENVIRONMENTS["lab.yaml"]})
    hub.env.update(MYDOCKER_IMAGES_DIR=str(images), MYDOCKER_REGISTRY=registry.host)
    hub.start()
    hub.registry = registry
    yield hub
    hub.stop()


def builder_session(hub: Hub, user: str):
    """A browser-like session logged in to the hub and to the builder service (OAuth)."""
    session = hub.login(user)
    page = session.get(f"{hub.url}/services/builder/")
    return session, page


def xsrf(session) -> str:
    return next(c.value for c in session.cookies if c.name == "_xsrf" and c.path.startswith("/services/builder"))


def build(hub: Hub, session, image: str) -> dict:
    response = session.post(f"{hub.url}/services/builder/images/{image}/build", data={"_xsrf": xsrf(session)})
    assert response.status_code == 200, response.text[-500:]
    build_id = unquote(response.url.rsplit("/", 1)[1])
    api = f"{hub.url}/services/builder/api/builds/{image}/{build_id}"
    return wait_for(
        lambda: (lambda r: r if r["status"] in ("succeeded", "failed") else None)(session.get(api).json()),
        300,
        0.5,
        f"build {image}/{build_id}",
    )


def test_students_cannot_reach_the_builder_and_teachers_only_build_their_images(bhub):
    _, student_page = builder_session(bhub, "student")
    assert student_page.status_code == 403
    teacher, page = builder_session(bhub, "teacher")
    assert page.status_code == 200
    assert "data-image='course-good'" in page.text and "data-image='admins-only'" not in page.text
    french = teacher.get(f"{bhub.url}/services/builder/", headers={"Accept-Language": "fr"}).text
    assert "<h1 class='h3'>Images d&#x27;environnement</h1>" in french and ">Construire</button>" in french
    assert "Déposer une image" in french and "Mes environnements" in french
    refused = teacher.post(f"{bhub.url}/services/builder/images/admins-only/build", data={"_xsrf": xsrf(teacher)})
    assert refused.status_code == 404


def test_a_build_is_pushed_pulled_by_the_node_and_started_by_its_author(bhub):
    teacher, _ = builder_session(bhub, "teacher")
    record = build(bhub, teacher, "course-good")
    assert record["status"] == "succeeded", record["log"][-2000:]
    assert record["reference"].startswith(
        f"{bhub.registry.host}/mydocker-builds/course-good:{record['build_id']}@sha256:"
    )
    assert "Step 1/" in record["log"] and "Pushed" in record["log"]
    # the node does not keep it: the spawn must pull it from the registry
    subprocess.run(["docker", "rmi", record["tag"]], capture_output=True)
    repository = "mydocker-builds/course-good"
    log_mark = bhub.registry.log_size()
    test = teacher.post(
        f"{bhub.url}/services/builder/builds/course-good/{record['build_id']}/test",
        data={"_xsrf": xsrf(teacher)},
        allow_redirects=False,
    )
    assert test.status_code == 302 and "/hub/spawn/teacher/t-course-good-" in test.headers["Location"]
    slug = test.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    teacher.get(bhub.url + test.headers["Location"])  # what the browser does: the spawn starts
    wait_for(lambda: (bhub.server_model("teacher", slug) or {}).get("ready"), 180, message="the test server")
    assert bhub.registry.blob_downloads(repository, since=log_mark), "the node pulled the build from the registry"
    service = bhub.api("GET", "users/teacher").json()["servers"][slug]
    assert service["ready"]
    headers = {"Authorization": f"token {bhub.user_token('teacher')}"}
    built = requests.get(f"{bhub.url}/user/teacher/{slug}/api/contents/", headers=headers, timeout=30)
    assert built.status_code == 200
    bhub.stop_server("teacher", slug)
    # the history keeps it, with its pinned reference for environment files
    history = teacher.get(f"{bhub.url}/services/builder/images/course-good").text
    assert record["reference"] in history and "succeeded" in history


def test_a_failing_dockerfile_reports_its_failing_step_and_keeps_the_log(bhub):
    teacher, _ = builder_session(bhub, "teacher")
    record = build(bhub, teacher, "course-broken")
    assert record["status"] == "failed"
    assert record["failing_step"] == "Step 3/4 : RUN exit 3"
    assert "returned a non-zero code: 3" in record["log"]
    history = teacher.get(f"{bhub.url}/services/builder/images/course-broken").text
    assert "Step 3/4 : RUN exit 3" in history and "failed" in history


def test_a_link_to_a_hub_secret_fails_the_build_and_never_reaches_its_log(bhub):
    secret = (Path(bhub.workdir) / "data" / "jupyterhub_cookie_secret").read_text().strip()
    assert secret
    teacher, _ = builder_session(bhub, "teacher")
    record = build(bhub, teacher, "course-secret")
    assert record["status"] == "failed" and record["failing_step"] == "build context"
    assert "hub-secret.txt is a symbolic link leading outside the image directory course-secret/" in record["log"]
    assert "links that leave the image directory are not allowed" in record["log"]
    assert secret not in record["log"] and "Step 1/" not in record["log"], "Docker never saw the context"


def test_refusals_and_the_problems_of_image_files_reach_the_teacher(bhub):
    teacher, _ = builder_session(bhub, "teacher")
    refused = teacher.post(
        f"{bhub.url}/services/builder/images/course-viewed/build",
        data={"_xsrf": xsrf(teacher)},
        headers={"Accept-Language": "fr-FR,fr;q=0.9"},
    )
    why = Message(
        "Only the owners and editors of %(name)r (and admins) can build it: ask an owner to add you to its editors.",
        name="course-viewed",
    )
    assert refused.status_code == 403 and "<h1 class='h3'>Erreur 403</h1>" in refused.text
    assert html.escape(why.in_language("fr")) in refused.text, refused.text[-800:]
    page = teacher.get(f"{bhub.url}/services/builder/").text
    assert "<code>course-typo/mydocker-image.yaml</code>: Unknown setting &#x27;publc&#x27; (a typo?)" in page
    teacher.get(f"{bhub.url}/services/builder/images/course-typo")
    logged = bhub.log_lines("Image course-typo: course-typo/mydocker-image.yaml: Unknown setting 'publc'")
    assert len(logged) == 1, logged


def _zip(*entries: tuple[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def test_uploads_build_and_malicious_archives_are_refused(bhub):
    teacher, _ = builder_session(bhub, "teacher")
    url = f"{bhub.url}/services/builder/upload"
    evil = teacher.post(
        url,
        data={"_xsrf": xsrf(teacher), "name": "evil", "dockerfile": f"FROM {TEST_IMAGE}\n"},
        files={"context": ("ctx.zip", _zip(("../../escape.sh", "rm -rf /")), "application/zip")},
    )
    assert evil.status_code == 400 and "nothing was written" in evil.text and "outside the build context" in evil.text
    uploads = Path(bhub.workdir) / "data" / "builder" / "uploads"
    assert not (uploads / "evil").exists()
    good = teacher.post(
        url,
        data={
            "_xsrf": xsrf(teacher),
            "name": "uploaded",
            "dockerfile": f"FROM {TEST_IMAGE}\nCOPY app/ /opt/app/\nCOPY mydocker-wrapper.sh /opt/\n",
            "wrapper": '#!/bin/sh\nexec jupyterhub-singleuser "$@"\n',
        },
        files={"context": ("ctx.zip", _zip(("app/main.py", "print('hi')")), "application/zip")},
    )
    assert good.status_code == 200 and good.url.endswith("/services/builder/images/uploaded")
    record = build(bhub, teacher, "uploaded")
    assert record["status"] == "succeeded", record["log"][-1500:]
    # another teacher's image of that name cannot be overwritten by a student (no access at all) nor seen
    assert builder_session(bhub, "student")[1].status_code == 403


def test_concurrent_builds_respect_the_limits(tmp_path, run_prefix):
    images = tmp_path / "images"
    for name in ("slow-a", "slow-b"):
        (images / name).mkdir(parents=True)
        (images / name / "Dockerfile").write_text(f"FROM {TEST_IMAGE}\nRUN sleep 2 && echo {name}-{MARK}-$RANDOM\n")
    sources = load_sources(images, tmp_path / "uploads")
    store = BuildStore(tmp_path / "builds")

    async def scenario():
        runner = BuildRunner(store, namespace=f"{run_prefix}-limits", max_concurrent=1)
        records = [runner.submit(sources["slow-a"], "t"), runner.submit(sources["slow-b"], "t")]
        await asyncio.sleep(0.05)
        records.append(runner.submit(sources["slow-a"], "t"))
        await asyncio.gather(*runner.tasks)
        return records

    records = asyncio.run(scenario())
    done = [store.load(r.image, r.build_id) for r in records]
    assert [r.status for r in done] == ["succeeded"] * 3
    intervals = sorted((r.started, r.finished) for r in done)
    for (_, end), (start, _) in zip(intervals, intervals[1:], strict=False):
        assert start >= end, "with max_concurrent=1, builds never overlap"

    # with room for two builds, two builds of the same image still wait for each other
    async def same_image():
        runner = BuildRunner(store, namespace=f"{run_prefix}-limits", max_concurrent=2)
        records = [runner.submit(sources["slow-a"], "t"), runner.submit(sources["slow-a"], "t")]
        await asyncio.gather(*runner.tasks)
        return records

    first, second = (store.load(r.image, r.build_id) for r in asyncio.run(same_image()))
    assert second.started >= first.finished
    for record in [*done, first, second]:
        subprocess.run(["docker", "rmi", record.tag], capture_output=True)


def test_a_build_step_over_its_memory_limit_fails_at_that_step(tmp_path, run_prefix):
    images = tmp_path / "images"
    (images / "greedy").mkdir(parents=True)
    (images / "greedy" / "Dockerfile").write_text(
        f"FROM {TEST_IMAGE}\nRUN echo {MARK}-$RANDOM\nRUN python3 -c \"x = b'x' * (400 * 2**20)\"\n"
    )
    sources = load_sources(images, tmp_path / "uploads")
    store = BuildStore(tmp_path / "builds")

    async def scenario():
        runner = BuildRunner(store, namespace=f"{run_prefix}-greedy", memory_limit_mb=128)
        record = runner.submit(sources["greedy"], "t")
        await asyncio.gather(*runner.tasks)
        return record

    record = store.load("greedy", asyncio.run(scenario()).build_id)
    assert record.status == "failed"
    assert "x = b'x'" in record.failing_step and "137" in record.error, (record.failing_step, record.error)


def test_a_build_that_never_ends_fails_saying_so_and_frees_its_slot(tmp_path, run_prefix):
    """A teacher's Dockerfile starts a server in RUN instead of CMD: the build stops at the time limit, its
    page says why and at which step, and the next build gets the slot."""
    images = tmp_path / "images"
    (images / "endless").mkdir(parents=True)
    (images / "endless" / "Dockerfile").write_text(f"FROM {TEST_IMAGE}\nRUN echo {MARK}-$RANDOM && sleep 600\n")
    (images / "quick").mkdir(parents=True)
    (images / "quick" / "Dockerfile").write_text(f"FROM {TEST_IMAGE}\nRUN echo {MARK}-$RANDOM\n")
    sources = load_sources(images, tmp_path / "uploads")
    store = BuildStore(tmp_path / "builds")

    async def scenario():
        runner = BuildRunner(store, namespace=f"{run_prefix}-endless", max_concurrent=1, timeout_s=8)
        records = [runner.submit(sources["endless"], "t"), runner.submit(sources["quick"], "t")]
        await asyncio.wait_for(asyncio.gather(*runner.tasks), 120)
        return records

    endless, quick = (store.load(r.image, r.build_id) for r in asyncio.run(scenario()))
    assert endless.status == "failed" and "longer than" in endless.error, endless.error
    assert "sleep 600" in endless.failing_step and endless.duration < 60
    assert quick.status == "succeeded" and quick.started >= endless.finished
    assert not list(store.contexts.iterdir())  # the context copies are gone

    # the engine stops the endless step (its client went away): no build container is left running it
    def endless_step_running() -> bool:
        ids = subprocess.run(["docker", "ps", "-q"], capture_output=True, text=True).stdout.split()
        commands = subprocess.run(
            ["docker", "inspect", "-f", '{{.Path}} {{join .Args " "}}', *ids], capture_output=True, text=True
        ).stdout
        return bool(ids) and f"{MARK}-" in commands and "sleep 600" in commands

    wait_for(lambda: not endless_step_running(), 30, message="the endless step to be stopped")
    subprocess.run(["docker", "rmi", quick.tag], capture_output=True)


@pytest.mark.browser
def test_build_page_shows_the_log_live(bhub, browser, shots):
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    login(page, bhub, "teacher")
    page.goto(f"{bhub.url}/services/builder/")
    page.locator("tr[data-image='course-broken'] .build-button").click()
    page.wait_for_url("**/services/builder/builds/course-broken/**")
    log = page.locator(".build-log")
    expect(log).to_contain_text("Step 1/4", timeout=60_000)
    expect(page.locator(".build-status")).to_have_attribute("data-status", "failed", timeout=120_000)
    expect(page.locator(".failing-step")).to_have_text("Step 3/4 : RUN exit 3")
    expect(page.locator(".build-status")).to_have_text("failed")
    page.screenshot(path=str(shots / "builder-live-log.png"))
    page.locator(".back-to-image").click()  # back to the image's builds
    page.wait_for_url("**/services/builder/images/course-broken")
    context.close()
    # a French teacher reads the build's state in French
    french = browser.new_context(locale="fr-FR", extra_http_headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    page = french.new_page()
    login(page, bhub, "teacher")
    page.goto(f"{bhub.url}/services/builder/images/course-broken")
    expect(page.locator(".build-status").first).to_have_text("échouée")
    french.close()
