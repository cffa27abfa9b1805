"""``/persons``: look a person up, their history, and why two contacts are one person.

One group is built through the real pipeline on SQLite and PostgreSQL: contacts linked by
the exact rules (a shared phone), a merge of two groups by a request that brought a value
of each, a plus-alias the shipped model links, and a review confirmation; a second review
stays open. Every answer is checked against what was built, validated against the
OpenAPI document, and shown to have written nothing (every table's row count is the same
before and after); the invariants hold throughout.
"""
from __future__ import annotations

import itertools

import pytest
from conftest import assert_sound
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from review_seed import PASSWORD, bearer, open_item, reviewer
from sqlalchemy import func, select
from test_openapi import DOC, validate

from reconcile.config import Settings
from reconcile.store import Store
from reconcile.store.migrate import upgrade
from reconcile.store.schema import metadata
from reconcile.web import create_app

PERSON_PATHS = ("/persons", "/persons/{contactId}", "/persons/{contactId}/history", "/persons/{contactId}/why")


def _app(url: str, **extra):
    app = create_app(Settings(database_url=url, db_pool_size=2, **extra))
    app.config.update(TESTING=True)
    return app


def table_counts(store: Store) -> dict[str, int]:
    with store.read() as tx:
        return {t.name: tx.conn.execute(select(func.count()).select_from(t)).scalar_one() for t in metadata.sorted_tables}


def _identify(client, headers: dict | None = None, **body) -> dict:
    response = client.post("/identify", json=body, headers=headers or {})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def built(db_url):
    """The app (model on) and a group built by /identify and a review:

    1 lorraine, 123456 (new) · 2 mcfly, 123456 (exact: shares the phone) ·
    3 mcfly+dance (the model links it to 2) · 4 doc, 999 (new), then a request with
    lorraine's email and 999 merges 4's group into 1's · 5 a stranger, merged by
    confirming review ``confirmed`` · 6 another stranger, review ``open`` left pending.
    """
    app = _app(db_url)
    client = app.test_client()
    store = app.extensions["reconcile"].store
    token = reviewer(store, "alice")
    _identify(client, email="lorraine@hillvalley.edu", phoneNumber="123456")
    _identify(client, email="mcfly@hillvalley.edu", phoneNumber="123456", name="Marty McFly")
    model = _identify(client, email="McFly+dance@HillValley.edu", name="Marty McFly")
    assert model["match"]["method"] == "probabilistic" and model["match"]["candidateId"] == 2
    _identify(client, email="doc@hillvalley.edu", phoneNumber="999")
    merge = _identify(client, email="lorraine@hillvalley.edu", phoneNumber="999")
    assert merge["match"]["demotedContactIds"] == [4] and merge["match"]["createdContactIds"] == []
    _identify(client, email="strickland@hillvalley.edu", phoneNumber="+14155550101")
    _identify(client, email="goldie@wilson.org", phoneNumber="+14155550102")
    confirmed = open_item(store, 1, 5)
    opened = open_item(store, 1, 6)
    decided = client.post(f"/reviews/{confirmed}/confirm", json={"note": "same family"}, headers=bearer(token))
    assert decided.status_code == 200, decided.get_json()
    assert_sound(store)
    yield client, store, token, {"confirmed": confirmed, "open": opened, "model": model, "merge": merge}
    store.dispose()


def test_a_person_is_the_whole_group_with_how_each_contact_was_linked(built):
    client, store, token, seen = built
    before = table_counts(store)
    for contact_id in (1, 3, 5):
        response = client.get(f"/persons/{contact_id}", headers=bearer(token))
        assert response.status_code == 200
        validate(response, "/persons/{contactId}", "get")
        person = response.get_json()
        assert person["primaryContactId"] == 1
        assert [c["id"] for c in person["contacts"]] == [1, 2, 3, 4, 5]
    contacts = {c["id"]: c for c in person["contacts"]}
    assert person["emails"] == [
        "lorraine@hillvalley.edu", "mcfly@hillvalley.edu", "mcfly+dance@hillvalley.edu",
        "doc@hillvalley.edu", "strickland@hillvalley.edu",
    ]
    assert person["phoneNumbers"] == ["123456", "999", "+14155550101"]
    assert contacts[1]["linkPrecedence"] == "primary" and contacts[1]["link"]["method"] == "new"
    assert contacts[2]["link"]["method"] == "exact" and contacts[2]["linkedId"] == 1
    model_link = contacts[3]["link"]
    assert model_link["method"] == "probabilistic"
    assert model_link["score"] == seen["model"]["match"]["score"]
    assert model_link["modelVersion"] == "default"
    assert model_link["requestId"] == seen["model"]["match"]["requestId"]
    assert contacts[4]["link"]["method"] == "exact"
    assert contacts[4]["link"]["cause"] == f"identify:{seen['merge']['match']['requestId']}"
    review_link = contacts[5]["link"]
    assert review_link["method"] == "review" and review_link["reviewer"] == "alice"
    assert review_link["pendingMergeId"] == seen["confirmed"] and review_link["modelVersion"] == "test-1"
    assert [r["id"] for r in person["openReviews"]] == [seen["open"]]
    assert person["openReviews"][0]["otherPrimaryId"] == 6
    assert table_counts(store) == before


def test_a_person_is_found_by_email_or_phone_normalised_as_identify_does(built):
    client, store, token, _ = built
    before = table_counts(store)
    for query in ("email=%20MCFLY@HillValley.edu%20", "phoneNumber=123456", "email=mailto:doc@hillvalley.edu",
                  "phoneNumber=(415)%20555-0101"):
        response = client.get(f"/persons?{query}", headers=bearer(token))
        assert response.status_code == 200, query
        validate(response, "/persons", "get")
        assert [p["primaryContactId"] for p in response.get_json()["persons"]] == [1], query
    nobody = client.get("/persons?email=nobody@hillvalley.edu", headers=bearer(token))
    assert nobody.status_code == 200 and nobody.get_json()["persons"] == []
    for query in ("", "email=a@x.com&phoneNumber=1", "email=not-an-email", "phoneNumber=n/a", "email="):
        refused = client.get(f"/persons?{query}", headers=bearer(token))
        assert refused.status_code == 400, query
        assert refused.get_json()["error"]["code"] == "invalid_parameter"
        validate(refused, "/persons", "get")
    assert table_counts(store) == before


def test_history_lists_every_change_in_time_order_and_pages(built):
    client, store, token, seen = built
    before = table_counts(store)
    whole = client.get("/persons/2/history?per_page=200", headers=bearer(token))
    assert whole.status_code == 200
    validate(whole, "/persons/{contactId}/history", "get")
    body = whole.get_json()
    entries = body["entries"]
    assert body["total"] == len(entries) and body["pages"] == 1
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)
    audit = [(e["action"], e["contactId"]) for e in entries if e["kind"] == "audit"]
    assert audit == [
        ("created", 1), ("created", 2), ("created", 3), ("demoted", 3), ("created", 4), ("demoted", 4),
        ("created", 5), ("demoted", 5),
    ]
    by_action = {(e["action"], e["contactId"]): e for e in entries if e["kind"] == "audit"}
    model = by_action["demoted", 3]
    assert model["modelVersion"] == "default" and model["score"] == seen["model"]["match"]["score"]
    assert model["requestId"] == seen["model"]["match"]["requestId"]
    assert {c["comparison"] for c in model["evidence"]["comparisons"]} == {"email", "phone", "name"}
    review = by_action["demoted", 5]
    assert (review["reviewer"], review["pendingMergeId"], review["modelVersion"]) == ("alice", seen["confirmed"], "test-1")
    assert by_action["demoted", 4]["requestId"] == seen["merge"]["match"]["requestId"]
    opened = [e["pendingMergeId"] for e in entries if e["kind"] == "review_opened"]
    assert opened == [seen["confirmed"], seen["open"]]
    assert {e["status"] for e in entries if e["kind"] == "review_opened"} == {"confirmed", "pending"}

    paged = []
    for number in range(1, 5):
        page = client.get(f"/persons/5/history?page={number}&per_page=3", headers=bearer(token))
        assert page.status_code == 200
        validate(page, "/persons/{contactId}/history", "get")
        assert page.get_json()["pages"] == -(-len(entries) // 3)
        paged += page.get_json()["entries"]
    assert paged == entries
    assert table_counts(store) == before


def _assert_chain(links: list[dict], start: int, goal: int) -> None:
    assert links[0]["from"] == start and links[-1]["to"] == goal
    assert all(a["to"] == b["from"] for a, b in zip(links, links[1:]))


def test_why_gives_the_chain_of_links_with_each_rule(built):
    client, store, token, seen = built
    before = table_counts(store)

    def why(a: int, b: int) -> list[dict]:
        response = client.get(f"/persons/{a}/why?other={b}", headers=bearer(token))
        assert response.status_code == 200, response.get_json()
        validate(response, "/persons/{contactId}/why", "get")
        assert response.get_json()["primaryContactId"] == 1
        return response.get_json()["links"]

    (shared,) = why(2, 1)
    assert (shared["rule"], shared["field"], shared["value"]) == ("shared-value", "phoneNumber", "123456")
    assert "123456" in shared["description"]

    (model,) = why(3, 2)
    assert model["rule"] == "model" and model["modelVersion"] == "default"
    assert model["score"] == seen["model"]["match"]["score"]
    assert {c["comparison"] for c in model["comparisons"]} == {"email", "phone", "name"}
    assert model["matchWeight"] > 9.9  # above the upper threshold 0.999 (log2 of 999:1)
    assert all(isinstance(c["weight"], float) and c["level"] for c in model["comparisons"])

    (review,) = why(5, 1)
    assert review["rule"] == "review" and review["reviewer"] == "alice"
    assert review["pendingMergeId"] == seen["confirmed"] and review["comparisons"]

    (request,) = why(4, 1)
    assert request["rule"] == "request" and request["requestId"] == seen["merge"]["match"]["requestId"]

    across = why(3, 5)
    _assert_chain(across, 3, 5)
    assert [link["rule"] for link in across] == ["model", "shared-value", "review"]
    assert why(4, 4) == []

    apart = client.get("/persons/1/why?other=6", headers=bearer(token))
    assert apart.status_code == 409 and apart.get_json()["error"]["code"] == "not_linked"
    validate(apart, "/persons/{contactId}/why", "get")
    assert table_counts(store) == before


def test_an_undone_confirmation_is_no_longer_a_link_and_shows_as_a_split(built):
    client, store, token, seen = built
    undone = client.post(f"/reviews/{seen['confirmed']}/undo", headers=bearer(token))
    assert undone.status_code == 200, undone.get_json()
    assert_sound(store)
    assert client.get("/persons/5/why?other=1", headers=bearer(token)).status_code == 409
    assert client.get("/persons/5", headers=bearer(token)).get_json()["primaryContactId"] == 5
    history = client.get("/persons/5/history", headers=bearer(token)).get_json()["entries"]
    promoted = [e for e in history if e["action"] == "promoted"]
    assert [(e["contactId"], e["oldLinkedId"], e["reviewer"]) for e in promoted] == [(5, 1, "alice")]
    assert promoted[0]["cause"] == f"review-undo:{seen['confirmed']}:alice"


def test_nothing_answers_without_credentials_even_when_identify_is_open(built):
    client, store, token, _ = built
    assert client.post("/identify", json={"email": "open@hillvalley.edu"}).status_code == 200
    for url, path in (("/persons/1", "/persons/{contactId}"), ("/persons/1/history", "/persons/{contactId}/history"),
                      ("/persons/1/why?other=2", "/persons/{contactId}/why"), ("/persons?email=lorraine@hillvalley.edu", "/persons")):
        for headers in ({}, bearer("rvw_not-a-token"), {"X-API-Key": "guess"}, {"X-API-Key": token}):
            response = client.get(url, headers=headers)
            assert response.status_code == 401, (url, headers)
            assert response.get_json()["error"]["code"] == "unauthorized"
            validate(response, path, "get")


def test_a_session_or_a_configured_api_key_is_enough(sqlite_db):
    app = _app(sqlite_db, api_keys=("key-one", "key-two"), probabilistic=False)
    client = app.test_client()
    store = app.extensions["reconcile"].store
    reviewer(store, "alice")
    assert client.post("/identify", json={"email": "doc@hillvalley.edu"}, headers={"X-API-Key": "key-one"}).status_code == 200
    assert client.get("/persons/1", headers={"X-API-Key": "key-two"}).status_code == 200
    assert client.get("/persons/1", headers=bearer("key-one")).status_code == 200
    assert client.get("/persons/1", headers={"X-API-Key": "key-three"}).status_code == 401
    assert client.get("/persons/1").status_code == 401
    client.get("/review/login")
    with client.session_transaction("/review/") as sess:
        csrf = sess["csrf"]
    client.post("/review/login", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf})
    assert client.get("/persons/1").status_code == 200
    assert client.get("/persons/1/history").status_code == 200
    store.dispose()


OUT_OF_RANGE_IDS = ["0", "-1", "2147483648", "9223372036854775807", "9223372036854775808",
                    "99999999999999999999999", "abc", "1.5", "%EF%BC%91", "%D9%A3", "1e3", " 1"]


def test_ids_out_of_range_are_404s_or_400s_never_500s(built):
    client, store, token, _ = built
    before = table_counts(store)
    for raw in OUT_OF_RANGE_IDS:
        for url, path in ((f"/persons/{raw}", "/persons/{contactId}"),
                          (f"/persons/{raw}/history", "/persons/{contactId}/history"),
                          (f"/persons/{raw}/why?other=1", "/persons/{contactId}/why")):
            response = client.get(url, headers=bearer(token))
            assert response.status_code == 404, (url, response.get_json())
            validate(response, path, "get")
        other = client.get(f"/persons/1/why?other={raw}", headers=bearer(token))
        assert other.status_code in (400, 404), (raw, other.get_json())
        validate(other, "/persons/{contactId}/why", "get")
    unknown = client.get("/persons/2147483647", headers=bearer(token))
    assert unknown.status_code == 404 and unknown.get_json()["error"]["code"] == "not_found"
    assert client.get("/persons/1/why?other=", headers=bearer(token)).status_code == 400
    for query in ("page=0", "page=1000000001", "per_page=0", "per_page=201", "page=99999999999999999999", "per_page=-1"):
        response = client.get(f"/persons/1/history?{query}", headers=bearer(token))
        assert response.status_code == 400, query
        validate(response, "/persons/{contactId}/history", "get")
    last = client.get("/persons/1/history?page=1000000000&per_page=200", headers=bearer(token))
    assert last.status_code == 200 and last.get_json()["entries"] == []
    assert table_counts(store) == before


def test_every_documented_persons_response_is_a_real_one(built, tmp_path):
    """Each status the document gives for /persons has a real answer validated against it
    (the tests above validate the same; this one fails when a documented status has none)."""
    client, store, token, seen = built
    documented = {
        (path, status) for path in PERSON_PATHS for status in DOC["paths"][path]["get"]["responses"]
    }
    covered = set()

    def check(url: str, path: str, headers=None) -> None:
        response = client.get(url, headers=bearer(token) if headers is None else headers)
        covered.add(validate(response, path, "get")[::2])

    for url, path in (("/persons?email=doc@hillvalley.edu", "/persons"), ("/persons?email=x", "/persons"),
                      ("/persons/1", "/persons/{contactId}"), ("/persons/99", "/persons/{contactId}"),
                      ("/persons/1/history", "/persons/{contactId}/history"),
                      ("/persons/1/history?page=0", "/persons/{contactId}/history"),
                      ("/persons/99/history", "/persons/{contactId}/history"),
                      ("/persons/1/why?other=3", "/persons/{contactId}/why"),
                      ("/persons/1/why?other=x", "/persons/{contactId}/why"),
                      ("/persons/1/why?other=99", "/persons/{contactId}/why"),
                      ("/persons/1/why?other=6", "/persons/{contactId}/why")):
        check(url, path)
        check(url, path, headers={})  # 401
    wrong_method = client.post("/persons/1", headers=bearer(token))
    assert wrong_method.status_code == 405
    for path in PERSON_PATHS:
        validate(wrong_method, path, "get", "default")
        covered.add((path, "default"))
    down = _app("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2", probabilistic=False, api_keys=("k",))
    try:
        for url, path in (("/persons?phoneNumber=999", "/persons"), ("/persons/1", "/persons/{contactId}"),
                          ("/persons/1/history", "/persons/{contactId}/history"),
                          ("/persons/1/why?other=2", "/persons/{contactId}/why")):
            response = down.test_client().get(url, headers={"X-API-Key": "k"})
            assert response.status_code == 503
            validate(response, path, "get")
            covered.add((path, "503"))
    finally:
        down.extensions["reconcile"].store.dispose()
    assert documented - covered == set()


# --- the chain is always a real one ---------------------------------------------------

_EMAILS = st.sampled_from([None, "ann", "bob", "cy", "dee"])
_PHONES = st.sampled_from([None, "111", "222", "333", "444"])
_REQUESTS = st.lists(st.tuples(_EMAILS, _PHONES).filter(lambda r: r != (None, None)), min_size=1, max_size=10)


@pytest.fixture(scope="module")
def shared_app(tmp_path_factory):
    """One database for every example: each example's values carry its own tag, so the
    groups of different examples never meet."""
    url = f"sqlite:///{tmp_path_factory.mktemp('persons-property') / 'reconcile.db'}"
    upgrade(url)
    app = _app(url, probabilistic=False, api_keys=("k",))
    yield app, itertools.count(1)
    app.extensions["reconcile"].store.dispose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=_REQUESTS)
def test_why_joins_every_pair_of_a_group_by_real_links_and_no_pair_across_groups(shared_app, requests):
    """After any sequence of exact-only requests: for each pair of contacts of one group,
    the chain starts and ends at them, each step joins two contacts of the group, and each
    shared-value step names a value both really hold; a pair from two groups is a 409."""
    app, examples = shared_app
    tag = next(examples)
    client = app.test_client()
    key = {"X-API-Key": "k"}
    created: list[int] = []
    for email, phone in requests:
        body = {"email": f"{email}.{tag}@hillvalley.edu" if email else None, "phoneNumber": f"{phone}{tag}" if phone else None}
        created += _identify(client, key, **body)["match"]["createdContactIds"]
    groups, contacts = {}, {}
    for contact_id in created:
        person = client.get(f"/persons/{contact_id}", headers=key).get_json()
        groups[contact_id] = person["primaryContactId"]
        contacts.update({c["id"]: c for c in person["contacts"]})
    for a in created:
        for b in created:
            response = client.get(f"/persons/{a}/why?other={b}", headers=key)
            if groups[a] != groups[b]:
                assert response.status_code == 409
                continue
            links = response.get_json()["links"]
            if a == b:
                assert links == []
                continue
            _assert_chain(links, a, b)
            for link in links:
                assert link["rule"] in ("shared-value", "request", "created")
                assert groups[link["from"]] == groups[link["to"]] == groups[a]
                if link["rule"] == "shared-value":
                    assert contacts[link["from"]][link["field"]] == contacts[link["to"]][link["field"]] == link["value"]
