"""Runs builds on the Docker engine: a limit across the service, one build at a time per image.

The image directory is copied, its symbolic links as links, to a temporary directory; a link leading outside
the image directory fails the build (it could bring the hub's secrets into the build and its log). The copy
gets ``build-ca.crt`` (the CA bundle for downloads during the build, empty when none; images/README.md), the
build runs off the event loop and streams its log into the build's log file line by line (the page shows it
live), the last ``Step N/M`` seen is the failing step when it fails. A successful build is tagged
``<registry>/<namespace>/<image>:<build id>`` and pushed; the pushed digest makes the pinned reference
environment files use.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import docker
import requests
import urllib3

from .records import BuildRecord, BuildStore
from .sources import ImageSource, leads_inside

STEP = re.compile(r"^Step \d+/\d+ : .*")


class LinkLeavesImage(RuntimeError):
    """A symbolic link of an image directory that leads outside it; the message names it and says what to do."""


def copy_context(directory: Path, context: Path) -> None:
    """Copy the image ``directory`` into ``context``, links as links (their targets are never read).

    Raises :class:`LinkLeavesImage` for a link of the copy that leads outside it (absolute, or through
    ``..``): ``RUN cat`` would print what it points at, such as the hub's cookie secret, into the build log.
    """
    shutil.copytree(directory, context, dirs_exist_ok=True, symlinks=True)
    for folder, subfolders, files in os.walk(context):  # links to folders are listed, not entered
        for name in sorted(subfolders + files):
            path = Path(folder, name)
            if path.is_symlink() and not leads_inside(path, context):
                raise LinkLeavesImage(
                    f"{path.relative_to(context)} is a symbolic link leading outside the image directory "
                    f"{directory.name}/: links that leave the image directory are not allowed. Replace it with "
                    "a copy of the file it points to, or with a link to a file inside the image directory."
                )


class BuildRunner:
    def __init__(
        self,
        store: BuildStore,
        *,
        registry: str = "",
        namespace: str = "mydocker-builds",
        max_concurrent: int = 2,
        ca_bundle: str = "",
        base_image: str = "",
        engine_url: str = "",
        memory_limit_mb: int = 0,
        timeout_s: float = 3600.0,
        log: logging.Logger | None = None,
    ):
        self.store = store
        self.engine_url = engine_url  # empty: the local engine
        self.memory_limit_mb = memory_limit_mb  # of each RUN step, swap included; 0: none
        self.timeout_s = timeout_s  # of a whole build (and of a step that prints nothing); 0: none
        self.registry = registry.rstrip("/")
        self.namespace = namespace
        self.ca_bundle = ca_bundle
        self.base_image = base_image
        self.log = log or logging.getLogger(__name__)
        self.max_concurrent = max_concurrent
        self._slots = asyncio.Semaphore(max_concurrent)
        self._image_locks: dict[str, asyncio.Lock] = {}
        self.tasks: set[asyncio.Task] = set()

    def repository(self, image: str) -> str:
        return f"{self.registry}/{self.namespace}/{image}" if self.registry else f"{self.namespace}/{image}"

    def submit(self, source: ImageSource, author: str) -> BuildRecord:
        """Queue a build of ``source``; returns its record at once (status ``queued``)."""
        record = BuildRecord(image=source.name, build_id=self.store.next_id(source.name), author=author)
        record.tag = f"{self.repository(source.name)}:{record.build_id}"
        self.store.save(record)
        self.store.append_log(record.image, record.build_id, f"Queued by {author}\n")
        task = asyncio.get_running_loop().create_task(self._run(source, record))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return record

    async def _run(self, source: ImageSource, record: BuildRecord) -> None:
        lock = self._image_locks.setdefault(source.name, asyncio.Lock())
        async with lock, self._slots:
            record.status, record.started = "building", time.time()
            self.store.save(record)
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(None, self._build_and_push, source, record, loop)
                record.status = "succeeded"
            except Exception as error:  # the build's own failure, reported on its page
                record.status = "failed"
                record.error = str(error)[:2000]
                self.store.append_log(record.image, record.build_id, f"\nBUILD FAILED: {record.error}\n")
            finally:
                record.finished = time.time()
                self.store.save(record)
                self.log.info("Build %s/%s %s in %.0fs", record.image, record.build_id, record.status, record.duration)

    # -- in a worker thread ---------------------------------------------------------------------------------
    def _build_and_push(self, source: ImageSource, record: BuildRecord, loop) -> None:
        if self.engine_url:  # ssh://: through the ssh client, its configuration and keys
            client = docker.APIClient(base_url=self.engine_url, version="auto", use_ssh_client=True)
        else:
            client = docker.APIClient(version="auto")
        self.store.contexts.mkdir(parents=True, exist_ok=True)
        context = Path(tempfile.mkdtemp(prefix="build-", dir=self.store.contexts))
        deadline = time.monotonic() + self.timeout_s if self.timeout_s > 0 else None
        step = ""  # the Dockerfile step being run, for the build's page
        try:
            try:
                copy_context(source.directory, context)
            except LinkLeavesImage:
                record.failing_step = "build context"
                raise
            ca = context / "build-ca.crt"
            if not ca.exists():
                ca.write_bytes(Path(self.ca_bundle).read_bytes() if self.ca_bundle else b"")
            buildargs = {}
            base = source.base_image or self.base_image
            if base and "ARG BASE_IMAGE" in (context / "Dockerfile").read_text(errors="replace"):
                buildargs["BASE_IMAGE"] = base
            memory = self.memory_limit_mb * 2**20
            limits = {"memory": memory, "memswap": memory} if memory > 0 else None  # memswap: no swap on top
            for chunk in client.build(
                path=str(context),
                tag=record.tag,
                buildargs=buildargs,
                rm=True,
                forcerm=True,
                decode=True,
                container_limits=limits,
                timeout=self.timeout_s or None,  # a step silent for that long (a server started by RUN) ends too
            ):
                if deadline is not None and time.monotonic() > deadline:
                    record.failing_step = step
                    raise RuntimeError(self._too_long())
                if "stream" in chunk:
                    text = chunk["stream"]
                    for line in text.splitlines():
                        if STEP.match(line.strip()):
                            step = line.strip()
                    self.store.append_log(record.image, record.build_id, text)
                if "error" in chunk:
                    record.failing_step = step
                    raise RuntimeError(chunk["error"].strip())
            inspect = client.inspect_image(record.tag)
            record.interface = ((inspect.get("Config") or {}).get("Labels") or {}).get("org.mydocker.interface", "")
            if not self.registry:
                record.reference = record.tag
                self.store.append_log(record.image, record.build_id, "No registry configured: kept on this node.\n")
                return
            record.status = "pushing"
            self.store.save(record)
            repository, tag = record.tag.rsplit(":", 1)
            for chunk in client.push(repository, tag=tag, stream=True, decode=True):
                if "error" in chunk:
                    record.failing_step = "push"
                    raise RuntimeError(f"push to {self.registry} failed: {chunk['error']}")
                digest = (chunk.get("aux") or {}).get("Digest")
                if digest:
                    record.digest = digest
                if chunk.get("status") and not chunk.get("progressDetail"):
                    self.store.append_log(record.image, record.build_id, f"{chunk.get('status')}\n")
            if not record.digest:
                raise RuntimeError("the registry returned no digest")
            record.reference = f"{record.tag}@{record.digest}"
            self.store.append_log(record.image, record.build_id, f"Pushed {record.reference}\n")
        except Exception as error:
            if record.status == "pushing" or not _engine_silent_too_long(error):
                raise  # a push that times out says so itself
            record.failing_step = record.failing_step or step
            raise RuntimeError(self._too_long()) from None
        finally:
            client.close()  # the engine stops a build whose client went away
            shutil.rmtree(context, ignore_errors=True)

    def _too_long(self) -> str:
        return (
            f"the build ran longer than {self.timeout_s / 60:g} minutes (BuilderApp.build_timeout_minutes): a step "
            "that never ends (a server started by RUN instead of CMD?) or a download that stalls"
        )


def _engine_silent_too_long(error: Exception) -> bool:
    """Whether reading the build's output timed out (the engine sent nothing for ``timeout_s``)."""
    if isinstance(error, requests.exceptions.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
        return True
    return isinstance(error, requests.exceptions.ConnectionError) and "timed out" in str(error)
