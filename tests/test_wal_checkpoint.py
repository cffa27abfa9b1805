"""SQLite's write-ahead log is checkpointed by the store's background thread, never inside
a request's commit (which then waited for the copy and two fsyncs: one call of the growth
replay took 2.0 s of wall time for 0.24 s of CPU); ``reconcile db purge``'s TRUNCATE
checkpoint, which a checkpoint running elsewhere turns away without waiting, is tried again."""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import contextmanager

import pytest
from conftest import sqlite_url

from reconcile.config import Settings
from reconcile.engine.reconciler import Event, Reconciler
from reconcile.normalize import parse_identity
from reconcile.store import DatabaseBusy, Store
from reconcile.store.erasure import _truncate_log
from reconcile.store.migrate import upgrade

#: SQLite's automatic checkpoint fires once the log passes this many pages
AUTOCHECKPOINT_PAGES = 1000


@pytest.fixture
def url(tmp_path) -> str:
    url = sqlite_url(tmp_path)
    upgrade(url)
    return url


def create_people(store: Store, batches: int, per_batch: int = 200, prefix: str = "p") -> None:
    """Commit ``batches`` transactions of ``per_batch`` new people each (new to a store that
    has only people of another ``prefix``)."""
    reconciler = Reconciler(store, Settings(database_url=store.url, probabilistic=False))
    for b in range(batches):
        events = [
            Event(
                parse_identity({"email": f"{prefix}{b}-{i}@example.com", "phoneNumber": f"+1415{len(prefix) + 4}55{b:02d}{i:03d}"}),
                f"r{b}-{i}",
            )
            for i in range(per_batch)
        ]
        reconciler.identify_many(events)


def wal_pages(url: str) -> int:
    path = f"{url.removeprefix('sqlite:///')}-wal"
    page_size = sqlite3.connect(url.removeprefix("sqlite:///")).execute("PRAGMA page_size").fetchone()[0]
    return os.path.getsize(path) // page_size


def test_commits_leave_the_log_to_the_checkpointer(url):
    store = Store(url)
    store.checkpointer.interval = 3600  # the thread starts but does not look during the test
    try:
        create_people(store, batches=30)
        # an automatic checkpoint restarts the log at its beginning: it would stay near 1,000 pages
        assert wal_pages(url) > 2 * AUTOCHECKPOINT_PAGES
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        assert store.checkpointer.runs == 0
    finally:
        store.dispose()
    assert store.checkpointer.runs == 1  # stopping runs one last checkpoint


def test_the_thread_copies_what_was_committed_into_the_database(url):
    database = url.removeprefix("sqlite:///")
    before = os.path.getsize(database)  # the migrated schema; commits write only to the log
    store = Store(url)
    try:
        create_people(store, batches=3)
        deadline = time.monotonic() + 10
        while store.checkpointer.runs == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.checkpointer.runs >= 1
        assert os.path.getsize(database) > before
    finally:
        store.dispose()


def test_dispose_stops_the_thread(url):
    store = Store(url)
    create_people(store, batches=1, per_batch=5)
    thread = store.checkpointer._thread
    assert thread is not None and thread.is_alive()
    store.dispose()
    assert not thread.is_alive()


def test_a_failed_checkpoint_is_tried_again(url, monkeypatch):
    store = Store(url)
    checkpointer = store.checkpointer
    checkpointer.interval = 0.05
    real = checkpointer.checkpoint
    calls = []

    def fails_once(conn: sqlite3.Connection) -> tuple[int, int, int]:
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return real(conn)

    monkeypatch.setattr(checkpointer, "checkpoint", fails_once)
    try:
        create_people(store, batches=1, per_batch=20)
        deadline = time.monotonic() + 10
        while checkpointer.runs == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert checkpointer.failures == 1
        assert checkpointer.runs >= 1
    finally:
        store.dispose()


def log_frames(database: str) -> int:
    """The frames the log holds now (SQLite's answer to a passive checkpoint)."""
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        return conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    finally:
        conn.close()


def test_a_log_past_the_limit_starts_over_once_no_reader_holds_an_older_snapshot(url):
    """Passive checkpoints never let the log start over while readers hold older snapshots
    and others write (it grew by ~45 MB/s under `bench identify`): past the limit the thread
    restarts it once no reader holds an older snapshot, and while one does it holds no
    writer back (writes go on at once). The next commits write the file over from its
    beginning: it does not grow again."""
    database = url.removeprefix("sqlite:///")
    store = Store(url)
    checkpointer = store.checkpointer
    checkpointer.interval, checkpointer.restart_bytes = 0.05, 64 * 1024
    turns = []
    writers_turn = checkpointer.turn

    @contextmanager
    def recorded_turn():
        with writers_turn():
            turns.append(threading.current_thread().name)
            yield

    checkpointer.turn = recorded_turn
    reader = sqlite3.connect(database, isolation_level=None)
    try:
        create_people(store, batches=1, per_batch=20)
        reader.execute("BEGIN")
        reader.execute('SELECT count(*) FROM "Contact"').fetchone()  # a snapshot from now on
        create_people(store, batches=5)
        time.sleep(0.6)  # several looks, each finding the reader's snapshot in the way
        started = time.monotonic()
        create_people(store, batches=1, per_batch=5)
        assert time.monotonic() - started < 1.0  # not held back by restart attempts
        assert checkpointer.restarts == 0
        long_log = os.path.getsize(f"{database}-wal")
        assert long_log > checkpointer.restart_bytes
        reader.execute("COMMIT")
        deadline = time.monotonic() + 10
        while checkpointer.restarts == 0 and time.monotonic() < deadline:  # no write needed to restart
            time.sleep(0.05)
        assert checkpointer.restarts >= 1
        # it restarted in the writers' turn, where writers wait for it and wake when it ends
        assert turns and set(turns) == {"sqlite-wal-checkpoint"}
        checkpointer.interval = 3600  # no further look: what follows is the writers' own doing
        time.sleep(0.2)
        create_people(store, batches=1, per_batch=2, prefix="late")
        frame_bytes = 4096 + 24
        assert log_frames(database) * frame_bytes < long_log // 4  # written from the start again
        assert os.path.getsize(f"{database}-wal") == long_log  # over the old frames: no new blocks
    finally:
        reader.close()
        store.dispose()


class _Driver:
    """A connection whose TRUNCATE checkpoints report "busy" (another checkpoint running) ``busy`` times."""

    def __init__(self, busy: int):
        self.busy = busy
        self.calls = 0

    def execute(self, sql: str):
        assert sql == "PRAGMA wal_checkpoint(TRUNCATE)"
        self.calls += 1
        row = (1, 5, 3) if self.calls <= self.busy else (0, 0, 0)

        class Cursor:
            def fetchone(self):
                return row

        return Cursor()


def test_the_purge_empties_the_log_after_a_running_checkpoint_ends():
    driver = _Driver(busy=2)
    _truncate_log(driver, timeout=5)
    assert driver.calls == 3


def test_the_purge_says_so_when_the_log_stays_busy():
    with pytest.raises(DatabaseBusy):
        _truncate_log(_Driver(busy=10_000), timeout=0.2)
