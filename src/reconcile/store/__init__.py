"""The store layer: one interface over SQLite and PostgreSQL that owns every connection,
statement and transaction. The two engines differ only in how a writer excludes
other writers (see :meth:`Store.write` and docs/ARCHITECTURE.md)."""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import random
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Connection, Engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from .checkpoint import WalCheckpointer
from .contacts import ContactRow, ContactTx, StaleGroup, utcnow
from .engine import DEFAULT_LOCK_TIMEOUT, make_engine
from .prepared import run_script
from .schema import audit_log, contact, metadata

log = logging.getLogger(__name__)

T = TypeVar("T")
TX = TypeVar("TX", bound=ContactTx)

MAX_ATTEMPTS = 8

# SQLSTATEs after which PostgreSQL asks the client to retry the whole transaction.
_RETRYABLE_PG = {"40001", "40P01", "55P03"}
# SQLSTATEs of a wait cut short: lock_not_available (lock_timeout), query_canceled (statement_timeout)
_TIMED_OUT_PG = {"55P03", "57014"}


class Store:
    """Owns the engine; hands out transactions to the engine layer."""

    def __init__(
        self, url: str, pool_size: int = 8, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, statement_timeout: float | None = None
    ):
        self.url = url
        self.lock_timeout = lock_timeout
        parsed = make_url(url)
        database = parsed.database if parsed.get_backend_name() == "sqlite" else None
        on_file = bool(database) and database != ":memory:"
        #: a SQLite file's WAL is checkpointed by a background thread, not inside a request's
        #: commit (:mod:`.checkpoint`); started by the process's first transaction
        self._writer_turn = WriterTurn(f"{database}-writelock" if on_file else None, lock_timeout)
        self.checkpointer = WalCheckpointer(database, self._writer_turn.hold) if on_file else None
        self.engine: Engine = make_engine(
            url, pool_size=pool_size, lock_timeout=lock_timeout, statement_timeout=statement_timeout,
            autocheckpoint=self.checkpointer is None,
        )
        self.dialect = self.engine.dialect.name
        if self.checkpointer is not None:
            checkpointer = self.checkpointer
            # every transaction may write: the process's first one starts the thread
            event.listen(self.engine, "begin", lambda _conn: checkpointer.ensure_running())
            weakref.finalize(self, checkpointer.stop_soon)

    # --- transactions --------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[ContactTx]:
        """A read-only transaction on the contact graph (see :meth:`reading`)."""
        with self.reading() as conn:
            yield ContactTx(conn, self.dialect)

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for reads only (a consistent snapshot on SQLite WAL).

        On PostgreSQL (READ COMMITTED, where every statement takes its own snapshot
        anyway) the reads run in autocommit: the same answers without the BEGIN and
        COMMIT round trips, and no ROLLBACK when the connection goes back to the pool.
        A ROLLBACK makes psycopg forget the statements it prepared on that connection
        (and send ``DEALLOCATE ALL``), so a read that ended in one, such as a worker's
        model-registry poll, cost the hot statements their server-side plans.
        """
        if self.dialect == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            with conn.begin():
                yield conn

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A pooled connection with no transaction open, its driver in autocommit (SQLite's
        always is: :mod:`.engine` begins every transaction itself). A statement run on it
        outside a transaction is its own consistent snapshot, and ends without a COMMIT."""
        if self.dialect == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _write_once(self, conn: Connection, lock_keys: list[str], tx_type: type[ContactTx]) -> Iterator[ContactTx]:
        """One attempt at a write transaction on ``conn`` (from :meth:`_connection`)."""
        if self.dialect == "sqlite":
            with self._writer_turn.hold():
                with conn.execution_options(sqlite_begin="IMMEDIATE").begin():
                    yield tx_type(conn, self.dialect)
            return
        # The transaction begun by our own BEGIN sent with the advisory locks: one round
        # trip where psycopg would send its BEGIN alone first. SQLAlchemy still ends the
        # transaction through the driver's commit() and rollback(), which send COMMIT /
        # ROLLBACK whenever one is open.
        with conn.begin():
            run_script(conn, _begin_locked(sorted({_lock_id(k) for k in lock_keys})))
            yield tx_type(conn, self.dialect)

    def write(
        self, work: Callable[[TX], T], lock_keys: Iterable[str] = (), *, tx_type: type[TX] = ContactTx
    ) -> T:
        """Run ``work`` in one write transaction, retrying it whole on a lost race.

        SQLite: ``BEGIN IMMEDIATE`` takes the single database write lock up front.
        PostgreSQL: transaction-scoped advisory locks on ``lock_keys`` (the request's
        normalised identifiers), taken in a fixed order, serialise every writer that
        could create or move a contact with one of those identifiers; ``work`` then
        locks the primaries it touches (:meth:`ContactTx.lock_primaries`). A group that
        changed in between, a deadlock or a serialisation failure rolls everything
        back and runs ``work`` again on fresh data, so a lost race changes nothing.
        ``tx_type`` is the transaction's class (a batch of requests uses
        :class:`reconcile.store.batch.BatchContactTx`).
        """
        with self._connection() as conn:
            return self._write_on(conn, work, list(lock_keys), tx_type)

    def read_else_write(
        self, read: Callable[[ContactTx], T | None], work: Callable[[ContactTx], T], lock_keys: Iterable[str] = ()
    ) -> T:
        """``read``'s answer; when it has none (``None``), :meth:`write`'s with ``work``,
        on the same pooled connection.

        ``read`` runs outside any transaction, so each of its statements is its own
        consistent snapshot: it must answer from one statement (a look-up of a known
        person does), and it pays no BEGIN and no COMMIT, nor on SQLite a transaction
        of its own, for that one statement. When it finds it must write, the request
        keeps its connection (one pool checkout instead of two) and ``work`` runs
        exactly as :meth:`write` runs it, deciding again on what it reads under the
        write lock: what ``read`` saw only told it a write was needed. (A writer waiting
        for its turn holds its connection: the pool must allow one per thread, which
        ``RECONCILE_DB_POOL_SIZE`` plus as many in overflow does by default.)
        """
        keys = list(lock_keys)
        with self._connection() as conn:
            answer = read(ContactTx(conn, self.dialect))
            if conn.in_transaction():  # a statement run through SQLAlchemy began one; it wrote nothing
                conn.commit()
            if answer is not None:
                return answer
            return self._write_on(conn, work, keys, ContactTx)

    def _write_on(self, conn: Connection, work: Callable[[TX], T], keys: list[str], tx_type: type[TX]) -> T:
        """:meth:`write` on a connection from :meth:`_connection`, each attempt on it."""
        deadline = time.monotonic() + self.lock_timeout
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self._write_once(conn, keys, tx_type) as tx:
                    return work(tx)  # type: ignore[arg-type]
            except StaleGroup:
                if attempt == MAX_ATTEMPTS:
                    raise
            except (OperationalError, DBAPIError) as exc:
                if attempt == MAX_ATTEMPTS or not self._retryable(exc):
                    raise
                if time.monotonic() >= deadline:  # each lock wait is bounded; so are the retries
                    raise DatabaseBusy(f"the database stayed locked for over {self.lock_timeout:g} s") from exc
                log.info("retrying write after %s (attempt %d)", type(exc.orig).__name__, attempt)
            time.sleep(random.uniform(0, 0.002 * attempt))
        raise AssertionError("unreachable")

    def _retryable(self, exc: DBAPIError) -> bool:
        if self.dialect == "sqlite":
            return "locked" in str(exc.orig) or "busy" in str(exc.orig)
        return getattr(exc.orig, "sqlstate", None) in _RETRYABLE_PG

    # --- operations ----------------------------------------------------------------

    def ping(self) -> None:
        """Raise unless the database answers a trivial query."""
        with self.reading() as conn:
            conn.execute(text("SELECT 1"))

    def writable(self, timeout: float) -> bool:
        """Whether a writer could take the write lock within ``timeout`` seconds; takes it
        and lets go at once, writing nothing.

        SQLite: ``BEGIN IMMEDIATE`` (the database's one write lock) with a short busy
        timeout. PostgreSQL: the lock an insert into ``Contact`` takes, which any
        stronger table lock held elsewhere (a long migration, a manual ``LOCK``) blocks.
        """
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                driver = conn.connection.driver_connection
                driver.execute(f"PRAGMA busy_timeout={round(timeout * 1000)}")
                try:
                    driver.execute("BEGIN IMMEDIATE")
                    driver.execute("ROLLBACK")
                except sqlite3.OperationalError:
                    return False
                finally:
                    driver.execute(f"PRAGMA busy_timeout={round(self.lock_timeout * 1000)}")
                return True
            # Ends in COMMIT (it wrote nothing) when the lock was granted: a ROLLBACK would
            # make psycopg drop the connection's prepared statements (see :meth:`reading`),
            # and orchestrators call this every few seconds.
            with conn.begin() as tx:
                conn.execute(text(f"SET LOCAL lock_timeout = {round(timeout * 1000)}"))
                conn.execute(text(f"SET LOCAL statement_timeout = {round(timeout * 1000)}"))
                try:
                    conn.execute(text('LOCK TABLE "Contact" IN ROW EXCLUSIVE MODE'))
                except OperationalError as exc:
                    tx.rollback()
                    if not is_busy(exc):
                        raise
                    return False
            return True

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            contacts = conn.execute(select(func.count()).select_from(contact)).scalar_one()
            audits = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
        return {"contacts": contacts, "audit_log": audits}

    def dispose(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.engine.dispose()


class WriterTurn:
    """The queue a SQLite database's writers take turns in, across threads and processes.

    Held by :meth:`Store.write` around ``BEGIN IMMEDIATE`` ... ``COMMIT`` and by the WAL
    checkpointer's restarting checkpoints (:mod:`.checkpoint`), so that a writer waiting
    for either is woken as soon as it ends instead of sleeping in SQLite's busy handler
    (1, 2, 5, 10, 15, 20, 25 ms...: behind an 80 ms checkpoint it would wake after 103)."""

    def __init__(self, lock_path: str | None, timeout: float):
        self.lock_path = lock_path
        self.timeout = timeout
        self._local = threading.local()
        self._here = threading.Lock()  # this process's writers queue here, woken at once

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Queue SQLite writers: this process's threads on a lock, worker processes on an
        ``flock``; either wait ends after ``lock_timeout`` with :class:`DatabaseBusy`.

        Without the queue, a writer that finds the database locked sleeps in SQLite's
        busy handler (1, 2, 5, 10, ... ms) however soon the lock is released; a thread
        queued on the lock wakes as soon as the writer before it is done. Between
        processes the ``flock`` is polled (a blocking ``flock`` cannot be given a
        deadline). A blocking ``flock`` on a helper thread, which wakes the waiter the
        moment the lock is free, was tried and measured costlier: the workers then take
        turns 4-10 times as often, and each turn after the other process's commit starts
        from an emptied page cache (+17-51% CPU per write with two processes writing,
        +7-8% per request over HTTP, no more requests served; bench/README.md, "SQLite
        workers"). The polling waiter lets the worker that holds the lock go on with its
        next write first. ``BEGIN IMMEDIATE`` and the busy timeout still guard against
        writers that do not queue here. A thread that already holds its turn (a nested
        write) does not queue again.
        """
        if self.lock_path is None or getattr(self._local, "held", False):
            yield
            return
        deadline = time.monotonic() + self.timeout
        if not self._here.acquire(timeout=self.timeout):
            raise DatabaseBusy(f"another writer held the database for over {self.timeout:g} s")
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                _flock_until(fd, deadline, self.timeout)
                self._local.held = True
                try:
                    yield
                finally:
                    self._local.held = False
            finally:
                os.close(fd)  # releases the flock
        finally:
            self._here.release()


class DatabaseBusy(Exception):
    """A lock stayed held elsewhere past the configured wait; nothing was written."""


def is_busy(exc: DBAPIError) -> bool:
    """Whether a database error means "waited too long for a lock or a statement"
    (SQLite's busy database; PostgreSQL's lock_timeout and statement_timeout)."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in _TIMED_OUT_PG
    message = str(exc.orig)
    return "database is locked" in message or "database is busy" in message


def _flock_until(fd: int, deadline: float, timeout: float) -> None:
    """Take an exclusive ``flock`` on ``fd``, polling until ``deadline`` (monotonic)."""
    pause = 0.0002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise DatabaseBusy(f"another process held the database for over {timeout:g} s") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.002)


def _begin_locked(keys: list[int]) -> str:
    """``BEGIN`` (READ COMMITTED, which the locking design relies on: every statement
    after the locks sees what their last holder committed) and the advisory locks of
    ``keys``; the select list is evaluated left to right, so in key order. The keys are
    integers we computed (:func:`_lock_id`), so they are written into the text."""
    begin = "BEGIN ISOLATION LEVEL READ COMMITTED"
    if not keys:
        return begin
    return f"{begin}; SELECT " + ", ".join(f"pg_advisory_xact_lock({int(k)})" for k in keys)


def _lock_id(key: str) -> int:
    """A stable signed 64-bit advisory-lock id for an identifier."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


__all__ = ["Store", "DatabaseBusy", "is_busy", "ContactTx", "ContactRow", "StaleGroup", "metadata", "utcnow"]
