"""Detaching a contact from its group (``POST /persons/{id}/detach``) and the undo, on
SQLite and PostgreSQL, with PRODUCT.md's invariants checked after every operation."""
from __future__ import annotations

import random
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import assert_sound, rows
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from review_seed import bearer, exact_only, near_miss, reviewer, session_login

from reconcile.config import Settings
from reconcile.review import detach as corrections
from reconcile.store.migrate import upgrade
from reconcile.store.schema import audit_log, cannot_link, contact, link_guard
from reconcile.web import create_app


@pytest.fixture
def app(db_url):
    app = create_app(exact_only(db_url))
    app.config.update(TESTING=True)
    yield app
    app.extensions["reconcile"].store.dispose()


@pytest.fixture
def token(store) -> str:
    return reviewer(store, "alice")


def ident(client, email=None, phone=None, **extra) -> dict:
    response = client.post("/identify", json={"email": email, "phoneNumber": phone, **extra})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["contact"]


def detach(client, token, contact_id, note="not the same person"):
    return client.post(f"/persons/{contact_id}/detach", json={"note": note}, headers=bearer(token))


def links(store) -> dict[int, tuple]:
    """Every contact's (linkedId, linkPrecedence)."""
    return {r.id: (r.linkedId, r.linkPrecedence) for r in rows(store, contact)}


def chain(client) -> tuple[int, int, int]:
    """A (primary) - B (shares A's email) - C (shares only B's phone)."""
    a = ident(client, "doc@hillvalley.edu", "111111")["primaryContactId"]
    b = ident(client, "doc@hillvalley.edu", "222222")["secondaryContactIds"][-1]
    c = ident(client, "marty@hillvalley.edu", "222222")["secondaryContactIds"][-1]
    return a, b, c


# --- what goes, what stays ---------------------------------------------------------------


def test_detaching_the_middle_of_a_chain_takes_what_joined_only_through_it(client, store, token):
    a, b, c = chain(client)
    response = detach(client, token, b)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["primaryContactId"], body["keptContactIds"]) == (a, [a])
    assert (body["detachedPrimaryContactId"], body["detachedContactIds"]) == (b, [b, c])
    assert body["cannotLink"] == [a, b]
    assert body["guardedValues"] == [{"contactId": b, "field": "email"}]
    assert links(store) == {a: (None, "primary"), b: (None, "primary"), c: (b, "secondary")}
    assert [(r.field, r.value, r.guard) for r in rows(store, link_guard)] == [("email", "doc@hillvalley.edu", "detach")]
    assert [(r.leftContactId, r.rightContactId) for r in rows(store, cannot_link)] == [(a, b)]
    causes = {r.contactId: r.cause for r in rows(store, audit_log) if r.cause.startswith("detach:")}
    assert causes == {b: f"detach:{body['id']}:alice", c: f"detach:{body['id']}:alice"}
    assert_sound(store)


def test_after_a_detach_identify_answers_the_detached_group_for_its_values(client, store, token):
    a, b, c = chain(client)
    detach(client, token, b)
    both = ident(client, "doc@hillvalley.edu", "222222")
    assert both == {"primaryContactId": b, "emails": ["doc@hillvalley.edu", "marty@hillvalley.edu"], "phoneNumbers": ["222222"], "secondaryContactIds": [c]}
    assert ident(client, "marty@hillvalley.edu")["primaryContactId"] == b
    assert ident(client, None, "222222")["primaryContactId"] == b
    assert ident(client, None, "111111")["primaryContactId"] == a
    # the value both sides hold answers the older group, and nothing links them again
    assert ident(client, "doc@hillvalley.edu")["primaryContactId"] == a
    assert ident(client, "doc@hillvalley.edu", "333333")["primaryContactId"] == a
    assert links(store)[b] == (None, "primary")
    assert_sound(store)


def test_detaching_an_exact_link_leaves_the_shared_value_guarded(client, store, token):
    a = ident(client, "doc@hillvalley.edu", "111111")["primaryContactId"]
    b = ident(client, "emmett@hillvalley.edu", "111111")["secondaryContactIds"][0]
    body = detach(client, token, b).get_json()
    assert (body["keptContactIds"], body["detachedContactIds"]) == ([a], [b])
    assert body["guardedValues"] == [{"contactId": b, "field": "phoneNumber"}]
    assert links(store) == {a: (None, "primary"), b: (None, "primary")}
    assert ident(client, "emmett@hillvalley.edu", "111111")["primaryContactId"] == b
    assert_sound(store)


def test_detaching_a_merged_primary_takes_its_old_group_back(client, store, token):
    a = ident(client, "doc@hillvalley.edu", "111111")["primaryContactId"]
    d = ident(client, "biff@hillvalley.edu", "444444")["primaryContactId"]
    d2 = ident(client, "biff@hillvalley.edu", "555555")["secondaryContactIds"][0]
    merged = ident(client, "doc@hillvalley.edu", "444444")  # joins the two groups, creates nothing
    assert merged["secondaryContactIds"] == [d, d2]
    body = detach(client, token, d).get_json()
    assert (body["keptContactIds"], body["detachedContactIds"]) == ([a], [d, d2])
    assert body["guardedValues"] == []
    assert links(store) == {a: (None, "primary"), d: (None, "primary"), d2: (d, "secondary")}
    assert_sound(store)


def test_detaching_the_primary_re_elects_the_oldest_on_both_sides(client, store, token):
    a = ident(client, "doc@hillvalley.edu", "111111")["primaryContactId"]
    d = ident(client, "biff@hillvalley.edu", "444444")["primaryContactId"]
    d2 = ident(client, "biff@hillvalley.edu", "555555")["secondaryContactIds"][0]
    ident(client, "doc@hillvalley.edu", "444444")
    body = detach(client, token, a).get_json()
    assert (body["primaryContactId"], body["keptContactIds"]) == (d, [d, d2])
    assert (body["detachedPrimaryContactId"], body["detachedContactIds"]) == (a, [a])
    assert links(store) == {a: (None, "primary"), d: (None, "primary"), d2: (d, "secondary")}
    assert ident(client, "biff@hillvalley.edu")["primaryContactId"] == d
    assert_sound(store)


def test_a_later_contact_leaves_an_earlier_merge_standing(client, store, token):
    a = ident(client, "doc@hillvalley.edu", "111111")["primaryContactId"]
    d = ident(client, "biff@hillvalley.edu", "444444")["primaryContactId"]
    ident(client, "doc@hillvalley.edu", "444444")  # joins the groups through a and d
    r = ident(client, "doc@hillvalley.edu", "777777")["secondaryContactIds"][-1]
    body = detach(client, token, r).get_json()
    assert body["detachedContactIds"] == [r] and body["keptContactIds"] == [a, d]
    assert body["guardedValues"] == [{"contactId": r, "field": "email"}]
    assert_sound(store)


def test_detach_after_a_review_confirm(db_url):
    app = create_app(exact_only(db_url))
    app.config.update(TESTING=True)
    client, reconciler = app.test_client(), app.extensions["reconcile"]
    try:
        token = reviewer(reconciler.store, "alice")
        item = near_miss(reconciler, 1)
        confirmed = client.post(f"/reviews/{item}/confirm", json={}, headers=bearer(token)).get_json()
        older, newer = confirmed["primaryContactId"], confirmed["mergedPrimaryId"]
        body = detach(client, token, newer).get_json()
        assert (body["keptContactIds"], body["detachedContactIds"]) == ([older], [newer])
        assert links(reconciler.store) == {older: (None, "primary"), newer: (None, "primary")}
        assert_sound(reconciler.store)
    finally:
        reconciler.store.dispose()


def test_detach_after_a_probabilistic_link(tmp_path):
    from conftest import sqlite_url
    from reconcile.store.migrate import upgrade

    url = sqlite_url(tmp_path)
    upgrade(url)
    app = create_app(Settings(database_url=url))
    app.config.update(TESTING=True)
    client, store = app.test_client(), app.extensions["reconcile"].store
    try:
        token = reviewer(store, "alice")
        first = ident(client, "jonathan.smith@gmail.com", "+14155552671", name="Jonathan Smith")["primaryContactId"]
        alias = client.post("/identify", json={"email": "Jonathan.Smith+shop@gmail.com", "name": "Smith Jonathan"}).get_json()
        assert alias["match"]["method"] == "probabilistic"
        linked = alias["match"]["createdContactIds"][0]
        body = detach(client, token, linked).get_json()
        assert (body["keptContactIds"], body["detachedContactIds"]) == ([first], [linked])
        assert links(store)[linked] == (None, "primary")
        # the cannot-link holds: the model may propose, never link again
        again = client.post("/identify", json={"email": "jonathan.smith+shop@gmail.com", "name": "Smith Jonathan"}).get_json()
        assert again["contact"]["primaryContactId"] == linked
        assert_sound(store)
    finally:
        store.dispose()


# --- undo ---------------------------------------------------------------------------------


def test_undo_puts_every_contact_back_and_removes_the_guards(client, store, token):
    a, b, c = chain(client)
    before = links(store)
    detachment = detach(client, token, b).get_json()["id"]
    response = client.post(f"/persons/detachments/{detachment}/undo", headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "undone" and response.get_json()["primaryContactId"] == a
    assert links(store) == before
    assert rows(store, link_guard) == [] and rows(store, cannot_link) == []
    assert {r.linkMethod for r in rows(store, contact)} == {"new", "exact"}
    assert_sound(store)
    again = client.post(f"/persons/detachments/{detachment}/undo", headers=bearer(token))
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "cannot_undo"
    # and it can be detached again
    assert detach(client, token, b).status_code == 200
    assert_sound(store)


def test_undo_is_refused_once_a_group_changed(client, store, token):
    a, b, c = chain(client)
    detachment = detach(client, token, b).get_json()["id"]
    ident(client, "marty@hillvalley.edu", "999999")  # a new contact in the detached group
    after = links(store)
    response = client.post(f"/persons/detachments/{detachment}/undo", headers=bearer(token))
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "cannot_undo"
    assert links(store) == after
    assert_sound(store)


def test_undo_is_refused_once_the_kept_group_merged_with_another(client, store, token):
    a, b, c = chain(client)
    z = ident(client, "old@hillvalley.edu", "000001")["primaryContactId"]
    detachment = detach(client, token, b).get_json()["id"]
    assert ident(client, "old@hillvalley.edu", "111111")["secondaryContactIds"] == [z]
    response = client.post(f"/persons/detachments/{detachment}/undo", headers=bearer(token))
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "cannot_undo"
    assert_sound(store)


def test_only_the_reviewer_who_detached_or_an_admin_may_undo(client, store, token):
    a, b, c = chain(client)
    detachment = detach(client, token, b).get_json()["id"]
    bob = reviewer(store, "bob")
    refused = client.post(f"/persons/detachments/{detachment}/undo", headers=bearer(bob))
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "not_your_detachment"
    admin = reviewer(store, "carol", admin=True)
    assert client.post(f"/persons/detachments/{detachment}/undo", headers=bearer(admin)).status_code == 200
    assert_sound(store)


# --- refusals -----------------------------------------------------------------------------


def test_a_contact_alone_in_its_group_has_nothing_to_detach(client, store, token):
    a = ident(client, "doc@hillvalley.edu", "111111")["primaryContactId"]
    response = detach(client, token, a)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "nothing_to_detach"
    assert rows(store, cannot_link) == []


def test_ids_out_of_range_or_missing_are_404s(client, store, token):
    a, b, c = chain(client)
    audit_id = rows(store, audit_log)[0].id  # an audit row that is not a detachment
    for raw in ["0", "-1", "999", str(2**31), str(2**63 - 1), str(2**63), str(2**64), "9" * 40]:
        for path in (f"/persons/{raw}/detach", f"/persons/detachments/{raw}/undo"):
            response = client.post(path, json={"note": "n"}, headers=bearer(token))
            assert response.status_code == 404, (path, response.get_data(as_text=True))
            assert response.get_json()["error"]["code"] == "not_found"
    assert client.post(f"/persons/detachments/{audit_id}/undo", headers=bearer(token)).status_code == 404
    assert rows(store, cannot_link) == []


def test_a_detach_needs_a_note(client, store, token):
    a, b, c = chain(client)
    for body in [{}, {"note": None}, {"note": ""}, {"note": "  "}, {"note": 1}, {"note": "x" * 2001}, [], "note"]:
        response = client.post(f"/persons/{b}/detach", json=body, headers=bearer(token))
        assert response.status_code == 400, body
        assert response.get_json()["error"]["code"] in ("invalid_input", "invalid_json")
    response = client.post(f"/persons/{b}/detach", data="{", headers={**bearer(token), "Content-Type": "application/json"})
    assert response.status_code == 400
    assert rows(store, cannot_link) == [] and links(store)[b] == (a, "secondary")


def test_detach_and_undo_need_a_reviewer(client, store, token):
    a, b, c = chain(client)
    for path in (f"/persons/{b}/detach", "/persons/detachments/1/undo"):
        assert client.post(path, json={"note": "n"}).status_code == 401
        assert client.post(path, json={"note": "n"}, headers=bearer(token + "x")).status_code == 401
    # a session needs its CSRF token; with it, the session works
    csrf = session_login(client, "alice")
    no_csrf = client.post(f"/persons/{b}/detach", json={"note": "n"})
    assert no_csrf.status_code == 403 and no_csrf.get_json()["error"]["code"] == "csrf_failed"
    assert rows(store, cannot_link) == []
    assert client.post(f"/persons/{b}/detach", json={"note": "n"}, headers={"X-CSRF-Token": csrf}).status_code == 200
    assert_sound(store)


def test_an_erased_contact_cannot_be_detached(client, store, token):
    from sqlalchemy import update

    from reconcile.store.contacts import utcnow

    a, b, c = chain(client)
    with store.engine.begin() as conn:
        conn.execute(update(contact).where(contact.c.id == c).values(deletedAt=utcnow()))
    response = detach(client, token, c)
    assert response.status_code == 404


# --- invariants under random histories -------------------------------------------------------

_EMAILS = [None, "doc@hillvalley.edu", "marty@hillvalley.edu", "biff@hillvalley.edu", "info@hillvalley.edu", "lorraine@hillvalley.edu"]
_PHONES = [None, "111111", "222222", "333333", "0000000", "444444"]
_request = st.tuples(st.sampled_from(_EMAILS), st.sampled_from(_PHONES)).filter(lambda r: r != (None, None))


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("detach-template") / "reconcile.db"
    upgrade(f"sqlite:///{path}")
    return path


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    before=st.lists(_request, min_size=2, max_size=12),
    pick=st.integers(0, 100),
    after=st.lists(_request, max_size=3),
)
def test_random_identify_sequences_then_a_detach_and_its_undo_keep_the_invariants(migrated_template, before, pick, after):
    """Placeholders (``0000000``) and role mailboxes (``info@``) included: a detach never
    breaks an invariant, an immediate undo restores every link exactly, and a later one is
    either refused or restores a sound graph."""
    workdir = Path(tempfile.mkdtemp(prefix="reconcile-detach-"))
    try:
        db = workdir / "reconcile.db"
        shutil.copyfile(migrated_template, db)
        app = create_app(exact_only(f"sqlite:///{db}"))
        reconciler, store = app.extensions["reconcile"], app.extensions["reconcile"].store
        for email, phone in before:
            reconciler.identify(reconciler.parse({"email": email, "phoneNumber": phone}))
        assert_sound(store)
        ids = sorted(links(store))
        target = ids[pick % len(ids)]
        linked = links(store)
        try:
            done = corrections.detach(store, reconciler.guards, target, "alice", "property")
        except corrections.NothingToDetach:
            assert sum(1 for i, (p, _) in linked.items() if (p or i) == (linked[target][0] or target)) == 1
            return
        assert_sound(store)
        assert target in done.detached_ids and set(done.kept_ids).isdisjoint(done.detached_ids)
        after_detach = links(store)
        assert {after_detach[i][0] or i for i in done.detached_ids} == {done.detached_primary_id}
        assert {after_detach[i][0] or i for i in done.kept_ids} == {done.primary_id}
        for email, phone in after:
            reconciler.identify(reconciler.parse({"email": email, "phoneNumber": phone}))
            assert_sound(store)
        try:
            corrections.undo(store, done.id, "alice")
        except corrections.CannotUndo:
            assert after, "an undo right after the detach must succeed"
        else:
            if not after:
                assert links(store) == linked
        assert_sound(store)
        store.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- concurrency ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_detaches_and_undos_racing_identifies_on_postgresql_keep_the_invariants(pg_url):
    """Threads send requests that add to, read and bridge a group while others detach its
    contacts and undo: whatever the interleaving, every invariant holds afterwards."""
    app = create_app(exact_only(pg_url, db_pool_size=12))
    reconciler, store = app.extensions["reconcile"], app.extensions["reconcile"].store
    try:
        for round_ in range(4):
            emails = [f"r{round_}.{i}@hillvalley.edu" for i in range(6)]
            phones = [f"{round_}5550{i}" for i in range(6)]
            for i in range(5):  # a chain: each contact shares one value with the one before
                reconciler.identify(reconciler.parse({"email": emails[i], "phoneNumber": phones[i]}))
                reconciler.identify(reconciler.parse({"email": emails[i], "phoneNumber": phones[i + 1]}))
            group = sorted(links(store))[-10:]  # this round's contacts
            barrier = threading.Barrier(8)
            rng = random.Random(round_)
            results: list = []

            def detacher(target: int) -> None:
                barrier.wait()
                try:
                    done = corrections.detach(store, reconciler.guards, target, "alice", "race")
                    results.append(done)
                    if rng.random() < 0.5:
                        corrections.undo(store, done.id, "alice")
                except (corrections.NothingToDetach, corrections.CannotUndo, corrections.NotFound):
                    pass

            def requester(k: int) -> None:
                barrier.wait()
                for j in range(6):
                    body = {"email": emails[(k + j) % 6], "phoneNumber": phones[(k * j + 1) % 6] if j % 2 else f"9{k}{j}{round_}77"}
                    reconciler.identify(reconciler.parse(body))

            with ThreadPoolExecutor(8) as pool:
                futures = [pool.submit(detacher, t) for t in rng.sample(group, 3)]
                futures += [pool.submit(requester, k) for k in range(5)]
                for f in futures:
                    f.result(timeout=120)
            assert_sound(store)
    finally:
        store.dispose()


def test_a_value_held_by_three_keeps_the_other_two_together(client, store, token):
    a = ident(client, "doc@hillvalley.edu", "111111")["primaryContactId"]
    b, c = (ident(client, "doc@hillvalley.edu", p)["secondaryContactIds"][-1] for p in ("222222", "333333"))
    body = detach(client, token, b).get_json()
    assert (body["keptContactIds"], body["detachedContactIds"]) == ([a, c], [b])
    assert_sound(store)


@pytest.mark.parametrize("target, kept, detached", [("b", "ad", "bc"), ("a", "bcd", "a"), ("d", "abc", "d")])
def test_the_documented_example(client, store, token, target, kept, detached):
    """docs/ARCHITECTURE.md, *Detaching a contact*: the merge went through A, B and D."""
    ids = {"a": ident(client, "doc@hillvalley.edu", "111111")["primaryContactId"]}
    ids["b"] = ident(client, "doc@hillvalley.edu", "222222")["secondaryContactIds"][-1]
    ids["c"] = ident(client, "marty@hillvalley.edu", "222222")["secondaryContactIds"][-1]
    ids["d"] = ident(client, "biff@hillvalley.edu", "444444")["primaryContactId"]
    ident(client, "doc@hillvalley.edu", "444444")
    body = detach(client, token, ids[target]).get_json()
    assert sorted(body["keptContactIds"]) == sorted(ids[k] for k in kept)
    assert sorted(body["detachedContactIds"]) == sorted(ids[k] for k in detached)
    assert body["primaryContactId"] == ids[kept[0]] and body["detachedPrimaryContactId"] == ids[detached[0]]
    assert_sound(store)


def test_a_contact_erased_before_the_detach_does_not_block_its_undo(client, store, token):
    from reconcile.store.contacts import utcnow
    from reconcile.store.erasure import tombstone

    a, b, c = chain(client)
    gone = ident(client, "doc@hillvalley.edu", "888888")["secondaryContactIds"][-1]
    store.write(lambda tx: tombstone(tx, [gone], at=utcnow(), cause="test:erased-alone"))  # one row, as the store erases
    before = links(store)
    detachment = detach(client, token, a).get_json()  # the primary leaves: the erased row still points at it
    assert gone not in detachment["keptContactIds"] + detachment["detachedContactIds"]
    assert_sound(store)
    assert client.post(f"/persons/detachments/{detachment['id']}/undo", headers=bearer(token)).status_code == 200
    assert links(store) == before
    assert_sound(store)
