"""A session ends on the server: after logout, a password change or disabling the
account, a copy of the old cookie no longer reads or decides anything (SQLite and
PostgreSQL), and enabling the account again revives no old session."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from review_seed import PASSWORD, exact_only, near_miss, reviewer, status_of

from reconcile.cli import main as cli
from reconcile.review import queue as review
from reconcile.web import create_app

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def app(db_url):
    app = create_app(exact_only(db_url))
    app.config.update(TESTING=True)
    yield app
    app.extensions["reconcile"].store.dispose()


def logged_in(app, username: str = "alice", password: str = PASSWORD):
    """A client holding a fresh session, and that session's CSRF token."""
    client = app.test_client()
    client.get("/review/login")
    with client.session_transaction("/review/") as sess:
        csrf = sess["csrf"]
    response = client.post("/review/login", data={"username": username, "password": password, "csrf_token": csrf})
    assert response.status_code == 302, response.data
    with client.session_transaction("/review/") as sess:
        return client, sess["csrf"]


def copy_of(app, client):
    """Another client carrying the very same cookie (a stolen or copied session)."""
    thief = app.test_client()
    cookie = client.get_cookie("session", path="/")
    thief.set_cookie(cookie.key, cookie.value, path="/")
    return thief


def can_act(client, csrf: str, item: int) -> int:
    """The status of a read and of a decision made with this session."""
    assert client.get("/reviews", headers={"X-CSRF-Token": csrf}).status_code in (200, 401)
    return client.post(f"/reviews/{item}/reject", json={}, headers={"X-CSRF-Token": csrf}).status_code


def test_logout_ends_every_copy_of_the_session(app):
    store, reconciler = app.extensions["reconcile"].store, app.extensions["reconcile"]
    reviewer(store, "alice")
    item = near_miss(reconciler, 1)
    client, csrf = logged_in(app)
    thief = copy_of(app, client)
    assert thief.get("/reviews").status_code == 200  # the copy works while the session lives
    other_device, _ = logged_in(app)

    assert client.post("/review/logout", data={"csrf_token": csrf}).status_code == 302

    assert thief.get("/reviews").status_code == 401
    assert can_act(thief, csrf, item) == 401
    assert other_device.get("/reviews").status_code == 401  # logout ends all of the reviewer's sessions
    assert thief.get("/review/").status_code == 302  # the UI sends it to the login page
    assert status_of(store, item) == "pending"
    again, _ = logged_in(app)  # a new login works
    assert again.get("/reviews").status_code == 200


def test_a_password_change_ends_every_session_and_only_the_new_password_logs_in(app):
    store = app.extensions["reconcile"].store
    reviewer(store, "alice")
    client, _ = logged_in(app)
    thief = copy_of(app, client)
    review.set_password(store, "alice", NEW_PASSWORD)
    assert client.get("/reviews").status_code == 401
    assert thief.get("/reviews").status_code == 401
    assert review.check_password(store, "alice", PASSWORD) is None
    fresh, _ = logged_in(app, password=NEW_PASSWORD)
    assert fresh.get("/reviews").status_code == 200


def test_disabling_ends_sessions_and_token_and_enabling_revives_neither_session(app):
    store, reconciler = app.extensions["reconcile"].store, app.extensions["reconcile"]
    token = reviewer(store, "alice")
    item = near_miss(reconciler, 1)
    client, csrf = logged_in(app)
    thief = copy_of(app, client)
    review.set_disabled(store, "alice", True)
    assert can_act(thief, csrf, item) == 401
    assert client.get("/reviews", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    review.set_disabled(store, "alice", False)
    assert thief.get("/reviews").status_code == 401  # the old cookie stays void
    assert client.get("/reviews", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert status_of(store, item) == "pending"
    fresh, _ = logged_in(app)
    assert fresh.get("/reviews").status_code == 200


def test_reviewer_commands_list_disable_enable_and_passwd(app, monkeypatch):
    store = app.extensions["reconcile"].store
    monkeypatch.setenv("RECONCILE_DATABASE_URL", store.url)
    reviewer(store, "alice")
    reviewer(store, "bob", admin=True)
    client, _ = logged_in(app)
    runner = CliRunner()

    listing = runner.invoke(cli, ["reviewer", "list"])
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    assert lines[0].startswith("alice\treviewer\t") and lines[0].endswith("active")
    assert lines[1].startswith("bob\tadmin\t")

    assert runner.invoke(cli, ["reviewer", "disable", "alice"]).exit_code == 0
    assert "disabled" in runner.invoke(cli, ["reviewer", "list"]).output.splitlines()[0]
    assert client.get("/reviews").status_code == 401
    assert runner.invoke(cli, ["reviewer", "enable", "alice"]).exit_code == 0
    assert runner.invoke(cli, ["reviewer", "list"]).output.splitlines()[0].endswith("active")

    client, _ = logged_in(app)
    changed = runner.invoke(cli, ["reviewer", "passwd", "alice", "--password", NEW_PASSWORD])
    assert changed.exit_code == 0, changed.output
    assert client.get("/reviews").status_code == 401
    logged_in(app, password=NEW_PASSWORD)

    for command in (["disable", "nobody"], ["enable", "nobody"], ["passwd", "nobody", "--password", NEW_PASSWORD]):
        refused = runner.invoke(cli, ["reviewer", *command])
        assert refused.exit_code == 1 and "no reviewer 'nobody'" in refused.output
    short = runner.invoke(cli, ["reviewer", "passwd", "alice", "--password", "short"])
    assert short.exit_code == 1 and "at least 8 characters" in short.output
