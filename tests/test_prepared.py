"""Statements run on the DB-API cursor (:mod:`reconcile.store.prepared`) must behave as
SQLAlchemy's ``Connection.execute`` does: the same rows with the same Python types, ``IN``
lists of any length, and driver errors raised as SQLAlchemy raises them (what the store's
retries and the web layer's 503s catch), a dropped connection invalidated so the pool
replaces it."""
from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import bindparam, create_engine, select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from reconcile.normalize import parse_identity
from reconcile.store import Store, is_busy
from reconcile.store.prepared import Prepared
from reconcile.store.schema import contact


def _seed(store: Store, n: int) -> list[int]:
    ids = []
    for i in range(n):
        identity = parse_identity({"email": f"p{i}@example.com", "phoneNumber": f"+1415555{i:04d}", "name": f"P {i}"})
        ids.append(store.write(lambda tx, identity=identity: tx.insert_contact(identity, linked_id=None, method="new", cause="t").id))
    return ids


BY_IDS = select(contact).where(contact.c.id.in_(bindparam("ids", expanding=True))).order_by(contact.c.id)


def test_prepared_rows_equal_sqlalchemys_for_in_lists_of_any_length(db_url):
    store = Store(db_url, pool_size=1)
    try:
        ids = _seed(store, 5)
        prepared = Prepared(BY_IDS)
        with store.read() as tx:
            for wanted in ([], ids[:1], ids[:3], ids, [*ids, 10**6]):
                ours = prepared.rows(tx.conn, {"ids": wanted})
                theirs = tx.conn.execute(BY_IDS, {"ids": wanted}).all()
                assert [tuple(r) for r in ours] == [tuple(r) for r in theirs]
                assert [type(v) for r in ours for v in r] == [type(v) for r in theirs for v in r]
            (row,) = prepared.rows(tx.conn, {"ids": ids[:1]})
            assert row.id == row[0] == row._mapping["id"] == ids[0]
            assert row.createdAt == theirs[0].createdAt
    finally:
        store.dispose()


def test_a_locked_sqlite_database_raises_sqlalchemys_operational_error(sqlite_db):
    store = Store(sqlite_db, pool_size=1, lock_timeout=0.05)
    blocker = sqlite3.connect(store.engine.url.database, isolation_level=None)
    try:
        with store.engine.connect() as conn:
            blocker.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
            with pytest.raises(OperationalError) as info:
                Prepared(text("BEGIN IMMEDIATE")).run(conn, {})
            assert "locked" in str(info.value.orig)
            assert is_busy(info.value)
    finally:
        blocker.close()
        store.dispose()


@pytest.mark.postgres
def test_a_dropped_postgresql_connection_is_invalidated_and_replaced(pg_url):
    store = Store(pg_url, pool_size=1)
    try:
        _seed(store, 1)
        with store.engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            conn.commit()
        admin = create_engine(pg_url)
        with admin.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            other.commit()
        admin.dispose()
        prepared = Prepared(select(contact.c.id))
        with store.engine.connect() as conn:  # the pool hands back the connection whose backend is gone
            with pytest.raises(DBAPIError) as info:
                prepared.rows(conn)
            assert info.value.connection_invalidated
        with store.read() as tx:
            assert len(prepared.rows(tx.conn)) == 1
    finally:
        store.dispose()


@pytest.mark.postgres
def test_postgresql_plans_each_prepared_statement_once_per_connection(pg_url):
    """A statement psycopg has prepared runs one plan made with its parameters open,
    never one planned again for each run's values: the merge (one statement of CTEs)
    cost ~0.7 ms of the server's CPU to plan, and the server's default kept planning it
    on every run. Exact merges, new contacts and look-ups, each statement run more than
    the five times after which psycopg prepares it, on the pool's one connection."""
    from reconcile.config import Settings
    from reconcile.engine.reconciler import Reconciler

    store = Store(pg_url, pool_size=1)
    try:
        reconciler = Reconciler(store, Settings(database_url=pg_url, probabilistic=False))
        for i in range(12):
            email, phone = f"merge{i}@example.com", f"+1415556{i:04d}"
            for body in ({"email": email}, {"phoneNumber": phone}, {"email": email, "phoneNumber": phone}):
                reconciler.identify(reconciler.parse(body))
        with store.engine.connect() as conn:  # the pool's one connection: the one that ran them
            plans = conn.execute(text(
                "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements WHERE from_sql IS false"
            )).all()
        merge = [p for p in plans if "WITH old AS" in p.statement]
        assert merge and merge[0].generic_plans >= 6
        assert [p.statement[:80] for p in plans if p.custom_plans] == []
    finally:
        store.dispose()
