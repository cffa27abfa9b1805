"""Nothing stale in the queue: an item whose groups were merged or split by other means
closes itself ("resolved elsewhere") in the transaction that did it, leaves the pending
counts and ``/metrics``, and writes no label; undoing that change opens it again; a
rejection of groups that are still two always records a cannot-link."""
from __future__ import annotations

import pytest
from alembic import command
from conftest import assert_sound, rows
from review_seed import bearer, exact_only, identify, near_miss, reviewer
from sqlalchemy import insert, select, update

from reconcile.review import detach as corrections
from reconcile.review import queue as review
from reconcile.store.contacts import utcnow
from reconcile.store.migrate import alembic_config, upgrade
from reconcile.store.pending import open_pending_merge
from reconcile.store.schema import audit_log, cannot_link, contact, label, pending_merge
from reconcile.web import create_app


@pytest.fixture
def app(db_url):
    app = create_app(exact_only(db_url))
    app.config.update(TESTING=True)
    yield app
    app.extensions["reconcile"].store.dispose()


def status(store, item_id: int) -> str:
    return next(r.status for r in rows(store, pending_merge) if r.id == item_id)


def test_a_merge_by_identify_closes_the_item_and_the_metric_counts_it_no_more(app, client, reconciler, store):
    token = reviewer(store, "alice")
    item = near_miss(reconciler, 1)
    other = near_miss(reconciler, 2)
    assert "reconcile_review_queue_pending 2" in client.get("/metrics").get_data(as_text=True)

    identify(reconciler, "ann.lee1@hillvalley.edu", "+442079461101")  # joins item 1's groups exactly

    assert (status(store, item), status(store, other)) == ("resolved", "pending")
    assert "reconcile_review_queue_pending 1" in client.get("/metrics").get_data(as_text=True)
    listed = client.get("/reviews", headers=bearer(token)).get_json()
    assert [i["id"] for i in listed["items"]] == [other] and listed["counts"]["resolved"] == 1
    assert rows(store, label) == [] and rows(store, cannot_link) == []
    assert_sound(store)


def test_a_confirmation_closes_the_other_items_it_settles(reconciler, store):
    a = identify(reconciler, "ann@hillvalley.edu", "+442079460001", "Ann Lee")["primaryContactId"]
    b = identify(reconciler, "ann.lee@twinpines.org", "+442079460002", "Ann Lee")["primaryContactId"]
    c = identify(reconciler, "annie@lyonestates.net", "+442079460003", "Ann Lee")["primaryContactId"]

    def open_(x, y):
        return store.write(lambda tx: open_pending_merge(tx, x, y, reason="score", contact_id=y, candidate_id=x, score=0.9))

    ab, bc, ac = open_(a, b), open_(b, c), open_(a, c)
    review.confirm(store, ab, "alice")
    review.confirm(store, bc, "alice")  # a, b and c are one group now: a-c asks nothing
    assert (status(store, ab), status(store, bc), status(store, ac)) == ("confirmed", "confirmed", "resolved")
    assert len(rows(store, label)) == 2
    shown = review.get_item(store, ac)
    assert shown["status"] == "resolved" and "merged" in shown["note"]
    # undoing the confirmation that settled it splits c off again: a-c asks again
    review.undo(store, bc, "alice")
    assert (status(store, bc), status(store, ac)) == ("pending", "pending")
    assert review.get_item(store, ac)["note"] is None
    assert_sound(store)


def test_a_detachment_that_splits_the_scored_pair_off_closes_the_item(reconciler, store):
    a = identify(reconciler, "doc@hillvalley.edu", "111111", "Emmett Brown")["primaryContactId"]
    b = identify(reconciler, "marty@hillvalley.edu", "222222", "Marty McFly")["primaryContactId"]
    b2 = identify(reconciler, "marty@twinpines.org", "222222", "Marty McFly")["secondaryContactIds"][-1]
    item = store.write(lambda tx: open_pending_merge(tx, a, b, reason="score", contact_id=b2, candidate_id=a, score=0.9))

    corrections.detach(store, reconciler.guards, b2, "alice")

    assert status(store, item) == "resolved"
    assert "split" in review.get_item(store, item)["note"]
    assert_sound(store)
    (detachment,) = [r.id for r in rows(store, audit_log) if r.action == "detached"]
    corrections.undo(store, detachment, "alice")
    assert status(store, item) == "pending"


def test_rejecting_groups_that_are_still_two_records_a_cannot_link(reconciler, store):
    item = near_miss(reconciler, 3)
    result = review.reject(store, item, "alice")
    (row,) = rows(store, cannot_link)
    assert (row.leftContactId, row.rightContactId) == result.cannot_link and row.pendingMergeId == item


def test_migration_0011_closes_the_items_already_stale(db_url):
    command.downgrade(alembic_config(db_url), "0008")
    app = create_app(exact_only(db_url))
    reconciler = app.extensions["reconcile"]
    store = reconciler.store
    try:
        a = identify(reconciler, "ann.lee1@hillvalley.edu", "+442079460001")["primaryContactId"]
        b = identify(reconciler, "annlee1@twinpines.org", "+442079461101")["primaryContactId"]
        c = identify(reconciler, "annlee2@twinpines.org", "+442079461102")["primaryContactId"]
        d = identify(reconciler, "annlee3@twinpines.org", "+442079461103")["primaryContactId"]
        d2 = identify(reconciler, "annlee3@twinpines.org", "+442079461104")["secondaryContactIds"][0]
        with store.engine.begin() as conn:
            for left, right, pair in ((a, b, (None, None)), (a, c, (c, a)), (a, d, (d2, a))):
                conn.execute(insert(pending_merge).values(
                    leftPrimaryId=left, rightPrimaryId=right, contactId=pair[0], candidateId=pair[1],
                    reason="score", status="pending", openedAt=utcnow(),
                ))
            # a and b merged, d2 split off d, by a service that did not close items yet
            conn.execute(update(contact).where(contact.c.id == b).values(linkedId=a, linkPrecedence="secondary"))
            conn.execute(update(contact).where(contact.c.id == d2).values(linkedId=None, linkPrecedence="primary"))
        upgrade(db_url)
        with store.engine.connect() as conn:
            found = dict(conn.execute(select(pending_merge.c.rightPrimaryId, pending_merge.c.status)).all())
        assert found == {b: "resolved", c: "pending", d: "resolved"}
    finally:
        store.dispose()


def test_reconcile_check_reports_a_pending_item_left_stale(reconciler, store):
    """The invariant every test's ``assert_sound`` now checks: a write that merged groups
    without closing the item it settled is caught."""
    from reconcile.store.invariants import check

    item = near_miss(reconciler, 4)
    (row,) = [r for r in rows(store, pending_merge) if r.id == item]
    with store.engine.begin() as conn:  # a merge that bypassed the store's closing step
        conn.execute(update(contact).where(contact.c.id == row.rightPrimaryId).values(linkedId=row.leftPrimaryId, linkPrecedence="secondary"))
    assert "review-stale" in [v.check for v in check(store)]
