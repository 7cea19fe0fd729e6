"""A small SQLite file beside the DuckDB database, for what must be written while another process holds DuckDB.

DuckDB allows one writing process per file and the nightly run may hold it; SQLite's lock is held for one short
transaction at a time. What lives in such a file: a clinician's clicks (storage.clicks) and OAuth tokens, whose
rotation must be saved the moment it arrives. One connection per operation, so nothing holds the lock between two.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_S = 30.0


class SideFile:
    def __init__(self, path: Path | str, schema: Iterable[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Created owner-only before SQLite opens it; its -wal and -shm files take the same mode.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        with self.connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            for statement in schema:
                con.execute(statement)

    @classmethod
    def beside(cls, db_path: Path | str, name: str, schema: Iterable[str]) -> "SideFile":
        """`<database stem>.<name>.sqlite` next to the database file."""
        db = Path(db_path)
        return cls(db.with_name(f"{db.stem}.{name}.sqlite"), schema)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            con.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            con.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
