"""The reviewers' side of the API answers hostile and clumsy input as ``/identify`` does:
a 4xx in the one error shape, never a 500, nothing written. Bodies nested too deep for the
decoder, CSRF tokens with non-ASCII characters, NUL characters (which PostgreSQL's text
refuses), and a group that keeps changing while a decision locks it."""
from __future__ import annotations

import pytest
from conftest import assert_sound
from review_seed import PASSWORD, bearer, exact_only, near_miss, reviewer, session_login

from reconcile.config import Settings
from reconcile.store import StaleGroup
from reconcile.store.contacts import ContactTx

#: every JSON route that reads a body (decisions, cases, splits, detach, model rollback)
BODY_ROUTES = (
    "/reviews/{item}/confirm",
    "/reviews/{item}/reject",
    "/reviews/bulk",
    "/reviews/cases/{item}/decide",
    "/reviews/splits/1/confirm",
    "/reviews/splits/1/reject",
    "/persons/1/detach",
    "/admin/models/rollback",
)


@pytest.fixture
def settings(db_url) -> Settings:
    """conftest's app on either database, exact rules only."""
    return exact_only(db_url)


@pytest.fixture
def item(reconciler) -> int:
    return near_miss(reconciler, 1)


@pytest.fixture
def admin(store) -> dict:
    return bearer(reviewer(store, "root", admin=True))


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == code


@pytest.mark.parametrize("body", [b"[" * 50_000, b'{"a":' * 10_000], ids=["deep-array", "deep-object"])
@pytest.mark.parametrize("route", BODY_ROUTES)
def test_a_body_nested_too_deep_is_a_400_invalid_json_on_every_body_reading_route(client, store, admin, item, route, body):
    before = store.counts()
    response = client.post(route.format(item=item), data=body, content_type="application/json", headers=admin)
    assert_error(response, 400, "invalid_json")
    assert store.counts() == before


def test_a_csrf_token_with_non_ascii_characters_is_refused_not_a_crash(client, store, item):
    reviewer(store, "root", admin=True)
    client.get("/review/login")
    login = client.post("/review/login", data={"username": "root", "password": PASSWORD, "csrf_token": "é"})
    assert login.status_code == 401 and "expired" in login.get_data(as_text=True)
    session_login(client, "root")
    assert_error(client.post(f"/reviews/{item}/reject", json={}, headers={"X-CSRF-Token": "é"}), 403, "csrf_failed")


@pytest.mark.parametrize("route", ["/reviews/{item}/reject", "/persons/1/detach"])
def test_a_note_with_a_nul_character_is_a_400_on_either_database(client, store, admin, item, route):
    before = store.counts()
    response = client.post(route.format(item=item), json={"note": "a\u0000b"}, headers=admin)
    assert_error(response, 400, "invalid_input")
    assert store.counts() == before


def test_a_username_with_a_nul_character_is_a_failed_login_on_either_database(client, store):
    reviewer(store, "root", admin=True)
    client.get("/review/login")
    with client.session_transaction("/review/") as sess:
        csrf = sess["csrf"]
    refused = client.post("/review/login", data={"username": "ro\u0000ot", "password": PASSWORD, "csrf_token": csrf})
    assert refused.status_code == 401 and "wrong password" in refused.get_data(as_text=True)


def test_a_group_that_keeps_changing_under_a_decision_is_a_503_to_retry(client, store, admin, item, monkeypatch):
    def always_changed(self, ids):
        raise StaleGroup(f"groups {ids} changed while being read")

    before = store.counts()
    with monkeypatch.context() as patch:  # every retry of the store finds the group changed again
        patch.setattr(ContactTx, "lock_primaries", always_changed)
        busy = client.post(f"/reviews/{item}/confirm", json={}, headers=admin)
    assert_error(busy, 503, "database_busy")
    assert busy.headers["Retry-After"]
    assert store.counts() == before
    assert client.post(f"/reviews/{item}/confirm", json={}, headers=admin).status_code == 200
    assert_sound(store)
