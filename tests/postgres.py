"""A real PostgreSQL server on loopback (Debian's postgresql), for the hub's database in production setups.

The cluster is created in a temporary directory owned by the ``postgres`` system user (PostgreSQL refuses
to run as root), with trust authentication on loopback only.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .hubprocess import free_port, wait_for


def _bin(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise RuntimeError("PostgreSQL is not installed: run scripts/ensure-system.sh --test")
    return candidates[-1]


class PostgresServer:
    def __init__(self):
        self.port = free_port()
        # not under pytest's tmp directory: it is private to root, and the server runs as "postgres"
        self.workdir = Path(tempfile.mkdtemp(prefix="mydocker-pg-"))
        os.chmod(self.workdir, 0o755)
        self.data = self.workdir / "pgdata"
        self.data.mkdir()
        shutil.chown(self.data, "postgres", "postgres")
        self.log = self.workdir / "postgres.log"
        self.log.touch()
        shutil.chown(self.log, "postgres", "postgres")
        self._as_postgres(_bin("initdb"), "-D", str(self.data), "--auth=trust", "-U", "postgres", "-E", "UTF8")
        self._as_postgres(
            _bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}",
            "start",
        )
        wait_for(lambda: self.psql("SELECT 1", database="postgres").strip() == "1", 30, message="PostgreSQL")
        self.psql("CREATE DATABASE mydocker", database="postgres")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/mydocker"

    def _as_postgres(self, *command: str) -> str:
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *command], check=True, capture_output=True, text=True
        ).stdout

    def psql(self, sql: str, database: str = "mydocker") -> str:
        result = subprocess.run(
            [_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-tAc", sql],
            capture_output=True,
            text=True,
        )
        return result.stdout if result.returncode == 0 else ""

    def stop(self) -> None:
        self._as_postgres(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        shutil.rmtree(self.workdir, ignore_errors=True)
