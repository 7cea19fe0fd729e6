"""A small SQLite file beside the DuckDB database, for what must be written while another process holds DuckDB.

DuckDB allows one writing process per file and the nightly run may hold it; SQLite's lock is held for one short
transaction at a time (WAL, `synchronous=FULL`, `busy_timeout`). Two such files: OAuth tokens (storage.tokens),
whose rotation must be saved the moment it arrives, and a clinician's clicks (storage.clicks). One connection
per operation, so nothing holds the lock between two of them.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

BUSY_TIMEOUT_S = 30.0


def side_path(db_path: Path | str, name: str) -> Path | None:
    """`<database stem>.<name>.sqlite` beside the database file (None for an in-memory database)."""
    if str(db_path) == ":memory:":
        return None
    path = Path(db_path)
    return path.with_name(f"{path.stem}.{name}.sqlite")


def _use_wal(con: sqlite3.Connection) -> None:
    """Put the file in WAL mode (a setting the file keeps). Switching takes an exclusive lock that SQLite does not
    wait for: with other connections open (the nightly run's fetch threads each open the token file) the switch
    fails at once with "database is locked", busy_timeout or not. So it is asked only while the file is not in WAL
    yet, and retried until BUSY_TIMEOUT_S like any other wait for the lock."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            con.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class SideFile:
    def __init__(self, path: Path | str, schema: Iterable[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Created owner-only before SQLite opens it; its -wal and -shm files take the same mode.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        with self.connect() as con:
            _use_wal(con)
            for statement in schema:
                con.execute(statement)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)) as con:
            con.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            con.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
            con.execute("PRAGMA secure_delete=ON")  # a deleted row is overwritten, not left in a free page
            yield con

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")  # the write lock first: a read-then-write never races another write
            with con:  # commits, or rolls back on any error
                yield con

    def query_rows(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql, params).fetchall()

    def table_counts(self) -> dict[str, int]:
        with self.connect() as con:
            tables = [r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
            return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the file, so deleted rows do not linger there."""
        with self.connect() as con:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
