"""A database lock held elsewhere makes a write wait only as long as configured, then a
503 with Retry-After in the standard error shape, having changed nothing; /healthz
reports the stuck writes; both recover when the lock goes (SQLite and PostgreSQL)."""
from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from conftest import assert_sound
from reconcile.config import Settings
from reconcile.store import Store, is_busy
from reconcile.web import create_app

LOCK_TIMEOUT = 0.5


@contextmanager
def write_lock_held_elsewhere(url: str):
    """Another connection (not the service's) holding the lock every insert into Contact needs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        other = sqlite3.connect(parsed.database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    engine = create_engine(url)
    try:
        with engine.connect() as other:
            with other.begin():
                other.execute(text('LOCK TABLE "Contact" IN EXCLUSIVE MODE'))
                yield
    finally:
        engine.dispose()


@pytest.fixture
def app(db_url):
    app = create_app(Settings(database_url=db_url, probabilistic=False, db_lock_timeout_seconds=LOCK_TIMEOUT))
    app.config.update(TESTING=True)
    yield app
    app.extensions["reconcile"].store.dispose()


def test_a_held_write_lock_is_a_503_with_retry_after_and_healthz_says_write_stuck(app):
    client = app.test_client()
    store = app.extensions["reconcile"].store
    assert client.post("/identify", json={"email": "before@example.org"}).status_code == 200
    with write_lock_held_elsewhere(store.url):
        started = time.monotonic()
        response = client.post("/identify", json={"email": "during@example.org"})
        waited = time.monotonic() - started
        assert response.status_code == 503, response.get_json()
        assert response.headers["Retry-After"] == "1"
        assert response.get_json()["error"]["code"] == "database_busy"
        assert waited < LOCK_TIMEOUT * 6  # bounded: not 8 retries of a 30 s busy wait
        health = client.get("/healthz")
        assert health.status_code == 503 and health.headers["Retry-After"] == "1"
        assert health.get_json() == {"status": "unavailable", "database": "write-stuck"}
    assert client.get("/healthz").get_json() == {"status": "ok", "database": store.dialect}
    answer = client.post("/identify", json={"email": "during@example.org"}).get_json()
    assert answer["contact"]["secondaryContactIds"] == []
    assert store.counts()["contacts"] == 2  # the refused request wrote nothing
    assert_sound(store)


def test_a_statement_past_the_statement_timeout_is_a_busy_error(pg_url):
    store = Store(pg_url, lock_timeout=LOCK_TIMEOUT, statement_timeout=0.2)
    try:
        with pytest.raises(OperationalError) as raised:
            with store.read() as tx:
                tx.conn.execute(text("SELECT pg_sleep(2)"))
        assert is_busy(raised.value)
    finally:
        store.dispose()
