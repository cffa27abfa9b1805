"""Engine construction: the only place that knows how SQLite and PostgreSQL differ in
connection setup. SQLite runs in WAL mode with transactions begun explicitly, so a
writer can take the write lock up front (``BEGIN IMMEDIATE``) instead of upgrading a
read lock half-way and dead-locking against another writer.

Every wait is bounded: SQLite's busy timeout and PostgreSQL's ``lock_timeout`` (and,
when given, ``statement_timeout``) turn a lock held elsewhere into an error the web
layer answers with a 503 and ``Retry-After``, never into a request that hangs.

A SQLite database file is created readable by its owner only (its ``-wal`` and
``-shm`` files take the same mode from it): it holds customers' emails and phones.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from ..config import Settings

#: the lock wait of an engine made without one (the CLI's, the tests'): the service's default
DEFAULT_LOCK_TIMEOUT = Settings.db_lock_timeout_seconds
PRIVATE_FILE_MODE = 0o600
#: SQLite reads the database file through a memory map of up to this many bytes (address
#: space, not memory: the pages are the OS's page cache, shared by every connection and
#: worker). A connection's own page cache is emptied whenever another connection has
#: committed since its last transaction, which with two workers writing is nearly every
#: transaction: without the map every page it then needs is a ``pread`` and a copy (41
#: per ``/identify`` over HTTP at 100k contacts, 4-8 with it; bench/README.md).
SQLITE_MMAP_BYTES = 1 << 30
#: PostgreSQL plans a statement psycopg has prepared (its fifth run on a connection) once,
#: with its parameters left open, and runs that plan from then on, instead of planning it
#: again for every run's values ("custom plans", which the server's default ``auto`` keeps
#: for a statement whose open plan it estimates costlier, however alike the plans are).
#: Every statement the store runs often is an index look-up or a write by key whose plan
#: does not depend on the values; the whole merge in one statement (``contacts._MERGE_PG``)
#: was planned on every run, ~0.7 ms of the server's CPU each time (bench/README.md,
#: "PostgreSQL at 1M contacts").
PG_PLAN_CACHE_MODE = "force_generic_plan"


def make_engine(
    url: str,
    pool_size: int = 8,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    statement_timeout: float | None = None,
    autocheckpoint: bool = True,
) -> Engine:
    """Create an engine for ``url`` (``sqlite:///path`` or ``postgresql+psycopg://...``).

    ``lock_timeout`` (seconds) bounds every wait for a lock; ``statement_timeout``
    (seconds, PostgreSQL only; ``None``: unbounded, for batch work) bounds a statement.
    ``autocheckpoint=False`` (SQLite): no connection checkpoints the write-ahead log in
    its commits; the caller runs checkpoints elsewhere (:mod:`.checkpoint`).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            create_private_file(Path(parsed.database))
        engine = create_engine(
            url,
            connect_args={"timeout": lock_timeout, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=pool_size,
            # the connection used last is handed out again: its page cache and compiled
            # statements are the warm ones (FIFO cycled through every pooled connection)
            pool_use_lifo=True,
        )
        _configure_sqlite(engine, round(lock_timeout * 1000), autocheckpoint)
        return engine
    if parsed.get_backend_name() == "postgresql":
        options = f"-c lock_timeout={round(lock_timeout * 1000)} -c plan_cache_mode={PG_PLAN_CACHE_MODE}"
        if statement_timeout is not None:
            options += f" -c statement_timeout={round(statement_timeout * 1000)}"
        return create_engine(
            url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=3600, connect_args={"options": options}
        )
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///... or postgresql+psycopg://...")


def create_private_file(path: Path) -> None:
    """Create ``path`` (and its folder) empty and owner-only unless it exists; SQLite then
    writes its database into it. An existing file keeps the mode its operator gave it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        pass


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, autocheckpoint: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        if not autocheckpoint:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        # Straight on the driver's connection: once per transaction, and SQLAlchemy's
        # statement machinery cost more than the BEGIN. Errors still surface as
        # SQLAlchemy's (OperationalError for "database is locked"), as before.
        statement = f"BEGIN {mode}"
        try:
            connection.connection.driver_connection.execute(statement)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(statement, (), exc, sqlite3.Error) from exc
