"""Split proposals, the reviewer's side: a batch re-resolution (``reconcile resolve
--apply``) saw one live group as two people and named the bridge between them.

- **confirm** accepts the split: the bridge's leaving contact is detached with the
  existing rule (:func:`reconcile.review.detach.detach`: it and what reached the group
  only through it leave, each side gets its oldest contact as primary, a cannot-link
  keeps them apart, shared values are guarded), in the same transaction that records
  the decision and a ``non-match`` label. The split is undone like any detachment, and
  that undo puts the proposal back to ``pending`` and deletes its label
  (:func:`reconcile.review.detach.undo`), as a review undo does.
- **reject** keeps the group: the proposal is closed and a ``match`` label recorded;
  the next re-resolution reads the rejected bridge as a reviewer's must-link.

A proposal whose group changed so that its bridge no longer joins it (the contacts were
split or erased meanwhile) is superseded instead, by either decision, with no label: the
reviewer judged a group that is not there any more. Erasure supersedes the pending
proposals naming an erased contact itself (:mod:`reconcile.engine.erasure`).
Independent of Flask.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..engine.exact import primary_of
from ..engine.guards import Guards
from ..store import StaleGroup, Store
from ..store import resolution as statements
from ..store import labels
from ..store.contacts import ContactRow, ContactTx, utcnow
from .detach import DetachError, Detachment, GroupBusy, detach
from .queue import ERASED, AlreadyDecided, NotFound, ReviewError, Superseded, iso, record

PER_PAGE = 50
#: why a proposal whose bridge moved was superseded (the note it is closed with)
NO_BRIDGE = "the bridge no longer joins one group"


def counts(store: Store) -> dict[str, int]:
    with store.read() as tx:
        found = statements.split_counts(tx)
    return {s: found.get(s, 0) for s in ("pending", "confirmed", "rejected", "superseded")}


def list_splits(store: Store, status: str = "pending", page: int = 1, per_page: int = PER_PAGE) -> dict[str, Any]:
    with store.read() as tx:
        total, rows = statements.list_splits(tx, status, per_page, (page - 1) * per_page)
    return {
        "items": [_summary(r) for r in rows],
        "page": page,
        "perPage": per_page,
        "total": total,
    }


def get_split(store: Store, split_id: int) -> dict[str, Any]:
    """One proposal with both sides' contacts as they are now (values read from the contacts)."""
    with store.read() as tx:
        row = statements.split_row(tx, split_id)
        if row is None:
            raise NotFound(split_id, f"split proposal {split_id} does not exist")
        contacts = {c.id: c for c in tx.contacts(list(row.keptContactIds) + list(row.detachedContactIds))}
    body = _summary(row)
    body["kept"] = [record(contacts[i]) for i in row.keptContactIds if i in contacts]
    body["detached"] = [record(contacts[i]) for i in row.detachedContactIds if i in contacts]
    body["evidence"] = row.evidence  # ids, levels and weights only: no values to render
    return body


def _summary(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": "split",
        "status": row.status,
        "primaryContactId": row.primaryId,
        "contactId": row.contactId,
        "bridgeContactId": row.bridgeContactId,
        "keptContactIds": list(row.keptContactIds),
        "detachedContactIds": list(row.detachedContactIds),
        "score": row.score,
        "matchWeight": row.matchWeight,
        "modelVersion": row.modelVersion,
        "openedAt": iso(row.openedAt),
        "decidedAt": iso(row.decidedAt),
        "decidedBy": row.decidedBy,
        "note": row.note,
        "detachmentId": row.detachmentId,
    }


@dataclass
class SplitDecision:
    id: int
    status: str
    decided_by: str
    decided_at: datetime
    detachment: Detachment | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "status": self.status, "decidedBy": self.decided_by, "decidedAt": iso(self.decided_at)}
        if self.detachment is not None:
            body["detachment"] = self.detachment.as_json()
        return body


class _Refused(DetachError):
    """Carries a review error out of the detachment's transaction."""

    def __init__(self, error: ReviewError):
        super().__init__(error.item_id, error.message)
        self.error = error


class Busy(ReviewError):
    """The group kept changing while the split was locking it; nothing was decided, and
    confirming again may succeed (unlike :class:`Superseded`, the proposal stays pending)."""

    code = "group_busy"


def confirm(store: Store, guards: Guards, split_id: int, decided_by: str, note: str | None = None) -> SplitDecision:
    """Accept the split: detach the bridge's leaving contact, in one transaction with the decision."""
    with store.read() as tx:
        row = statements.split_row(tx, split_id)
    if row is None:
        raise NotFound(split_id, f"split proposal {split_id} does not exist")
    if row.status != "pending":
        raise _not_pending(split_id, row.status)

    def check(tx: ContactTx, members: Sequence[ContactRow]) -> DetachError | None:
        current = statements.split_row(tx, split_id, for_update=True)
        if current.status != "pending":
            return _Refused(_not_pending(split_id, current.status))
        if row.bridgeContactId not in {m.id for m in members}:
            statements.decide_split(tx, split_id, status="superseded", by=decided_by, note=NO_BRIDGE)
            return _Refused(Superseded(split_id, f"split proposal {split_id} is superseded: {NO_BRIDGE}"))
        return None

    def record_decision(tx: ContactTx, done: Detachment) -> None:
        statements.decide_split(tx, split_id, status="confirmed", by=decided_by, note=note, detachment_id=done.id)
        _label(tx, split_id, done.detached_ids, done.kept_ids, row, "non-match", decided_by, done.at)

    try:
        done = detach(store, guards, row.contactId, decided_by, note, check=check, record=record_decision)
    except _Refused as refused:
        raise refused.error from None
    except GroupBusy as exc:  # writers kept changing the group: the proposal still stands, try again
        raise Busy(split_id, f"split proposal {split_id} is still pending: {exc.message}") from None
    except DetachError as exc:  # the contact was erased or left alone meanwhile
        _supersede(store, split_id, decided_by, exc.message)
        raise Superseded(split_id, f"split proposal {split_id} is superseded: {exc.message}") from None
    return SplitDecision(split_id, "confirmed", decided_by, done.at, done)


def reject(store: Store, split_id: int, decided_by: str, note: str | None = None) -> SplitDecision:
    """Keep the group as it is; the bridge becomes a reviewer's must-link for the batch.

    A proposal found stale under its group's lock (its contact or bridge erased, or the
    bridge no longer in the contact's group) is closed as ``superseded`` without a label,
    and :class:`Superseded` is raised once that has committed, as :func:`confirm` does: a
    ``match`` label on a pair that is no longer one group would teach retraining, and a
    must-link would tell the next batch, something no reviewer saw.
    """

    def work(tx: ContactTx) -> SplitDecision | ReviewError:
        row = statements.split_row(tx, split_id)
        if row is None:
            return NotFound(split_id, f"split proposal {split_id} does not exist")
        # the group's lock first, then the proposal's, in the order a confirm takes them
        stale = _stale_reason(tx, row)
        row = statements.split_row(tx, split_id, for_update=True)
        if row.status != "pending":
            return _not_pending(split_id, row.status)
        if stale is not None:
            statements.decide_split(tx, split_id, status="superseded", by=decided_by, note=stale)
            return Superseded(split_id, f"split proposal {split_id} is superseded: {stale}")
        now = utcnow()
        statements.decide_split(tx, split_id, status="rejected", by=decided_by, note=note)
        _label(tx, split_id, list(row.detachedContactIds), list(row.keptContactIds), row, "match", decided_by, now)
        return SplitDecision(split_id, "rejected", decided_by, now)

    outcome = store.write(work)
    if isinstance(outcome, ReviewError):
        raise outcome
    return outcome


def _not_pending(split_id: int, status: str) -> ReviewError:
    """The refusal of a decision on a decided proposal: 409 ``superseded`` for one closed
    as stale (as the queue answers for its items), ``already_decided`` otherwise."""
    if status == "superseded":
        return Superseded(split_id, f"split proposal {split_id} is superseded")
    return AlreadyDecided(split_id, f"split proposal {split_id} was already {status}")


def _stale_reason(tx: ContactTx, row: Any) -> str | None:
    """Why the proposal asks nothing any more, or ``None``; on ``None`` the group's primary
    is locked (a detachment or an erasure of the group waits for this decision)."""
    found = {c.id: c for c in tx.contacts([row.contactId, row.bridgeContactId])}
    if len(found) < 2 or any(c.deletedAt is not None for c in found.values()):
        return ERASED
    primary = primary_of(found[row.contactId])
    tx.lock_primaries([primary])  # StaleGroup (retried) if it stopped being a primary meanwhile
    members = {m.id for m in tx.group_members([primary])}
    if row.contactId not in members:
        raise StaleGroup(f"contact {row.contactId} left group {primary} while it was being locked")
    return None if row.bridgeContactId in members else NO_BRIDGE


def _supersede(store: Store, split_id: int, by: str, reason: str) -> None:
    store.write(lambda tx: statements.decide_split(tx, split_id, status="superseded", by=by, note=reason))


def _label(tx: ContactTx, split_id: int, leaving: list[int], kept: list[int], row: Any, outcome: str, by: str, at: datetime) -> None:
    """The decision as a training label on the bridge pair, both sides by id."""
    labels.add_review_label(
        tx,
        pending_merge_id=None,
        left_contact_id=row.contactId,
        right_contact_id=row.bridgeContactId,
        outcome=outcome,
        left_records=[{"id": i} for i in leaving],
        right_records=[{"id": i} for i in kept],
        decided_by=by,
        decided_at=at,
    )


__all__ = ["counts", "list_splits", "get_split", "confirm", "reject", "SplitDecision"]
