"""``reconcile resolve``: the batch re-resolution finds planted over-merges and misses,
changes nothing on a dry run, opens each review item once on --apply, and a split
proposal a reviewer accepts splits the group along its bridge."""
from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner

from conftest import assert_sound, rows
from reconcile.batch.apply import BATCH_REASON, apply
from reconcile.batch.flow import resolve
from reconcile.cli import main
from reconcile.config import Settings
from reconcile.engine.guards import Guards
from reconcile.engine.reconciler import Reconciler
from reconcile.review import splits
from reconcile.review.queue import ERASED, AlreadyDecided, Superseded
from reconcile.store import Store
from reconcile.store.contacts import utcnow
from reconcile.store.resolution import judgements
from reconcile.store.schema import audit_log, cannot_link, contact, label, metadata, pending_merge, split_proposal
from review_seed import bearer, reviewer


#: two groups of one customer, then one request carrying the first's email and the second's
#: phone: the exact stage joins them on the customer's word
ANN_IN_TWO_GROUPS_THEN_BOTH = (
    {"email": "ann.lee@hotmail.com", "phoneNumber": "+14155550400", "name": "Ann Lee"},
    {"email": "a.lee@work.example", "phoneNumber": "+14155550999", "name": "Ann Lee"},
    {"email": "ann.lee@hotmail.com", "phoneNumber": "+14155550999"},
)


def build_planted(url: str) -> dict[str, int]:
    """A small live table built by the real engine, with two planted mistakes.

    - over-merge: John and Mary Smith share a family phone; with the names guard set
      loosely the online path joined them (John's two contacts, Mary's two contacts);
    - misses: the exact rules alone (the model off online) left a typo'd email
      (zed.jones / zed.jnoes) and a plus-alias (ann.lee+shop) in groups of their own.
    """
    loose = Settings(database_url=url, max_names_per_identifier=100, probabilistic=False)
    store = Store(url)
    reconciler = Reconciler(store, loose)

    def identify(email, phone, name):
        return reconciler.identify(reconciler.parse({"email": email, "phoneNumber": phone, "name": name})).contact

    ids = {}
    try:
        ids["john"] = identify("john.smith@example.org", "+14155550101", "John Smith")["primaryContactId"]
        identify("john.smith@example.org", "+14155550199", "John Smith")
        identify("mary.smith@gmail.com", "+14155550101", "Mary Smith")
        identify("mary.smith@gmail.com", "+14155550177", "Mary Smith")
        ids["zed"] = identify("zed.jones@yahoo.com", "+14155550300", "Zed Jones")["primaryContactId"]
        ids["zed_typo"] = identify("zed.jnoes@yahoo.com", "+14155550311", "Zed Jones")["primaryContactId"]
        ids["ann"] = identify("ann.lee@hotmail.com", "+14155550400", "Ann Lee")["primaryContactId"]
        ids["ann_alias"] = identify("ann.lee+shop@hotmail.com", "+14155550401", "Ann Lee")["primaryContactId"]
        identify("solo.person@example.net", "+14155550500", "Solo Person")
    finally:
        store.dispose()
    return ids


def checksum(store: Store) -> str:
    digest = hashlib.sha256()
    for table in metadata.sorted_tables:
        for row in sorted(rows(store, table), key=repr):
            digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


@pytest.fixture
def planted(db_url):
    ids = build_planted(db_url)
    store = Store(db_url)
    yield store, Settings(database_url=db_url), ids
    store.dispose()


def test_the_report_finds_the_planted_over_merge_and_misses(planted):
    store, settings, ids = planted
    result = resolve(store, settings)
    merges = {m.primary_ids for m in result.diff.merges}
    assert merges == {tuple(sorted((ids["zed"], ids["zed_typo"]))), tuple(sorted((ids["ann"], ids["ann_alias"])))}
    (split,) = result.diff.splits
    assert split.primary_id == ids["john"]
    mary = {c.id for c in rows(store, contact) if c.email == "mary.smith@gmail.com"}
    assert set(split.detached_ids) == mary
    # the bridge is the family phone: Mary's first contact and John's first, on the same phone
    assert (split.contact_id, split.bridge_contact_id) == (min(mary), ids["john"])
    levels = {c["comparison"]: c["level"] for c in split.pair.comparisons}
    assert levels["phone"] == "Exact match on phone" and levels["name"].startswith("Same last name, different first")
    assert split.refused_by == "below threshold"
    assert result.diff.unchanged == 1  # the solo person


def test_a_dry_run_changes_nothing(planted):
    store, settings, _ = planted
    before = checksum(store)
    resolve(store, settings)
    assert checksum(store) == before


def test_apply_opens_only_review_items_and_a_second_apply_opens_none(planted):
    store, settings, _ = planted
    contacts, audit = rows(store, contact), rows(store, audit_log)
    outcome = apply(store, resolve(store, settings))
    assert len(outcome["pendingMergeIds"]) == 2 and len(outcome["splitProposalIds"]) == 1
    assert rows(store, contact) == contacts and rows(store, audit_log) == audit  # nothing merged or split
    opened = rows(store, pending_merge)
    assert {r.reason for r in opened} == {BATCH_REASON} and {r.status for r in opened} == {"pending"}
    assert all(r.evidence["comparisons"] and r.modelVersion for r in opened)
    before = checksum(store)
    again = apply(store, resolve(store, settings))
    assert again["pendingMergeIds"] == [] and again["splitProposalIds"] == [] and again["alreadyProposed"] == 3
    assert checksum(store) == before
    assert_sound(store)


def test_accepting_a_split_proposal_splits_the_group_along_the_bridge(planted):
    store, settings, ids = planted
    apply(store, resolve(store, settings))
    (proposal,) = rows(store, split_proposal)
    decision = splits.confirm(store, Guards.from_settings(settings), proposal.id, "alice", "family phone")
    detachment = decision.detachment
    assert sorted(detachment.detached_ids) == sorted(proposal.detachedContactIds)
    assert sorted(detachment.kept_ids) == sorted(proposal.keptContactIds)
    pair = tuple(sorted((ids["john"], detachment.detached_primary_id)))
    assert pair in {(r.leftContactId, r.rightContactId) for r in rows(store, cannot_link)}
    assert_sound(store)
    with pytest.raises(AlreadyDecided):
        splits.reject(store, proposal.id, "bob")
    # the next run sees the two people apart, and proposes nothing about them again
    again = resolve(store, settings)
    assert not again.diff.splits
    assert ids["john"] not in {g for m in again.diff.merges for g in m.primary_ids}


def test_a_split_that_cannot_lock_its_busy_group_stays_pending_to_confirm_again(planted, monkeypatch):
    from reconcile.review import detach

    store, settings, _ = planted
    apply(store, resolve(store, settings))
    (proposal,) = rows(store, split_proposal)
    before = checksum(store)
    with monkeypatch.context() as patch:  # no locking round left: the real detach gives up as under contention
        patch.setattr(detach, "MAX_KEY_ROUNDS", 0)
        with pytest.raises(splits.Busy) as refused:
            splits.confirm(store, Guards.from_settings(settings), proposal.id, "alice")
    assert refused.value.code == "group_busy"
    assert checksum(store) == before  # still pending, nothing detached
    decision = splits.confirm(store, Guards.from_settings(settings), proposal.id, "alice")
    assert decision.status == "confirmed"
    assert_sound(store)


def test_rejecting_a_split_proposal_keeps_the_group_and_it_is_not_proposed_again(planted):
    store, settings, ids = planted
    apply(store, resolve(store, settings))
    (proposal,) = rows(store, split_proposal)
    contacts = rows(store, contact)
    assert splits.reject(store, proposal.id, "alice").status == "rejected"
    assert rows(store, contact) == contacts
    assert not resolve(store, settings).diff.splits  # the reviewer's judgement is a must-link now


def test_rejecting_a_split_proposal_whose_bridge_left_the_group_supersedes_it_without_a_label(planted):
    from reconcile.review.detach import detach

    store, settings, _ = planted
    apply(store, resolve(store, settings))
    (proposal,) = rows(store, split_proposal)
    detach(store, Guards.from_settings(settings), proposal.contactId, "bob", "Mary is not John")  # split by hand meanwhile

    with pytest.raises(Superseded):
        splits.reject(store, proposal.id, "alice", "one household")

    (after,) = rows(store, split_proposal)
    assert (after.status, after.decidedBy, after.note) == ("superseded", "alice", splits.NO_BRIDGE)
    assert rows(store, label) == []  # no match label on a pair that is not one group any more
    assert (proposal.contactId, proposal.bridgeContactId) not in judgements(store, frozenset()).must_link
    with pytest.raises(Superseded):  # and it stays closed
        splits.reject(store, proposal.id, "alice")
    assert_sound(store)


def test_rejecting_a_split_proposal_whose_contacts_an_erasure_left_pending_supersedes_it_without_a_label(planted):
    """Erasures before this release left the split proposals naming an erased contact pending."""
    from reconcile.store.erasure import tombstone

    store, settings, ids = planted
    apply(store, resolve(store, settings))
    (proposal,) = rows(store, split_proposal)
    group = [c.id for c in rows(store, contact) if (c.linkedId or c.id) == ids["john"]]
    store.write(lambda tx: tombstone(tx, group, at=utcnow(), cause="erasure:before:root"))

    with pytest.raises(Superseded):
        splits.reject(store, proposal.id, "alice", "one household")

    (after,) = rows(store, split_proposal)
    assert (after.status, after.note) == ("superseded", ERASED)
    assert rows(store, label) == []
    assert_sound(store)


def test_undoing_a_confirmed_splits_detachment_reopens_the_proposal_and_deletes_its_label(planted):
    from reconcile.review import detach

    store, settings, ids = planted
    apply(store, resolve(store, settings))
    (proposal,) = rows(store, split_proposal)
    guards = Guards.from_settings(settings)
    decision = splits.confirm(store, guards, proposal.id, "alice", "family phone")
    pair = (proposal.contactId, proposal.bridgeContactId)
    assert [(r.outcome, r.leftContactId, r.rightContactId) for r in rows(store, label)] == [("non-match", *pair)]

    detach.undo(store, decision.detachment.id, "alice")

    (after,) = rows(store, split_proposal)
    assert (after.status, after.decidedAt, after.decidedBy, after.note, after.detachmentId) == ("pending", None, None, None, None)
    assert rows(store, label) == []  # retraining never learns from the undone decision
    (undone,) = [a for a in rows(store, audit_log) if a.action == "detach_undone"]
    assert undone.detail["splitProposalId"] == proposal.id and len(undone.detail["labels"]) == 1
    assert_sound(store)
    # the group is one again and the proposal asks its question again: decidable, once
    assert splits.reject(store, proposal.id, "alice").status == "rejected"
    assert [(r.outcome, r.leftContactId, r.rightContactId) for r in rows(store, label)] == [("match", *pair)]
    assert pair in judgements(store, frozenset()).must_link


def test_the_cli_writes_a_report_and_applies(planted, monkeypatch, tmp_path):
    store, settings, _ = planted
    monkeypatch.setenv("RECONCILE_DATABASE_URL", settings.database_url)
    report = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["resolve", "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "suspected over-merges" in result.output and "dry run" in result.output
    body = json.loads(report.read_text())
    assert body["counts"]["proposedMerges"] == 2 and body["counts"]["suspectedOverMerges"] == 1
    assert body["modelVersion"] and body["suspectedOverMerges"][0]["bridge"]["evidence"]["comparisons"]
    assert rows(store, split_proposal) == []
    result = CliRunner().invoke(main, ["resolve", "--apply"])
    assert result.exit_code == 0, result.output
    assert "applied: 2 pending merges, 1 split proposals opened" in result.output


def test_the_cli_refuses_an_unwritable_report_before_it_applies_anything(planted, monkeypatch, tmp_path):
    store, settings, _ = planted
    monkeypatch.setenv("RECONCILE_DATABASE_URL", settings.database_url)
    before = checksum(store)
    result = CliRunner().invoke(main, ["resolve", "--apply", "--report", str(tmp_path / "missing" / "r.json")])
    assert result.exit_code != 0 and "not a writable directory" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)  # a message, not a traceback
    assert checksum(store) == before


def test_a_snapshot_directory_with_a_quote_in_its_name_is_a_path_not_sql(planted, tmp_path):
    store, settings, _ = planted
    found = resolve(store, settings, snapshot_dir=tmp_path / "o'brien")
    assert (tmp_path / "o'brien" / "contacts.parquet").exists()
    assert len(found.diff.splits) == 1


def test_split_proposals_through_the_api_match_the_openapi_document(tmp_path):
    from test_openapi import DOC, validate

    from reconcile.store.migrate import upgrade
    from reconcile.web import create_app

    url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(url)
    build_planted(url)
    loose = Reconciler(Store(url), Settings(database_url=url, max_names_per_identifier=100, probabilistic=False))
    for body in (  # a second family phone: one split proposal to confirm, one to reject
        {"email": "bob.brown@example.org", "phoneNumber": "+14155550600", "name": "Bob Brown"},
        {"email": "alice.brown@example.org", "phoneNumber": "+14155550600", "name": "Alice Brown"},
    ):
        loose.identify(loose.parse(body))
    loose.store.dispose()
    app = create_app(Settings(database_url=url))
    app.config.update(TESTING=True)
    store = app.extensions["reconcile"].store
    lst, one, yes, no = "/reviews/splits", "/reviews/splits/{id}", "/reviews/splits/{id}/confirm", "/reviews/splits/{id}/reject"
    covered = set()
    try:
        apply(store, resolve(store, app.extensions["reconcile"].settings))
        client, headers = app.test_client(), bearer(reviewer(store))
        listed = client.get(lst, headers=headers)
        covered.add(validate(listed, lst, "get"))
        assert listed.get_json()["total"] == 2 and listed.get_json()["counts"]["pending"] == 2
        item, other = listed.get_json()["items"]
        shown = client.get(f"/reviews/splits/{item['id']}", headers=headers)
        covered.add(validate(shown, one, "get"))
        assert {c["id"] for c in shown.get_json()["detached"]} == set(item["detachedContactIds"])
        assert shown.get_json()["evidence"]["matchWeight"] == item["matchWeight"]
        covered.add(validate(client.get(lst + "?status=nope", headers=headers), lst, "get", "400"))
        covered.add(validate(client.get(lst), lst, "get", "401"))
        covered.add(validate(client.get(one.format(id=999), headers=headers), one, "get", "404"))
        covered.add(validate(client.get(one.format(id=1)), one, "get", "401"))
        for path in (yes, no):
            covered.add(validate(client.post(path.format(id=999), headers=headers, json={}), path, "post", "404"))
            covered.add(validate(client.post(path.format(id=item["id"]), json={}), path, "post", "401"))
            covered.add(validate(client.post(path.format(id=item["id"]), headers=headers, json={"note": 5}), path, "post", "400"))
        done = client.post(yes.format(id=item["id"]), headers=headers, json={"note": "family phone"})
        covered.add(validate(done, yes, "post", "200"))
        assert done.get_json()["detachment"]["cannotLink"]
        kept = client.post(no.format(id=other["id"]), headers=headers, json={"note": "one household, one customer"})
        covered.add(validate(kept, no, "post", "200"))
        assert kept.get_json()["status"] == "rejected" and "detachment" not in kept.get_json()
        for path in (yes, no):
            again = client.post(path.format(id=item["id"]), headers=headers, json={})
            assert again.get_json()["error"]["code"] == "already_decided"
            covered.add(validate(again, path, "post", "409"))
        not_allowed = client.put(one.format(id=item["id"]), headers=headers)  # 405: the shared error shape
        assert not_allowed.status_code == 405
        for path, method in ((lst, "get"), (one, "get"), (yes, "post"), (no, "post")):
            covered.add(validate(not_allowed, path, method, "default"))
        assert_sound(store)
        login_csrf_forbidden(client, store, covered, yes)
        login_csrf_forbidden(client, store, covered, no)
    finally:
        store.dispose()
    documented = {(path, method, status) for path in (lst, one, yes, no) for method, op in DOC["paths"][path].items() for status in op["responses"]}
    assert documented - covered == set()


def login_csrf_forbidden(client, store, covered, path) -> None:
    """A session without its CSRF header is refused (403), as on every /reviews call."""
    from test_openapi import validate

    from review_seed import PASSWORD

    client.get("/review/login")
    with client.session_transaction("/review/") as sess:
        csrf = sess["csrf"]
    client.post("/review/login", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf})
    covered.add(validate(client.post(path.format(id=1), json={}), path, "post", "403"))


def test_proposals_skip_groups_that_changed_since_the_snapshot(planted):
    store, settings, ids = planted
    result = resolve(store, settings)
    loose = Reconciler(store, Settings(database_url=settings.database_url, probabilistic=False))
    loose.identify(loose.parse({"email": "zed.jones@yahoo.com", "phoneNumber": "+14155550311"}))  # joins the two Zeds
    outcome = apply(store, result)
    assert outcome["changedSince"] == 1 and len(outcome["pendingMergeIds"]) == 1


def test_split_proposals_in_the_review_ui(tmp_path):
    from review_seed import PASSWORD

    from reconcile.store.migrate import upgrade
    from reconcile.web import create_app

    url = f"sqlite:///{tmp_path / 'ui.db'}"
    upgrade(url)
    build_planted(url)
    app = create_app(Settings(database_url=url))
    app.config.update(TESTING=True)
    store = app.extensions["reconcile"].store
    try:
        apply(store, resolve(store, app.extensions["reconcile"].settings))
        (proposal,) = rows(store, split_proposal)
        reviewer(store)
        client = app.test_client()
        client.get("/review/login")
        with client.session_transaction("/review/") as sess:
            csrf = sess["csrf"]
        client.post("/review/login", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf})
        queue = client.get("/review/").get_data(as_text=True)
        assert "Split proposals" in queue and f"/review/splits/{proposal.id}" in queue
        page = client.get(f"/review/splits/{proposal.id}").get_data(as_text=True)
        assert "mary.smith@gmail.com" in page and 'id="confirm-form"' in page and "Exact match on phone" in page
        assert client.get("/review/splits/999").status_code == 404
        with client.session_transaction("/review/") as sess:
            csrf = sess["csrf"]  # a new session's token after the login
        done = client.post(f"/review/splits/{proposal.id}/confirm", data={"csrf_token": csrf})
        assert done.status_code == 302
        assert rows(store, split_proposal)[0].status == "confirmed"
        assert "Split proposals" not in client.get("/review/").get_data(as_text=True)
        assert_sound(store)
    finally:
        store.dispose()


@pytest.mark.parametrize("load", ["identify", "import"])
def test_contacts_one_event_presented_together_stay_together(tmp_path, load):
    """A request carrying one group's email and another's phone joined them (the exact
    stage's merge): the customer gave both, so the batch keeps them together even where
    the model alone would not link the two contacts. The same for the event of a bulk
    import (causes ``import:...``: only ``identify:...`` were read, and a false split was
    proposed)."""
    from reconcile.ingest.loader import import_file
    from reconcile.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'req.db'}"
    upgrade(url)
    store = Store(url)
    try:
        reconciler = Reconciler(store, Settings(database_url=url, probabilistic=False))
        if load == "identify":
            for body in ANN_IN_TWO_GROUPS_THEN_BOTH:
                reconciler.identify(reconciler.parse(body))
        else:
            events = tmp_path / "events.jsonl"
            events.write_text("".join(json.dumps(body) + "\n" for body in ANN_IN_TWO_GROUPS_THEN_BOTH))
            import_file(events, reconciler, workers=0)
        assert len({c.linkedId or c.id for c in rows(store, contact)}) == 1
        result = resolve(store, Settings(database_url=url))
        assert result.diff.splits == [] and result.diff.unchanged == 1
    finally:
        store.dispose()


def test_resolve_runs_after_an_erasure_whose_contacts_links_still_name(tmp_path):
    """A reviewer's confirmation and a request's link outlive the erasure of one of their
    contacts; the batch clusters live contacts only (it failed with a KeyError)."""
    from reconcile.engine.erasure import ErasureKey, erase
    from reconcile.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'erased.db'}"
    upgrade(url)
    store = Store(url)
    try:
        reconciler = Reconciler(store, Settings(database_url=url, probabilistic=False))
        for body in (*ANN_IN_TWO_GROUPS_THEN_BOTH, {"email": "bo.chen@example.org", "phoneNumber": "+14155550123"}):
            reconciler.identify(reconciler.parse(body))
        erase(store, ErasureKey(contact_id=1), by="admin")
        result = resolve(store, Settings(database_url=url))
        assert result.diff.live_groups == 1 and result.diff.unchanged == 1 and not result.diff.splits
    finally:
        store.dispose()


def test_spark_without_java_is_a_clear_error_before_any_snapshot(planted, monkeypatch, tmp_path):
    import shutil

    store, settings, _ = planted
    monkeypatch.setenv("RECONCILE_DATABASE_URL", settings.database_url)
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "java" else real_which(name, *a, **k))
    snapshot = tmp_path / "snapshot"
    result = CliRunner().invoke(main, ["resolve", "--engine", "spark", "--snapshot-dir", str(snapshot)])
    assert result.exit_code != 0 and "needs Java 17" in result.output
    assert not snapshot.exists()
