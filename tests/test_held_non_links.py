"""A pair a shared-identifier guard held apart goes to a person only when the model does
not clearly reject it: below the lower threshold the guard's "no link" stands (recorded,
shown in the answer), and only the audit sample's known-probability draw of such pairs
reaches the queue, so the share of true matches they hold apart stays measurable."""
from __future__ import annotations

import pytest
from conftest import assert_sound, identify, rows

from reconcile.config import Settings
from reconcile.engine import audit_sampling
from reconcile.review import queue as review
from reconcile.review.audit_estimates import audit_report
from reconcile.review.explain import explain
from reconcile.store.schema import link_guard, pending_merge

ALICE = {"email": "alice@smith.org", "phoneNumber": "4155552671", "name": "Alice Smith"}
BOB = {"email": "bob@smith.org", "phoneNumber": "4155552671", "name": "Bob Smith"}


@pytest.fixture
def settings(sqlite_db, request) -> Settings:
    """No held audit unless a test asks for it (``indirect`` parameters override)."""
    return Settings(database_url=sqlite_db, **{"audit_held_rate": 0.0, **getattr(request, "param", {})})


def test_a_family_phone_the_model_clearly_rejects_is_held_without_a_review(client, store, reconciler):
    identify(client, **ALICE)
    bob = identify(client, **BOB)
    assert bob["match"]["score"] < reconciler.thresholds.lower
    assert [g["guard"] for g in bob["match"]["guards"]] == ["shared-identifier"]
    assert bob["match"]["pendingMergeIds"] == [] and rows(store, pending_merge) == []
    (guard,) = rows(store, link_guard)  # the guard's decision is recorded, with no review behind it
    assert (guard.contactId, guard.field, guard.guard, guard.pendingMergeId) == (2, "phoneNumber", "shared-identifier", None)
    assert_sound(store)


@pytest.mark.parametrize("settings", [{"audit_held_rate": 1.0}], indirect=True)
def test_a_drawn_held_non_link_is_an_audit_item_that_estimates_the_matches_held_apart(client, store, reconciler):
    identify(client, **ALICE)
    bob = identify(client, **BOB)
    (item,) = rows(store, pending_merge)
    assert bob["match"]["pendingMergeIds"] == [item.id]
    assert (item.reason, item.guard, item.audit, item.inclusionProbability) == ("guard", "shared-identifier", "held", 1.0)
    assert item.score == bob["match"]["score"] < reconciler.thresholds.lower
    assert (item.contactId, item.candidateId) == (2, 1)
    (guard,) = rows(store, link_guard)
    assert guard.pendingMergeId == item.id
    text = explain(review.get_item(store, item.id), {})["text"]
    assert "Held by the shared-identifier guard" in text and "Drawn at random" in text
    review.reject(store, item.id, "ann")
    held = audit_report(store).held_match_rate
    assert (held.decided, held.share) == (1, 0.0)
    assert_sound(store)


@pytest.mark.parametrize("settings", [{"audit_held_rate": 0.0, "lower_threshold": 1e-9}], indirect=True)
def test_a_held_pair_the_model_does_not_clearly_reject_still_goes_to_a_reviewer(client, store, reconciler):
    identify(client, **ALICE)
    bob = identify(client, **BOB)
    (item,) = rows(store, pending_merge)
    assert bob["match"]["score"] >= reconciler.thresholds.lower
    assert (item.reason, item.guard, item.audit, item.inclusionProbability) == ("guard", "shared-identifier", None, None)
    assert item.score == bob["match"]["score"] and item.modelVersion == reconciler.scorer.version
    assert item.evidence["guard"] == "shared-identifier"  # the guard's reason and the model's evidence, side by side
    assert {c["comparison"] for c in item.evidence["comparisons"]} == {"email", "phone", "name"}
    assert_sound(store)


def test_the_held_draw_honours_its_rate():
    plan = audit_sampling.AuditPlan(link_rate=0.0, near_rate=0.0, near_bits=8.0, seed="t", held_rate=0.05)
    assert plan.enabled
    drawn = sum(audit_sampling.drawn(plan, i, i + 3, plan.held_rate) for i in range(20_000))
    assert 850 < drawn < 1150  # 1,000 expected, 4 standard deviations either side


@pytest.mark.parametrize("settings", [{"lower_threshold": 0.5}], indirect=True)
def test_an_uncertain_pair_of_groups_a_reviewer_already_rejected_is_not_asked_again(client, store):
    identify(client, email="jsmith.work@acme.com", phoneNumber="+12025550143")  # 1: an older group
    identify(client, email="jonathan.smith@gmail.com", phoneNumber="+14155552671", name="Jonathan Smith")  # 2
    identify(client, email="jonathan.s@gmail.com", name="Jonathan Smith")  # 3: unsure about 2
    (item,) = rows(store, pending_merge)
    assert (item.leftPrimaryId, item.rightPrimaryId, item.reason) == (2, 3, "score")
    review.reject(store, item.id, "ann")  # a cannot-link between 2 and 3
    joined = identify(client, email="jonathan.s@gmail.com", phoneNumber="+12025550143")  # 3 joins 1's group
    assert joined["contact"]["primaryContactId"] == 1
    # the model is unsure about this contact of group 1 and group 2: the pair (1, 2) is new
    # to the queue, but a reviewer already said 2 and 3 (now in group 1) are different people
    again = identify(client, email="jonathan.s@gmail.com", phoneNumber="+12025550199", name="Jonathan Smith")
    assert 0.5 <= again["match"]["score"] < 0.999 and again["match"]["candidateId"] == 2
    assert again["match"]["pendingMergeIds"] == [] and len(rows(store, pending_merge)) == 1
    assert_sound(store)
