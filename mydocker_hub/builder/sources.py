"""Images that can be built: directories of the teachers' git repository, and uploads.

``<images_dir>/<name>/`` holds a ``Dockerfile``, an optional wrapper script and its context, and an
optional ``mydocker-image.yaml``: ``owners``, ``editors``, ``viewers`` (usernames), ``public`` (usable by
everyone), ``base_image`` (passed as the ``BASE_IMAGE`` build argument). Uploads live in the builder's data
directory with the same layout; their uploader is their owner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

IMAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
METADATA = "mydocker-image.yaml"


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
    problems: tuple[str, ...] = field(default=())

    def may_build(self, username: str, is_admin: bool) -> bool:
        return is_admin or username in self.owners or username in self.editors

    def may_view(self, username: str, is_admin: bool) -> bool:
        return self.public or self.may_build(username, is_admin) or username in self.viewers


def _names(value) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value or ())


def read_source(directory: Path, origin: str) -> ImageSource | None:
    name = directory.name
    if not IMAGE_NAME.match(name) or not (directory / "Dockerfile").is_file():
        return None
    metadata, problems = {}, []
    path = directory / METADATA
    if path.is_file():
        try:
            metadata = yaml.safe_load(path.read_text()) or {}
            if not isinstance(metadata, dict):
                raise ValueError("expected a mapping")
        except (yaml.YAMLError, ValueError) as error:
            problems.append(f"{path}: {error}; expected owners, editors, viewers, public, base_image")
            metadata = {}
    return ImageSource(
        name=name,
        directory=directory,
        origin=origin,
        owners=_names(metadata.get("owners")),
        editors=_names(metadata.get("editors")),
        viewers=_names(metadata.get("viewers")),
        public=bool(metadata.get("public", False)),
        base_image=str(metadata.get("base_image") or ""),
        problems=tuple(problems),
    )


def load_sources(images_dir: Path | None, uploads_dir: Path) -> dict[str, ImageSource]:
    """Every buildable image by name; an upload never hides a git image of the same name."""
    sources: dict[str, ImageSource] = {}
    for root, origin in ((uploads_dir, "upload"), (images_dir, "git")):
        if root is None or not Path(root).is_dir():
            continue
        for directory in sorted(Path(root).iterdir()):
            if directory.is_dir():
                source = read_source(directory, origin)
                if source is not None:
                    sources[source.name] = source
    return sources


def write_upload_metadata(directory: Path, owner: str, public: bool) -> None:
    (directory / METADATA).write_text(yaml.safe_dump({"owners": [owner], "public": public}))
