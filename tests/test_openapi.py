"""src/reconcile/openapi.json describes what the service really answers.

Every response below is a real one from the Flask app (SQLite, or a PostgreSQL URL on a
port nobody listens on for the 503s), validated with ``jsonschema`` against the schema
the document gives for that path, method and status. The coverage test fails when a
documented status code has no real response validated against it.
"""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from identify_paths import PATHS, answers
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from reconcile.config import Settings
from reconcile.store.migrate import upgrade
from reconcile.web import create_app
from reconcile.web.app import MAX_BODY_BYTES

DOC_PATH = Path(__file__).resolve().parents[1] / "src" / "reconcile" / "openapi.json"
DOC = json.loads(DOC_PATH.read_text())
DOC_URI = "urn:reconcile:openapi"
REGISTRY = Registry().with_resource(DOC_URI, DRAFT202012.create_resource(DOC))


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _resolve(pointer: str) -> tuple[str, object]:
    """Follow a JSON pointer in the document, and a ``$ref`` at its end (OpenAPI style)."""
    node: object = DOC
    for part in pointer.lstrip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if isinstance(node, dict) and "$ref" in node and len(node) == 1:
        return _resolve(node["$ref"].lstrip("#"))
    return pointer, node


def validator_at(pointer: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"{DOC_URI}#{pointer}"}, registry=REGISTRY)


def schema_pointer(path: str, method: str, status: str) -> str:
    """Where the JSON schema of one documented response is."""
    responses = f"/paths/{_escape(path)}/{method}/responses"
    assert status in DOC["paths"][path][method]["responses"], f"{method.upper()} {path} does not document {status}"
    response_pointer, _ = _resolve(f"{responses}/{status}")
    return f"{response_pointer}/content/application~1json/schema"


DETACH_PATHS = ("/persons/{contactId}/detach", "/persons/detachments/{id}/undo")


def documented() -> set[tuple[str, str, str]]:
    return {
        (path, method, status)
        for path, item in DOC["paths"].items()
        if not path.startswith(("/reviews", "/admin", "/persons"))  # validated in test_reviews_api.py, test_model_admin.py, test_persons_api.py, detach below
        for method, operation in item.items()
        for status in operation["responses"]
    }


def validate(response, path: str, method: str, status: str | None = None) -> tuple[str, str, str]:
    """Validate a real response against its documented schema; return what it covered."""
    status = status or str(response.status_code)
    assert response.mimetype == "application/json", response.get_data(as_text=True)
    errors = sorted(validator_at(schema_pointer(path, method, status)).iter_errors(response.get_json()), key=str)
    assert not errors, f"{method.upper()} {path} {status}: " + "; ".join(e.message for e in errors)
    return path, method, status


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _app(url: str):
    app = create_app(Settings(database_url=url, probabilistic=False, db_pool_size=1))
    app.config.update(TESTING=True)
    return app


@pytest.fixture
def client(sqlite_db):
    app = _app(sqlite_db)
    yield app.test_client()
    app.extensions["reconcile"].store.dispose()


@pytest.fixture
def down_client():
    """An app whose PostgreSQL database is on a port where nothing listens."""
    app = _app(f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/test?connect_timeout=2")
    yield app.test_client()
    app.extensions["reconcile"].store.dispose()


# --- the document itself -----------------------------------------------------------------


def test_document_is_openapi_3_1_with_the_three_paths():
    assert DOC["openapi"].startswith("3.1.")
    assert set(DOC["paths"]) >= {"/identify", "/healthz", "/openapi.json"}
    assert set(DOC["paths"]["/identify"]["post"]["responses"]) >= {"200", "400", "413", "503"}
    assert set(DOC["paths"]["/healthz"]["get"]["responses"]) >= {"200", "503"}


def test_every_component_schema_is_valid_json_schema_2020_12():
    for name, schema in DOC["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)  # raises SchemaError naming the problem
        assert name


def test_every_ref_in_the_document_resolves():
    refs = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(DOC)
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        _resolve(ref[1:])  # KeyError names the broken reference


def test_documented_examples_validate_against_their_schemas():
    operation = DOC["paths"]["/identify"]["post"]
    request = validator_at("/components/schemas/IdentifyRequest")
    for example in operation["requestBody"]["content"]["application/json"]["examples"].values():
        request.validate(example["value"])
    validator_at("/components/schemas/IdentifyResponse").validate(
        operation["responses"]["200"]["content"]["application/json"]["example"]
    )


def test_match_schema_is_strict_and_requires_every_field():
    match = DOC["components"]["schemas"]["Match"]
    assert match["additionalProperties"] is False
    assert set(match["required"]) == set(match["properties"])
    assert match["properties"]["method"]["enum"] == ["new", "exact", "probabilistic"]
    validator = validator_at("/components/schemas/Match")
    nothing_scored = {
        "method": "exact",
        "requestId": "r1",
        "createdContactIds": [],
        "demotedContactIds": [],
        "relinkedContactIds": [],
        "pendingMergeIds": [],
        "guards": [],
        "guardsOmitted": 0,
        "modelVersion": None,
        "score": None,
        "candidateId": None,
        "warnings": [],
    }
    validator.validate(nothing_scored)
    validator.validate(
        {**nothing_scored, "warnings": [{"field": "phoneNumber", "code": "unreadable_phone", "message": "ignored"}]}
    )
    for bad in (
        {**nothing_scored, "someFutureField": True},
        {k: v for k, v in nothing_scored.items() if k != "modelVersion"},
        {k: v for k, v in nothing_scored.items() if k != "warnings"},
        {**nothing_scored, "score": 1.5},
        {**nothing_scored, "candidateId": 0},
        {**nothing_scored, "warnings": [{"field": "phoneNumber", "code": "unreadable_phone"}]},
        {**nothing_scored, "warnings": [{"field": "email", "code": "x", "message": "m", "value": "raw"}]},
        {**nothing_scored, "guards": [{"primaryContactId": 1, "guard": "placeholder", "reason": "r", "extra": 1}]},
        {**nothing_scored, "guards": [{"primaryContactId": i, "guard": "placeholder", "reason": "r"} for i in range(1, 12)]},
        {**nothing_scored, "guardsOmitted": -1},
    ):
        with pytest.raises(ValidationError):
            validator.validate(bad)


def test_contact_schema_rejects_what_the_contract_forbids():
    contact = validator_at("/components/schemas/Contact")
    good = {"primaryContactId": 1, "emails": ["a@x.com"], "phoneNumbers": ["123456"], "secondaryContactIds": [2]}
    contact.validate(good)
    for bad in (
        {**good, "primaryContatctId": 1},  # the seed README's typo is not part of the contract
        {**good, "emails": ["a@x.com", "a@x.com"]},
        {**good, "phoneNumbers": [123456]},
        {**good, "secondaryContactIds": ["2"]},
        {k: v for k, v in good.items() if k != "secondaryContactIds"},
    ):
        with pytest.raises(ValidationError):
            contact.validate(bad)


def test_served_document_is_the_file(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.get_json() == DOC
    validate(response, "/openapi.json", "get")


# --- real responses -------------------------------------------------------------------------


def test_identify_200_responses_validate_for_new_exact_and_merge(client):
    seen_methods = set()
    for body in (
        {"email": "george@hillvalley.edu", "phoneNumber": "919191"},
        {"email": "biffsucks@hillvalley.edu", "phoneNumber": 717171},
        {"email": "biff@hillvalley.edu", "phoneNumber": "717171", "name": "Biff Tannen"},
        {"email": "George@HillValley.edu ", "phoneNumber": "717171"},  # merges the two groups
        {"phoneNumber": 919191},
        {"email": "george@hillvalley.edu", "phoneNumber": None},
    ):
        response = client.post("/identify", json=body)
        assert response.status_code == 200
        validate(response, "/identify", "post")
        seen_methods.add(response.get_json()["match"]["method"])
    merged = client.post("/identify", json={"phoneNumber": "717171"}).get_json()
    assert merged["contact"]["primaryContactId"] == 1
    assert seen_methods == {"new", "exact"}


@pytest.fixture(params=[True, False], ids=["model", "exact-only"])
def any_client(request, sqlite_db):
    """The service with the shipped model on, and exact-only."""
    app = create_app(Settings(database_url=sqlite_db, probabilistic=request.param, db_pool_size=1))
    app.config.update(TESTING=True)
    yield app.test_client()
    app.extensions["reconcile"].store.dispose()


@pytest.mark.parametrize("path", list(PATHS))
def test_every_answer_on_every_identify_path_validates_against_the_strict_schema(any_client, path):
    """New primary, exact link, look-up, merge, model link (alone and after an exact
    link), review, guard: every answer of each sequence, with the model on and off."""
    for response in answers(any_client, path):
        validate(response, "/identify", "post")


def test_the_identify_paths_reach_every_method_and_every_kind_of_field(tmp_path):
    """The sequences above are worth validating: between them they send every method,
    each list both empty and not, and score and candidateId both set and null."""
    methods, kinds = set(), {}
    for number, path in enumerate(PATHS):
        url = f"sqlite:///{tmp_path / f'path{number}.db'}"
        upgrade(url)
        app = create_app(Settings(database_url=url, probabilistic=True, db_pool_size=1))
        try:
            for response in answers(app.test_client(), path):
                match = response.get_json()["match"]
                methods.add(match["method"])
                for name, value in match.items():
                    kinds.setdefault(name, set()).add(value in ([], None))
        finally:
            app.extensions["reconcile"].store.dispose()
    assert methods == {"new", "exact", "probabilistic"}
    for name in ("createdContactIds", "demotedContactIds", "relinkedContactIds", "pendingMergeIds", "guards", "score", "candidateId"):
        assert kinds[name] == {True, False}, name


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"[]", b'{"email": 5}', b'{"phoneNumber": 1.5}', b'{"email": "no-at"}', b"{}",
     b'{"email": "a\\u0000@x.com"}'],
)
def test_identify_400_responses_validate(client, data):
    response = client.post("/identify", data=data, content_type="application/json")
    assert response.status_code == 400
    validate(response, "/identify", "post")


def test_identify_413_response_validates(client):
    response = client.post("/identify", data=b" " * (MAX_BODY_BYTES + 1), content_type="application/json")
    assert response.status_code == 413
    validate(response, "/identify", "post")


def test_identify_and_healthz_503_responses_validate(down_client):
    identify = down_client.post("/identify", json={"email": "doc@hillvalley.edu"})
    assert identify.status_code == 503
    assert identify.get_json()["error"]["code"] == "database_unavailable"
    validate(identify, "/identify", "post")
    health = down_client.get("/healthz")
    assert health.status_code == 503
    validate(health, "/healthz", "get")


def test_healthz_200_response_validates(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    validate(response, "/healthz", "get")


@pytest.mark.parametrize("method, path, status", [("get", "/identify", 405), ("post", "/nowhere", 404)])
def test_other_errors_validate_as_the_default_response(client, method, path, status):
    response = client.open(path, method=method.upper())
    assert response.status_code == status
    validate(response, "/identify", "post", "default")


def test_every_documented_status_code_has_a_validated_real_response(client, down_client):
    covered = set()
    covered.add(validate(client.get("/openapi.json"), "/openapi.json", "get"))
    covered.add(validate(client.get("/healthz"), "/healthz", "get"))
    covered.add(validate(down_client.get("/healthz"), "/healthz", "get"))
    covered.add(validate(client.post("/identify", json={"email": "a@x.com"}), "/identify", "post"))
    covered.add(validate(client.post("/identify", json={"email": 1}), "/identify", "post"))
    covered.add(validate(client.post("/identify", data=b"{" * (MAX_BODY_BYTES + 1)), "/identify", "post"))
    covered.add(validate(down_client.post("/identify", json={"email": "a@x.com"}), "/identify", "post"))
    not_found = client.get("/nowhere")
    assert not_found.status_code == 404
    for path, method in (("/identify", "post"), ("/healthz", "get"), ("/openapi.json", "get"), ("/erasure", "post")):
        covered.add(validate(not_found, path, method, "default"))
    covered |= erasure_responses(client)
    assert documented() - covered == set()


def test_every_documented_detach_response_is_a_real_one(client):
    from review_seed import PASSWORD, reviewer

    store = client.application.extensions["reconcile"].store
    alice, bob = {"Authorization": f"Bearer {reviewer(store, 'alice')}"}, {"Authorization": f"Bearer {reviewer(store, 'bob')}"}
    a = client.post("/identify", json={"email": "doc@hillvalley.edu", "phoneNumber": "111111"}).get_json()["contact"]["primaryContactId"]
    b = client.post("/identify", json={"email": "doc@hillvalley.edu", "phoneNumber": "222222"}).get_json()["contact"]["secondaryContactIds"][0]
    d, u = DETACH_PATHS
    covered = set()
    detached = client.post(f"/persons/{b}/detach", json={"note": "two people"}, headers=alice)
    covered.add(validate(detached, d, "post", "200"))
    covered.add(validate(client.post(f"/persons/{b}/detach", json={"note": "again"}, headers=alice), d, "post", "409"))
    covered.add(validate(client.post(f"/persons/{a}/detach", json={}, headers=alice), d, "post", "400"))
    covered.add(validate(client.post(f"/persons/{2**63}/detach", json={"note": "n"}, headers=alice), d, "post", "404"))
    covered.add(validate(client.post(f"/persons/{a}/detach", json={"note": "n"}), d, "post", "401"))
    detachment = detached.get_json()["id"]
    covered.add(validate(client.post(f"/persons/detachments/{detachment}/undo", headers=bob), u, "post", "403"))
    covered.add(validate(client.post(f"/persons/detachments/{detachment}/undo", headers=alice), u, "post", "200"))
    covered.add(validate(client.post(f"/persons/detachments/{detachment}/undo", headers=alice), u, "post", "409"))
    covered.add(validate(client.post("/persons/detachments/0/undo", headers=alice), u, "post", "404"))
    covered.add(validate(client.post(f"/persons/detachments/{detachment}/undo"), u, "post", "401"))
    client.get("/review/login")
    with client.session_transaction("/review/") as sess:
        csrf = sess["csrf"]
    client.post("/review/login", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf})
    covered.add(validate(client.post(f"/persons/{b}/detach", json={"note": "n"}), d, "post", "403"))  # no CSRF header
    not_allowed = client.get(f"/persons/{b}/detach", headers=alice)
    assert not_allowed.status_code == 405
    for path in DETACH_PATHS:
        covered.add(validate(not_allowed, path, "post", "default"))
    documented_here = {
        (path, method, status) for path in DETACH_PATHS for method, op in DOC["paths"][path].items() for status in op["responses"]
    }
    assert documented_here - covered == set()


def erasure_responses(client) -> set[tuple[str, str, str]]:
    """A real answer for each status POST /erasure documents, validated."""
    from reconcile.review.queue import add_reviewer

    store = client.application.extensions["reconcile"].store
    admin = {"Authorization": "Bearer " + add_reviewer(store, "root", "correct horse battery", admin=True)}
    plain = {"Authorization": "Bearer " + add_reviewer(store, "carol", "correct horse battery")}
    shared = {"phoneNumber": "4155552671"}
    client.post("/identify", json={"email": "al@king.org", **shared, "name": "Al King"})
    client.post("/identify", json={"email": "zoe@queen.org", **shared, "name": "Zoe Queen"})
    calls = [
        ({"email": "al@king.org"}, admin, 200),
        ({"email": "al@king.org"}, admin, 200),  # again: nothing left to erase
        ({"email": "al@king.org", "contactId": 1}, admin, 400),
        ({"contactId": 1}, {}, 401),
        ({"contactId": 1}, plain, 403),
        ({"contactId": 10**6}, admin, 404),
        ({"phoneNumber": "4155552671"}, admin, 200),  # Al's group is erased: Zoe alone holds it
    ]
    covered = set()
    for body, headers, status in calls:
        response = client.post("/erasure", json=body, headers=headers)
        assert response.status_code == status, response.get_json()
        covered.add(validate(response, "/erasure", "post"))
    client.post("/identify", json={"email": "bo@king.org", **shared, "name": "Bo King"})
    client.post("/identify", json={"email": "cy@king.org", **shared, "name": "Cy Prince"})
    ambiguous = client.post("/erasure", json=shared, headers=admin)
    assert ambiguous.status_code == 409, ambiguous.get_json()
    covered.add(validate(ambiguous, "/erasure", "post"))
    return covered


def test_erasure_request_schema_agrees_with_the_server(client):
    """Bodies the schema rejects get a 400 from the server, and the ones it accepts do not."""
    from reconcile.review.queue import add_reviewer

    store = client.application.extensions["reconcile"].store
    admin = {"Authorization": "Bearer " + add_reviewer(store, "root", "correct horse battery", admin=True)}
    schema = validator_at("/components/schemas/ErasureRequest")
    for body in ({}, {"email": "a@x.com", "phoneNumber": "1"}, {"contactId": "1"}, {"contactId": 0}, {"other": 1}, {"email": ""}):
        assert not schema.is_valid(body)
        assert client.post("/erasure", json=body, headers=admin).status_code == 400, body
    for body in ({"email": "a@x.com"}, {"phoneNumber": 123456}, {"phoneNumber": "123456"}):
        assert schema.is_valid(body)
        assert client.post("/erasure", json=body, headers=admin).status_code == 200, body


# --- the request schema agrees with the server -------------------------------------------------

_json_scalar = st.none() | st.booleans() | st.integers(-10, 10**12) | st.floats(allow_nan=False) | st.text(max_size=12)
_field_value = st.one_of(
    _json_scalar,
    st.sampled_from(["doc@hillvalley.edu", " ", "", "123456", "+1 415 555 2671"]),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
)
_request_body = st.dictionaries(st.sampled_from(["email", "phoneNumber", "name", "other"]), _field_value, max_size=3)


@pytest.fixture(scope="module")
def shared_client(tmp_path_factory):
    path = tmp_path_factory.mktemp("openapi") / "reconcile.db"
    upgrade(f"sqlite:///{path}")
    app = _app(f"sqlite:///{path}")
    yield app.test_client()
    app.extensions["reconcile"].store.dispose()


@settings(max_examples=150, deadline=None)
@given(_request_body)
def test_a_body_the_request_schema_rejects_gets_a_400(shared_client, body):
    """The schema is not stricter than the server: what it forbids, the server refuses."""
    request_schema = validator_at("/components/schemas/IdentifyRequest")
    response = shared_client.post("/identify", json=body)
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    if not request_schema.is_valid(body):
        assert response.status_code == 400, (body, response.get_json())
    if response.status_code == 200:
        assert request_schema.is_valid(body), body
        validate(response, "/identify", "post")
    else:
        validate(response, "/identify", "post")
