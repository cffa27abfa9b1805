"""The reviewer's side of the queue: list pending merges, show one, decide it, undo it;
and the reviewers' accounts.

Independent of Flask: the JSON API, the review UI and the CLI call these functions with
a :class:`~reconcile.store.Store`. The identify pipeline *opens* pending merges (see
:mod:`reconcile.store.pending`); here a person closes them.

A decision changes the live contact graph, so every decision runs in one write
transaction that locks both groups' current primaries (the same locks ``/identify``
takes), re-checks the item under those locks, and either applies the decision with
its audit rows and its label, or changes nothing but the item's status. An outcome
that must be refused *after* a write (an item found superseded is marked so) is
returned from the transaction and raised once it has committed.

This module decides what a decision means; the statements it runs inside that
transaction are the store's (:mod:`reconcile.store.reviews`, :mod:`reconcile.store.labels`,
:mod:`reconcile.store.reviewers` and :class:`~reconcile.store.ContactTx`).
"""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from werkzeug.security import check_password_hash, generate_password_hash

from ..engine.audit_sampling import LINK as AUDIT_LINK
from ..engine.exact import age_key, primary_of
from ..references import referenced_ids, render, render_json
from ..store import Store, labels, reviewers, reviews
from ..store.contacts import RESOLVED, RESOLVED_MERGED, RESOLVED_SPLIT, ContactRow, ContactTx, settled_reason, utcnow
# the queue's plain reads (its head, a reviewer's last decision, its size) need no decision
from ..store.reviews import Order, first_pending, last_decision, pending_count  # noqa: F401
from .explain import Bands, explain

#: ``resolved``: closed because another change merged or split its groups ("resolved elsewhere")
STATUSES = ("pending", "confirmed", "rejected", "superseded", "resolved")
Decision = Literal["confirm", "reject"]

#: why an item naming an erased contact was superseded (by the erasure, a decision or an undo)
ERASED = "a contact in it was erased"
#: the note of a case's confirmation, undone, whose groups other confirmations had joined
JOINED_IN_CASE = "resolved elsewhere: the groups were joined by another confirmation of the same case"

MAX_PER_PAGE = 200
#: far beyond any real queue, and small enough that the row offset fits a 64-bit integer
MAX_PAGE = 1_000_000_000


# --- errors -------------------------------------------------------------------------


class ReviewError(Exception):
    """A decision that was refused; ``code`` is stable for the API, nothing was changed."""

    code = "review_error"

    def __init__(self, item_id: int, message: str):
        super().__init__(message)
        self.item_id = item_id
        self.message = message


class NotFound(ReviewError):
    code = "not_found"


class AlreadyDecided(ReviewError):
    code = "already_decided"


class Superseded(ReviewError):
    """A contact in the item was erased."""

    code = "superseded"


class ResolvedElsewhere(ReviewError):
    """The groups were merged, or split, by other means: the item asks nothing any more."""

    code = "resolved_elsewhere"


class CannotUndo(ReviewError):
    """The decision cannot be reverted safely (the groups changed since), or is not there."""

    code = "cannot_undo"


class NotYours(ReviewError):
    """Only the reviewer who decided (or an admin) may undo a decision."""

    code = "not_your_decision"


# --- reading ------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    page: int
    per_page: int
    counts: dict[str, int]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def counts(store: Store) -> dict[str, int]:
    """Items per status (one indexed ``GROUP BY``), every status present."""
    found = reviews.status_counts(store)
    return {status: found.get(status, 0) for status in STATUSES}


def list_items(
    store: Store,
    status: str | None = "pending",
    order: Order = "score",
    page: int = 1,
    per_page: int = 50,
    bands: Bands | None = None,
) -> Page:
    """One page of the queue: offset pagination over the (status, score|openedAt) indexes.

    Each item carries the scored pair's contacts (two primary-key lookups), enough to
    recognise it in a list; :func:`get_item` gives both groups in full. A page or page
    size out of range is refused, never silently changed (callers check it first).
    """
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
    if not 1 <= page <= MAX_PAGE:
        raise ValueError(f"page must be from 1 to {MAX_PAGE}, not {page}")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise ValueError(f"per_page must be from 1 to {MAX_PER_PAGE}, not {per_page}")
    rows = reviews.items_page(store, status, order, limit=per_page, offset=(page - 1) * per_page)
    all_counts = counts(store)
    total = all_counts[status] if status is not None else sum(all_counts.values())
    return Page(summaries(store, rows, bands or {}), total, page, per_page, all_counts)


def summaries(store: Store, rows: Sequence[Any], bands: Bands) -> list[dict[str, Any]]:
    """Rows of :func:`reconcile.store.reviews.items_page` as the list shows them, each with
    its plain explanation (a guard's reason rendered from the contacts, one read for all)."""
    reasons = [_held_reason(r.evidence) for r in rows]
    with store.read() as tx:
        value_of = _values_of(tx.contacts(referenced_ids([x for x in reasons if x])))
    now = utcnow()
    out = []
    for row, reason in zip(rows, reasons):
        item = _summary(row, now)
        shown = {"reason": render(reason, value_of)} if reason else {}
        item["explanation"] = explain({**item, "evidence": shown}, bands)
        out.append(item)
    return out


def _held_reason(evidence: Any) -> str | None:
    return evidence.get("reason") if isinstance(evidence, dict) and isinstance(evidence.get("reason"), str) else None


def _summary(row, now: datetime) -> dict[str, Any]:
    opened = as_utc(row.openedAt)
    return {
        "id": row.id,
        "status": row.status,
        "reason": row.reason,
        "guard": row.guard,
        "score": row.score,
        "matchWeight": row.matchWeight,
        "modelVersion": row.modelVersion,
        "openedAt": opened.isoformat(),
        "ageSeconds": int((now - opened).total_seconds()),
        "decidedAt": iso(row.decidedAt),
        "decidedBy": row.decidedBy,
        "note": row.note,
        "leftPrimaryId": row.leftPrimaryId,
        "rightPrimaryId": row.rightPrimaryId,
        "contactId": row.contactId,
        "candidateId": row.candidateId,
        "audit": row.audit,
        "inclusionProbability": row.inclusionProbability,
        "contact": _pair_summary(row, "c_", row.contactId),
        "candidate": _pair_summary(row, "k_", row.candidateId),
    }


def _pair_summary(row, prefix: str, contact_id: int | None) -> dict[str, Any] | None:
    if contact_id is None:
        return None
    mapping = row._mapping
    return {
        "id": contact_id,
        "email": mapping[prefix + "email"],
        "phoneNumber": mapping[prefix + "phone"],
        "name": mapping[prefix + "name"],
    }


def get_item(store: Store, item_id: int, bands: Bands | None = None) -> dict[str, Any]:
    """One item with both groups in full (resolved to their *current* primaries), its
    evidence, and a plain explanation of why it is in the queue.

    ``stale`` says the item asks nothing any more: its groups were merged or split by
    other means (it is, or on any decision becomes, ``resolved``), or a contact in it
    was erased (``superseded``). A decided item also carries ``seen``: both sides as the
    reviewer saw them when deciding (from the decision's label), beside ``left`` and
    ``right`` as they are now.
    """
    with store.read() as tx:
        row = reviews.item_with_pair(tx, item_id)
        if row is None:
            raise NotFound(item_id, f"review {item_id} does not exist")
        sides = _current_sides(tx, row)
        groups = _shown_groups(tx, row, sides)
        guards = reviews.item_guards(tx, item_id)
        # reasons and evidence name values by reference: read them from the contacts now
        quoted = tx.contacts(referenced_ids(row.evidence) | referenced_ids([g["reason"] for g in guards]))
        seen = _seen(tx, item_id) if row.status in ("confirmed", "rejected") else None
    value_of = _values_of(quoted)
    item = _summary(row, utcnow())
    item.update(
        evidence=render_json(row.evidence, value_of),
        guards=[{**g, "reason": render(g["reason"], value_of)} for g in guards],
        stale=sides.stale_reason is not None,
        staleReason=sides.stale_reason,
        left={"primaryId": sides.primaries["left"], "contacts": [record(c) for c in groups["left"]]},
        right={"primaryId": sides.primaries["right"], "contacts": [record(c) for c in groups["right"]]},
        seen=seen,
    )
    item["explanation"] = explain(item, bands or {})
    return item


def _seen(tx: ContactTx, item_id: int) -> dict[str, Any] | None:
    """Both sides as the decision found them: the label's contact ids, read now (a
    contact's values never change while it lives; an erased one shows empty)."""
    snap = reviews.decided_snapshot(tx, item_id)
    if snap is None:
        return None
    sides = {"left": [r["id"] for r in snap.leftRecords], "right": [r["id"] for r in snap.rightRecords]}
    rows = {c.id: c for c in reviews.contacts_any(tx, sides["left"] + sides["right"])}
    seen: dict[str, Any] = {"decidedAt": iso(snap.decidedAt)}
    for side, ids in sides.items():
        members = sorted((rows[i] for i in ids if i in rows), key=age_key)
        seen[side] = {
            "primaryId": members[0].id if members else None,
            "contacts": [{**record(c), "linkPrecedence": "primary" if n == 0 else "secondary"} for n, c in enumerate(members)],
        }
    return seen


def _shown_groups(tx: ContactTx, row, sides: "_Sides") -> dict[str, list[ContactRow]]:
    """Each side's contacts: the groups as they are now, or for an audited automatic
    link (already one group) the two groups the model joined, as they were then."""
    if row.audit == AUDIT_LINK:
        recorded = (row.evidence or {}).get("auditSides") or {}
        ids = {side: [int(i) for i in recorded.get(side, [])] for side in ("left", "right")}
        found = {c.id: c for c in tx.contacts(ids["left"] + ids["right"])}
        return {side: [found[i] for i in ids[side] if i in found and found[i].deletedAt is None] for side in ids}
    return {side: tx.group_members([primary]) for side, primary in sides.primaries.items()}


def _values_of(rows: Sequence[ContactRow]):
    by_id = {r.id: r for r in rows}
    return lambda contact_id, name: getattr(by_id[contact_id], name) if contact_id in by_id else None


def neighbour(store: Store, item_id: int, order: Order, direction: Literal["next", "prev"]) -> int | None:
    """The pending item after (or before) ``item_id`` in the queue's order, for next/previous.

    Keyset navigation on the same keys as :func:`list_items`, so it stays one index
    probe at any queue size; ``item_id`` need not be pending any more.
    """
    with store.read() as tx:
        return reviews.neighbour_id(tx, _item(tx, item_id), order, forward=direction == "next")


# --- deciding -----------------------------------------------------------------------


@dataclass
class DecisionResult:
    id: int
    status: str
    decided_by: str
    decided_at: datetime
    primary_id: int | None = None
    merged_primary_id: int | None = None
    cannot_link: tuple[int, int] | None = None
    changed_ids: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "decidedBy": self.decided_by,
            "decidedAt": iso(self.decided_at),
        }
        if self.primary_id is not None:
            body["primaryContactId"] = self.primary_id
        if self.merged_primary_id is not None:
            body["mergedPrimaryId"] = self.merged_primary_id
        if self.cannot_link is not None:
            body["cannotLink"] = list(self.cannot_link)
        if self.changed_ids:
            body["changedContactIds"] = self.changed_ids
        return body


def confirm(store: Store, item_id: int, decided_by: str, note: str | None = None) -> DecisionResult:
    """Merge the two groups as the contract does: the older primary stays primary, no chains.

    Raises :class:`AlreadyDecided`, :class:`Superseded` (after marking the item so) or
    :class:`NotFound`; in each case the contact graph is unchanged.
    """
    return _decide(store, item_id, decided_by, "confirm", note)


def reject(store: Store, item_id: int, decided_by: str, note: str | None = None) -> DecisionResult:
    """Keep the groups apart for good: a cannot-link between their primaries, and a label."""
    return _decide(store, item_id, decided_by, "reject", note)


def decide(store: Store, item_id: int, decided_by: str, decision: Decision, note: str | None = None) -> DecisionResult:
    if decision not in ("confirm", "reject"):
        raise ValueError(f"unknown decision {decision!r}: use 'confirm' or 'reject'")
    return _decide(store, item_id, decided_by, decision, note)


def decide_many(
    store: Store, item_ids: Sequence[int], decided_by: str, decision: Decision, note: str | None = None
) -> list[DecisionResult | ReviewError]:
    """Decide each item in its own transaction: one refusal does not undo the others."""
    results: list[DecisionResult | ReviewError] = []
    for item_id in dict.fromkeys(item_ids):
        try:
            results.append(decide(store, item_id, decided_by, decision, note))
        except ReviewError as exc:
            results.append(exc)
    return results


def _decide(store: Store, item_id: int, decided_by: str, decision: Decision, note: str | None) -> DecisionResult:
    def work(tx: ContactTx) -> DecisionResult | ReviewError:
        row = _item(tx, item_id, for_update=True)
        _require_pending(row)
        sides = _current_sides(tx, row)
        if sides.stale_reason is not None:
            return _close_stale(tx, row, decided_by, sides.stale_reason)
        left_id, right_id = sides.primaries["left"], sides.primaries["right"]
        now = utcnow()
        cause = f"review:{item_id}:{decided_by}"
        if row.audit == AUDIT_LINK:
            result = _decide_audited_link(tx, row, decision, cause, decided_by, now)
            reviews.set_status(tx, item_id, result.status, at=now, by=decided_by, note=note)
            label = "match" if decision == "confirm" else "non-match"
            _write_label(tx, row, sides.primaries, _shown_groups(tx, row, sides), label, decided_by, now)
            return result
        primaries = sorted(tx.lock_primaries([left_id, right_id]), key=age_key)
        snapshot = {side: tx.group_members([pid]) for side, pid in sides.primaries.items()}
        if decision == "confirm":
            result = _apply_confirm(tx, row, primaries, cause, decided_by, now)
        else:
            result = _apply_reject(tx, row, left_id, right_id, cause, decided_by, now)
        reviews.set_status(tx, item_id, result.status, at=now, by=decided_by, note=note)
        _write_label(tx, row, sides.primaries, snapshot, "match" if decision == "confirm" else "non-match", decided_by, now)
        return result

    outcome = store.write(work, lock_keys=[f"review:{item_id}"])
    if isinstance(outcome, ReviewError):
        raise outcome
    return outcome


def _decide_audited_link(tx: ContactTx, row, decision: Decision, cause: str, decided_by: str, now: datetime) -> DecisionResult:
    """An audited automatic link was made already: a confirmation is a label and nothing
    else; a rejection is a ``non-match`` label and an ``audit_link_rejected`` audit row,
    and the group stays as it is. Splitting it is left to a person (the person page's
    detach, which chooses which contacts leave and can be undone): the group may have
    grown through the link since, and an automatic split would undo links the exact
    rules made. The rejected links waiting for that are listed on the admin page and
    counted in ``/metrics``."""
    if decision == "confirm":
        return DecisionResult(row.id, "confirmed", decided_by, now)
    pair = _stored_pair(row)
    reviews.audit_note(
        tx, now, pair, "audit_link_rejected", cause,
        {"pendingMergeId": row.id, "pair": [row.contactId, row.candidateId]},
    )
    return DecisionResult(row.id, "rejected", decided_by, now)


def _apply_confirm(
    tx: ContactTx,
    row,
    primaries: list[ContactRow],
    cause: str,
    decided_by: str,
    now: datetime,
    keep_open: Sequence[int] = (),
) -> DecisionResult:
    winner, loser = primaries
    # what undo needs to put each moved contact back exactly as it was
    before = reviews.link_provenance(tx, loser.id)
    detail = {
        "pendingMergeId": row.id,
        "decision": "confirm",
        "previous": {str(r.id): [r.linkMethod, r.linkScore, r.linkModel] for r in before},
        # the reviewed pair: what a later detach reads as the join
        "through": [row.contactId, row.candidateId] if None not in (row.contactId, row.candidateId) else [winner.id, loser.id],
    }
    changed = tx.merge_groups(
        winner, [loser], method="review", cause=cause, score=row.score, model=row.modelVersion, detail=detail,
        keep_open=keep_open,
    )
    return DecisionResult(
        row.id, "confirmed", decided_by, now, primary_id=winner.id, merged_primary_id=loser.id, changed_ids=changed
    )


def _apply_reject(
    tx: ContactTx, row, left_id: int, right_id: int, cause: str, decided_by: str, now: datetime
) -> DecisionResult:
    low, high = sorted((left_id, right_id))
    reviews.add_cannot_link(tx, low, high, pending_merge_id=row.id, at=now, by=decided_by)
    reviews.audit_note(tx, now, (low, high), "cannot_link", cause, {"pendingMergeId": row.id, "pair": [low, high]})
    return DecisionResult(row.id, "rejected", decided_by, now, cannot_link=(low, high))


# --- undo ---------------------------------------------------------------------------


def undo(store: Store, item_id: int, undone_by: str, *, admin: bool = False) -> DecisionResult:
    """Revert a decision, audited, only when that is safe; the item becomes pending again
    (or ``resolved``: a confirmation of a case that merged nothing itself, because other
    confirmations of the case joined its groups, is taken back with its label, and its
    groups stay one).

    An item naming a contact erased since the decision is not reopened: the decision is
    taken back (its label and cannot-link go) and the item is closed as ``superseded``,
    where the erasure would have put it had it been pending, and where a decision on it
    would put it (:func:`_close_stale`). Reopening it would queue a question about a
    person who is gone, which only a 409 could answer. (A confirmation whose merged
    group was erased is still refused below: its merge cannot be split back.)

    A rejection: its cannot-link is removed. A confirmation: the contacts it moved are
    re-pointed at their previous primaries (the demoted primary is primary again), but
    only while the merged group is exactly as the confirmation left it; any later
    change to it (a new contact, another merge, an erasure) refuses with
    :class:`CannotUndo`, because splitting it could break the contract. The decision's
    label is deleted, so retraining never learns from an undone decision.
    """

    def work(tx: ContactTx) -> DecisionResult | ReviewError:
        row = _item(tx, item_id, for_update=True)
        if row.status not in ("confirmed", "rejected"):
            return CannotUndo(item_id, f"review {item_id} is {row.status}: there is no decision to undo")
        if row.decidedBy != undone_by and not admin:
            return NotYours(item_id, f"review {item_id} was decided by {row.decidedBy}; only they or an admin may undo it")
        now = utcnow()
        cause = f"review-undo:{item_id}:{undone_by}"
        erased = _current_sides(tx, row).stale_reason == ERASED
        after, closed_by = "superseded" if erased else "pending", None
        if row.audit == AUDIT_LINK:
            pass  # deciding an audited link changed no link: only its label goes
        elif row.status == "confirmed" and not reviews.link_changes(tx, f"review:{row.id}:{row.decidedBy}"):
            # confirmed within a case whose other confirmations had joined its groups: it
            # merged nothing, so undoing it takes back the judgement and its label only;
            # the groups stay one, so the item stays closed
            sides = _current_sides(tx, row)
            if sides.stale_reason is None:
                return CannotUndo(item_id, f"review {item_id} cannot be undone: its merge is not in the audit log")
            if not erased:
                after = RESOLVED
                # closed by the group's last link change, so undoing that change opens it again
                primary = sides.primaries["left"]
                members = [m.id for m in reviews.group_rows(tx, primary)]
                last = reviews.last_link_change(tx, members, primary)
                closed_by = reviews.cause_of(tx, last) if last is not None else None
        elif row.status == "confirmed":
            refused = _revert_confirm(tx, row, cause, now)
            if refused is not None:
                return CannotUndo(item_id, f"review {item_id} cannot be undone: {refused}")
        else:
            removed = reviews.remove_cannot_link(tx, item_id)
            pair = removed[0] if removed else _stored_pair(row)
            reviews.audit_note(tx, now, pair, "cannot_link_removed", cause, {"pendingMergeId": item_id, "pair": list(pair)})
        removed_labels = labels.delete_review_labels(tx, item_id)
        reviews.audit_note(
            tx,
            now,
            _stored_pair(row),
            "decision_undone",
            cause,
            {"pendingMergeId": item_id, "undid": row.status, "decidedBy": row.decidedBy, "labels": [list(l) for l in removed_labels]},
        )
        if after == RESOLVED:
            reviews.set_status(tx, item_id, RESOLVED, at=now, by=closed_by[:64] if closed_by else None, note=JOINED_IN_CASE)
        elif after == "superseded":
            reviews.set_status(tx, item_id, "superseded", at=now, by=undone_by, note=ERASED)
        else:
            reviews.set_status(tx, item_id, "pending", at=None, by=None, note=None)
        return DecisionResult(item_id, after, undone_by, now)

    outcome = store.write(work, lock_keys=[f"review:{item_id}"])
    if isinstance(outcome, ReviewError):
        raise outcome
    return outcome


def _revert_confirm(tx: ContactTx, row, cause: str, now: datetime) -> str | None:
    """Split a confirmed merge back; returns why it is refused, or ``None`` once done."""
    moves = reviews.link_changes(tx, f"review:{row.id}:{row.decidedBy}")
    # one merge writes all its rows at one instant; earlier ones belong to an undone confirmation
    moves = [m for m in moves if moves and m.at == moves[-1].at]
    if len([m for m in moves if m.oldPrecedence == "primary"]) != 1:
        return "its merge is not in the audit log"
    winner_id = moves[0].newLinkedId
    winner = tx.contacts([winner_id])
    if not winner or winner[0].linkPrecedence != "primary" or winner[0].deletedAt is not None:
        return "the merged group has since been merged into another group or erased"
    tx.lock_primaries([winner_id])  # StaleGroup (retried) if it is demoted between these two reads
    members = reviews.group_rows(tx, winner_id)
    member_ids = [m.id for m in members]
    if any(m.deletedAt is not None for m in members):
        return "a contact of the merged group has been erased"
    moved_ids = {m.contactId for m in moves}
    if not moved_ids <= set(member_ids):
        return "contacts it merged have moved to another group since"
    last_change = reviews.last_link_change(tx, member_ids, winner_id)
    if last_change != moves[-1].id:
        return "the merged group has changed since (new contacts or another merge)"
    previous = moves[0].detail.get("previous", {}) if moves[0].detail else {}
    provenance = {m.contactId: tuple(previous.get(str(m.contactId), ["review", None, None])) for m in moves}
    tx.revert_moves(moves, provenance, cause=cause, detail={"pendingMergeId": row.id}, at=now)
    tx.reopen_resolved(moves[0].cause)  # the items the confirmation settled ask again
    return None


# --- shared steps -------------------------------------------------------------------


@dataclass(frozen=True)
class _Sides:
    primaries: dict[str, int]
    stale_reason: str | None


def _item(tx: ContactTx, item_id: int, for_update: bool = False):
    row = reviews.item(tx, item_id, for_update=for_update)
    if row is None:
        raise NotFound(item_id, f"review {item_id} does not exist")
    return row


def _require_pending(row) -> None:
    if row.status == "superseded":
        raise Superseded(row.id, f"review {row.id} is superseded: {ERASED}")
    if row.status == RESOLVED:
        raise ResolvedElsewhere(row.id, f"review {row.id} was {row.note or 'resolved elsewhere'}")
    if row.status != "pending":
        raise AlreadyDecided(row.id, f"review {row.id} was already {row.status} by {row.decidedBy}")


def _current_sides(tx: ContactTx, row) -> _Sides:
    """Each side's current primary (``coalesce(linkedId, id)`` of the stored one; no chains),
    and why the item is stale, if it is."""
    ids = [i for i in (row.leftPrimaryId, row.rightPrimaryId, row.contactId, row.candidateId) if i is not None]
    found = {c.id: c for c in tx.contacts(ids)}
    primaries = {
        "left": primary_of(found[row.leftPrimaryId]),
        "right": primary_of(found[row.rightPrimaryId]),
    }
    current = {c.id: c for c in tx.contacts(primaries.values())}
    if any(found[i].deletedAt is not None for i in ids) or any(c.deletedAt is not None for c in current.values()):
        return _Sides(primaries, ERASED)
    if row.audit == AUDIT_LINK:
        return _Sides(primaries, None)  # an audited automatic link: its groups are one by design
    group = {c.id: primary_of(c) for c in found.values()}
    return _Sides(primaries, settled_reason(group, row))


def _close_stale(tx: ContactTx, row, decided_by: str, reason: str) -> ReviewError:
    """Close an item found stale under the locks, as the change that made it so would
    have (it may have skipped the item while this decision held it); the refusal to raise."""
    if reason in (RESOLVED_MERGED, RESOLVED_SPLIT):
        reviews.set_status(tx, row.id, RESOLVED, at=utcnow(), by=decided_by, note=reason)
        return ResolvedElsewhere(row.id, f"review {row.id} was {reason}")
    reviews.set_status(tx, row.id, "superseded", at=utcnow(), by=decided_by, note=reason)
    return Superseded(row.id, f"review {row.id} is superseded: {reason}")


def _stored_pair(row) -> tuple[int, int]:
    return (row.leftPrimaryId, row.rightPrimaryId)


def _write_label(
    tx: ContactTx,
    row,
    primaries: dict[str, int],
    snapshot: dict[str, list[ContactRow]],
    outcome: str,
    decided_by: str,
    at: datetime,
) -> None:
    """The decision as a training label: both sides' contacts as they were when decided,
    by id (their values are read from the contacts when training loads the labels)."""
    left_ids = {c.id for c in snapshot["left"]}
    pair = [row.contactId, row.candidateId]
    if row.contactId is not None and row.contactId not in left_ids:
        pair.reverse()  # the left contact id names the left side's member of the pair
    labels.add_review_label(
        tx,
        pending_merge_id=row.id,
        left_contact_id=pair[0] if pair[0] is not None else primaries["left"],
        right_contact_id=pair[1] if pair[1] is not None else primaries["right"],
        outcome=outcome,
        left_records=[{"id": c.id} for c in snapshot["left"]],
        right_records=[{"id": c.id} for c in snapshot["right"]],
        decided_by=decided_by,
        decided_at=at,
    )


def record(row: ContactRow) -> dict[str, Any]:
    """A contact as reviewers see it."""
    return {
        "id": row.id,
        "email": row.email,
        "phoneNumber": row.phoneNumber,
        "name": row.name,
        "createdAt": iso(row.createdAt),
        "linkPrecedence": row.linkPrecedence,
    }


def as_utc(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; every stored timestamp is UTC."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


# --- reviewers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Reviewer:
    id: int
    username: str
    is_admin: bool
    #: a session issued under another generation is void (see :func:`end_sessions`)
    session_generation: int = 0

    @classmethod
    def from_row(cls, row) -> "Reviewer":
        return cls(row.id, row.username, bool(row.isAdmin), row.sessionGeneration)


@dataclass(frozen=True)
class Account:
    """A reviewer account as ``reconcile reviewer list`` shows it."""

    username: str
    is_admin: bool
    created_at: datetime
    disabled_at: datetime | None


_DUMMY_HASH = generate_password_hash("timing-equaliser")


def hash_token(token: str) -> str:
    """API tokens are stored as SHA-256: they are long random strings, so no salt or stretching is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def add_reviewer(store: Store, username: str, password: str, *, admin: bool = False) -> str:
    """Create an account; returns its API token, which is shown once and stored only hashed."""
    username = username.strip()
    if not username or len(username) > 64:
        raise ValueError("a username is 1 to 64 characters")
    password_hash = _password(password)
    token = "rvw_" + secrets.token_urlsafe(32)
    if not reviewers.create_reviewer(
        store, username, password_hash=password_hash, token_hash=hash_token(token), admin=admin
    ):
        raise ValueError(f"reviewer {username!r} exists already")
    return token


def new_token(store: Store, username: str) -> str:
    """Replace a reviewer's API token (the old one stops working at once)."""
    token = "rvw_" + secrets.token_urlsafe(32)
    if not reviewers.set_token_hash(store, username, hash_token(token)):
        raise ValueError(f"no reviewer {username!r}")
    return token


def _password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("a password is at least 8 characters")
    return generate_password_hash(password)


def set_password(store: Store, username: str, password: str) -> None:
    """Replace a reviewer's password; every session of theirs ends at once."""
    if not reviewers.set_password_hash(store, username, _password(password)):
        raise ValueError(f"no reviewer {username!r}")


def set_disabled(store: Store, username: str, disabled: bool) -> None:
    """Disable a reviewer (their sessions end and their API token stops working at once)
    or enable them again (they log in afresh: no old session comes back)."""
    if not reviewers.set_disabled(store, username, disabled):
        raise ValueError(f"no reviewer {username!r}")


def end_sessions(store: Store, username: str) -> None:
    """Void every session of this reviewer, wherever its cookie was copied to."""
    reviewers.end_sessions(store, username)


def list_reviewers(store: Store) -> list[Account]:
    return [
        Account(r.username, bool(r.isAdmin), as_utc(r.createdAt), None if r.disabledAt is None else as_utc(r.disabledAt))
        for r in reviewers.all_reviewers(store)
    ]


def check_password(store: Store, username: str, password: str) -> Reviewer | None:
    """The active reviewer with these credentials; as slow for an unknown name as for a wrong password.
    A name with a NUL character names nobody (no reviewer can have one, and PostgreSQL's
    text refuses it: the look-up would fail instead of counting as a failed login)."""
    row = None if "\x00" in username else reviewers.reviewer_named(store, username)
    if row is None or row.disabledAt is not None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(row.passwordHash, password):
        return None
    return Reviewer.from_row(row)


def check_token(store: Store, token: str) -> Reviewer | None:
    row = reviewers.active_reviewer_with_token(store, hash_token(token))
    return None if row is None else Reviewer.from_row(row)


def get_reviewer(store: Store, username: str) -> Reviewer | None:
    row = reviewers.active_reviewer_named(store, username)
    return None if row is None else Reviewer.from_row(row)
