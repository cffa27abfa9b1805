"""``POST /identify`` is answered in front of Flask (:class:`reconcile.web.identify.IdentifyRoute`)
and must answer every request exactly as the Flask route and its hooks would: the same
status, body and headers, the same metrics, the same errors."""
from __future__ import annotations

import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from werkzeug.test import Client

from reconcile.config import Settings
from reconcile.store import DatabaseBusy
from reconcile.web import create_app
from reconcile.web.identify import IdentifyRoute
from reconcile.web.security_headers import API_HEADERS


@pytest.fixture
def app(sqlite_db):
    app = create_app(Settings(database_url=sqlite_db, probabilistic=False, api_keys=("key-one", "key-two")))
    app.config.update(TESTING=True)
    yield app
    app.extensions["reconcile"].store.dispose()


def flask_only(app) -> Client:
    """A client of the Flask app behind the route: the behaviour the route must keep."""
    route = app.wsgi_app
    assert isinstance(route, IdentifyRoute)
    return Client(route.wsgi_app, app.response_class)


def comparable(response) -> tuple:
    """Status, headers and body, the per-request values (``requestId``) left out."""
    body = response.get_data()
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = body
    if isinstance(decoded, dict) and "match" in decoded:
        decoded["match"].pop("requestId")
    return response.status_code, sorted(response.headers.items()), decoded


def without_length(response) -> list:
    return sorted((name, value) for name, value in response.headers.items() if name != "Content-Length")


def count(method: str, outcome: str) -> float:
    return REGISTRY.get_sample_value(
        "reconcile_identify_requests_total", {"method": method, "outcome": outcome}
    ) or 0.0


KEY = {"X-API-Key": "key-two"}


@pytest.mark.parametrize(
    "data, headers",
    [
        (b'{"email": "doc@hillvalley.edu"}', KEY),  # created: the second call finds it
        (b'{"email": "doc@hillvalley.edu", "phoneNumber": "+1 503 555 0100"}', {"Authorization": "Bearer key-one"}),
        (b'{"email": "doc@hillvalley.edu"}', {}),  # no key: 401
        (b'{"email": "doc@hillvalley.edu"}', {"X-API-Key": "key-three"}),
        (b'{"email": "doc@hillvalley.edu"}', {"Authorization": "Basic key-one"}),
        (b"", KEY),
        (b"   ", KEY),
        (b"not json", KEY),
        (b"[1, 2]", KEY),
        (b'{"email": 7}', KEY),
        (b'{"email": "not an email"}', KEY),
        (b'{"phoneNumber": "\xff"}', KEY),
        (b"[" * 100_000, KEY),  # over the body limit: 413
    ],
)
def test_the_route_answers_as_flask_does(app, data, headers):
    ours = app.test_client().post("/identify", data=data, headers=headers, content_type="application/json")
    theirs = flask_only(app).post("/identify", data=data, headers=headers, content_type="application/json")
    if ours.status_code == 200:  # the first call created the person, the second found them
        assert theirs.status_code == 200
        assert without_length(ours) == without_length(theirs)
        assert set(ours.get_json()) == set(theirs.get_json()) == {"contact", "match"}
        assert theirs.get_json()["contact"] == ours.get_json()["contact"]
    else:
        assert comparable(ours) == comparable(theirs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.one_of(
        st.binary(max_size=64),
        st.dictionaries(st.sampled_from(["email", "phoneNumber", "name", "x"]), st.one_of(st.none(), st.integers(), st.text(max_size=12)))
        .map(lambda d: json.dumps(d).encode()),
    )
)
def test_any_refused_body_gets_the_same_error_from_both(app, data):
    ours = app.test_client().post("/identify", data=data, headers=KEY)
    if ours.status_code != 200:
        assert comparable(ours) == comparable(flask_only(app).post("/identify", data=data, headers=KEY))
    else:
        assert all(ours.headers.get(name) == value for name, value in API_HEADERS.items())


def test_a_chunked_body_and_other_methods_go_to_flask(app):
    client = app.test_client()
    chunked = client.post(
        "/identify",
        input_stream=io.BytesIO(b'{"email": "chunk@example.org"}'),
        headers={**KEY, "Transfer-Encoding": "chunked"},
    )
    assert chunked.status_code == 200 and chunked.get_json()["contact"]["emails"] == ["chunk@example.org"]
    wrong_method = client.get("/identify", headers=KEY)
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"]
    assert wrong_method.get_json()["error"]["code"] == "method_not_allowed"


def test_errors_raised_while_answering_get_the_apps_handlers_and_metrics(app, monkeypatch):
    reconciler = app.extensions["reconcile"]
    client = app.test_client()

    def busy(*args, **kwargs):
        raise DatabaseBusy("held")

    monkeypatch.setattr(reconciler, "identify", busy)
    before = count("none", "error")
    response = client.post("/identify", json={"email": "a@example.org"}, headers=KEY)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.get_json()["error"]["code"] == "database_busy"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert count("none", "error") == before + 1

    monkeypatch.setattr(reconciler, "identify", lambda *a, **k: 1 / 0)
    crashed = client.post("/identify", json={"email": "a@example.org"}, headers=KEY)
    assert crashed.status_code == 500 and crashed.get_json()["error"]["code"] == "internal_error"
    assert count("none", "error") == before + 2


def test_answers_are_counted_by_method_and_outcome(app):
    client = app.test_client()
    new, exact, invalid = count("new", "ok"), count("exact", "ok"), count("none", "invalid")
    client.post("/identify", json={"email": "count@example.org"}, headers=KEY)
    client.post("/identify", json={"email": "count@example.org"}, headers=KEY)
    client.post("/identify", data=b"{", headers=KEY)
    assert (count("new", "ok"), count("exact", "ok"), count("none", "invalid")) == (new + 1, exact + 1, invalid + 1)
