"""The statements of a detachment (splitting a wrong merge) and of its undo.

What a detachment *means* (which contacts go, which primary each side gets, when an
undo is safe) is decided in :mod:`reconcile.review.detach`, which runs these functions
inside the one write transaction each detachment takes. A detachment is identified by
the id of its ``detached`` audit row; every link it changes is audited with the cause
``detach:<that id>:<reviewer>``, its undo with ``detach-undo:<that id>:<reviewer>``.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update

from .contacts import ContactTx
from .persons import undone_audit_ids
from .schema import NOT_CREATED, audit_log, cannot_link, contact, link_guard

#: the guard name on the ``link_guard`` rows a detachment records
DETACH_GUARD = "detach"


@dataclass(frozen=True)
class Move:
    """One contact's link before and after a change, with the provenance it gets."""

    contact_id: int
    old_linked: int | None
    old_precedence: str
    new_linked: int | None
    new_precedence: str
    method: str
    score: float | None = None
    model: str | None = None
    #: the audit id of the change this move reverts (an undo), read by the look-ups' "why"
    undoes: int | None = None

    @property
    def action(self) -> str:
        if self.new_precedence == "primary":
            return "promoted"
        return "demoted" if self.old_precedence == "primary" else "relinked"


def merge_history(tx: ContactTx, contact_ids: Sequence[int]) -> list[Any]:
    """(id, contactId, newLinkedId, detail) of every audited merge that demoted one of
    these contacts and still stands: each is one group joining another. Detachments and
    their undos are not merges; a merge a review undo reverted no longer joins anyone."""
    if not contact_ids:
        return []
    rows = tx.conn.execute(
        select(audit_log.c.id, audit_log.c.contactId, audit_log.c.newLinkedId, audit_log.c.detail)
        .where(
            audit_log.c.contactId.in_(sorted(set(contact_ids))),
            audit_log.c.action == "demoted",
            ~audit_log.c.cause.like("detach%"),
        )
        .order_by(audit_log.c.id)
    ).all()
    undone = undone_audit_ids(tx, contact_ids)
    return [r for r in rows if r.id not in undone]


def add_detachment_note(tx: ContactTx, at: datetime, contact_id: int, by: str, detail: dict) -> int:
    """Audit a detachment on ``contact_id``; returns the row's id, which names the
    detachment. Its cause ``detach:<id>:<by>`` is set once the id is known, in the same
    transaction, so no reader ever sees the row without it."""
    note_id = tx.conn.execute(
        insert(audit_log)
        .values(at=at, contactId=contact_id, action="detached", cause="detach", detail=detail)
        .returning(audit_log.c.id)
    ).scalar_one()
    tx.conn.execute(update(audit_log).where(audit_log.c.id == note_id).values(cause=f"detach:{note_id}:{by}"))
    return note_id


def add_undo_note(tx: ContactTx, at: datetime, contact_id: int, cause: str, detail: dict) -> None:
    tx.conn.execute(
        insert(audit_log).values(at=at, contactId=contact_id, action="detach_undone", cause=cause, detail=detail)
    )


def audit_row(tx: ContactTx, audit_id: int) -> Any | None:
    return tx.conn.execute(select(audit_log).where(audit_log.c.id == audit_id)).first()


def undo_of(tx: ContactTx, detachment_id: int) -> int | None:
    """The audit id of the undo of a detachment, if it was undone."""
    return tx.conn.execute(
        select(audit_log.c.id).where(
            audit_log.c.action == "detach_undone", audit_log.c.cause.like(f"detach-undo:{detachment_id}:%")
        )
    ).scalar()


def move_contacts(tx: ContactTx, moves: Sequence[Move], *, cause: str, detail: dict, at: datetime) -> None:
    """Re-point each contact as its move says, and audit every change with ``cause``."""
    tx.regroup_holdings({m.contact_id: m.new_linked or m.contact_id for m in moves})  # the last move decides
    for m in moves:
        tx.conn.execute(
            update(contact)
            .where(contact.c.id == m.contact_id)
            .values(
                linkedId=m.new_linked,
                linkPrecedence=m.new_precedence,
                updatedAt=at,
                linkMethod=m.method,
                linkScore=m.score,
                linkModel=m.model,
            )
        )
    if moves:
        tx.conn.execute(
            insert(audit_log),
            [
                {
                    "at": at,
                    "contactId": m.contact_id,
                    "action": m.action,
                    "oldLinkedId": m.old_linked,
                    "newLinkedId": m.new_linked,
                    "oldPrecedence": m.old_precedence,
                    "newPrecedence": m.new_precedence,
                    "cause": cause,
                    "detail": detail if m.undoes is None else {**detail, "undoes": m.undoes},
                }
                for m in moves
            ],
        )
        tx.close_settled_reviews([m.contact_id for m in moves], cause=cause, at=at)


def link_changes(tx: ContactTx, cause: str) -> list[Any]:
    """Every audited change of a link made with ``cause``, in the order it was written.
    ``cause`` is a confirmation's or a detachment's, which create no contact: saying so
    (``NOT_CREATED``) lets the read use ``ix_audit_cause``, which holds no creations."""
    return tx.conn.execute(
        select(audit_log)
        .where(audit_log.c.cause == cause, NOT_CREATED, audit_log.c.newPrecedence.is_not(None))
        .order_by(audit_log.c.id)
    ).all()


def last_link_change(tx: ContactTx, member_ids: Sequence[int], primary_ids: Sequence[int]) -> int | None:
    """The audit id of the latest link change that touched these groups: of a member, or
    one that pointed a contact at or away from one of the primaries (erasures included)."""
    return tx.conn.execute(
        select(func.max(audit_log.c.id)).where(
            audit_log.c.newPrecedence.is_not(None),
            or_(
                audit_log.c.contactId.in_(sorted(set(member_ids))),
                audit_log.c.newLinkedId.in_(sorted(set(primary_ids))),
                audit_log.c.oldLinkedId.in_(sorted(set(primary_ids))),
            ),
        )
    ).scalar_one()


def group_rows(tx: ContactTx, primary_ids: Iterable[int]) -> list[Any]:
    """(id, deletedAt) of every contact of these groups, erased ones included."""
    ids = sorted(set(primary_ids))
    return tx.conn.execute(
        select(contact.c.id, contact.c.deletedAt).where(or_(contact.c.id.in_(ids), contact.c.linkedId.in_(ids)))
    ).all()


def add_cannot_link(tx: ContactTx, low: int, high: int, *, at: datetime, by: str) -> bool:
    """Record that the groups of contacts ``low`` < ``high`` never link; False if recorded already."""
    exists = tx.conn.execute(
        select(cannot_link.c.id).where(cannot_link.c.leftContactId == low, cannot_link.c.rightContactId == high)
    ).first()
    if exists is not None:
        return False
    tx.conn.execute(insert(cannot_link).values(leftContactId=low, rightContactId=high, createdAt=at, createdBy=by))
    return True


def cannot_link_exists(tx: ContactTx, low: int, high: int) -> bool:
    return tx.conn.execute(
        select(cannot_link.c.id).where(cannot_link.c.leftContactId == low, cannot_link.c.rightContactId == high)
    ).first() is not None


def remove_cannot_link(tx: ContactTx, low: int, high: int) -> None:
    tx.conn.execute(delete(cannot_link).where(cannot_link.c.leftContactId == low, cannot_link.c.rightContactId == high))


def guard_reason(detachment_id: int) -> str:
    """The reason written on a detachment's ``link_guard`` rows (ids only: no personal data)."""
    return f"kept apart by detachment {detachment_id}"


def add_guards(tx: ContactTx, detachment_id: int, held: Iterable[tuple[int, str, str]], *, at: datetime) -> None:
    """One ``link_guard`` row per (contact id, field, value) a detachment left in two groups,
    so invariant 3's check accepts the split values."""
    rows = [
        {
            "contactId": contact_id,
            "field": field,
            "value": value,
            "guard": DETACH_GUARD,
            "reason": guard_reason(detachment_id),
            "createdAt": at,
        }
        for contact_id, field, value in held
    ]
    if rows:
        tx.conn.execute(insert(link_guard), rows)


def remove_guards(tx: ContactTx, detachment_id: int) -> int:
    """Delete the ``link_guard`` rows a detachment recorded; returns how many."""
    return tx.conn.execute(
        delete(link_guard).where(link_guard.c.guard == DETACH_GUARD, link_guard.c.reason == guard_reason(detachment_id))
    ).rowcount


__all__ = [
    "DETACH_GUARD",
    "Move",
    "merge_history",
    "add_detachment_note",
    "add_undo_note",
    "audit_row",
    "undo_of",
    "move_contacts",
    "link_changes",
    "last_link_change",
    "group_rows",
    "add_cannot_link",
    "cannot_link_exists",
    "remove_cannot_link",
    "guard_reason",
    "add_guards",
    "remove_guards",
]
