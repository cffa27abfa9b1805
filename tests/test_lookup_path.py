"""A request the read path answers (a look-up of a known person) is one read: no
transaction begun, no COMMIT, one pooled connection. A request that must write keeps that
connection for its write transaction, and a write refused on it leaves it fit for the next
request. The answers are the ones the write path would give."""
from __future__ import annotations

import sqlite3
from collections import Counter

import pytest
from sqlalchemy import event

from conftest import assert_sound
from reconcile.config import Settings
from reconcile.engine.reconciler import Reconciler
from reconcile.normalize import parse_identity
from reconcile.store import DatabaseBusy, Store


def _identity(body: dict):
    return parse_identity(body, "US")


class _Watched:
    """Pool checkouts and the transactions SQLAlchemy begins and commits on ``store``."""

    def __init__(self, store: Store):
        self.seen: Counter = Counter()
        event.listen(store.engine.pool, "checkout", lambda *a: self.seen.update(["checkouts"]))
        event.listen(store.engine, "begin", lambda *a: self.seen.update(["begins"]))
        event.listen(store.engine, "commit", lambda *a: self.seen.update(["commits"]))

    def during(self, call) -> tuple[object, Counter]:
        self.seen.clear()
        result = call()
        return result, Counter(self.seen)


@pytest.fixture
def reconciler(db_url):
    store = Store(db_url)
    # the registry poll would add a read of its own to a request now and then
    yield Reconciler(store, Settings(database_url=db_url, probabilistic=False, model_poll_seconds=3600))
    store.dispose()


def test_a_look_up_of_a_known_person_begins_no_transaction_and_commits_nothing(reconciler):
    first = reconciler.identify(_identity({"email": "ann@example.com", "phoneNumber": "+1 415 555 0100"}))
    watched = _Watched(reconciler.store)
    for body in ({"email": "ann@example.com"}, {"phoneNumber": "+1 415 555 0100"},
                 {"email": "ANN@example.com", "phoneNumber": "(415) 555-0100"}):
        answer, seen = watched.during(lambda body=body: reconciler.identify(_identity(body)))
        assert seen == Counter(checkouts=1)
        assert answer.contact == first.contact
        assert answer.match["createdContactIds"] == [] and answer.match["method"] == "exact"


def test_a_look_up_on_sqlite_sends_one_statement(sqlite_db):
    store = Store(sqlite_db, pool_size=1)
    reconciler = Reconciler(store, Settings(database_url=sqlite_db, probabilistic=False, model_poll_seconds=3600))
    try:
        reconciler.identify(_identity({"email": "ann@example.com"}))
        sent: list[str] = []
        with store.engine.connect() as conn:  # the pool's one connection: the request's
            conn.connection.driver_connection.set_trace_callback(sent.append)
        reconciler.identify(_identity({"email": "ann@example.com"}))
        assert len(sent) == 1 and sent[0].startswith("SELECT")
    finally:
        store.dispose()


def test_a_request_that_must_write_reads_and_writes_on_one_connection(reconciler):
    reconciler.identify(_identity({"email": "ann@example.com", "phoneNumber": "+1 415 555 0100"}))
    watched = _Watched(reconciler.store)
    answer, seen = watched.during(
        lambda: reconciler.identify(_identity({"email": "ann@example.com", "phoneNumber": "+1 415 555 0199"}))
    )
    assert seen == Counter(checkouts=1, begins=1, commits=1)
    assert len(answer.match["createdContactIds"]) == 1 and answer.contact["phoneNumbers"] == ["+14155550100", "+14155550199"]
    assert_sound(reconciler.store)


def test_a_write_refused_for_a_locked_database_leaves_the_connection_fit_for_the_next_request(sqlite_db):
    store = Store(sqlite_db, pool_size=1, lock_timeout=0.05)
    reconciler = Reconciler(store, Settings(database_url=sqlite_db, probabilistic=False, model_poll_seconds=3600))
    blocker = sqlite3.connect(store.engine.url.database, isolation_level=None)
    try:
        known = reconciler.identify(_identity({"email": "ann@example.com"}))
        blocker.execute("BEGIN IMMEDIATE")  # another writer, outside the service's queue
        with pytest.raises(DatabaseBusy):
            reconciler.identify(_identity({"email": "bob@example.com"}))
        assert reconciler.identify(_identity({"email": "ann@example.com"})).contact == known.contact  # reads go on
        blocker.execute("ROLLBACK")
        bob = reconciler.identify(_identity({"email": "bob@example.com"}))
        assert len(bob.match["createdContactIds"]) == 1
        assert store.counts()["contacts"] == 2
        assert_sound(store)
    finally:
        blocker.close()
        store.dispose()
