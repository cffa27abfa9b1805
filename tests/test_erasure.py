"""Erasure (POST /erasure, ``reconcile erase``): a customer's whole group is tombstoned,
every copy of their values goes, the graph keeps its ids and shape, and the values
identify a brand-new customer afterwards; on SQLite and PostgreSQL."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import assert_sound, identify, rows
from review_seed import exact_only, reviewer
from sqlalchemy import JSON, String, Text, cast, inspect, or_, select
from sqlalchemy.engine import make_url

from reconcile.cli import main as cli
from reconcile.review import queue as review
from reconcile.review.labels import LabelPair, Side, insert_labels, load_labels
from reconcile.store.erasure import PERSONAL_COLUMNS, purge_free_space
from reconcile.store.resolution import open_split_proposal
from reconcile.store.schema import audit_log, contact, label, link_guard, metadata, pending_merge, split_proposal
from reconcile.web import create_app

ALICE = {"email": "alice.erase@smith.org", "phoneNumber": "4155552671", "name": "Alice Smith"}
#: what the customer's values look like in storage (normalised)
ALICE_VALUES = ("alice.erase@smith.org", "+14155552671", "Alice Smith", "alice.second@smith.org")


@pytest.fixture
def app(db_url):
    app = create_app(exact_only(db_url))
    app.config.update(TESTING=True)
    yield app
    app.extensions["reconcile"].store.dispose()


@pytest.fixture
def admin(store) -> dict:
    return {"Authorization": f"Bearer {reviewer(store, 'root', admin=True)}"}


def erase(client, admin, **body):
    response = client.post("/erasure", json=body, headers=admin)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["erasure"]


def alice_group(client) -> list[int]:
    first = identify(client, **ALICE)
    second = identify(client, email="alice.second@smith.org", phoneNumber="4155552671", name="Alice Smith")
    group = second["contact"]
    assert group["primaryContactId"] == first["contact"]["primaryContactId"]
    return [group["primaryContactId"], *group["secondaryContactIds"]]


@pytest.mark.parametrize(
    "key", [{"email": " Alice.Erase@Smith.org"}, {"phoneNumber": "(415) 555-2671"}, {"contactId": "second"}]
)
def test_erasure_by_each_key_tombstones_the_whole_group_and_nothing_else(client, store, admin, key):
    ids = alice_group(client)
    other = identify(client, email="bob@jones.org", phoneNumber="2025550143", name="Bob Jones")["contact"]
    if key == {"contactId": "second"}:
        key = {"contactId": ids[1]}  # a secondary names its whole group

    done = erase(client, admin, **key)

    assert done["contactIds"] == ids and done["erasedContactIds"] == ids and done["erasedBy"] == "root"
    tombstones = {r.id: r for r in rows(store, contact) if r.id in ids}
    for row in tombstones.values():
        assert row.deletedAt is not None
        assert all(getattr(row, column) is None for column in PERSONAL_COLUMNS)
    # the shape of the graph stays: the secondary still points at its (erased) primary
    assert (tombstones[ids[0]].linkPrecedence, tombstones[ids[1]].linkedId) == ("primary", ids[0])
    untouched = identify(client, email="bob@jones.org")["contact"]
    assert untouched == other
    assert_sound(store)


def test_erasure_is_idempotent(client, store, admin):
    ids = alice_group(client)
    first = erase(client, admin, contactId=ids[0])
    again_by_id = erase(client, admin, contactId=ids[0])
    again_by_email = erase(client, admin, email=ALICE["email"])
    assert first["erasedContactIds"] == ids
    assert again_by_id["contactIds"] == ids and again_by_id["erasedContactIds"] == []
    assert again_by_email["contactIds"] == [] and again_by_email["erasedContactIds"] == []
    assert len([a for a in rows(store, audit_log) if a.action == "erased"]) == len(ids)
    assert_sound(store)


def test_erased_values_then_identify_a_brand_new_customer(client, store, admin):
    ids = alice_group(client)
    erase(client, admin, email=ALICE["email"])
    back = identify(client, **ALICE)
    assert back["contact"]["primaryContactId"] > max(ids)
    assert back["contact"]["secondaryContactIds"] == []
    assert back["contact"]["emails"] == [ALICE["email"]]
    assert back["match"]["method"] == "new" and back["match"]["guards"] == []
    assert_sound(store)


def test_the_audit_says_who_and_when_but_not_what(client, store, admin):
    ids = alice_group(client)
    erase(client, admin, phoneNumber=ALICE["phoneNumber"])
    erased = [a for a in rows(store, audit_log) if a.action == "erased"]
    assert sorted(a.contactId for a in erased) == ids
    for entry in erased:
        assert entry.at is not None and entry.cause.startswith("erasure:") and entry.cause.endswith(":root")
        assert entry.detail is None and entry.newPrecedence is None
        assert not any(v.lower() in entry.cause.lower() for v in ALICE_VALUES)


def test_open_reviews_are_superseded_and_guard_copies_cleared(client, store, admin):
    alice = identify(client, **ALICE)["contact"]["primaryContactId"]
    bob = identify(client, email="bob@smith.org", phoneNumber="4155552671", name="Bob Smith")
    (item,) = bob["match"]["pendingMergeIds"]
    # the answer to the request shows the values; what is stored names them by reference
    assert "Alice Smith" in bob["match"]["guards"][0]["reason"]
    shown = review.get_item(store, item)
    assert "'+14155552671'" in shown["evidence"]["reason"] and "Alice Smith" in shown["evidence"]["reason"]
    assert shown["evidence"]["values"] == [["phoneNumber", "+14155552671"]]

    done = erase(client, admin, contactId=alice)

    assert done["supersededReviewIds"] == [item]
    (pending,) = rows(store, pending_merge)
    assert (pending.status, pending.decidedBy) == ("superseded", "root")
    shown = review.get_item(store, item)
    assert "Alice Smith" not in shown["evidence"]["reason"] and "[erased]" in shown["evidence"]["reason"]
    # Bob keeps his phone and his own guard record; nothing holds Alice's values any more
    assert [(g.contactId, g.value) for g in rows(store, link_guard)] == [(bob["contact"]["primaryContactId"], "+14155552671")]
    assert identify(client, phoneNumber="4155552671")["contact"]["primaryContactId"] == bob["contact"]["primaryContactId"]
    assert_sound(store)


def test_pending_split_proposals_naming_an_erased_contact_are_superseded(client, store, admin):
    ids = alice_group(client)
    carol = identify(client, email="carol@smith.org", phoneNumber="4155550300")["contact"]["primaryContactId"]
    carol2 = identify(client, email="carol@smith.org", phoneNumber="4155550301")["contact"]["secondaryContactIds"][0]
    alice_split, carol_split = (_propose(store, *pair) for pair in ((ids[0], ids[1]), (carol, carol2)))

    done = erase(client, admin, contactId=ids[1])

    assert done["supersededSplitIds"] == [alice_split]
    status = {r.id: (r.status, r.decidedBy, r.note) for r in rows(store, split_proposal)}
    assert status == {alice_split: ("superseded", "root", "a contact in it was erased"), carol_split: ("pending", None, None)}
    refused = client.post(f"/reviews/splits/{alice_split}/reject", json={"note": "same person"}, headers=admin)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "superseded"
    assert rows(store, label) == []


def _propose(store, kept: int, leaving: int) -> int:
    """A split proposal as ``reconcile resolve --apply`` opens one: ``leaving`` off ``kept``'s group."""
    return store.write(
        lambda tx: open_split_proposal(
            tx, primary_id=kept, contact_id=leaving, bridge_contact_id=kept, kept_ids=[kept], detached_ids=[leaving],
            score=0.1, match_weight=-3.0, model_version="test-1", evidence={},
        )
    )


def test_labels_lose_the_erased_values_and_imported_copies_are_deleted(client, store, admin):
    alice = identify(client, **ALICE)["contact"]["primaryContactId"]
    near = identify(client, email="alice.erase@smith.net", phoneNumber="4155552672", name="Alice Smith")
    item = review.get_item(store, _open(store, alice, near["contact"]["primaryContactId"]))["id"]
    review.reject(store, item, "root")
    insert_labels(store, [
        LabelPair(Side("alice.erase@smith.org", None, "alice smith"), Side("a@b.org", None, None), "non-match", "import", "import"),
        LabelPair(Side("c@d.org", None, None), Side("e@f.org", None, None), "match", "import", "import"),
    ])
    assert len(load_labels(store)[0]) == 3

    done = erase(client, admin, email=ALICE["email"])

    assert done["deletedLabelCount"] == 1
    pairs, skipped = load_labels(store)
    assert [(p.left.email, p.right.email) for p in pairs] == [("c@d.org", "e@f.org")]
    assert len(skipped) == 1  # the reviewed label stays as history, without values to train on
    assert "alice" not in json.dumps([[r.leftRecords, r.rightRecords] for r in rows(store, label)])


def _open(store, a: int, b: int) -> int:
    from review_seed import open_item

    return open_item(store, a, b)


def test_erasure_is_for_admins_and_refuses_bad_or_ambiguous_requests(client, store, admin):
    ids = alice_group(client)
    identify(client, email="bob@smith.org", phoneNumber="4155552671", name="Bob Smith")  # shares Alice's phone
    plain = {"Authorization": f"Bearer {reviewer(store, 'carol')}"}
    cases = [
        ({}, None, 401, "unauthorized"),
        ({"contactId": ids[0]}, plain, 403, "forbidden"),
        ({}, admin, 400, "invalid_input"),
        ({"email": ALICE["email"], "contactId": ids[0]}, admin, 400, "invalid_input"),
        ({"contactId": True}, admin, 400, "invalid_input"),
        ({"contactId": 0}, admin, 400, "invalid_input"),
        ({"email": "not-an-email"}, admin, 400, "invalid_input"),
        ({"name": "Alice Smith"}, admin, 400, "invalid_input"),
        ({"contactId": 2**31}, admin, 404, "not_found"),
        ({"contactId": 2**70}, admin, 404, "not_found"),
        ({"contactId": 999_999}, admin, 404, "not_found"),
        ({"phoneNumber": "4155552671"}, admin, 409, "ambiguous_value"),
    ]
    for body, headers, status, code in cases:
        response = client.post("/erasure", json=body, headers=headers or {})
        assert (response.status_code, response.get_json()["error"]["code"]) == (status, code), body
    assert all(r.deletedAt is None for r in rows(store, contact))  # nothing was erased
    assert_sound(store)


def test_an_admin_logged_in_to_the_review_ui_erases_with_the_session_and_its_csrf_token(client, store):
    from review_seed import session_login

    ids = alice_group(client)
    reviewer(store, "root", admin=True)
    csrf = session_login(client, "root")
    refused = client.post("/erasure", json={"contactId": ids[0]})
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (403, "csrf_failed")
    assert all(r.deletedAt is None for r in rows(store, contact))
    done = client.post("/erasure", json={"contactId": ids[0]}, headers={"X-CSRF-Token": csrf})
    assert done.status_code == 200, done.get_json()
    assert {r.id for r in rows(store, contact) if r.deletedAt is not None} == set(ids)
    assert_sound(store)


def test_reconcile_erase_on_the_command_line(client, store, db_url, monkeypatch):
    ids = alice_group(client)
    monkeypatch.setenv("RECONCILE_DATABASE_URL", db_url)
    done = CliRunner().invoke(cli, ["erase", "--email", ALICE["email"], "--by", "dpo"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["erasedContactIds"] == ids
    refused = CliRunner().invoke(cli, ["erase", "--contact-id", "999999"])
    assert refused.exit_code == 1 and "does not exist" in refused.output
    both = CliRunner().invoke(cli, ["erase", "--email", "a@b.org", "--phone", "1"])
    assert both.exit_code == 2
    huge = CliRunner().invoke(cli, ["erase", "--contact-id", str(2**31)])  # past the id column: a usage error
    assert huge.exit_code == 2 and "--contact-id" in huge.output
    assert_sound(store)
    check = CliRunner().invoke(cli, ["check"])
    assert check.exit_code == 0, check.output


def _text_columns():
    for table in metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, (String, Text, JSON)):
                yield table, column


def test_after_erasure_and_the_documented_purge_no_byte_of_the_values_remains(client, store, admin, db_url):
    ids = alice_group(client)
    ids += identify(client, email=ALICE["email"], phoneNumber="4155550000")["contact"]["secondaryContactIds"][-1:]
    bob = identify(client, email="bob@smith.org", phoneNumber="4155552671", name="Bob Smith")
    review.reject(store, bob["match"]["pendingMergeIds"][0], "root", note="Alice Smith says no")
    # reviewers' notes quoting the customer: a split proposal's decision and a detachment's
    split = _propose(store, ids[0], ids[2])
    kept = client.post(f"/reviews/splits/{split}/reject", json={"note": "alice.erase@smith.org has two phones"}, headers=admin)
    assert kept.status_code == 200, kept.get_json()
    detached = client.post(f"/persons/{ids[1]}/detach", json={"note": "alice.second@smith.org is her sister's"}, headers=admin)
    assert detached.status_code == 200, detached.get_json()
    erase(client, admin, contactId=ids[0])
    erase(client, admin, contactId=ids[1])  # the detached sister's group: a person of its own now
    (note,) = [a for a in rows(store, audit_log) if a.action == "detached"]
    assert note.detail["note"] is None and rows(store, split_proposal)[0].note is None
    secrets = ("alice.erase@smith.org", "alice.second@smith.org", "Alice Smith", "alice")

    # every text and JSON column of every table, on either backend
    with store.read() as tx:
        for table, column in _text_columns():
            found = tx.conn.execute(
                select(table).where(or_(*[cast(column, Text).ilike(f"%{s}%") for s in secrets]))
            ).all()
            assert found == [], f"{table.name}.{column.name} still holds an erased value"
        assert set(inspect(tx.conn).get_table_names()) - {"alembic_version"} == {t.name for t in metadata.sorted_tables}

    purge_free_space(store)
    if store.dialect == "sqlite":
        # read while the service's connections are open: closing the last one would
        # checkpoint the WAL by itself, which a running service never does
        path = Path(make_url(db_url).database)
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        assert path.with_name(path.name + "-wal") in files
        assert path in files
        for f in files:
            data = f.read_bytes().lower()
            for secret in secrets:
                assert secret.lower().encode() not in data, f"{f.name} still holds {secret!r}"
