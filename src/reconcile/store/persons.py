"""The statements behind looking a person up: a group's contacts, the audit rows, review
items and guard records that tell its history, in time order and paged.

Read-only: every function takes a :class:`~reconcile.store.ContactTx` from
:meth:`reconcile.store.Store.read`, and none writes. What the rows *mean* (how a contact
was linked, the chain of links between two contacts) is decided in
:mod:`reconcile.review.persons`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, and_, bindparam, func, literal, or_, select, union_all

from .contacts import ContactTx
from .schema import audit_log, contact, link_guard, pending_merge

#: The largest id the ``Contact`` table can hold on every backend: its ``Integer``
#: columns are 32-bit on PostgreSQL (64-bit on SQLite). A larger id names no contact,
#: and must not reach PostgreSQL, where it is an out-of-range error rather than no row.
MAX_CONTACT_ID = 2**31 - 1

_IDS = bindparam("ids", expanding=True)

#: history entries by kind: an audit row, a review opened, a review superseded, a guard
#: record. The rank orders entries of one instant: the audit rows of a request before
#: the review it opened, and a review's opening before what followed from it.
AUDIT, REVIEW_OPENED, REVIEW_SUPERSEDED, GUARD = "audit", "review_opened", "review_superseded", "guard"
_RANK = {AUDIT: 0, GUARD: 1, REVIEW_OPENED: 2, REVIEW_SUPERSEDED: 3}


def contact_by_id(tx: ContactTx, contact_id: int) -> Any | None:
    """Any contact, live or erased, or ``None`` (also for ids beyond :data:`MAX_CONTACT_ID`)."""
    if not 1 <= contact_id <= MAX_CONTACT_ID:
        return None
    return tx.conn.execute(select(contact).where(contact.c.id == contact_id)).first()


def group_of(tx: ContactTx, primary_id: int) -> list[Any]:
    """Every contact of the group whose primary is ``primary_id``, erased ones included,
    oldest first (``createdAt``, then ``id``)."""
    return tx.conn.execute(
        select(contact)
        .where(or_(contact.c.id == primary_id, contact.c.linkedId == primary_id))
        .order_by(contact.c.createdAt, contact.c.id)
    ).all()


def primaries_holding(tx: ContactTx, *, email: str | None = None, phone: str | None = None, limit: int) -> list[int]:
    """The primaries of the groups where a live contact holds the email (or phone),
    oldest group first, at most ``limit`` of them."""
    column, value = (contact.c.email, email) if email is not None else (contact.c.phoneNumber, phone)
    group = func.coalesce(contact.c.linkedId, contact.c.id)
    holders = select(group.label("grp")).where(contact.c.deletedAt.is_(None), column == value).distinct().subquery()
    return list(
        tx.conn.execute(
            select(contact.c.id)
            .join(holders, holders.c.grp == contact.c.id)
            .order_by(contact.c.createdAt, contact.c.id)
            .limit(limit)
        ).scalars()
    )


def link_events(tx: ContactTx, contact_ids: Sequence[int]) -> list[Any]:
    """The audit rows that changed a link of these contacts (creation included), oldest first."""
    return tx.conn.execute(
        select(audit_log)
        .where(audit_log.c.contactId.in_(_IDS), audit_log.c.newPrecedence.is_not(None))
        .order_by(audit_log.c.id),
        {"ids": list(contact_ids)},
    ).all()


def undone_audit_ids(tx: ContactTx, contact_ids: Sequence[int]) -> set[int]:
    """Ids of link changes of these contacts that a later audit row reverted (its
    ``detail.undoes``): an undone merge is no longer a reason for two contacts to be one."""
    rows = tx.conn.execute(
        select(audit_log.c.detail).where(
            audit_log.c.contactId.in_(_IDS), audit_log.c.newPrecedence.is_not(None), audit_log.c.detail.is_not(None)
        ),
        {"ids": list(contact_ids)},
    ).scalars()
    return {d["undoes"] for d in rows if isinstance(d, dict) and isinstance(d.get("undoes"), int)}


def reviews_by_id(tx: ContactTx, item_ids: Sequence[int]) -> dict[int, Any]:
    """``pending_merge`` rows by id."""
    if not item_ids:
        return {}
    rows = tx.conn.execute(select(pending_merge).where(pending_merge.c.id.in_(_IDS)), {"ids": sorted(set(item_ids))})
    return {r.id: r for r in rows}


#: a review item belongs to the groups holding the primaries it was proposed between (the
#: scored pair sits in those groups). The audit log and ``link_guard`` are read by their
#: indexed ``contactId`` only, never by the unindexed link columns: the audit log is the
#: largest table. ``leftPrimaryId`` leads the pair's unique index; ``rightPrimaryId`` has
#: none, so this part scans ``pending_merge`` (a few per cent of the contacts' size)
_REVIEW_TOUCHES = or_(pending_merge.c.leftPrimaryId.in_(_IDS), pending_merge.c.rightPrimaryId.in_(_IDS))


def open_reviews(tx: ContactTx, contact_ids: Sequence[int]) -> list[Any]:
    """Pending review items proposed between one of these contacts' groups and another,
    oldest first."""
    return tx.conn.execute(
        select(pending_merge)
        .where(pending_merge.c.status == "pending", _REVIEW_TOUCHES)
        .order_by(pending_merge.c.openedAt, pending_merge.c.id),
        {"ids": list(contact_ids)},
    ).all()


def _history_keys():
    """(kind, id, at, rank) of every history entry of a group of contacts ``ids``."""

    def keys(kind: str, id_column, at_column, condition):
        return select(
            literal(kind).label("kind"),
            id_column.label("id"),
            at_column.label("at"),
            literal(_RANK[kind], Integer).label("rank"),
        ).where(condition)

    return union_all(
        keys(AUDIT, audit_log.c.id, audit_log.c.at, audit_log.c.contactId.in_(_IDS)),
        keys(REVIEW_OPENED, pending_merge.c.id, pending_merge.c.openedAt, _REVIEW_TOUCHES),
        keys(
            REVIEW_SUPERSEDED,
            pending_merge.c.id,
            pending_merge.c.decidedAt,
            and_(pending_merge.c.status.in_(("superseded", "resolved")), _REVIEW_TOUCHES),
        ),
        keys(GUARD, link_guard.c.id, link_guard.c.createdAt, link_guard.c.contactId.in_(_IDS)),
    ).subquery()


def history_count(tx: ContactTx, contact_ids: Sequence[int]) -> int:
    """How many history entries :func:`history_page` pages through."""
    entries = _history_keys()
    return tx.conn.execute(select(func.count()).select_from(entries), {"ids": list(contact_ids)}).scalar_one()


def history_page(tx: ContactTx, contact_ids: Sequence[int], *, limit: int, offset: int) -> list[tuple[str, Any]]:
    """One page of a group's history in time order, as (kind, row) pairs.

    The entries are the audit rows of its contacts (a contact split out of the group
    takes its rows along; the group keeps the undo's note on its primary), the review
    items proposed with it (opened, and superseded), and the guard records on them. The keys are paged in one statement,
    then each kind's rows are read by id.
    """
    entries = _history_keys()
    keys = tx.conn.execute(
        select(entries.c.kind, entries.c.id)
        .order_by(entries.c.at, entries.c.rank, entries.c.id)
        .limit(limit)
        .offset(offset),
        {"ids": list(contact_ids)},
    ).all()
    wanted: dict[str, list[int]] = {}
    for kind, row_id in keys:
        wanted.setdefault(kind, []).append(row_id)
    rows: dict[tuple[str, int], Any] = {}
    for kind, table in ((AUDIT, audit_log), (GUARD, link_guard)):
        if wanted.get(kind):
            for row in tx.conn.execute(select(table).where(table.c.id.in_(_IDS)), {"ids": wanted[kind]}):
                rows[kind, row.id] = row
    items = reviews_by_id(tx, wanted.get(REVIEW_OPENED, []) + wanted.get(REVIEW_SUPERSEDED, []))
    for kind in (REVIEW_OPENED, REVIEW_SUPERSEDED):
        for item_id in wanted.get(kind, []):
            rows[kind, item_id] = items[item_id]
    return [(kind, rows[kind, row_id]) for kind, row_id in keys]


__all__ = [
    "MAX_CONTACT_ID",
    "AUDIT",
    "REVIEW_OPENED",
    "REVIEW_SUPERSEDED",
    "GUARD",
    "contact_by_id",
    "group_of",
    "primaries_holding",
    "link_events",
    "undone_audit_ids",
    "reviews_by_id",
    "open_reviews",
    "history_count",
    "history_page",
]
