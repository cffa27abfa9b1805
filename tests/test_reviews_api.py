"""The /reviews JSON API, the review UI's server side, authentication, CSRF, API keys for
/identify and /metrics, through Flask's test client over a real SQLite database."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from review_seed import PASSWORD, bearer, bulk_queue, exact_only, identify, near_miss, open_item, reviewer, status_of

from reconcile.cli import main as cli
from reconcile.review import queue as review
from reconcile.web import create_app


@pytest.fixture
def settings(sqlite_db):
    return exact_only(sqlite_db)


@pytest.fixture
def token(store) -> str:
    return reviewer(store, "alice")


def login(client, username: str = "alice", password: str = PASSWORD):
    client.get("/review/login")
    with client.session_transaction("/review/") as sess:
        csrf = sess["csrf"]
    return client.post("/review/login", data={"username": username, "password": password, "csrf_token": csrf})


def session_csrf(client) -> str:
    with client.session_transaction("/review/") as sess:
        return sess["csrf"]


# --- authentication -----------------------------------------------------------------


def test_nothing_under_reviews_or_review_answers_without_authentication(client, reconciler, token):
    item = near_miss(reconciler, 1)
    for method, path in [
        ("get", "/reviews"),
        ("get", f"/reviews/{item}"),
        ("post", f"/reviews/{item}/confirm"),
        ("post", f"/reviews/{item}/reject"),
        ("post", f"/reviews/{item}/undo"),
        ("post", "/reviews/bulk"),
    ]:
        response = getattr(client, method)(path, json={})
        assert response.status_code == 401, path
        assert response.get_json()["error"]["code"] == "unauthorized"
        assert getattr(client, method)(path, json={}, headers=bearer(token + "x")).status_code == 401
    for method, path in [("get", "/review/"), ("get", f"/review/items/{item}"), ("post", f"/review/items/{item}/confirm"), ("post", "/review/undo")]:
        response = getattr(client, method)(path)
        assert response.status_code == 302 and "/review/login" in response.headers["Location"], path
    assert status_of(reconciler.store, item) == "pending"


def test_login_sets_a_hardened_session_cookie_and_rejects_bad_passwords(client, token):
    assert login(client, password="not the password").status_code == 401
    response = login(client)
    assert response.status_code == 302 and response.headers["Location"] == "/review/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/review/")
    assert page.status_code == 200 and b"alice" in page.data
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_login_redirects_only_within_the_review_ui(client, token):
    client.get("/review/login")
    response = client.post(
        "/review/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": session_csrf(client), "next": "https://evil.test/"},
    )
    assert response.headers["Location"] == "/review/"


def test_session_calls_need_the_csrf_token_and_bearer_calls_do_not(client, reconciler, token):
    first, second = near_miss(reconciler, 1), near_miss(reconciler, 2)
    login(client)

    refused = client.post(f"/reviews/{first}/confirm", json={})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "csrf_failed"
    form = client.post(f"/review/items/{first}/confirm", data={})
    assert form.status_code == 403
    assert status_of(reconciler.store, first) == "pending"

    ok = client.post(f"/reviews/{first}/confirm", json={}, headers={"X-CSRF-Token": session_csrf(client)})
    assert ok.status_code == 200
    other = client.application.test_client()  # no cookie: the token alone is enough
    assert other.post(f"/reviews/{second}/reject", json={}, headers=bearer(token)).status_code == 200


# --- the API ------------------------------------------------------------------------


def test_list_show_confirm_reject_undo(client, reconciler, token):
    auth = bearer(token)
    ids = [near_miss(reconciler, i, score=s) for i, s in enumerate([0.82, 0.95])]

    listing = client.get("/reviews?order=score", headers=auth).get_json()
    assert [i["id"] for i in listing["items"]] == [ids[1], ids[0]]
    assert listing["counts"]["pending"] == 2 and listing["total"] == 2 and listing["pages"] == 1
    assert [i["id"] for i in client.get("/reviews?order=age", headers=auth).get_json()["items"]] == ids

    item = client.get(f"/reviews/{ids[1]}", headers=auth).get_json()
    assert {c["email"] for c in item["left"]["contacts"]} == {"ann.lee1@hillvalley.edu"}
    assert set(item["left"]["contacts"][0]) >= {"id", "email", "phoneNumber", "name", "createdAt"}
    assert item["evidence"][1]["comparison"] == "email"

    confirmed = client.post(f"/reviews/{ids[1]}/confirm", headers=auth)
    assert confirmed.status_code == 200
    body = confirmed.get_json()
    assert body["status"] == "confirmed" and body["decidedBy"] == "alice"
    assert body["primaryContactId"] == item["left"]["primaryId"]

    again = client.post(f"/reviews/{ids[1]}/reject", json={}, headers=auth)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_decided"

    rejected = client.post(f"/reviews/{ids[0]}/reject", json={"note": "twins"}, headers=auth).get_json()
    assert rejected["status"] == "rejected" and len(rejected["cannotLink"]) == 2
    assert client.get(f"/reviews/{ids[0]}", headers=auth).get_json()["note"] == "twins"

    undone = client.post(f"/reviews/{ids[0]}/undo", headers=auth)
    assert undone.status_code == 200 and undone.get_json()["status"] == "pending"
    again = client.post(f"/reviews/{ids[0]}/undo", headers=auth)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "cannot_undo"


def test_resolved_elsewhere_and_missing_items(client, reconciler, token):
    auth = bearer(token)
    item = near_miss(reconciler, 1)
    identify(reconciler, "ann.lee1@hillvalley.edu", "+442079461101")  # merged by /identify meanwhile
    response = client.post(f"/reviews/{item}/confirm", headers=auth)
    assert response.status_code == 409
    assert response.get_json()["error"] == {
        "code": "resolved_elsewhere",
        "message": response.get_json()["error"]["message"],
        "id": item,
    }
    assert client.post(f"/reviews/{item}/reject", headers=auth).get_json()["error"]["code"] == "resolved_elsewhere"
    assert client.get("/reviews/999", headers=auth).status_code == 404
    assert client.post("/reviews/999/confirm", headers=auth).status_code == 404


def test_bad_parameters_are_400s(client, token):
    auth = bearer(token)
    assert client.get("/reviews?status=maybe", headers=auth).status_code == 400
    assert client.get("/reviews?order=random", headers=auth).status_code == 400
    assert client.get("/reviews?page=0", headers=auth).status_code == 400
    assert client.post("/reviews/1/reject", data="[1]", headers=auth).status_code == 400
    assert client.post("/reviews/1/reject", json={"note": 5}, headers=auth).status_code == 400


@pytest.mark.parametrize(
    "name, raw",
    [
        ("per_page", "201"),
        ("per_page", "100000"),
        ("per_page", "0"),
        ("per_page", "-5"),
        ("per_page", "2.5"),
        ("page", "0"),
        ("page", "-1"),
        ("page", "1.5"),
        ("page", "abc"),
        ("page", str(10**30)),
        ("page", "1000000001"),
        ("page", " 1"),
        ("page", "1_0"),
        ("page", "\u0661"),  # ARABIC-INDIC DIGIT ONE: int() reads it, the API does not
        ("page", "9" * 5000),  # more digits than int() converts
    ],
)
def test_a_page_or_page_size_out_of_range_is_a_400_that_states_the_range(client, token, name, raw):
    response = client.get("/reviews", query_string={name: raw}, headers=bearer(token))
    maximum = {"page": review.MAX_PAGE, "per_page": review.MAX_PER_PAGE}[name]
    assert response.status_code == 400
    assert response.get_json() == {
        "error": {
            "code": "invalid_parameter",
            "message": f"{name} must be a whole number from 1 to {maximum}",
            "field": name,
        }
    }


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(["page", "per_page"]),
    raw=st.one_of(st.integers(-(10**40), 10**40).map(str), st.text(max_size=24)),
)
def test_any_page_or_page_size_is_a_200_or_a_400_never_a_500(client, token, name, raw):
    response = client.get("/reviews", query_string={name: raw}, headers=bearer(token))
    maximum = {"page": review.MAX_PAGE, "per_page": review.MAX_PER_PAGE}[name]
    # an empty value is not an integer either (the document's type): a 400 like any other
    in_range = raw.isascii() and raw.isdigit() and 1 <= int(raw) <= maximum
    assert response.status_code == (200 if in_range else 400), (raw, response.get_json())
    if in_range:
        body = response.get_json()
        assert body["page" if name == "page" else "perPage"] == int(raw)  # what was asked, not a capped value


def test_the_largest_page_and_page_size_are_answered_on_both_databases(db_url):
    app = create_app(exact_only(db_url))
    try:
        store = app.extensions["reconcile"].store
        token = reviewer(store, "alice")
        bulk_queue(store, 3)
        client = app.test_client()
        last = client.get(
            f"/reviews?page={review.MAX_PAGE}&per_page={review.MAX_PER_PAGE}", headers=bearer(token)
        )
        assert last.status_code == 200, last.get_data(as_text=True)
        assert (last.get_json()["items"], last.get_json()["total"]) == ([], 3)
        first = client.get(f"/reviews?per_page={review.MAX_PER_PAGE}", headers=bearer(token)).get_json()
        assert (len(first["items"]), first["perPage"]) == (3, review.MAX_PER_PAGE)
    finally:
        app.extensions["reconcile"].store.dispose()


@pytest.mark.parametrize("query", [f"page={10**30}", "page=-3", "page=abc", "per_page=500", "per_page=0"])
def test_the_review_pages_refuse_a_page_out_of_range_with_a_400_page(client, token, query):
    login(client)
    response = client.get(f"/review/?{query}")
    assert response.status_code == 400
    assert b"must be a whole number from 1 to" in response.data


def test_bulk_reports_each_ids_outcome(client, reconciler, token):
    auth = bearer(token)
    ids = [near_miss(reconciler, i) for i in range(3)]
    review.confirm(reconciler.store, ids[1], "bob")

    response = client.post("/reviews/bulk", json={"ids": [*ids, 12345], "decision": "reject", "note": "bulk"}, headers=auth)

    assert response.status_code == 200
    body = response.get_json()
    assert (body["decided"], body["refused"]) == (2, 2)
    assert [(r["id"], r["ok"]) for r in body["results"]] == [(ids[0], True), (ids[1], False), (ids[2], True), (12345, False)]
    assert body["results"][1]["error"]["code"] == "already_decided"
    assert body["results"][3]["error"]["code"] == "not_found"
    for bad in ({"ids": [], "decision": "reject"}, {"ids": [1], "decision": "maybe"}, {"ids": ["1"], "decision": "confirm"}):
        assert client.post("/reviews/bulk", json=bad, headers=auth).status_code == 400


def test_a_thousand_pending_items_page_through_the_api_without_gaps(client, store, token):
    """Correctness only: speed is measured in bench/, not asserted on a shared machine."""
    bulk_queue(store, 1000)
    seen = []
    for number in range(1, 11):
        body = client.get(f"/reviews?per_page=100&page={number}&order=age", headers=bearer(token)).get_json()
        seen += [i["id"] for i in body["items"]]
    assert body["total"] == 1000 and body["pages"] == 10
    assert len(set(seen)) == 1000
    page = client.get("/review/?page=7&per_page=100")  # the UI's own page too (after login below)
    assert page.status_code == 302
    login(client)
    page = client.get("/review/?page=7&per_page=100")
    assert page.status_code == 200 and b"1000 case(s), page 7 of 10" in page.data  # 1000 separate pairs: 1000 cases


# --- the UI's server side -----------------------------------------------------------


def test_item_page_escapes_contact_values(client, reconciler, token):
    a = identify(reconciler, "mallory@hillvalley.edu", "+442079460101", "<script>alert(1)</script>")["primaryContactId"]
    b = identify(reconciler, "mallory@twinpines.org", "+442079460102", "Mallory <b>bold</b>")["primaryContactId"]
    item = open_item(reconciler.store, a, b)
    login(client)
    page = client.get(f"/review/items/{item}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "Mallory &lt;b&gt;bold&lt;/b&gt;" in page
    queue = client.get("/review/").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in queue and "<script>alert" not in queue


def test_ui_decisions_go_to_the_next_pending_item_and_undo_last(client, reconciler, token):
    ids = [near_miss(reconciler, i, score=s) for i, s in enumerate([0.95, 0.9, 0.85])]
    login(client)
    csrf = session_csrf(client)
    response = client.post(f"/review/items/{ids[0]}/confirm", data={"csrf_token": csrf})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/review/items/{ids[1]}?order=score")
    response = client.post(f"/review/items/{ids[1]}/reject", data={"csrf_token": csrf, "note": "no"})
    assert response.headers["Location"].endswith(f"/review/items/{ids[2]}?order=score")
    response = client.post("/review/undo", data={"csrf_token": csrf})
    assert response.headers["Location"].endswith(f"/review/items/{ids[1]}?order=score")
    assert [status_of(reconciler.store, i) for i in ids] == ["confirmed", "pending", "pending"]
    bulk = client.post("/review/bulk", data={"csrf_token": csrf, "decision": "reject", "ids": [str(ids[1]), str(ids[2])]})
    assert bulk.status_code == 302
    assert [status_of(reconciler.store, i) for i in ids] == ["confirmed", "rejected", "rejected"]


def test_blind_mode_hides_the_score(client, reconciler, token):
    item = near_miss(reconciler, 1, score=0.9123)
    login(client)
    assert "0.9123" in client.get(f"/review/items/{item}").get_data(as_text=True)
    client.post("/review/blind", data={"csrf_token": session_csrf(client), "back": f"/review/items/{item}"})
    page = client.get(f"/review/items/{item}").get_data(as_text=True)
    assert "0.9123" not in page and "hidden (blind mode)" in page and "<svg" not in page
    assert "0.912" not in client.get("/review/").get_data(as_text=True)


# --- /identify API keys, secret key, metrics, CLI ------------------------------------


def test_identify_requires_an_api_key_when_keys_are_configured(sqlite_db):
    app = create_app(exact_only(sqlite_db, api_keys=("k-one", "k-two")))
    client = app.test_client()
    body = {"email": "doc@hillvalley.edu"}
    missing = client.post("/identify", json=body)
    assert missing.status_code == 401 and missing.get_json()["error"]["code"] == "unauthorized"
    assert client.post("/identify", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.post("/identify", json=body, headers={"X-API-Key": "k-two"}).status_code == 200
    assert client.post("/identify", json=body, headers={"Authorization": "Bearer k-one"}).status_code == 200
    app.extensions["reconcile"].store.dispose()


def test_identify_is_open_when_no_keys_are_configured(client):
    assert client.post("/identify", json={"email": "doc@hillvalley.edu"}).status_code == 200


def test_secret_key_is_shared_by_every_app_on_the_same_database(app, sqlite_db):
    other = create_app(exact_only(sqlite_db))
    assert app.config["SECRET_KEY"] == other.config["SECRET_KEY"] and len(app.config["SECRET_KEY"]) == 64
    path = sqlite_db.removeprefix("sqlite:///").rsplit("/", 1)[0] + "/secret_key"
    assert os.stat(path).st_mode & 0o777 == 0o600
    other.extensions["reconcile"].store.dispose()


def test_metrics_count_identify_calls_decisions_and_the_queue(client, reconciler, token):
    ids = [near_miss(reconciler, i) for i in range(3)]
    client.post("/identify", json={"email": "marty@hillvalley.edu"})
    client.post("/identify", json={"email": "not-an-email"})
    client.post(f"/reviews/{ids[0]}/confirm", headers=bearer(token))
    text = client.get("/metrics").get_data(as_text=True)
    assert re.search(r'^reconcile_identify_requests_total\{method="new",outcome="ok"\} [1-9]', text, re.M)
    assert re.search(r'^reconcile_identify_requests_total\{method="none",outcome="invalid"\} [1-9]', text, re.M)
    assert re.search(r'^reconcile_identify_duration_seconds_bucket\{le="0.5",method="new"\} [1-9]', text, re.M)
    assert re.search(r'^reconcile_review_decisions_total\{outcome="confirmed"\} [1-9]', text, re.M)
    assert re.search(r"^reconcile_review_queue_pending 2.0$", text, re.M)


def test_cli_reviewer_add_prints_a_working_token_once(sqlite_db, store, monkeypatch):
    monkeypatch.setenv("RECONCILE_DATABASE_URL", sqlite_db)
    result = CliRunner().invoke(cli, ["reviewer", "add", "carol", "--admin"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    token = re.search(r"(rvw_\S+)", result.output).group(1)
    user = review.check_token(store, token)
    assert user.username == "carol" and user.is_admin
    again = CliRunner().invoke(cli, ["reviewer", "add", "carol", "--password", PASSWORD])
    assert again.exit_code != 0 and "exists already" in again.output


# --- the OpenAPI document describes what /reviews really answers ----------------------

OPENAPI = json.loads((Path(__file__).resolve().parents[1] / "src" / "reconcile" / "openapi.json").read_text())
OPENAPI_REGISTRY = Registry().with_resource("urn:openapi", DRAFT202012.create_resource(OPENAPI))


def _schema_of(path: str, method: str, status: str) -> Draft202012Validator:
    """The documented JSON schema of one response (following a ``$ref`` to components)."""
    response = OPENAPI["paths"][path][method]["responses"][status]
    while "$ref" in response:
        node = OPENAPI
        for part in response["$ref"].lstrip("#/").split("/"):
            node = node[part]
        response = node
    return Draft202012Validator(_rebase(response["content"]["application/json"]["schema"]), registry=OPENAPI_REGISTRY)


def _check(covered: set, response, path: str, method: str) -> None:
    """Validate a real response against the document; record the status it covers."""
    status = str(response.status_code)
    if status not in OPENAPI["paths"][path][method]["responses"]:
        status = "default"
    errors = [e.message for e in _schema_of(path, method, status).iter_errors(response.get_json())]
    assert not errors, f"{method.upper()} {path} {status}: {errors}"
    covered.add((path, method, status))


def _rebase(schema):
    """Point the document's local refs (#/components/...) at the registered document."""
    if isinstance(schema, dict):
        return {k: ("urn:openapi" + v if k == "$ref" and v.startswith("#") else _rebase(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_rebase(v) for v in schema]
    return schema


def test_every_documented_reviews_response_is_a_real_one(client, reconciler, token):
    store = reconciler.store
    auth = bearer(token)
    reviewer(store, "bob")
    bob = review.new_token(store, "bob")
    ids = [near_miss(reconciler, i) for i in range(5)]
    identify(reconciler, "ann.lee4@hillvalley.edu", "+442079461104")  # item 5 is now resolved elsewhere
    covered: set = set()
    r, i = "/reviews", "/reviews/{id}"
    _check(covered, client.get("/reviews", headers=auth), r, "get")
    _check(covered, client.get("/reviews?status=nope", headers=auth), r, "get")
    _check(covered, client.get("/reviews?per_page=201", headers=auth), r, "get")
    _check(covered, client.get(f"/reviews?page={10**30}", headers=auth), r, "get")
    _check(covered, client.get("/reviews"), r, "get")
    _check(covered, client.get(f"/reviews/{ids[0]}", headers=auth), i, "get")
    _check(covered, client.get("/reviews/999", headers=auth), i, "get")
    _check(covered, client.get(f"/reviews/{ids[0]}"), i, "get")
    for action, item in (("confirm", ids[0]), ("reject", ids[1])):
        path = f"/reviews/{{id}}/{action}"
        _check(covered, client.post(f"/reviews/{item}/{action}", json={"note": "n"}, headers=auth), path, "post")
        _check(covered, client.post(f"/reviews/{item}/{action}", headers=auth), path, "post")  # 409
        _check(covered, client.post(f"/reviews/{ids[4]}/{action}", headers=auth), path, "post")  # 409 resolved elsewhere
        _check(covered, client.post(f"/reviews/999/{action}", headers=auth), path, "post")
        _check(covered, client.post(f"/reviews/{item}/{action}", json={"note": 1}, headers=auth), path, "post")
        _check(covered, client.post(f"/reviews/{item}/{action}"), path, "post")
    u = "/reviews/{id}/undo"
    _check(covered, client.post(f"/reviews/{ids[1]}/undo", headers=bearer(bob)), u, "post")  # 403 not yours
    _check(covered, client.post(f"/reviews/{ids[1]}/undo", headers=auth), u, "post")
    _check(covered, client.post(f"/reviews/{ids[1]}/undo", headers=auth), u, "post")  # 409 nothing to undo
    _check(covered, client.post("/reviews/999/undo", headers=auth), u, "post")
    _check(covered, client.post(f"/reviews/{ids[1]}/undo"), u, "post")
    b = "/reviews/bulk"
    _check(covered, client.post(b, json={"ids": [ids[2], ids[0]], "decision": "reject"}, headers=auth), b, "post")
    _check(covered, client.post(b, json={"ids": [], "decision": "reject"}, headers=auth), b, "post")
    _check(covered, client.post(b, json={"ids": [1], "decision": "reject"}), b, "post")
    cs, c, d = "/reviews/cases", "/reviews/cases/{id}", "/reviews/cases/{id}/decide"
    _check(covered, client.get(cs, headers=auth), cs, "get")
    _check(covered, client.get(cs + "?order=random", headers=auth), cs, "get")
    _check(covered, client.get(cs), cs, "get")
    case = client.get(f"{cs}/{ids[3]}", headers=auth)
    _check(covered, case, c, "get")
    _check(covered, client.get(f"{cs}/999", headers=auth), c, "get")
    _check(covered, client.get(f"{cs}/{ids[3]}"), c, "get")
    groups = case.get_json()["groups"]
    decide = f"{cs}/{ids[3]}/decide"
    _check(covered, client.post(decide, json={"itemIds": [ids[3]], "persons": "all"}, headers=auth), d, "post")
    _check(covered, client.post(decide, json={"itemIds": [ids[3]], "persons": [[1, 2]]}, headers=auth), d, "post")  # 409
    _check(covered, client.post(f"{cs}/999/decide", json={"itemIds": [999], "persons": [[1]]}, headers=auth), d, "post")
    _check(covered, client.post(decide, json={"itemIds": [ids[3]], "persons": [groups]}), d, "post")
    _check(covered, client.post(decide, json={"itemIds": [ids[3]], "persons": [[g] for g in groups]}, headers=auth), d, "post")
    login(client)  # from here on a session without its CSRF header: 403
    _check(covered, client.post(decide, json={"itemIds": [ids[3]], "persons": [groups]}), d, "post")
    _check(covered, client.post(f"/reviews/{ids[3]}/confirm", json={}), "/reviews/{id}/confirm", "post")
    _check(covered, client.post(f"/reviews/{ids[3]}/reject", json={}), "/reviews/{id}/reject", "post")
    _check(covered, client.post(b, json={"ids": [ids[3]], "decision": "reject"}), b, "post")
    not_allowed = client.put(f"/reviews/{ids[3]}", headers=auth)  # 405: the shared error shape
    assert not_allowed.status_code == 405
    for path, method in [
        (r, "get"), (i, "get"), (b, "post"), (cs, "get"), (c, "get"), (d, "post"),
        *((f"{i}/{a}", "post") for a in ("confirm", "reject", "undo")),
    ]:
        _check(covered, not_allowed, path, method)

    documented = {
        (path, method, status)
        for path, item in OPENAPI["paths"].items()
        if path.startswith("/reviews") and not path.startswith("/reviews/splits")  # test_resolve.py checks those
        for method, operation in item.items()
        for status in operation["responses"]
    }
    # a GET never answers 403 (a disabled account's session or token is a 401): none is documented
    assert not documented - covered, documented - covered
    assert "securitySchemes" in OPENAPI["components"]
    assert OPENAPI["paths"]["/identify"]["post"]["security"][0] == {"ApiKey": []}


def test_waterfall_reads_the_scorers_evidence_shape():
    from reconcile.web.review_ui import evidence_levels, waterfall

    evidence = {
        "matchWeight": 3.0,
        "matchProbability": 0.89,
        "comparisons": [
            {"comparison": "email", "level": "mailbox", "gamma": 3, "weight": 7.5},
            {"comparison": "name", "level": "else", "gamma": 0, "weight": -2.0},
        ],
    }
    drawn = waterfall(evidence, 3.0)
    assert [r["label"] for r in drawn["rows"]] == ["prior", "email · mailbox", "name · else", "final match weight"]
    assert drawn["rows"][0]["weight"] == pytest.approx(-2.5)  # the prior is what the steps leave over
    assert [r["kind"] for r in drawn["rows"]] == ["prior", "up", "down", "final"]
    assert drawn["final"] == pytest.approx(3.0) and drawn["probability"] == pytest.approx(8 / 9)
    assert evidence_levels(evidence) == [{"comparison": "email", "level": "mailbox"}, {"comparison": "name", "level": "else"}]
    assert waterfall({"guard": "placeholder", "reason": "shared"}, None) is None


def test_guard_items_show_the_guard_and_its_reason(client, reconciler, token):
    a = identify(reconciler, "h1@hillvalley.edu", "+442079469801")["primaryContactId"]
    b = identify(reconciler, "h2@hillvalley.edu", "+442079469802")["primaryContactId"]
    item = open_item(
        reconciler.store, a, b, score=None, reason="guard", guard="max-group-size",
        evidence={"guard": "max-group-size", "reason": "the group would exceed 25 contacts <b>", "values": [["email", "h@x.com"]]},
    )
    login(client)
    page = client.get(f"/review/items/{item}").get_data(as_text=True)
    assert "max-group-size" in page and "the group would exceed 25 contacts &lt;b&gt;" in page
    assert "<svg" not in page


@pytest.mark.slow
def test_metrics_in_multiprocess_mode_add_up_every_workers_files(sqlite_db, tmp_path):
    """Under gunicorn each worker writes to PROMETHEUS_MULTIPROC_DIR (read at import time,
    hence a fresh interpreter); any worker's /metrics reports them all."""
    import subprocess
    import sys
    import textwrap

    folder = tmp_path / "prom"
    folder.mkdir()
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from review_seed import exact_only
        from reconcile.web import create_app
        client = create_app(exact_only({sqlite_db!r})).test_client()
        client.post("/identify", json={{"email": sys.argv[1]}})
        print(client.get("/metrics").get_data(as_text=True))
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    for email in ("one@hillvalley.edu", "two@hillvalley.edu"):  # two "workers", one after the other
        text = subprocess.run([sys.executable, "-c", script, email], env=env, capture_output=True, text=True, check=True).stdout
    assert re.search(r'^reconcile_identify_requests_total\{method="new",outcome="ok"\} 2.0$', text, re.M), text
    assert re.search(r"^reconcile_review_queue_pending 0.0$", text, re.M)
