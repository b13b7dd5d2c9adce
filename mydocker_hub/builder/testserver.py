""" "Test this build": a generated environment profile, visible only to its author, for one build."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import yaml

from .records import BuildRecord

INTERFACES = {"jupyterlab", "vscode", "desktop"}


def profile_slug(record: BuildRecord) -> str:
    number = record.build_id.split("-", 1)[0]
    stem = re.sub(r"[^a-z0-9-]", "-", record.image)[:14].strip("-") or "image"
    suffix = hashlib.sha256(f"{record.image}/{record.build_id}".encode()).hexdigest()[:4]
    return f"t-{stem}-{number}-{suffix}"[:30]


def write_test_profile(directory: Path, record: BuildRecord, username: str) -> str:
    """Write the profile (status ``test``, owner ``username``, the build's pinned image); its slug."""
    slug = profile_slug(record)
    profile = {
        "slug": slug,
        "title": f"Test: {record.image} build {record.build_id}",
        "description": f"Temporary server of build {record.build_id} of image {record.image}.",
        "image": record.reference,
        "interface": record.interface if record.interface in INTERFACES else "jupyterlab",
        "status": "test",
        "home": {"type": "none"},
        "access": {"owners": [username]},
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{slug}.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return slug
