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
