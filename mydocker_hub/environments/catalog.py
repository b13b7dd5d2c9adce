"""The hub's live view of the environments directory: hot reload, last-good versions, visibility rules."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from .loader import ProfileError, load_file, merge_profiles, profile_files
from .model import Environment


class EnvironmentCatalog:
    """Valid environments of one directory, re-read when a file changes.

    A file that becomes invalid keeps serving its last valid version (a teacher's typo never takes a course
    down); its errors are reported with a note saying so. A deleted file disappears.
    """

    def __init__(self, directory, log: logging.Logger | None = None, extra_directories=()):
        self.directory = Path(directory)
        # generated profiles (e.g. the image builder's "test this build" servers) live outside teachers' git
        self.directories = [self.directory, *(Path(d) for d in extra_directories)]
        self.log = log or logging.getLogger(__name__)
        self.environments: dict[str, Environment] = {}
        self.errors: list[ProfileError] = []
        self._signature: tuple | None = None  # None: never read
        self._by_file: dict[str, Environment] = {}  # last valid version of each file
        self._lock = threading.Lock()

    def _current_signature(self) -> tuple:
        entries = []
        for path in self._files():
            try:
                stat = path.stat()
            except OSError:
                continue
            entries.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(entries)

    def _files(self) -> list[Path]:
        return [path for directory in self.directories for path in profile_files(directory)]

    def reload_if_changed(self) -> bool:
        """Re-read the directory if a file was added, changed or removed; True if it did."""
        with self._lock:
            signature = self._current_signature()
            if signature == self._signature:
                return False
            self._reload()
            self._signature = signature
            return True

    def _reload(self) -> None:
        loaded = []
        for path in self._files():
            name = str(path)
            environment, file_errors = load_file(path)
            if file_errors and name in self._by_file:
                # a broken edit: keep serving the last valid version of this file, and say so
                environment = self._by_file[name]
                note = " (still serving the previous version of this file)"
                file_errors = [ProfileError(e.file, e.line, e.field, e.message + note) for e in file_errors]
            loaded.append((name, environment, file_errors))
        environments, errors = merge_profiles(loaded)
        by_file = {environment.source_file: environment for environment in environments.values()}
        for error in errors:
            if error not in self.errors:
                self.log.warning("Environment file error: %s", error)
        self.environments, self.errors, self._by_file = environments, errors, by_file
        self.log.info("Loaded %d environments from %s (%d errors)", len(environments), self.directory, len(errors))

    def get(self, slug: str) -> Environment | None:
        if self._signature is None:
            self.reload_if_changed()
        return self.environments.get(slug)

    # -- visibility ----------------------------------------------------------------------------------
    @staticmethod
    def may_start(env: Environment, username: str, groups: set[str], is_admin: bool) -> bool:
        if is_admin:
            return True
        if env.status == "archived":
            return False
        if username in env.access.owners or username in env.access.editors or username in env.access.viewers:
            return True
        if env.status != "ready":
            return False
        return not env.access.groups or bool(set(env.access.groups) & set(groups))

    def visible_to(self, username: str, groups: set[str], is_admin: bool) -> list[Environment]:
        if self._signature is None:
            self.reload_if_changed()
        return sorted(
            (env for env in self.environments.values() if self.may_start(env, username, groups, is_admin)),
            key=lambda env: (env.status != "ready", env.localized_title("en").lower()),
        )


_catalogs: dict[tuple, EnvironmentCatalog] = {}
_catalogs_lock = threading.Lock()


def get_catalog(directory, log: logging.Logger | None = None, extra_directories=None) -> EnvironmentCatalog:
    """One shared catalogue per directory (``log``: the hub's logger, used by the first caller).

    ``extra_directories`` (default: ``$MYDOCKER_EXTRA_ENVIRONMENTS_DIRS``, ``os.pathsep``-separated) hold
    generated profiles, read after the teachers' directory.
    """
    if extra_directories is None:
        extra_directories = [d for d in os.environ.get("MYDOCKER_EXTRA_ENVIRONMENTS_DIRS", "").split(os.pathsep) if d]
    key = (os.path.abspath(str(directory)), *(os.path.abspath(str(d)) for d in extra_directories))
    with _catalogs_lock:
        if key not in _catalogs:
            _catalogs[key] = EnvironmentCatalog(key[0], log=log, extra_directories=key[1:])
        return _catalogs[key]
