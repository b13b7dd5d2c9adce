"""SQLite settings for the embedded default: commits that do not stall the hub when a class starts.

JupyterHub commits its database in its event loop, several times per spawn. With SQLite's defaults
(rollback journal, ``synchronous=FULL``) each commit waits for the disk, and a class of 100 starting at
once froze the hub for seconds. Write-ahead logging with ``synchronous=NORMAL`` keeps the database
consistent after a crash of the hub (a power cut may lose the last commits, never corrupt the file). Only
SQLite connections are touched; PostgreSQL (production) is left as it is.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine

_registered = False


def _tune(dbapi_connection, connection_record) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def tune_sqlite_connections() -> None:
    """Apply the settings to every SQLite connection this process opens from now on (idempotent)."""
    global _registered
    if not _registered:
        event.listen(Engine, "connect", _tune)
        _registered = True
