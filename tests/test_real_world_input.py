"""Real checkout input through HTTP, on SQLite and PostgreSQL: noisy forms of one phone or
email link as that value, and one unreadable identifier never loses the request.

An unreadable value is answered around (on the other identifier), kept as data on the
contact the request creates, and never linked on: not a key, not a blocking key, not in
the answer's ``emails`` or ``phoneNumbers``. Only a request with no usable identifier
is refused, and then nothing is written.
"""
from __future__ import annotations

import pytest
from conftest import assert_sound, rows
from sqlalchemy import insert

from reconcile.config import Settings
from reconcile.store.invariants import check
from reconcile.store.schema import contact
from reconcile.web import create_app


@pytest.fixture
def api(db_url):
    app = create_app(Settings(database_url=db_url, probabilistic=False))
    app.config.update(TESTING=True)
    yield app
    app.extensions["reconcile"].store.dispose()


@pytest.fixture
def client(api):
    return api.test_client()


@pytest.fixture
def store(api):
    return api.extensions["reconcile"].store


def post(client, body: dict) -> dict:
    response = client.post("/identify", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def contact_row(store, contact_id: int):
    (row,) = [r for r in rows(store, contact) if r.id == contact_id]
    return row


# --- noisy forms link as one value ------------------------------------------------------------


def test_noisy_forms_of_one_phone_all_join_the_first_contact(client, store):
    first = post(client, {"email": "doc@hillvalley.edu", "phoneNumber": "+1 415 555 2671"})
    primary = first["contact"]["primaryContactId"]
    for noisy in (
        "tel:+1-415-555-2671",
        "tel:+1-415-555-2671;ext=12",
        "'415-555-2671",
        "415\u00a0555\u00a02671",
        "+1\u202f415\u2009555\u20092671",
        "(415) 555-2671 ext. 12",
        "415-555-2671 x12",
        "415-555-2671#12",
        "415-555-2671,,244",
        "415-555-2671;244",
    ):
        answer = post(client, {"phoneNumber": noisy})
        assert answer["contact"]["primaryContactId"] == primary, noisy
        assert answer["contact"]["phoneNumbers"] == ["+14155552671"], noisy
        assert answer["match"]["createdContactIds"] == [], noisy
        assert answer["match"]["warnings"] == [], noisy
    assert_sound(store)


def test_short_phone_with_an_extension_or_apostrophe_links_as_its_digits(client, store):
    first = post(client, {"email": "lorraine@hillvalley.edu", "phoneNumber": 123456})
    for noisy in ("'123456", "tel:123456", "123456 ext. 7", "123 456\u00a0x7"):
        answer = post(client, {"phoneNumber": noisy})
        assert answer["contact"] == first["contact"], noisy
    assert_sound(store)


def test_noisy_forms_of_one_email_all_join_the_first_contact(client, store):
    first = post(client, {"email": "jos\u00e9@hillvalley.edu"})  # composed é
    primary = first["contact"]["primaryContactId"]
    for noisy in (
        "jose\u0301@hillvalley.edu",  # decomposed: e + combining acute
        "JOS\u00c9 @ HillValley.edu",
        "mailto:jos\u00e9@hillvalley.edu",
        "MAILTO:jos\u00e9@hillvalley.edu",
        "<jos\u00e9@hillvalley.edu>",
        "Jos\u00e9 Garc\u00eda <jos\u00e9@hillvalley.edu>",
        "jos\u00e9@hillvalley.edu.",
        "\u00a0jos\u00e9@hillvalley.edu\t",
    ):
        answer = post(client, {"email": noisy})
        assert answer["contact"]["primaryContactId"] == primary, noisy
        assert answer["contact"]["emails"] == ["jos\u00e9@hillvalley.edu"], noisy
        assert answer["match"]["createdContactIds"] == [], noisy
    assert_sound(store)


# --- one unreadable identifier ----------------------------------------------------------------


def test_good_email_with_an_unreadable_phone_is_answered_on_the_email_and_keeps_the_phone_as_data(client, store):
    answer = post(client, {"email": "marty@hillvalley.edu", "phoneNumber": "call me maybe"})
    assert answer["contact"]["emails"] == ["marty@hillvalley.edu"]
    assert answer["contact"]["phoneNumbers"] == []
    [created] = answer["match"]["createdContactIds"]
    [warning] = answer["match"]["warnings"]
    assert warning["field"] == "phoneNumber"
    assert warning["code"] == "unreadable_phone"
    assert warning["message"]

    row = contact_row(store, created)
    assert row.unreadablePhone == "call me maybe"
    assert row.unreadableEmail is None
    assert row.phoneNumber is None
    assert (row.phoneNational, row.phoneTail) == (None, None)  # never a blocking key
    assert_sound(store)


def test_the_same_unreadable_phone_never_links_two_people(client, store):
    a = post(client, {"email": "marty@hillvalley.edu", "phoneNumber": "n/a"})
    b = post(client, {"email": "biff@hillvalley.edu", "phoneNumber": "n/a"})
    assert a["contact"]["primaryContactId"] != b["contact"]["primaryContactId"]
    assert b["match"]["method"] == "new"
    assert b["contact"]["phoneNumbers"] == []
    assert [r.unreadablePhone for r in rows(store, contact)] == ["n/a", "n/a"]
    assert_sound(store)


def test_good_phone_with_an_unreadable_email_is_answered_on_the_phone(client, store):
    answer = post(client, {"email": "doc at hillvalley", "phoneNumber": "919191"})
    assert answer["contact"]["emails"] == []
    assert answer["contact"]["phoneNumbers"] == ["919191"]
    assert [w["code"] for w in answer["match"]["warnings"]] == ["unreadable_email"]
    [created] = answer["match"]["createdContactIds"]
    assert contact_row(store, created).unreadableEmail == "doc at hillvalley"


def test_a_known_email_with_an_unreadable_phone_creates_nothing_for_the_junk(client, store):
    first = post(client, {"email": "george@hillvalley.edu", "phoneNumber": "919191"})
    before = store.counts()
    answer = post(client, {"email": "george@hillvalley.edu", "phoneNumber": "12ab34"})
    assert answer["contact"] == first["contact"]
    assert answer["match"]["createdContactIds"] == []
    assert [w["code"] for w in answer["match"]["warnings"]] == ["unreadable_phone"]
    assert store.counts() == before


def test_an_unreadable_value_with_characters_a_database_cannot_hold_is_kept_sanitised(client, store):
    """NUL and lone surrogates cannot be stored in PostgreSQL text; the request still succeeds."""
    response = client.post(
        "/identify",
        data=b'{"email": "lorraine@hillvalley.edu", "phoneNumber": "12\\u00003\\ud800"}',
        content_type="application/json",
    )
    assert response.status_code == 200, response.get_json()
    [created] = response.get_json()["match"]["createdContactIds"]
    assert contact_row(store, created).unreadablePhone == "12\ufffd3\ufffd"


def test_an_absurdly_long_unreadable_value_is_cut_to_the_column(client, store):
    answer = post(client, {"email": "x" * 400 + "@hillvalley.edu", "phoneNumber": "717171"})
    [created] = answer["match"]["createdContactIds"]
    assert contact_row(store, created).unreadableEmail == ("x" * 400)[:320]


def test_every_answer_carries_a_warnings_list(client):
    assert post(client, {"email": "doc@hillvalley.edu", "phoneNumber": "123456"})["match"]["warnings"] == []
    assert post(client, {"phoneNumber": "123456"})["match"]["warnings"] == []


# --- no usable identifier ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"phoneNumber": "call me maybe"},
        {"email": "doc at hillvalley"},
        {"email": "doc at hillvalley", "phoneNumber": "n/a"},
        {"email": None, "phoneNumber": "12ab34", "name": "Doc Brown"},
    ],
)
def test_a_request_with_only_unreadable_values_is_a_400_and_writes_nothing(client, store, body):
    post(client, {"email": "doc@hillvalley.edu", "phoneNumber": "123456"})
    before = store.counts()
    response = client.post("/identify", json=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_input" and error["message"]
    assert store.counts() == before


# --- reconcile check ---------------------------------------------------------------------------


def test_check_reports_a_live_contact_that_holds_only_an_unreadable_value(client, store):
    post(client, {"email": "doc@hillvalley.edu", "phoneNumber": "123456"})
    assert check(store) == []
    (row,) = rows(store, contact)
    with store.engine.begin() as conn:
        conn.execute(
            insert(contact).values(
                linkPrecedence="primary", createdAt=row.createdAt, updatedAt=row.createdAt,
                linkMethod="new", unreadablePhone="n/a",
            )
        )
    assert "identifier" in {v.check for v in check(store)}
