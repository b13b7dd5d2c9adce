"""The image builder without a hub: upload checks, image permissions, build records, test profiles, build
contexts, and its pages served in-process (the hub's OAuth replaced by a fixed user)."""

from __future__ import annotations

import html
import io
import logging
import os
import stat
import threading
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from mydocker_hub.builder import app as builder_app
from mydocker_hub.builder.archive import UploadRefused, check_zip, extract_zip
from mydocker_hub.builder.records import BuildRecord, BuildStore
from mydocker_hub.builder.runner import LinkLeavesImage, copy_context
from mydocker_hub.builder.sources import load_sources
from mydocker_hub.builder.testserver import profile_slug, write_test_profile
from mydocker_hub.environments.loader import load_file
from mydocker_hub.i18n import Message


def zip_of(*entries) -> bytes:
    """entries: (name, data) or (name, data, unix mode)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in entries:
            name, data, *mode = entry
            info = zipfile.ZipInfo(name)
            if mode:
                info.external_attr = mode[0] << 16
            archive.writestr(info, data)
    return buffer.getvalue()


REFUSED = {
    "parent directory": (zip_of(("../escape.txt", "x")), "outside the build context"),
    "nested parent directory": (zip_of(("src/../../escape.txt", "x")), "outside the build context"),
    "absolute path": (zip_of(("/etc/cron.d/evil", "x")), "absolute paths"),
    "windows drive": (zip_of(("C:/evil", "x")), "absolute paths"),
    "windows parent directory": (zip_of(("..\\escape.txt", "x")), "outside the build context"),
    "symbolic link": (zip_of(("link", "/etc/passwd", stat.S_IFLNK | 0o777)), "symbolic links"),
    "symbolic link to a sibling": (zip_of(("a", "x"), ("b", "a", stat.S_IFLNK | 0o777)), "symbolic links"),
    "device file": (zip_of(("dev", "", stat.S_IFCHR | 0o644)), "only regular files"),
    "not a zip": (b"this is not a zip", "not a zip archive"),
}


@pytest.mark.parametrize("data, fragment", REFUSED.values(), ids=REFUSED)
def test_hostile_archives_are_refused_and_nothing_is_written(tmp_path, data, fragment):
    destination = tmp_path / "uploads" / "evil"
    with pytest.raises(UploadRefused) as refused:
        extract_zip(data, destination)
    assert fragment in str(refused.value)
    assert not destination.exists() and not (tmp_path / "escape.txt").exists()
    uploads = tmp_path / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []  # not even the staging directory is left


def test_zip_bombs_and_entry_floods_are_refused():
    bomb = zip_of(("zeros", b"\0" * (3 * 1024 * 1024)))
    with pytest.raises(UploadRefused, match="expands to more than 2 MB"):
        check_zip(bomb, max_total_bytes=2 * 1024 * 1024)
    flood = zip_of(*[(f"f{i}", "") for i in range(20)])
    with pytest.raises(UploadRefused, match="20 entries"):
        check_zip(flood, max_entries=10)


def test_a_good_archive_replaces_the_previous_context(tmp_path):
    destination = tmp_path / "ctx"
    extract_zip(zip_of(("old.txt", "old")), destination)
    extract_zip(zip_of(("src/app.py", "print(1)"), ("data/", "")), destination)
    assert (destination / "src" / "app.py").read_text() == "print(1)"
    assert not (destination / "old.txt").exists()


def test_an_uploaded_start_script_stays_executable_and_nothing_gets_more_than_it_had(tmp_path):
    """A zip made on a teacher's machine: its executable script stays executable (a Dockerfile that COPYs and
    runs it built fine from git but failed from the upload), other files are plain readable files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, mode in (("start.sh", 0o775), ("notes.txt", 0o666), ("setuid-tool", 0o4755)):
            member = zipfile.ZipInfo(name)
            member.external_attr = (stat.S_IFREG | mode) << 16
            archive.writestr(member, "#!/bin/sh\necho ok\n")
    destination = tmp_path / "ctx"
    extract_zip(buffer.getvalue(), destination)
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in destination.iterdir()}
    assert modes == {"start.sh": 0o755, "notes.txt": 0o644, "setuid-tool": 0o755}


def test_image_permissions(tmp_path):
    images = tmp_path / "images"
    for name, metadata in {
        "course": "owners: [prof]\neditors: [assistant]\nviewers: [colleague]\n",
        "shared": "owners: [prof]\npublic: true\n",
        "starter": None,
    }.items():
        (images / name).mkdir(parents=True)
        (images / name / "Dockerfile").write_text("FROM scratch\n")
        if metadata:
            (images / name / "mydocker-image.yaml").write_text(metadata)
    (images / "Not_An_Image").mkdir()
    sources = load_sources(images, tmp_path / "uploads")
    assert set(sources) == {"course", "shared", "starter"}
    course, shared, starter = sources["course"], sources["shared"], sources["starter"]
    assert course.may_build("prof", False) and course.may_build("assistant", False)
    assert not course.may_build("colleague", False) and course.may_view("colleague", False)
    assert not course.may_view("someone", False) and shared.may_view("someone", False)
    assert not starter.may_build("prof", False) and starter.may_build("root", True)


def test_build_history_and_ids(tmp_path):
    store = BuildStore(tmp_path)
    first = BuildRecord(image="course", build_id=store.next_id("course"), author="prof")
    store.save(first)
    second = BuildRecord(image="course", build_id=store.next_id("course"), author="prof")
    store.save(second)
    assert first.build_id.startswith("1-") and second.build_id.startswith("2-")
    assert [r.build_id for r in store.history("course")] == [second.build_id, first.build_id]
    store.append_log("course", first.build_id, "Step 1/2 : FROM x\n")
    text, offset = store.read_log("course", first.build_id)
    assert text == "Step 1/2 : FROM x\n" and store.read_log("course", first.build_id, offset) == ("", offset)


def test_builds_a_stopped_builder_left_under_way_are_failed_saying_so_at_its_next_start(tmp_path):
    """A restart of the hub during builds: their records said "building" (and their page polled) for ever."""
    store = BuildStore(tmp_path)
    states = ("queued", "building", "pushing", "succeeded", "failed")
    for status in states:
        record = BuildRecord(image="course", build_id=store.next_id("course"), author="prof", status=status)
        record.started = None if status == "queued" else 1.0e9
        store.save(record)
    (store.contexts / "build-x").mkdir(parents=True)  # a context copy the stopped build never removed
    interrupted = store.recover_after_restart()
    assert sorted(r.build_id.split("-")[0] for r in interrupted) == ["1", "2", "3"]
    after = {r.build_id.split("-")[0]: r for r in store.history("course")}
    assert [after[n].status for n in "12345"] == ["failed"] * 3 + ["succeeded", "failed"]
    assert all("build again" in after[n].error and after[n].finished for n in "123")
    assert "build again" in store.read_log("course", after["2"].build_id)[0]
    assert not store.contexts.exists()
    assert store.recover_after_restart() == []  # nothing twice


def test_test_profile_is_a_valid_environment_for_its_author_only(tmp_path):
    record = BuildRecord(
        image="python-course",
        build_id="12-20261123010203",
        author="prof",
        reference="r:5000/b/python-course:12@sha256:" + "a" * 64,
    )
    slug = write_test_profile(tmp_path, record, "prof")
    assert slug == profile_slug(record) and len(slug) <= 30
    environment, errors = load_file(tmp_path / f"{slug}.yaml")
    assert not errors, errors
    assert environment.status == "test" and environment.access.owners == ("prof",)
    assert environment.image == record.reference


# -- build contexts: links -------------------------------------------------------------------------------------
SECRET = "hub-cookie-secret-0123456789abcdef"


@pytest.fixture
def image_dir(tmp_path):
    """An image directory next to a hub data directory holding a secret."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cookie_secret").write_text(SECRET)
    image = tmp_path / "images" / "course"
    (image / "src").mkdir(parents=True)
    (image / "Dockerfile").write_text("FROM scratch\nCOPY . /ctx\n")
    (image / "src" / "app.py").write_text("print(1)\n")
    return image


LEAVING_LINKS = {
    "absolute link to a file": ("secret.txt", "{data}/cookie_secret"),
    "relative link climbing out": ("secret.txt", "../../data/cookie_secret"),
    "link deep in the tree": ("src/secret.txt", "../../../data/cookie_secret"),
    "link to a folder outside": ("hub-data", "{data}"),
    "dangling link outside": ("gone", "/nonexistent/file"),
}


@pytest.mark.parametrize("link, target", LEAVING_LINKS.values(), ids=LEAVING_LINKS)
def test_a_link_leaving_the_image_directory_fails_the_copy_and_says_which(image_dir, tmp_path, link, target):
    (image_dir / link).symlink_to(target.format(data=tmp_path / "data"))
    context = tmp_path / "context"
    with pytest.raises(LinkLeavesImage) as refused:
        copy_context(image_dir, context)
    message = str(refused.value)
    assert message.startswith(f"{link} is a symbolic link leading outside the image directory course/")
    assert "not allowed" in message and "Replace it with a copy of the file" in message
    copied = [p for p in context.rglob("*") if p.is_file() and not p.is_symlink()]
    assert all(SECRET not in p.read_text() for p in copied), "the secret was never read into the context"


def test_links_inside_the_image_directory_are_kept_as_links(image_dir, tmp_path):
    (image_dir / "main.py").symlink_to("src/app.py")
    (image_dir / "src" / "Dockerfile.link").symlink_to("../Dockerfile")
    (image_dir / "code").symlink_to("src")
    context = tmp_path / "context"
    copy_context(image_dir, context)
    assert os.readlink(context / "main.py") == "src/app.py" and (context / "main.py").read_text() == "print(1)\n"
    assert (context / "src" / "Dockerfile.link").is_symlink() and (context / "code").is_symlink()


# -- image metadata: what is wrong is said, secrets are not read ------------------------------------------------
def _images(tmp_path, metadata: dict[str, str | None]) -> Path:
    images = tmp_path / "images"
    for name, text in metadata.items():
        (images / name).mkdir(parents=True)
        (images / name / "Dockerfile").write_text("FROM scratch\n")
        if text is not None:
            (images / name / "mydocker-image.yaml").write_text(text)
    return images


PROBLEMS = {
    "typo in a setting's name": (
        "owner: [prof]\npublic: true\n",
        "Unknown setting 'owner' (a typo?): the settings are owners, editors, viewers, public, base_image.",
    ),
    "not YAML": ("owners: [prof\n", "Not readable as YAML: "),
    "not settings": ("- prof\n", "Expected settings, one 'name: value' per line"),
    "a mapping for names": ("owners: {prof: yes}\n", "owners: expected a username or a list of usernames"),
    "public not a boolean": ("owners: [prof]\npublic: sometimes\n", "public: expected true or false."),
    "base_image not a name": ("owners: [prof]\nbase_image: [a, b]\n", "base_image: expected an image name"),
}


@pytest.mark.parametrize("text, fragment", PROBLEMS.values(), ids=PROBLEMS)
def test_the_problems_of_an_image_file_name_the_file_and_what_is_wrong(tmp_path, text, fragment):
    source = load_sources(_images(tmp_path, {"course": text}), tmp_path / "uploads")["course"]
    [problem] = source.problems
    assert problem.file == "course/mydocker-image.yaml"
    assert str(problem.what).startswith(fragment), str(problem.what)


def test_valid_settings_still_apply_next_to_a_faulty_one(tmp_path):
    images = _images(tmp_path, {"course": "owners: [prof, 12345]\npublc: true\nbase_image: x/y:1\n"})
    source = load_sources(images, tmp_path / "uploads")["course"]
    assert source.owners == ("prof", "12345") and source.base_image == "x/y:1" and not source.public
    assert [str(p) for p in source.problems] == [
        "course/mydocker-image.yaml: Unknown setting 'publc' (a typo?): the settings are owners, editors, viewers, "
        "public, base_image."
    ]


def test_links_leaving_an_image_or_the_images_directory_are_never_read(tmp_path):
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "hub" / "lti_key.pem").write_text(f"-----BEGIN PRIVATE KEY-----\n{SECRET}: [\n")
    images = _images(tmp_path, {"course": None})
    (images / "course" / "mydocker-image.yaml").symlink_to(tmp_path / "hub" / "lti_key.pem")
    (images / "steal").symlink_to(tmp_path / "hub")  # a Dockerfile there: it would be built with the key
    (images / "alias").symlink_to("course")  # inside the images directory: fine
    sources = load_sources(images, tmp_path / "uploads")
    assert set(sources) == {"course", "alias"}
    [problem] = sources["course"].problems
    assert "symbolic link leading outside the image directory" in str(problem) and SECRET not in str(problem)


# -- the pages, served in-process -------------------------------------------------------------------------------
@pytest.fixture
async def service(tmp_path, monkeypatch):
    """The builder's pages on a local port; ``service.user`` is who the hub says is asking."""
    images = _images(
        tmp_path,
        {
            "course": "owners: [prof]\nviewers: [colleague]\n",
            "typo": "owner: [prof]\n",  # the typo leaves it to the admins
            "mine": "owners: [prof]\npublic: sometimes\n",
        },
    )
    builder = builder_app.BuilderApp(images_dir=str(images), data_dir=str(tmp_path / "data"))
    builder.log = logging.getLogger("test-builder")
    builder.store = BuildStore(tmp_path / "data" / "builds")
    user = {"name": "prof", "admin": False}
    monkeypatch.setattr(builder_app._Page, "get_current_user", lambda self: user)
    application = builder.web_app("/services/builder/")
    application.settings["xsrf_cookies"] = False
    [socket] = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(application)
    server.add_sockets([socket])
    yield SimpleNamespace(app=builder, user=user, url=f"http://127.0.0.1:{socket.getsockname()[1]}/services/builder/")
    server.stop()


async def fetch(url: str, method: str = "GET", language: str = "en", **kwargs):
    body = kwargs.pop("body", "" if method == "POST" else None)
    return await AsyncHTTPClient().fetch(
        url,
        method=method,
        body=body,
        headers={"Accept-Language": language, **kwargs.pop("headers", {})},
        raise_error=False,
        follow_redirects=False,
        **kwargs,
    )


def multipart(fields: dict[str, str], context: bytes) -> tuple[bytes, dict[str, str]]:
    boundary = "test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="context"; filename="ctx.zip"\r\n'
        "Content-Type: application/zip\r\n\r\n".encode()
        + context
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


ERRORS = {
    "viewer builds": (
        "colleague",
        "POST",
        "images/course/build",
        403,
        Message(
            "Only the owners and editors of %(name)r (and admins) can build it: ask an owner to add you "
            "to its editors.",
            name="course",
        ),
    ),
    "unknown image": ("prof", "GET", "images/nothing", 404, Message("No image %(name)r you may see.", name="nothing")),
    "unknown build": (
        "prof",
        "GET",
        "builds/course/7-20260101000000",
        404,
        Message("No build %(build)s of %(image)s.", build="7-20260101000000", image="course"),
    ),
    "unknown page": ("prof", "GET", "nowhere", 404, Message("Page not found")),
    "bad upload name": ("prof", "POST", "upload?name=Bad_Name", 400, None),
}


@pytest.mark.parametrize("who, method, path, code, said", ERRORS.values(), ids=ERRORS)
async def test_every_page_says_why_it_refuses_in_the_readers_language(service, who, method, path, code, said):
    service.user["name"] = who
    if path.startswith("upload"):
        body, headers = multipart({"name": "Bad_Name", "dockerfile": "FROM scratch"}, b"")
        response = await fetch(service.url + "upload", "POST", "fr-FR,fr;q=0.9", body=body, headers=headers)
        said = Message("Image name: 1 to 40 lowercase letters, digits or dashes, like 'python-course'.")
    else:
        response = await fetch(service.url + path, method, "fr-FR,fr;q=0.9")
    page = response.body.decode()
    assert response.code == code
    assert f"<h1 class='h3'>Erreur {code}</h1>" in page
    assert f"<p class='alert alert-danger page-error'>{html.escape(said.in_language('fr'))}</p>" in page


async def test_an_unexpected_failure_shows_no_traceback(service, monkeypatch):
    def broken(image):
        raise RuntimeError("internal detail /srv/secret")

    monkeypatch.setattr(service.app.store, "history", broken)
    response = await fetch(service.url, language="fr")
    page = response.body.decode()
    assert response.code == 500 and "Une erreur s&#x27;est produite" in page
    assert "internal detail" not in page and "Traceback" not in page


async def test_file_work_runs_off_the_event_loop(service, monkeypatch):
    loop_thread, calls = threading.get_ident(), []

    def watched(name, function):
        def call(*args, **kwargs):
            calls.append((name, threading.get_ident() == loop_thread))
            return function(*args, **kwargs)

        return call

    store = service.app.store
    record = BuildRecord(image="course", build_id="1-20260101000000", author="prof", status="succeeded")
    store.save(record)
    store.append_log("course", record.build_id, "Step 1/1 : FROM scratch\n")
    monkeypatch.setattr(builder_app, "load_sources", watched("load_sources", builder_app.load_sources))
    monkeypatch.setattr(builder_app, "extract_zip", watched("extract_zip", builder_app.extract_zip))
    monkeypatch.setattr(store, "history", watched("history", store.history))
    monkeypatch.setattr(store, "read_log", watched("read_log", store.read_log))
    for path in ("", "images/course", f"api/builds/course/{record.build_id}"):
        assert (await fetch(service.url + path)).code == 200, path
    body, headers = multipart({"name": "uploaded", "dockerfile": "FROM scratch"}, zip_of(("app/main.py", "1")))
    assert (await fetch(service.url + "upload", "POST", body=body, headers=headers)).code == 302
    assert {name for name, _ in calls} == {"load_sources", "extract_zip", "history", "read_log"}
    assert [name for name, on_loop in calls if on_loop] == [], "these read or write files: never on the event loop"


async def test_the_problems_of_image_files_are_shown_to_who_sees_the_image_and_logged_once(service, caplog):
    caplog.set_level(logging.WARNING, "test-builder")
    prof_page = (await fetch(service.url)).body.decode()
    assert "<code>mine/mydocker-image.yaml</code>: public: expected true or false." in prof_page
    assert "typo/" not in prof_page, "prof does not see the image whose owners the typo emptied"
    service.user.update(name="root", admin=True)
    admin_page = (await fetch(service.url, language="fr")).body.decode()
    assert (
        "<code>typo/mydocker-image.yaml</code>: "
        + html.escape(
            Message(
                "Unknown setting %(key)r (a typo?): the settings are owners, editors, viewers, public, base_image.",
                key="owner",
            ).in_language("fr")
        )
        in admin_page
    )
    assert html.escape(Message("Problems in the images' files").in_language("fr")) in admin_page
    history = (await fetch(service.url + "images/mine")).body.decode()
    assert "public: expected true or false." in history
    logged = [r.getMessage() for r in caplog.records if r.name == "test-builder"]
    assert sorted(logged) == [
        "Image mine: mine/mydocker-image.yaml: public: expected true or false.",
        "Image typo: typo/mydocker-image.yaml: Unknown setting 'owner' (a typo?): the settings are owners, "
        "editors, viewers, public, base_image.",
    ]


def test_builds_go_to_another_engine_only_over_ssh_and_with_a_registry(tmp_path, monkeypatch):
    from traitlets import TraitError

    with pytest.raises(TraitError, match="give an ssh:// address"):
        builder_app.BuilderApp(build_engine_url="tcp://build.example.fr:2375")
    app = builder_app.BuilderApp(build_engine_url="ssh://builder@build.example.fr", data_dir=str(tmp_path))
    with pytest.raises(SystemExit) as exited:  # built elsewhere, an image reaches the nodes only by a registry
        app.start()
    assert exited.value.code == 1


def test_the_hub_hands_the_build_settings_to_the_builder_service(monkeypatch, tmp_path):
    from traitlets.config import Config

    from mydocker_hub import config as mydocker_config

    monkeypatch.setenv("MYDOCKER_BUILD_ENGINE_URL", "ssh://builder@build.example.fr")
    monkeypatch.setenv("MYDOCKER_BUILD_MEMORY_MB", "2048")
    c = Config()
    mydocker_config.apply(c, base_dir=tmp_path, data_dir=tmp_path / "data")
    (builder,) = [service for service in c.JupyterHub.services if service["name"] == "builder"]
    assert builder["environment"]["MYDOCKER_BUILD_ENGINE_URL"] == "ssh://builder@build.example.fr"
    assert builder["environment"]["MYDOCKER_BUILD_MEMORY_MB"] == "2048"
