"""Scenarios in the style of the public client suites for this contract, through HTTP.

Client suites are black boxes: they POST to ``/identify`` with the addresses test
suites use (``example.com``, ``example.org``, ``example.net``, ``test.com``) and short
phones (``"1"``, ``"2"``, ``"111"``), and check only the ``contact`` object the contract
defines. Every scenario runs on SQLite and on PostgreSQL against the service with its
default settings (the probabilistic stage on), as a client would meet it; the
invariants are checked after each one.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import assert_sound
from sqlalchemy import select

from reconcile.config import Settings
from reconcile.store.schema import contact
from reconcile.web import create_app


@pytest.fixture
def api(db_url):
    app = create_app(Settings(database_url=db_url))
    app.config.update(TESTING=True)
    yield app
    assert_sound(app.extensions["reconcile"].store)
    app.extensions["reconcile"].store.dispose()


@pytest.fixture
def client(api):
    return api.test_client()


def post(client, body: dict) -> dict:
    """POST /identify as a client suite does: a 200 with a JSON ``contact`` object."""
    response = client.post("/identify", json=body)
    assert response.status_code == 200, response.get_json()
    assert response.is_json
    return response.get_json()["contact"]


def created(client, body: dict) -> list[int]:
    """The ids of the contacts this request created, from the answer's ``match`` object."""
    response = client.post("/identify", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["match"]["createdContactIds"]


def contact_count(api) -> int:
    with api.extensions["reconcile"].store.read() as tx:
        return len(tx.conn.execute(select(contact.c.id)).all())


# --- first contact and the seed's worked examples on example.com ---------------------


def test_a_first_request_creates_a_primary_contact(client):
    assert post(client, {"email": "a@example.com", "phoneNumber": "1"}) == {
        "primaryContactId": 1,
        "emails": ["a@example.com"],
        "phoneNumbers": ["1"],
        "secondaryContactIds": [],
    }


def test_lorraine_and_mcfly_on_example_com_come_out_as_the_seed_writes(client):
    post(client, {"email": "lorraine@example.com", "phoneNumber": "123456"})
    expected = {
        "primaryContactId": 1,
        "emails": ["lorraine@example.com", "mcfly@example.com"],
        "phoneNumbers": ["123456"],
        "secondaryContactIds": [2],
    }
    assert post(client, {"email": "mcfly@example.com", "phoneNumber": "123456"}) == expected


@pytest.mark.parametrize(
    "body",
    [
        {"email": None, "phoneNumber": "123456"},
        {"email": "lorraine@example.com", "phoneNumber": None},
        {"email": "mcfly@example.com", "phoneNumber": None},
        {"email": "mcfly@example.com", "phoneNumber": "123456"},
    ],
)
def test_every_lookup_of_the_seed_group_returns_the_whole_group(api, client, body):
    post(client, {"email": "lorraine@example.com", "phoneNumber": "123456"})
    post(client, {"email": "mcfly@example.com", "phoneNumber": "123456"})
    assert post(client, body) == {
        "primaryContactId": 1,
        "emails": ["lorraine@example.com", "mcfly@example.com"],
        "phoneNumbers": ["123456"],
        "secondaryContactIds": [2],
    }
    assert contact_count(api) == 2


def test_george_and_biffsucks_on_example_com_merge_under_the_older(client):
    assert post(client, {"email": "george@example.com", "phoneNumber": "919191"})["primaryContactId"] == 1
    assert post(client, {"email": "biffsucks@example.com", "phoneNumber": "717171"})["primaryContactId"] == 2
    assert post(client, {"email": "george@example.com", "phoneNumber": "717171"}) == {
        "primaryContactId": 1,
        "emails": ["george@example.com", "biffsucks@example.com"],
        "phoneNumbers": ["919191", "717171"],
        "secondaryContactIds": [2],
    }


@pytest.mark.parametrize("address", ["a@example.com", "test@example.org", "x@example.net", "test@test.com", "abc@test.com"])
def test_two_orders_from_a_test_suite_address_link(client, address):
    first = post(client, {"email": address, "phoneNumber": "5550001"})
    assert post(client, {"email": address, "phoneNumber": "5550002"}) == {
        "primaryContactId": first["primaryContactId"],
        "emails": [address],
        "phoneNumbers": ["5550001", "5550002"],
        "secondaryContactIds": [2],
    }


# --- short phones link like any other value ------------------------------------------


@pytest.mark.parametrize("phone", ["1", "2", "111"])
def test_a_short_phone_shared_by_two_emails_links_them(client, phone):
    post(client, {"email": "a@example.com", "phoneNumber": phone})
    assert post(client, {"email": "b@example.com", "phoneNumber": phone}) == {
        "primaryContactId": 1,
        "emails": ["a@example.com", "b@example.com"],
        "phoneNumbers": [phone],
        "secondaryContactIds": [2],
    }


def test_a_short_phone_alone_finds_its_group(client):
    post(client, {"email": "a@example.com", "phoneNumber": "1"})
    post(client, {"email": "a@example.com", "phoneNumber": "2"})
    assert post(client, {"phoneNumber": "2"}) == {
        "primaryContactId": 1,
        "emails": ["a@example.com"],
        "phoneNumbers": ["1", "2"],
        "secondaryContactIds": [2],
    }


# --- merging two primaries -------------------------------------------------------------


def two_groups_with_secondaries(client) -> None:
    """Group 1: ids 1 and 3; group 2: ids 2 and 4, created alternately."""
    post(client, {"email": "a@example.com", "phoneNumber": "1"})
    post(client, {"email": "b@example.com", "phoneNumber": "2"})
    post(client, {"email": "a@example.com", "phoneNumber": "3"})
    post(client, {"email": "b@example.com", "phoneNumber": "4"})


MERGED = {
    "primaryContactId": 1,
    "emails": ["a@example.com", "b@example.com"],
    "phoneNumbers": ["1", "2", "3", "4"],
    "secondaryContactIds": [2, 3, 4],
}


def test_a_request_joining_two_primaries_keeps_the_older_and_lists_secondaries_ascending(client):
    two_groups_with_secondaries(client)
    assert post(client, {"email": "a@example.com", "phoneNumber": "2"}) == MERGED


def test_the_older_primary_wins_whichever_field_points_at_it(client):
    two_groups_with_secondaries(client)
    assert post(client, {"email": "b@example.com", "phoneNumber": "1"}) == MERGED


def test_a_merge_bringing_nothing_new_creates_no_contact(api, client):
    two_groups_with_secondaries(client)
    assert created(client, {"email": "a@example.com", "phoneNumber": "4"}) == []
    assert contact_count(api) == 4


@pytest.mark.parametrize(
    "lookup",
    [{"email": "b@example.com"}, {"phoneNumber": "4"}, {"phoneNumber": 2}, {"email": "a@example.com", "phoneNumber": "3"}],
)
def test_after_a_merge_every_identifier_of_both_groups_answers_with_the_older_primary(client, lookup):
    two_groups_with_secondaries(client)
    post(client, {"email": "a@example.com", "phoneNumber": "2"})
    assert post(client, lookup) == MERGED


def test_after_a_merge_every_secondary_points_straight_at_the_primary(api, client):
    two_groups_with_secondaries(client)
    post(client, {"email": "a@example.com", "phoneNumber": "2"})
    with api.extensions["reconcile"].store.read() as tx:
        links = tx.conn.execute(select(contact.c.id, contact.c.linkedId, contact.c.linkPrecedence)).all()
    assert sorted(tuple(r) for r in links) == [
        (1, None, "primary"),
        (2, 1, "secondary"),
        (3, 1, "secondary"),
        (4, 1, "secondary"),
    ]


def test_three_groups_merge_one_after_another_under_the_oldest(client):
    post(client, {"email": "a@example.com", "phoneNumber": "1"})
    post(client, {"email": "b@example.com", "phoneNumber": "2"})
    post(client, {"email": "c@example.com", "phoneNumber": "3"})
    post(client, {"email": "c@example.com", "phoneNumber": "2"})  # 3 joins 2
    assert post(client, {"email": "b@example.com", "phoneNumber": "1"}) == {  # 2 joins 1
        "primaryContactId": 1,
        "emails": ["a@example.com", "b@example.com", "c@example.com"],
        "phoneNumbers": ["1", "2", "3"],
        "secondaryContactIds": [2, 3],
    }


# --- what the answer lists, and in which order ---------------------------------------------


def test_values_are_distinct_the_primarys_first_then_in_creation_order(client):
    post(client, {"email": "p@example.com", "phoneNumber": "100"})
    post(client, {"email": "q@example.com", "phoneNumber": "100"})
    post(client, {"email": "p@example.com", "phoneNumber": "200"})
    assert post(client, {"email": "r@example.com", "phoneNumber": "200"}) == {
        "primaryContactId": 1,
        "emails": ["p@example.com", "q@example.com", "r@example.com"],
        "phoneNumbers": ["100", "200"],
        "secondaryContactIds": [2, 3, 4],
    }


def test_a_primary_without_a_phone_lists_only_real_phones(client):
    post(client, {"email": "a@example.com"})
    assert post(client, {"email": "a@example.com", "phoneNumber": "1"}) == {
        "primaryContactId": 1,
        "emails": ["a@example.com"],
        "phoneNumbers": ["1"],
        "secondaryContactIds": [2],
    }


# --- requests that bring nothing new ---------------------------------------------------------


@pytest.mark.parametrize(
    "again",
    [
        {"email": "a@example.com", "phoneNumber": "1"},
        {"email": "a@example.com"},
        {"phoneNumber": "1"},
        {"email": "b@example.com", "phoneNumber": "2"},
    ],
)
def test_a_request_bringing_nothing_new_creates_nothing(api, client, again):
    post(client, {"email": "a@example.com", "phoneNumber": "1"})
    post(client, {"email": "b@example.com", "phoneNumber": "1"})
    post(client, {"email": "b@example.com", "phoneNumber": "2"})
    before = post(client, {"email": "a@example.com"})
    assert created(client, again) == []
    assert post(client, again) == before
    assert contact_count(api) == 3


# --- how values are sent -------------------------------------------------------------------------


def test_a_phone_sent_as_a_number_is_the_same_phone_as_its_string(api, client):
    first = post(client, {"email": "a@example.com", "phoneNumber": 123456})
    assert first["phoneNumbers"] == ["123456"]
    assert post(client, {"email": "a@example.com", "phoneNumber": "123456"}) == first
    assert post(client, {"phoneNumber": 123456}) == first
    assert contact_count(api) == 1


def test_a_number_phone_links_a_new_email_to_the_string_phones_group(client):
    post(client, {"email": "a@example.com", "phoneNumber": "111"})
    assert post(client, {"email": "b@example.com", "phoneNumber": 111})["secondaryContactIds"] == [2]


@pytest.mark.parametrize("field,value", [("email", "a@example.com"), ("phoneNumber", "1")])
def test_a_null_field_and_an_absent_field_give_the_same_answer(api, client, field, value):
    post(client, {"email": "a@example.com", "phoneNumber": "1"})
    other = "phoneNumber" if field == "email" else "email"
    with_null = post(client, {field: value, other: None})
    assert post(client, {field: value}) == with_null
    assert with_null["primaryContactId"] == 1
    assert contact_count(api) == 1


def test_an_email_differing_only_in_case_and_spaces_is_the_same_email(client):
    post(client, {"email": "a@example.com", "phoneNumber": "1"})
    assert post(client, {"email": "  A@Example.COM ", "phoneNumber": "2"}) == {
        "primaryContactId": 1,
        "emails": ["a@example.com"],
        "phoneNumbers": ["1", "2"],
        "secondaryContactIds": [2],
    }


@pytest.mark.parametrize("body", [{}, {"email": None, "phoneNumber": None}, {"email": "", "phoneNumber": ""}])
def test_a_request_with_neither_identifier_is_a_400_and_writes_nothing(api, client, body):
    response = client.post("/identify", json=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] and error["message"]
    assert contact_count(api) == 0


# --- the same request twice at once -------------------------------------------------------------


def send_together(api, bodies: list[dict]) -> list[dict]:
    """Each body from its own thread and test client, released at the same instant."""
    barrier = threading.Barrier(len(bodies))

    def send(body: dict) -> dict:
        client = api.test_client()
        barrier.wait()
        return post(client, body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(send, bodies))


@pytest.mark.parametrize("round_", range(3))
def test_the_same_new_request_sent_twice_at_once_creates_one_contact(api, round_):
    body = {"email": f"twice{round_}@example.com", "phoneNumber": str(round_ + 1)}
    first, second = send_together(api, [body, body])
    assert first == second == {
        "primaryContactId": 1,
        "emails": [body["email"]],
        "phoneNumbers": [body["phoneNumber"]],
        "secondaryContactIds": [],
    }
    assert contact_count(api) == 1


def test_the_same_linking_request_sent_twice_at_once_adds_one_secondary(api, client):
    post(client, {"email": "a@example.com", "phoneNumber": "1"})
    body = {"email": "b@example.com", "phoneNumber": "1"}
    first, second = send_together(api, [body, body])
    assert first == second == {
        "primaryContactId": 1,
        "emails": ["a@example.com", "b@example.com"],
        "phoneNumbers": ["1"],
        "secondaryContactIds": [2],
    }
    assert contact_count(api) == 2
