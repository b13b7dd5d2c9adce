"""The embedded default's SQLite database (mydocker_hub/sqlite_tuning.py), on a real hub process."""

import sqlite3


def test_the_embedded_database_commits_to_a_write_ahead_log(hub):
    """A class starting at once makes hundreds of commits in the hub's event loop: none may wait for a full
    disk sync (the rollback journal did, and froze the hub for seconds)."""
    hub.ensure_user("student")  # the hub has written to its database
    database = hub.workdir / "data" / "jupyterhub.sqlite"
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert (hub.workdir / "data" / "jupyterhub.sqlite-wal").exists()
