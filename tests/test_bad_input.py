"""Malformed requests get one JSON error shape with the right status, and write nothing."""
from __future__ import annotations

import json

import pytest

from reconcile.config import Settings
from reconcile.web.app import MAX_BODY_BYTES


@pytest.fixture
def settings(sqlite_db) -> Settings:
    """Exact rules only: validation happens before any stage, and needs no model file."""
    return Settings(database_url=sqlite_db, probabilistic=False)


@pytest.fixture
def seeded(client, store):
    """A database with something in it, so "unchanged" is not trivially "empty"."""
    assert client.post("/identify", json={"email": "doc@hillvalley.edu", "phoneNumber": "123456"}).status_code == 200
    assert client.post("/identify", json={"email": "marty@hillvalley.edu", "phoneNumber": "123456"}).status_code == 200
    return store


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def post_raw(client, data, content_type="application/json"):
    return client.post("/identify", data=data, content_type=content_type)


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"{email: 'a@x.com'}",
        b'{"email": "a@x.com"',
        b"\xff\xfe\x00garbage",
        b'{"email": "a@x.com"} trailing',
        b"email=a%40x.com&phoneNumber=123456",
        b"[" * 50_000,  # nested too deep for the decoder: still the client's fault
        b'{"a":' * 10_000,
    ],
    ids=["text", "js-object", "truncated", "binary", "trailing", "form", "deep-array", "deep-object"],
)
def test_non_json_body_is_a_400_invalid_json_and_writes_nothing(client, seeded, data):
    before = seeded.counts()
    assert_error(post_raw(client, data), 400, "invalid_json")
    assert seeded.counts() == before


def test_form_encoded_body_is_rejected_even_with_a_form_content_type(client, seeded):
    before = seeded.counts()
    response = post_raw(client, b"email=a%40x.com", "application/x-www-form-urlencoded")
    assert_error(response, 400, "invalid_json")
    assert seeded.counts() == before


@pytest.mark.parametrize("data", [b"", b"   ", b"\n\t"])
def test_empty_body_is_a_400_that_says_the_body_is_empty(client, seeded, data):
    before = seeded.counts()
    error = assert_error(post_raw(client, data), 400, "invalid_json")
    assert "empty" in error["message"]
    assert seeded.counts() == before


@pytest.mark.parametrize(
    "data",
    [b"[]", b'[{"email": "a@x.com"}]', b'"a@x.com"', b"123456", b"1.5", b"null", b"true"],
)
def test_json_body_that_is_not_an_object_is_a_400(client, seeded, data):
    before = seeded.counts()
    error = assert_error(post_raw(client, data), 400)
    assert "object" in error["message"]
    assert seeded.counts() == before


@pytest.mark.parametrize(
    "body, field",
    [
        ({"phoneNumber": 123456.0}, "phoneNumber"),
        ({"phoneNumber": 1.5}, "phoneNumber"),
        ({"phoneNumber": True}, "phoneNumber"),
        ({"phoneNumber": False}, "phoneNumber"),
        ({"phoneNumber": {"number": "123456"}}, "phoneNumber"),
        ({"phoneNumber": ["123456"]}, "phoneNumber"),
        ({"phoneNumber": -123456}, "phoneNumber"),
        ({"phoneNumber": "12ab34"}, "phoneNumber"),
        ({"email": 42}, "email"),
        ({"email": True}, "email"),
        ({"email": ["a@x.com"]}, "email"),
        ({"email": {"address": "a@x.com"}}, "email"),
        ({"email": "a@x.com", "name": 7}, "name"),
        # a bad field fails the request even when the other one is fine
        ({"email": "doc@hillvalley.edu", "phoneNumber": 1.5}, "phoneNumber"),
        ({"email": 1, "phoneNumber": "123456"}, "email"),
    ],
)
def test_wrong_json_type_is_a_400_naming_the_field(client, seeded, body, field):
    before = seeded.counts()
    error = assert_error(client.post("/identify", json=body), 400, "invalid_input")
    assert error["field"] == field
    assert seeded.counts() == before


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_non_finite_number_as_phone_is_a_400(client, seeded, literal):
    before = seeded.counts()
    assert_error(post_raw(client, b'{"phoneNumber": ' + literal + b"}"), 400)
    assert seeded.counts() == before


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": "a" * 300 + "@x.com"}, "email"),
        ({"email": "a@" + "x" * 5000 + ".com"}, "email"),
        ({"phoneNumber": "1" * 65}, "phoneNumber"),
        ({"phoneNumber": "1" * 25}, "phoneNumber"),
        ({"phoneNumber": 10**40}, "phoneNumber"),
        ({"email": "a@x.com", "name": "N" * 201}, "name"),
    ],
    ids=["email-local", "email-domain", "phone-chars", "phone-digits", "phone-int", "name"],
)
def test_absurdly_long_value_is_a_400(client, seeded, body, field):
    before = seeded.counts()
    error = assert_error(client.post("/identify", json=body), 400, "invalid_input")
    assert error["field"] == field
    assert seeded.counts() == before


def test_integer_with_more_digits_than_python_parses_is_a_400(client, seeded):
    before = seeded.counts()
    assert_error(post_raw(client, b'{"phoneNumber": 1' + b"0" * 5000 + b"}"), 400)
    assert seeded.counts() == before


@pytest.mark.parametrize(
    "raw_json, field",
    [
        (rb'{"email": "a\u0000@x.com"}', "email"),
        (rb'{"email": "a@x.com\u0000"}', "email"),
        (rb'{"email": "a\u0007b@x.com"}', "email"),
        (rb'{"email": "a\u200bb@x.com"}', "email"),
        (rb'{"email": "\ud800@x.com"}', "email"),  # lone surrogate
        (rb'{"phoneNumber": "123\u0000456"}', "phoneNumber"),
        (rb'{"phoneNumber": "123\n456"}', "phoneNumber"),
        (rb'{"email": "a@x.com", "name": "Doc\u0000"}', "name"),
        (rb'{"email": "a@x.com", "name": "Doc\u001bBrown"}', "name"),
    ],
)
def test_control_characters_are_a_400(client, seeded, raw_json, field):
    before = seeded.counts()
    error = assert_error(post_raw(client, raw_json), 400, "invalid_input")
    assert error["field"] == field
    assert seeded.counts() == before


MALFORMED_EMAILS = ["doc.hillvalley.edu", "@hillvalley.edu", "doc@", "@", "doc@@hillvalley.edu", "d oc@hillvalley.edu",
                    "doc@hill..valley.edu", "doc@."]


@pytest.mark.parametrize("email", MALFORMED_EMAILS)
def test_email_without_at_or_with_an_empty_side_is_a_400_when_it_is_the_only_identifier(client, seeded, email):
    before = seeded.counts()
    error = assert_error(client.post("/identify", json={"email": email}), 400, "invalid_input")
    assert error["field"] == "email"
    assert seeded.counts() == before


@pytest.mark.parametrize("email", MALFORMED_EMAILS)
def test_malformed_email_beside_a_readable_phone_is_answered_on_the_phone_with_a_warning(client, seeded, email):
    before = seeded.counts()
    response = client.post("/identify", json={"email": email, "phoneNumber": "123456"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["contact"]["phoneNumbers"] == ["123456"]
    assert email not in body["contact"]["emails"]
    [warning] = body["match"]["warnings"]
    assert (warning["field"], warning["code"]) == ("email", "unreadable_email")
    assert seeded.counts() == before  # the phone is known: nothing new, nothing created for the junk


@pytest.mark.parametrize(
    "body",
    [
        {"email": "doc.hillvalley.edu", "phoneNumber": "12ab34"},
        {"email": "@", "phoneNumber": "1" * 25},
        {"email": "a\u0000@x.com", "phoneNumber": "abc"},
    ],
)
def test_request_whose_every_identifier_is_unreadable_is_a_400_and_writes_nothing(client, seeded, body):
    before = seeded.counts()
    error = assert_error(client.post("/identify", json=body), 400, "invalid_input")
    assert "no usable identifier" in error["message"]
    assert seeded.counts() == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "Doc Brown"},
        {"email": None, "phoneNumber": None},
        {"email": "", "phoneNumber": ""},
        {"email": "   ", "phoneNumber": " \t "},
        {"email": None},
        {"phoneNumber": ""},
        {"unrelated": "doc@hillvalley.edu"},
    ],
)
def test_request_without_any_identifier_is_a_400(client, seeded, body):
    before = seeded.counts()
    error = assert_error(client.post("/identify", json=body), 400, "invalid_input")
    assert "at least one" in error["message"]
    assert seeded.counts() == before


def test_body_over_64_kib_is_a_413_even_when_it_is_valid_json(client, seeded):
    body = json.dumps({"email": "new@hillvalley.edu", "pad": "x" * MAX_BODY_BYTES}).encode()
    assert len(body) > 64 * 1024
    before = seeded.counts()
    assert_error(post_raw(client, body), 413)
    assert seeded.counts() == before


def test_body_just_under_the_limit_is_read(client, seeded):
    """The 413 is about size, not about the content: pad a valid body to the limit."""
    head = json.dumps({"email": "new@hillvalley.edu", "pad": ""}).encode()
    body = head[:-2] + b" " * (MAX_BODY_BYTES - len(head)) + head[-2:]
    assert len(body) == MAX_BODY_BYTES
    assert client.post("/identify", data=body, content_type="application/json").status_code == 200


def post_chunked(client, body: bytes):
    """A body sent with ``Transfer-Encoding: chunked``, as a server hands it to the app:
    de-chunked, with no length, the stream ended by the server (``wsgi.input_terminated``)."""
    return client.post(
        "/identify",
        data=body,
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_chunked_body_over_64_kib_is_a_413_and_writes_nothing(client, seeded):
    """Padding after the object: its first 64 KiB alone are valid JSON, so a body cut at
    the limit instead of refused would be answered and written."""
    body = json.dumps({"email": "new@hillvalley.edu"}).encode() + b" " * MAX_BODY_BYTES
    before = seeded.counts()
    assert_error(post_chunked(client, body), 413, "request_entity_too_large")
    assert seeded.counts() == before


def test_chunked_body_at_the_limit_is_read(client, seeded):
    head = json.dumps({"email": "chunked@hillvalley.edu", "pad": ""}).encode()
    body = head[:-2] + b" " * (MAX_BODY_BYTES - len(head)) + head[-2:]
    assert len(body) == MAX_BODY_BYTES
    response = post_chunked(client, body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["contact"]["emails"] == ["chunked@hillvalley.edu"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_method_on_identify_is_a_405_json_error_with_allow_header(client, seeded, method):
    before = seeded.counts()
    response = client.open("/identify", method=method, json={"email": "new@hillvalley.edu"})
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers.get("Allow", "")
    assert seeded.counts() == before


@pytest.mark.parametrize("path", ["/identity", "/identify/", "/", "/contacts/1"])
def test_unknown_path_is_a_404_json_error(client, seeded, path):
    before = seeded.counts()
    assert_error(client.post(path, json={"email": "new@hillvalley.edu"}), 404, "not_found")
    assert seeded.counts() == before


def test_failed_requests_leave_the_group_answer_as_it_was(client, seeded):
    """After a barrage of bad requests, the good one answers exactly as before."""
    expected = client.post("/identify", json={"phoneNumber": 123456}).get_json()["contact"]
    for data in (b"", b"[]", b'{"email": 5}', b'{"email": "doc@hillvalley.edu", "phoneNumber": true}'):
        post_raw(client, data)
    assert client.post("/identify", json={"phoneNumber": "123456"}).get_json()["contact"] == expected
    assert expected["secondaryContactIds"] == [2]
