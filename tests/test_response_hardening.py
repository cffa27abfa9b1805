"""Every JSON answer carries the security headers the review UI has; timestamps in the
admin API are timezone-aware on every backend; the SQLite database (with its WAL and
SHM files), the writers' lock file and the secret key file are readable by their owner only."""
from __future__ import annotations

import stat
from datetime import datetime

import pytest
from review_seed import exact_only, reviewer

from reconcile.store.migrate import upgrade
from reconcile.store.models import register_model
from reconcile.web import create_app
from reconcile.web.security_headers import API_HEADERS


@pytest.fixture
def app(db_url):
    app = create_app(exact_only(db_url))
    app.config.update(TESTING=True)
    yield app
    app.extensions["reconcile"].store.dispose()


def test_json_answers_and_errors_carry_the_security_headers(app):
    client = app.test_client()
    token = reviewer(app.extensions["reconcile"].store, "alice")
    for response in (
        client.post("/identify", json={"email": "a@example.org"}),
        client.post("/identify", data="not json"),
        client.get("/healthz"),
        client.get("/reviews"),
        client.get("/reviews", headers={"Authorization": f"Bearer {token}"}),
        client.get("/admin/models", headers={"Authorization": f"Bearer {token}"}),
        client.get("/no/such/path"),
    ):
        for name, value in API_HEADERS.items():
            assert response.headers.get(name) == value, (response.request.path, name)
    ui = client.get("/review/login")  # the UI keeps its own policy
    assert "script-src 'self'" in ui.headers["Content-Security-Policy"]
    assert ui.headers["X-Frame-Options"] == "DENY"


def test_admin_timestamps_carry_a_timezone(app, tmp_path):
    """SQLite hands timestamps back naive: the store gives them their zone (UTC)."""
    store = app.extensions["reconcile"].store
    token = reviewer(store, "alice")
    register_model(store, "v1", str(tmp_path / "m.json"))
    listing = app.test_client().get("/admin/models", headers={"Authorization": f"Bearer {token}"}).get_json()
    created = [m["createdAt"] for m in listing["models"]]
    assert created and all(datetime.fromisoformat(value).tzinfo is not None for value in created)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_files_and_the_secret_key_are_owner_only(tmp_path):
    database = tmp_path / "data" / "reconcile.db"
    upgrade(f"sqlite:///{database}")
    app = create_app(exact_only(f"sqlite:///{database}"))
    try:
        assert app.test_client().post("/identify", json={"email": "a@example.org"}).status_code == 200
        files = [database, tmp_path / "data" / "secret_key", tmp_path / "data" / "reconcile.db-writelock"]
        files += [p for p in (tmp_path / "data").glob("reconcile.db-*") if p not in files]
        assert any(p.name.endswith("-wal") for p in files)
        for path in files:
            assert _mode(path) == 0o600, (path.name, oct(_mode(path)))
    finally:
        app.extensions["reconcile"].store.dispose()
