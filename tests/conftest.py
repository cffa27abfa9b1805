"""Fixtures that build real things: a fresh SQLite file or a fresh PostgreSQL database
per test, migrated with Alembic, and an app over it."""
from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from reconcile.config import Settings
from reconcile.engine.reconciler import Reconciler
from reconcile.store import Store
from reconcile.store.invariants import check
from reconcile.store.migrate import upgrade
from reconcile.web import create_app

PG_ADMIN_URL = os.environ.get("RECONCILE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    if not _pg_available():
        if os.environ.get("CI") or os.environ.get("RECONCILE_REQUIRE_PG"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    return PG_ADMIN_URL


def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'reconcile.db'}"


@pytest.fixture
def pg_url(pg_admin_url):
    """A fresh, migrated PostgreSQL database, dropped after the test."""
    name = f"reconcile_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh migrated database on each backend in turn."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
        upgrade(url)
        return url
    return request.getfixturevalue("pg_url")


@pytest.fixture
def sqlite_db(tmp_path) -> str:
    url = sqlite_url(tmp_path)
    upgrade(url)
    return url


@pytest.fixture
def settings(sqlite_db) -> Settings:
    return Settings(database_url=sqlite_db, probabilistic=False)


@pytest.fixture
def app(settings):
    app = create_app(settings)
    app.config.update(TESTING=True)
    yield app
    app.extensions["reconcile"].store.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def reconciler(app) -> Reconciler:
    return app.extensions["reconcile"]


@pytest.fixture
def store(reconciler) -> Store:
    return reconciler.store


def assert_sound(store: Store) -> None:
    """Fail with every broken invariant listed."""
    violations = check(store)
    assert not violations, "\n".join(map(str, violations))


def identify(client, **body) -> dict:
    """POST /identify and return the JSON answer, which must be a 200."""
    response = client.post("/identify", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def rows(store: Store, table) -> list:
    """Every row of a table, read in its own transaction."""
    with store.read() as tx:
        return tx.conn.execute(select(table)).all()
