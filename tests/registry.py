"""A real image registry on loopback (Debian's ``docker-registry``), started by the tests that need one.

Docker treats registries on 127.0.0.0/8 as insecure by default: plain HTTP works without daemon changes.
Its request log tells which blobs (layers) were downloaded, hence whether a node really pulled.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path

import docker
import requests

from .hubprocess import free_port, wait_for

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


class Registry:
    def __init__(self, workdir: Path):
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log_path = workdir / "registry.log"
        config = workdir / "registry.yml"
        config.write_text(
            f"""version: 0.1
log: {{level: info, accesslog: {{disabled: false}}}}
storage:
  filesystem: {{rootdirectory: {workdir / "storage"}}}
  delete: {{enabled: true}}
http:
  addr: 127.0.0.1:{self.port}
"""
        )
        self.log_file = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [REGISTRY, "serve", str(config)], stdout=self.log_file, stderr=subprocess.STDOUT
        )

        def answers():
            try:
                return requests.get(f"http://{self.host}/v2/", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(answers, 30, message="the registry")

    def log_size(self) -> int:
        self.log_file.flush()
        return self.log_path.stat().st_size

    def blob_downloads(self, repository: str, since: int = 0) -> list[str]:
        """Blob (layer) downloads of ``repository`` logged after byte offset ``since``."""
        with open(self.log_path) as f:
            f.seek(since)
            return [line for line in f if f"GET /v2/{repository}/blobs/" in line and '" 200 ' in line]

    def stop(self):
        self.process.terminate()
        self.process.wait(10)
        self.log_file.close()
        self.forget_pulled_images()

    def forget_pulled_images(self):
        """Remove the engine's references to this registry's images (built, pushed, pulled by the tests), which
        would otherwise pile up run after run; layers shared with other images stay. Forced: a server that ran
        the image may have left its stopped container behind for a few more seconds (Swarm removes it later)."""
        client = docker.APIClient(version="auto")
        for image in client.images():
            for reference in (image.get("RepoTags") or []) + (image.get("RepoDigests") or []):
                if reference.startswith(self.host + "/"):
                    with contextlib.suppress(docker.errors.APIError):
                        client.remove_image(reference, force=True)
