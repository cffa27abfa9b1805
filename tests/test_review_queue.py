"""The review queue's semantics on the store, on SQLite and PostgreSQL: confirm merges as the
contract does, reject is a lasting cannot-link, refusals change nothing, decisions are labels
and audit rows, undo is exact or refused; and the races between reviewers and /identify."""
from __future__ import annotations

import threading

import pytest
from conftest import assert_sound
from review_seed import EVIDENCE, PASSWORD, bulk_queue, exact_only, identify, near_miss, open_item, reviewer, status_of
from sqlalchemy import func, select

from reconcile.engine.erasure import ErasureKey, erase
from reconcile.engine.reconciler import Reconciler
from reconcile.review import queue as review
from reconcile.review.labels import load_labels
from reconcile.store import Store
from reconcile.store.pending import cannot_link_pairs, open_pending_merge
from reconcile.store.schema import audit_log, cannot_link, contact, label, pending_merge


@pytest.fixture
def rec(db_url):
    store = Store(db_url)
    yield Reconciler(store, exact_only(db_url))
    store.dispose()


def links(store: Store) -> dict[int, tuple]:
    with store.read() as tx:
        rows = tx.conn.execute(
            select(contact.c.id, contact.c.linkedId, contact.c.linkPrecedence, contact.c.linkMethod)
        ).all()
    return {r.id: tuple(r[1:]) for r in rows}


def rows_of(store: Store, table, *where) -> list:
    with store.read() as tx:
        return tx.conn.execute(select(table).where(*where).order_by(table.c.id)).all()


def count(store: Store, table) -> int:
    with store.read() as tx:
        return tx.conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_confirm_merges_both_groups_under_the_older_primary_with_no_chains(rec):
    store = rec.store
    item = near_miss(rec, 1)
    older, newer = rows_of(store, pending_merge, pending_merge.c.id == item)[0][1:3]
    # the newer group has a secondary of its own, which must end up pointing at the older primary
    secondary = identify(rec, "annlee1@twinpines.org", "+442079461999")["secondaryContactIds"][0]

    result = review.confirm(store, item, "alice", note="same phone owner")

    assert (result.status, result.primary_id, result.merged_primary_id) == ("confirmed", older, newer)
    state = links(store)
    assert state[older][:2] == (None, "primary")
    assert state[newer][:2] == (older, "secondary") and state[secondary][:2] == (older, "secondary")
    assert state[newer][2] == "review"
    moved = rows_of(store, audit_log, audit_log.c.cause == f"review:{item}:alice")
    assert {(m.contactId, m.action, m.newLinkedId) for m in moved} == {
        (newer, "demoted", older),
        (secondary, "relinked", older),
    }
    (decided,) = rows_of(store, pending_merge, pending_merge.c.id == item)
    assert (decided.status, decided.decidedBy, decided.note) == ("confirmed", "alice", "same phone owner")
    assert decided.decidedAt is not None
    assert_sound(store)


def test_every_decision_is_a_label_naming_both_sides_contacts_by_id_only(rec):
    store = rec.store
    confirmed, rejected = near_miss(rec, 1), near_miss(rec, 2)
    review.confirm(store, confirmed, "alice")
    review.reject(store, rejected, "bob")

    labels = {r.pendingMergeId: r for r in rows_of(store, label)}
    assert labels[confirmed].outcome == "match" and labels[rejected].outcome == "non-match"
    assert labels[rejected].decidedBy == "bob" and labels[rejected].source == "review"
    item = rows_of(store, pending_merge, pending_merge.c.id == rejected)[0]
    lab = labels[rejected]
    assert (lab.leftContactId, lab.rightContactId) == (item.candidateId, item.contactId)
    # no copy of the customer's values: training reads them from the contacts
    assert lab.leftRecords == [{"id": item.leftPrimaryId}]
    assert lab.rightRecords == [{"id": item.rightPrimaryId}]
    (pair,) = [p for p in load_labels(store)[0] if p.pending_merge_id == rejected]
    assert {pair.left.email, pair.right.email} >= {"annlee2@twinpines.org"}
    assert "Ann Lee" in {pair.left.name, pair.right.name}


def test_reject_is_a_cannot_link_that_stops_the_pair_being_proposed_again(rec):
    store = rec.store
    item = near_miss(rec, 1)
    older, newer = rows_of(store, pending_merge, pending_merge.c.id == item)[0][1:3]
    before = links(store)

    result = review.reject(store, item, "alice", note="different birthdays")

    assert result.cannot_link == (older, newer)
    assert links(store) == before  # no link changed
    (row,) = rows_of(store, cannot_link)
    assert (row.leftContactId, row.rightContactId, row.pendingMergeId, row.createdBy) == (older, newer, item, "alice")
    with store.read() as tx:
        assert cannot_link_pairs(tx, [older, newer]) == {(older, newer)}
    assert store.write(lambda tx: open_pending_merge(tx, newer, older, reason="score", score=0.95)) is None
    notes = rows_of(store, audit_log, audit_log.c.cause == f"review:{item}:alice")
    assert {(n.contactId, n.action) for n in notes} == {(older, "cannot_link"), (newer, "cannot_link")}
    assert status_of(store, item) == "rejected"
    assert_sound(store)


def test_deciding_twice_is_refused_and_changes_nothing(rec):
    store = rec.store
    item = near_miss(rec, 1)
    review.confirm(store, item, "alice")
    before = (links(store), count(store, audit_log), count(store, label), count(store, cannot_link))

    with pytest.raises(review.AlreadyDecided):
        review.confirm(store, item, "bob")
    with pytest.raises(review.AlreadyDecided):
        review.reject(store, item, "bob")

    assert (links(store), count(store, audit_log), count(store, label), count(store, cannot_link)) == before
    assert rows_of(store, pending_merge, pending_merge.c.id == item)[0].decidedBy == "alice"


def test_an_item_whose_groups_identify_merged_closes_itself_as_resolved_elsewhere(rec):
    store = rec.store
    item = near_miss(rec, 1)
    assert review.counts(store)["pending"] == 1
    merged = identify(rec, "ann.lee1@hillvalley.edu", "+442079461101")  # joins both groups exactly
    assert len(merged["secondaryContactIds"]) == 1
    # closed by the merge itself, in its transaction: out of the pending count, no label
    assert status_of(store, item) == "resolved"
    assert review.counts(store)["pending"] == 0
    shown = review.get_item(store, item)
    assert shown["stale"] is True and shown["note"].startswith("resolved elsewhere")
    before = (links(store), count(store, label))

    with pytest.raises(review.ResolvedElsewhere):
        review.confirm(store, item, "alice")
    assert status_of(store, item) == "resolved"
    with pytest.raises(review.ResolvedElsewhere):
        review.reject(store, item, "alice")
    assert (links(store), count(store, label)) == before
    assert count(store, cannot_link) == 0
    assert_sound(store)


def test_item_shows_each_sides_current_group_and_confirm_merges_those(rec):
    store = rec.store
    a = identify(rec, "ann@hillvalley.edu", "+442079460001", "Ann Lee")["primaryContactId"]
    c = identify(rec, "annie@lyonestates.net", "+442079460003", "Annie Lee")["primaryContactId"]
    b = identify(rec, "ann.lee@twinpines.org", "+442079460002", "Ann Lee")["primaryContactId"]
    item = open_item(store, a, b)
    identify(rec, "annie@lyonestates.net", "+442079460002")  # b's group joins the older c's

    shown = review.get_item(store, item)
    assert shown["left"]["primaryId"] == a and shown["right"]["primaryId"] == c
    assert [x["id"] for x in shown["right"]["contacts"]] == [c, b]
    assert shown["evidence"] == EVIDENCE and shown["stale"] is False
    assert shown["contact"]["email"] == "ann.lee@twinpines.org"

    review.confirm(store, item, "alice")
    state = links(store)
    assert all(state[i][0] == a for i in state if i != a)  # everyone straight at a: no chains
    assert_sound(store)


def test_undo_a_rejection_removes_its_cannot_link_and_label(rec):
    store = rec.store
    item = near_miss(rec, 1)
    review.reject(store, item, "alice")

    result = review.undo(store, item, "alice")

    assert result.status == "pending" and status_of(store, item) == "pending"
    assert count(store, cannot_link) == 0 and count(store, label) == 0
    undo_rows = rows_of(store, audit_log, audit_log.c.cause == f"review-undo:{item}:alice")
    assert {r.action for r in undo_rows} == {"cannot_link_removed", "decision_undone"}
    review.confirm(store, item, "alice")  # decidable again
    assert_sound(store)


def test_undo_a_confirmation_splits_the_groups_back_exactly(rec):
    store = rec.store
    item = near_miss(rec, 1)
    identify(rec, "annlee1@twinpines.org", "+442079461999")  # a secondary in the newer group
    before = links(store)

    for _ in range(2):  # confirm, undo, and again: the second undo reverts only the second merge
        review.confirm(store, item, "alice")
        assert links(store) != before
        review.undo(store, item, "alice")
        assert links(store) == before
        assert status_of(store, item) == "pending" and count(store, label) == 0
        assert_sound(store)

    restored = rows_of(store, audit_log, audit_log.c.cause == f"review-undo:{item}:alice", audit_log.c.newPrecedence.is_not(None))
    assert {r.action for r in restored} == {"promoted", "relinked"}


def test_undo_is_refused_once_the_merged_group_changed(rec):
    store = rec.store
    item = near_miss(rec, 1)
    review.confirm(store, item, "alice")
    identify(rec, "annlee1@twinpines.org", "+15550001234")  # a new contact now links to the loser's email
    before = (links(store), count(store, audit_log), count(store, label))

    with pytest.raises(review.CannotUndo):
        review.undo(store, item, "alice")

    assert (links(store), count(store, audit_log), count(store, label)) == before
    assert status_of(store, item) == "confirmed"
    assert_sound(store)


def test_undoing_a_rejection_whose_contact_was_erased_closes_the_item_as_superseded(rec):
    store = rec.store
    item = near_miss(rec, 1)
    (row,) = rows_of(store, pending_merge, pending_merge.c.id == item)
    review.reject(store, item, "alice")
    erase(store, ErasureKey(contact_id=row.leftPrimaryId), by="root")

    result = review.undo(store, item, "alice")

    # the decision is taken back, but the item asks about a person who is gone: not reopened
    assert result.status == "superseded"
    (row,) = rows_of(store, pending_merge, pending_merge.c.id == item)
    assert (row.status, row.decidedBy, row.note) == ("superseded", "alice", review.ERASED)
    assert count(store, cannot_link) == 0 and count(store, label) == 0
    assert review.counts(store)["pending"] == 0
    with pytest.raises(review.Superseded):
        review.confirm(store, item, "alice")
    with pytest.raises(review.CannotUndo):
        review.undo(store, item, "alice")
    assert_sound(store)


def test_only_the_decider_or_an_admin_may_undo(rec):
    store = rec.store
    item = near_miss(rec, 1)
    review.reject(store, item, "alice")
    with pytest.raises(review.NotYours):
        review.undo(store, item, "bob")
    review.undo(store, item, "root", admin=True)
    assert status_of(store, item) == "pending"
    with pytest.raises(review.CannotUndo):
        review.undo(store, item, "alice")
    assert review.last_decision(store, "alice") is None


def test_list_orders_by_score_or_age_paginates_and_counts(rec):
    store = rec.store
    scores = [0.85, 0.97, 0.91]
    ids = [near_miss(rec, i, score=s) for i, s in enumerate(scores)]
    guard_a = identify(rec, "g1@hillvalley.edu", "+442079469901")["primaryContactId"]
    guard_b = identify(rec, "g2@hillvalley.edu", "+442079469902")["primaryContactId"]
    guarded = open_item(store, guard_a, guard_b, score=None, reason="guard", guard="shared_identifier")
    review.reject(store, ids[0], "alice")

    page = review.list_items(store, order="score")
    assert [i["id"] for i in page.items] == [ids[1], ids[2], guarded]  # guard items last
    assert page.counts == {"pending": 3, "confirmed": 0, "rejected": 1, "superseded": 0, "resolved": 0}
    assert page.total == 3
    assert [i["id"] for i in review.list_items(store, order="age").items] == [ids[1], ids[2], guarded]
    assert [i["id"] for i in review.list_items(store, status=None, order="age").items] == [*ids, guarded]
    second = review.list_items(store, order="score", page=2, per_page=2)
    assert [i["id"] for i in second.items] == [guarded] and second.pages == 2
    first = page.items[0]
    assert first["contact"]["email"] == "annlee1@twinpines.org" and first["ageSeconds"] >= 0
    assert review.pending_count(store) == 3

    # next/previous follow the same order and skip decided items
    assert review.neighbour(store, ids[1], "score", "next") == ids[2]
    assert review.neighbour(store, ids[2], "score", "next") == guarded
    assert review.neighbour(store, guarded, "score", "next") is None
    assert review.neighbour(store, guarded, "score", "prev") == ids[2]
    assert review.neighbour(store, ids[1], "score", "prev") is None
    assert review.neighbour(store, ids[0], "age", "next") == ids[1]
    assert review.first_pending(store, "score") == ids[1]


def test_bulk_decisions_are_independent(rec):
    store = rec.store
    ids = [near_miss(rec, i) for i in range(3)]
    review.confirm(store, ids[1], "bob")

    outcomes = review.decide_many(store, [ids[0], ids[1], ids[2], 999], "alice", "reject")

    assert [type(o).__name__ for o in outcomes] == ["DecisionResult", "AlreadyDecided", "DecisionResult", "NotFound"]
    assert [status_of(store, i) for i in ids] == ["rejected", "confirmed", "rejected"]
    assert_sound(store)


def test_reviewer_accounts_store_only_hashes(rec):
    store = rec.store
    token = reviewer(store, "alice")
    assert review.check_password(store, "alice", PASSWORD).username == "alice"
    assert review.check_password(store, "alice", "wrong password") is None
    assert review.check_password(store, "nobody", PASSWORD) is None
    assert review.check_token(store, token).username == "alice"
    assert review.check_token(store, token + "x") is None
    from reconcile.store.schema import reviewer as reviewer_table

    (row,) = rows_of(store, reviewer_table)
    assert row.passwordHash.startswith(("scrypt:", "pbkdf2:")) and PASSWORD not in row.passwordHash
    assert row.apiTokenHash == review.hash_token(token) and token not in row.apiTokenHash
    with pytest.raises(ValueError):
        reviewer(store, "alice")
    fresh = review.new_token(store, "alice")
    assert review.check_token(store, token) is None and review.check_token(store, fresh).username == "alice"


def test_a_thousand_items_page_without_gaps_or_repeats(rec):
    store = rec.store
    bulk_queue(store, 1000)
    seen = []
    for number in range(1, 11):
        seen += [i["id"] for i in review.list_items(store, order="score", page=number, per_page=100).items]
    assert len(seen) == 1000 and len(set(seen)) == 1000


# --- races (PostgreSQL: real concurrent transactions) --------------------------------


def _race(*calls):
    """Run the calls at the same instant on their own threads; return each one's result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # the loser's refusal is the point of the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.fixture
def pg_rec(pg_url):
    store = Store(pg_url)
    yield Reconciler(store, exact_only(pg_url))
    store.dispose()


@pytest.mark.postgres
def test_two_reviewers_deciding_one_item_at_once_one_wins(pg_rec):
    store = pg_rec.store
    for i in range(8):
        item = near_miss(pg_rec, i)
        decisions = ("confirm", "reject") if i % 2 else ("confirm", "confirm")
        results = _race(
            lambda: review.decide(store, item, "alice", decisions[0]),
            lambda: review.decide(store, item, "bob", decisions[1]),
        )
        wins = [r for r in results if isinstance(r, review.DecisionResult)]
        losses = [r for r in results if isinstance(r, review.AlreadyDecided)]
        assert len(wins) == 1 and len(losses) == 1, results
        assert count(store, label) == i + 1
    assert_sound(store)


@pytest.mark.postgres
def test_a_confirm_racing_identify_merging_the_same_groups(pg_rec):
    store = pg_rec.store
    for i in range(8):
        item = near_miss(pg_rec, i)
        results = _race(
            lambda: review.confirm(store, item, "alice"),
            lambda: identify(pg_rec, f"ann.lee{i}@hillvalley.edu", f"+4420794611{i:02d}"),
        )
        confirmed, answer = results
        assert isinstance(answer, dict), answer
        assert isinstance(confirmed, (review.DecisionResult, review.ResolvedElsewhere)), confirmed
        expected = "confirmed" if isinstance(confirmed, review.DecisionResult) else "resolved"
        assert status_of(store, item) == expected
        assert len(answer["secondaryContactIds"]) == 1  # one group either way, under the older primary
        assert_sound(store)
