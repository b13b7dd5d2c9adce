"""Uploaded build contexts (zip files), checked before anything is written.

Refused, with the entry and the reason: archives over the size limit, too many entries, an uncompressed
total over the limit (zip bombs), absolute paths, ``..`` escaping the context, symbolic links, devices
and other special files. Checks happen on the archive's directory first; extraction then goes to a
temporary directory that replaces the destination only when everything went well.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath


class UploadRefused(ValueError):
    """An upload that is not accepted; the message says why and what to do."""


def check_zip(data: bytes, *, max_entries: int = 10_000, max_total_bytes: int = 500 * 1024**2) -> list[zipfile.ZipInfo]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise UploadRefused("the context is not a zip archive: upload a .zip of the build directory") from None
    members = archive.infolist()
    if len(members) > max_entries:
        raise UploadRefused(f"the archive has {len(members)} entries, more than the {max_entries} allowed")
    total = 0
    for member in members:
        name = member.filename
        path = PurePosixPath(name.replace("\\", "/"))
        if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            raise UploadRefused(f"{name!r}: absolute paths are not allowed; zip the directory's contents")
        if ".." in path.parts:
            raise UploadRefused(f"{name!r}: '..' would write outside the build context")
        mode = member.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UploadRefused(f"{name!r}: symbolic links are not allowed; put the file itself in the archive")
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: no type recorded (Windows tools)
            raise UploadRefused(f"{name!r}: only regular files and directories are allowed")
        total += member.file_size
        if total > max_total_bytes:
            raise UploadRefused(f"the archive expands to more than {max_total_bytes // 1024**2} MB")
    return members


def extract_zip(data: bytes, destination: Path, **limits) -> None:
    """Check, then extract ``data`` into ``destination`` (replaced as a whole, or left untouched)."""
    members = check_zip(data, **limits)
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".upload-", dir=destination.parent))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in members:
                target = (staging / member.filename).resolve()
                if staging.resolve() not in target.parents and target != staging.resolve():
                    raise UploadRefused(f"{member.filename!r}: would write outside the build context")
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink)
                # readable by all; executable if it was (a start script the Dockerfile COPYs and runs), nothing more
                executable = (member.external_attr >> 16) & 0o111
                os.chmod(target, 0o755 if executable else 0o644)
        if destination.exists():
            shutil.rmtree(destination)
        os.replace(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
