"""Build history: one JSON record and one log file per build, kept after the build."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class BuildRecord:
    image: str
    build_id: str  # "<n>-<UTC time>": sorts, and makes an immutable tag
    author: str
    status: str = "queued"  # queued, building, pushing, succeeded, failed
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    tag: str = ""  # registry/namespace/image:build_id
    digest: str = ""  # sha256:… once pushed
    reference: str = ""  # what an environment file pins: tag@digest (or the local tag when nothing is pushed)
    failing_step: str = ""
    error: str = ""
    interface: str = ""  # the image's org.mydocker.interface label

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return (self.finished or time.time()) - self.started

    def to_json(self) -> dict:
        return {**asdict(self), "duration": self.duration}


class BuildStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def contexts(self) -> Path:
        """Where running builds copy their build context (emptied when the builder starts)."""
        return self.root / ".contexts"

    def recover_after_restart(self) -> list[BuildRecord]:
        """The builds a stopped builder left queued, building or pushing (a restart, a crash): failed, saying
        so, instead of "building" for ever; their context copies removed. Returns them."""
        shutil.rmtree(self.contexts, ignore_errors=True)
        images = (
            [d.name for d in self.root.iterdir() if d.is_dir() and not d.name.startswith(".")]
            if self.root.is_dir()
            else []
        )
        interrupted = []
        for image in images:
            for record in self.history(image):
                if record.status not in ("queued", "building", "pushing"):
                    continue
                record.status, record.error = (
                    "failed",
                    "The builder stopped during this build (a restart?): build again.",
                )
                record.finished = time.time()
                self.save(record)
                self.append_log(record.image, record.build_id, f"\nBUILD FAILED: {record.error}\n")
                interrupted.append(record)
        return interrupted

    def directory(self, image: str, build_id: str) -> Path:
        return self.root / image / build_id

    def next_id(self, image: str) -> str:
        existing = self.history(image)
        number = max((int(r.build_id.split("-", 1)[0]) for r in existing), default=0) + 1
        return f"{number}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"

    def save(self, record: BuildRecord) -> None:
        directory = self.directory(record.image, record.build_id)
        directory.mkdir(parents=True, exist_ok=True)
        temporary = directory / "record.json.tmp"
        temporary.write_text(json.dumps(asdict(record), indent=1))
        os.replace(temporary, directory / "record.json")

    def load(self, image: str, build_id: str) -> BuildRecord | None:
        path = self.directory(image, build_id) / "record.json"
        try:
            return BuildRecord(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def history(self, image: str) -> list[BuildRecord]:
        directory = self.root / image
        if not directory.is_dir():
            return []
        records = [self.load(image, d.name) for d in directory.iterdir() if d.is_dir()]
        return sorted((r for r in records if r), key=lambda r: int(r.build_id.split("-", 1)[0]), reverse=True)

    def log_path(self, image: str, build_id: str) -> Path:
        return self.directory(image, build_id) / "build.log"

    def append_log(self, image: str, build_id: str, text: str) -> None:
        with open(self.log_path(image, build_id), "a", encoding="utf-8") as log:
            log.write(text)

    def read_log(self, image: str, build_id: str, offset: int = 0) -> tuple[str, int]:
        path = self.log_path(image, build_id)
        try:
            with open(path, "rb") as log:
                log.seek(offset)
                data = log.read()
        except OSError:
            return "", offset
        return data.decode("utf-8", errors="replace"), offset + len(data)
