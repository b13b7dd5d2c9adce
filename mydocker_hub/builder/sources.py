"""Images that can be built: directories of the teachers' git repository, and uploads.

``<images_dir>/<name>/`` holds a ``Dockerfile``, an optional wrapper script and its context, and an
optional ``mydocker-image.yaml``: ``owners``, ``editors``, ``viewers`` (usernames), ``public`` (usable by
everyone), ``base_image`` (passed as the ``BASE_IMAGE`` build argument). Uploads live in the builder's data
directory with the same layout; their uploader is their owner.

What is wrong in a ``mydocker-image.yaml`` (not YAML, an unknown setting, a value of the wrong type) is kept
as the image's :class:`Problem` list, for the images page; the faulty settings are ignored. A symbolic link
leading out of the images directory (an image directory) or out of its image directory (the metadata file)
is never read: it could point at the hub's secrets.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..i18n import Message

IMAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
METADATA = "mydocker-image.yaml"
SETTINGS = ("owners", "editors", "viewers", "public", "base_image")
NAME_LISTS = ("owners", "editors", "viewers")


@dataclass(frozen=True)
class Problem:
    """Something wrong in an image's files: ``file`` relative to its images directory, ``what`` for its readers."""

    file: str
    what: Message

    def __str__(self) -> str:  # English, for the log
        return f"{self.file}: {self.what}"


@dataclass(frozen=True)
class ImageSource:
    name: str
    directory: Path
    origin: str  # "git" or "upload"
    owners: tuple[str, ...] = ()
    editors: tuple[str, ...] = ()
    viewers: tuple[str, ...] = ()
    public: bool = False
    base_image: str = ""
    problems: tuple[Problem, ...] = ()

    def may_build(self, username: str, is_admin: bool) -> bool:
        return is_admin or username in self.owners or username in self.editors

    def may_view(self, username: str, is_admin: bool) -> bool:
        return self.public or self.may_build(username, is_admin) or username in self.viewers


def leads_inside(path: Path, directory: Path) -> bool:
    """Whether ``path``, its symbolic links followed, is ``directory`` or inside it."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(directory))


def _is_name(value) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)  # YAML reads 12345 as a number


def _is_names(value) -> bool:
    return value is None or _is_name(value) or (isinstance(value, list) and all(map(_is_name, value)))


def _names(value) -> tuple[str, ...]:
    """A validated username or list of usernames, as a tuple of strings."""
    if value is None:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)


def read_metadata(directory: Path) -> tuple[dict, list[Message]]:
    """The valid settings of ``directory``'s metadata file, and what is wrong in it."""
    path = directory / METADATA
    if not path.is_symlink() and not path.is_file():
        return {}, []
    if not leads_inside(path, directory):
        return {}, [
            Message(
                "This file is a symbolic link leading outside the image directory, which is not allowed: "
                "put the file itself in the image directory."
            )
        ]
    try:
        metadata = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        detail = error.strerror if isinstance(error, OSError) else str(error)  # never the server's paths
        return {}, [Message("Not readable as YAML: %(error)s", error=detail)]
    if metadata is None:
        return {}, []
    if not isinstance(metadata, dict):
        return {}, [
            Message("Expected settings, one 'name: value' per line: owners, editors, viewers, public, base_image.")
        ]
    problems = [
        Message(
            "Unknown setting %(key)r (a typo?): the settings are owners, editors, viewers, public, base_image.",
            key=str(key),
        )
        for key in metadata
        if key not in SETTINGS
    ]
    valid = {key: value for key, value in metadata.items() if key in SETTINGS}
    for key in NAME_LISTS:
        if not _is_names(valid.get(key)):
            problems.append(
                Message(
                    "%(key)s: expected a username or a list of usernames, like [jdupont@universite.example].", key=key
                )
            )
            del valid[key]
    if not isinstance(valid.get("public", False), bool):
        problems.append(Message("public: expected true or false."))
        del valid["public"]
    if not isinstance(valid.get("base_image", ""), str):
        problems.append(Message("base_image: expected an image name, like mydocker/minimal:latest."))
        del valid["base_image"]
    return valid, problems


def read_source(directory: Path, origin: str) -> ImageSource | None:
    name = directory.name
    if not IMAGE_NAME.match(name) or not (directory / "Dockerfile").is_file():
        return None
    metadata, problems = read_metadata(directory)
    return ImageSource(
        name=name,
        directory=directory,
        origin=origin,
        owners=_names(metadata.get("owners")),
        editors=_names(metadata.get("editors")),
        viewers=_names(metadata.get("viewers")),
        public=metadata.get("public", False),
        base_image=metadata.get("base_image") or "",
        problems=tuple(Problem(f"{name}/{METADATA}", what) for what in problems),
    )


def load_sources(images_dir: Path | None, uploads_dir: Path) -> dict[str, ImageSource]:
    """Every buildable image by name; an upload never hides a git image of the same name.

    Reads every image's files: call it off the event loop. An image directory that is a link leading out of
    its images directory is left out (its build would copy whatever it points at).
    """
    sources: dict[str, ImageSource] = {}
    for root, origin in ((uploads_dir, "upload"), (images_dir, "git")):
        if root is None or not Path(root).is_dir():
            continue
        for directory in sorted(Path(root).iterdir()):
            if directory.is_dir() and leads_inside(directory, root):
                source = read_source(directory, origin)
                if source is not None:
                    sources[source.name] = source
    return sources


def write_upload_metadata(directory: Path, owner: str, public: bool) -> None:
    (directory / METADATA).write_text(yaml.safe_dump({"owners": [owner], "public": public}))
