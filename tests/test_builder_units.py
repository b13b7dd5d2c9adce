"""The image builder without a hub: upload checks, image permissions, build records, test profiles."""

from __future__ import annotations

import io
import stat
import zipfile

import pytest

from mydocker_hub.builder.archive import UploadRefused, check_zip, extract_zip
from mydocker_hub.builder.records import BuildRecord, BuildStore
from mydocker_hub.builder.sources import load_sources
from mydocker_hub.builder.testserver import profile_slug, write_test_profile
from mydocker_hub.environments.loader import load_file


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
    "symbolic link": (zip_of(("link", "/etc/passwd", stat.S_IFLNK | 0o777)), "symbolic links"),
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
