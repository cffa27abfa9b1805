"""The review queue's statements: reading pending merges, recording decisions on them,
cannot-link pairs, audit notes, and what undoing a confirmation reads from the audit log.

What a decision *means* (which primary wins, when an item is stale, when an undo is
safe) is decided in :mod:`reconcile.review.queue`, which runs these functions inside
the one transaction each decision takes (:meth:`reconcile.store.Store.write`). Opening
pending merges is the identify pipeline's side: see :mod:`reconcile.store.pending`.
Functions that take a :class:`~reconcile.store.Store` run in a read transaction of
their own; those that take a :class:`ContactTx` are steps of the caller's transaction.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, and_, delete, func, insert, or_, select, update

from . import Store
from .contacts import ContactTx
from .schema import NOT_CREATED, audit_log, cannot_link, contact, label, link_guard, pending_merge

Order = Literal["score", "age"]

# --- reading the queue ----------------------------------------------------------------


def status_counts(store: Store) -> dict[str, int]:
    """Items per status that has any (one indexed ``GROUP BY``)."""
    with store.read() as tx:
        rows = tx.conn.execute(
            select(pending_merge.c.status, func.count()).group_by(pending_merge.c.status)
        ).all()
    return dict(rows)


def pending_count(store: Store) -> int:
    """The queue's size, for the ``/metrics`` gauge computed at scrape time."""
    with store.read() as tx:
        return tx.conn.execute(
            select(func.count()).select_from(pending_merge).where(pending_merge.c.status == "pending")
        ).scalar_one()


def _ordering(order: Order) -> list:
    if order == "score":
        # most likely matches first; guard items (no score) after every scored one
        return [pending_merge.c.score.desc().nulls_last(), pending_merge.c.id]
    if order == "age":
        return [pending_merge.c.openedAt, pending_merge.c.id]
    raise ValueError(f"unknown order {order!r}: use 'score' or 'age'")


def _select_items() -> Select:
    """Items with the scored pair's contacts joined in (``c_*`` and ``k_*`` columns)."""
    contact_c, candidate_c = contact.alias("pair_contact"), contact.alias("pair_candidate")
    columns = []
    for alias, prefix in ((contact_c, "c_"), (candidate_c, "k_")):
        columns += [
            alias.c.email.label(prefix + "email"),
            alias.c.phoneNumber.label(prefix + "phone"),
            alias.c.name.label(prefix + "name"),
        ]
    return (
        select(pending_merge, *columns)
        .outerjoin(contact_c, contact_c.c.id == pending_merge.c.contactId)
        .outerjoin(candidate_c, candidate_c.c.id == pending_merge.c.candidateId)
    )


def items_page(store: Store, status: str | None, order: Order, *, limit: int, offset: int) -> list[Any]:
    """Items (with the scored pair's ``c_*``/``k_*`` columns) in the queue's order, offset
    pagination over the (status, score|openedAt) indexes; every status when ``status`` is None."""
    stmt = _select_items().order_by(*_ordering(order)).limit(limit).offset(offset)
    if status is not None:
        stmt = stmt.where(pending_merge.c.status == status)
    with store.read() as tx:
        return tx.conn.execute(stmt).all()


def item_with_pair(tx: ContactTx, item_id: int) -> Any | None:
    """One item with the scored pair's ``c_*``/``k_*`` columns, or ``None``."""
    return tx.conn.execute(_select_items().where(pending_merge.c.id == item_id)).first()


def item_guards(tx: ContactTx, item_id: int) -> list[dict[str, Any]]:
    """The guard records (field, value, guard, reason) that opened or accompany an item."""
    rows = tx.conn.execute(
        select(link_guard.c.field, link_guard.c.value, link_guard.c.guard, link_guard.c.reason)
        .where(link_guard.c.pendingMergeId == item_id)
        .order_by(link_guard.c.id)
    ).all()
    return [dict(g._mapping) for g in rows]


def item(tx: ContactTx, item_id: int, *, for_update: bool = False) -> Any | None:
    """The ``pending_merge`` row, or ``None``; ``for_update`` row-locks it on PostgreSQL
    (SQLite's writer holds the database write lock already)."""
    stmt = select(pending_merge).where(pending_merge.c.id == item_id)
    if for_update and tx.dialect == "postgresql":
        stmt = stmt.with_for_update()
    return tx.conn.execute(stmt).first()


def neighbour_id(tx: ContactTx, row: Any, order: Order, *, forward: bool) -> int | None:
    """The pending item after (or before) item ``row`` in the queue's order.

    Keyset navigation on the same keys as :func:`items_page`, so it stays one index
    probe at any queue size; ``row`` need not be pending any more.
    """
    pm = pending_merge.c
    if order == "age":
        if forward:
            cond = or_(pm.openedAt > row.openedAt, and_(pm.openedAt == row.openedAt, pm.id > row.id))
            ordering = [pm.openedAt, pm.id]
        else:
            cond = or_(pm.openedAt < row.openedAt, and_(pm.openedAt == row.openedAt, pm.id < row.id))
            ordering = [pm.openedAt.desc(), pm.id.desc()]
    elif row.score is None:  # among the unscored tail, ordered by id
        if forward:
            cond = and_(pm.score.is_(None), pm.id > row.id)
            ordering = [pm.id]
        else:
            cond = or_(pm.score.is_not(None), pm.id < row.id)
            ordering = [pm.score.is_(None), pm.score, pm.id.desc()]
    elif forward:
        cond = or_(pm.score < row.score, and_(pm.score == row.score, pm.id > row.id), pm.score.is_(None))
        ordering = [pm.score.desc().nulls_last(), pm.id]
    else:
        cond = or_(pm.score > row.score, and_(pm.score == row.score, pm.id < row.id))
        ordering = [pm.score, pm.id.desc()]
    return tx.conn.execute(select(pm.id).where(pm.status == "pending", cond).order_by(*ordering).limit(1)).scalar()


def first_pending(store: Store, order: Order) -> int | None:
    """The head of the queue in the given order."""
    with store.read() as tx:
        return tx.conn.execute(
            select(pending_merge.c.id)
            .where(pending_merge.c.status == "pending")
            .order_by(*_ordering(order))
            .limit(1)
        ).scalar()


def last_decision(store: Store, decided_by: str) -> int | None:
    """The reviewer's most recent decision that is still in force (for "undo last")."""
    with store.read() as tx:
        return tx.conn.execute(
            select(pending_merge.c.id)
            .where(
                pending_merge.c.decidedBy == decided_by,
                pending_merge.c.status.in_(("confirmed", "rejected")),
            )
            .order_by(pending_merge.c.decidedAt.desc(), pending_merge.c.id.desc())
            .limit(1)
        ).scalar()


def pending_items(store: Store) -> list[Any]:
    """(id, contactId, candidateId, leftPrimaryId, rightPrimaryId) of every pending item, oldest id first."""
    with store.read() as tx:
        return tx.conn.execute(
            select(
                pending_merge.c.id, pending_merge.c.contactId, pending_merge.c.candidateId,
                pending_merge.c.leftPrimaryId, pending_merge.c.rightPrimaryId,
            )
            .where(pending_merge.c.status == "pending")
            .order_by(pending_merge.c.id)
        ).all()


def pending_pair_records(store: Store) -> list[Any]:
    """Per pending item: (email, phoneNumber, name) of its contact, then of its candidate,
    then ``candidateId`` (None for a guard item, which has no scored pair)."""
    a, b = contact.alias("a"), contact.alias("b")
    with store.read() as tx:
        return tx.conn.execute(
            select(a.c.email, a.c.phoneNumber, a.c.name, b.c.email, b.c.phoneNumber, b.c.name, pending_merge.c.candidateId)
            .select_from(
                pending_merge.outerjoin(a, a.c.id == pending_merge.c.contactId).outerjoin(
                    b, b.c.id == pending_merge.c.candidateId
                )
            )
            .where(pending_merge.c.status == "pending")
        ).all()


def pending_edges(store: Store) -> list[Any]:
    """Every pending item as an edge between the groups it would join *now*: (id, left,
    right, score, openedAt, audit), ``left``/``right`` the current primaries of the stored ones.
    What the queue groups into cases (items touching the same groups)."""
    lp, rp = contact.alias("lp"), contact.alias("rp")
    with store.read() as tx:
        return tx.conn.execute(
            select(
                pending_merge.c.id,
                func.coalesce(lp.c.linkedId, lp.c.id).label("left"),
                func.coalesce(rp.c.linkedId, rp.c.id).label("right"),
                pending_merge.c.score,
                pending_merge.c.openedAt,
                pending_merge.c.audit,
            )
            .select_from(
                pending_merge.join(lp, lp.c.id == pending_merge.c.leftPrimaryId).join(
                    rp, rp.c.id == pending_merge.c.rightPrimaryId
                )
            )
            .where(pending_merge.c.status == "pending")
            .order_by(pending_merge.c.id)
        ).all()


def items_with_pairs(tx: ContactTx, item_ids: Sequence[int]) -> list[Any]:
    """The given items with the scored pair's ``c_*``/``k_*`` columns, by id."""
    return tx.conn.execute(_select_items().where(pending_merge.c.id.in_(sorted(set(item_ids)))).order_by(pending_merge.c.id)).all()


def decided_snapshot(tx: ContactTx, item_id: int) -> Any | None:
    """(leftRecords, rightRecords, decidedAt) of the review label an item's decision wrote:
    each side's contacts, by id, as the reviewer saw them; ``None`` when there is none."""
    return tx.conn.execute(
        select(label.c.leftRecords, label.c.rightRecords, label.c.decidedAt)
        .where(label.c.pendingMergeId == item_id, label.c.source == "review")
        .order_by(label.c.id.desc())
        .limit(1)
    ).first()


def contacts_any(tx: ContactTx, ids: Iterable[int]) -> list[Any]:
    """Contacts by id, erased ones included (their values are NULL), oldest first."""
    return tx.conn.execute(
        select(contact).where(contact.c.id.in_(sorted(set(ids)))).order_by(contact.c.createdAt, contact.c.id)
    ).all()


# --- recording a decision ----------------------------------------------------------------


def set_status(
    tx: ContactTx, item_id: int, status: str, *, at: datetime | None, by: str | None, note: str | None
) -> None:
    """Record an item's outcome (or, with ``status='pending'`` and Nones, reopen it)."""
    tx.conn.execute(
        update(pending_merge)
        .where(pending_merge.c.id == item_id)
        .values(status=status, decidedAt=at, decidedBy=by, note=note)
    )


def link_provenance(tx: ContactTx, primary_id: int) -> list[Any]:
    """(id, linkMethod, linkScore, linkModel) of every contact of a group, erased ones
    included: how each came to be linked, before a merge overwrites it."""
    return tx.conn.execute(
        select(contact.c.id, contact.c.linkMethod, contact.c.linkScore, contact.c.linkModel).where(
            or_(contact.c.id == primary_id, contact.c.linkedId == primary_id)
        )
    ).all()


def add_cannot_link(tx: ContactTx, low: int, high: int, *, pending_merge_id: int, at: datetime, by: str) -> None:
    """Record that groups ``low`` < ``high`` (by primary) never link, unless already recorded."""
    exists = tx.conn.execute(
        select(cannot_link.c.id).where(cannot_link.c.leftContactId == low, cannot_link.c.rightContactId == high)
    ).first()
    if exists is None:
        tx.conn.execute(
            insert(cannot_link).values(
                leftContactId=low, rightContactId=high, pendingMergeId=pending_merge_id, createdAt=at, createdBy=by
            )
        )


def remove_cannot_link(tx: ContactTx, pending_merge_id: int) -> list[tuple[int, int]]:
    """Delete the cannot-link an item's rejection recorded; returns the pairs removed."""
    return [
        tuple(r)
        for r in tx.conn.execute(
            delete(cannot_link).where(cannot_link.c.pendingMergeId == pending_merge_id).returning(
                cannot_link.c.leftContactId, cannot_link.c.rightContactId
            )
        ).all()
    ]


def audit_note(tx: ContactTx, at: datetime, contact_ids: Iterable[int], action: str, cause: str, detail: dict) -> None:
    """Audit a decision that changes no link (no precedence columns, so the link history
    the invariant checks read is untouched)."""
    tx.conn.execute(
        insert(audit_log),
        [{"at": at, "contactId": cid, "action": action, "cause": cause, "detail": detail} for cid in dict.fromkeys(contact_ids)],
    )


# --- what undoing a confirmation reads ------------------------------------------------------


def link_changes(tx: ContactTx, cause: str) -> list[Any]:
    """Every audited change of a link made with ``cause``, in the order it was written.
    ``cause`` is a confirmation's or a detachment's, which create no contact: saying so
    (``NOT_CREATED``) lets the read use ``ix_audit_cause``, which holds no creations."""
    return tx.conn.execute(
        select(audit_log)
        .where(audit_log.c.cause == cause, NOT_CREATED, audit_log.c.newPrecedence.is_not(None))
        .order_by(audit_log.c.id)
    ).all()


def cause_of(tx: ContactTx, audit_id: int) -> str | None:
    """The cause an audit row records."""
    return tx.conn.execute(select(audit_log.c.cause).where(audit_log.c.id == audit_id)).scalar()


def group_rows(tx: ContactTx, primary_id: int) -> list[Any]:
    """(id, deletedAt) of every contact of a group, erased ones included."""
    return tx.conn.execute(
        select(contact.c.id, contact.c.deletedAt).where(
            or_(contact.c.id == primary_id, contact.c.linkedId == primary_id)
        )
    ).all()


def last_link_change(tx: ContactTx, member_ids: Sequence[int], primary_id: int) -> int | None:
    """The audit id of the latest change of a link that touched the group: of one of its
    members, or that pointed a contact at or away from its primary."""
    return tx.conn.execute(
        select(func.max(audit_log.c.id)).where(
            audit_log.c.newPrecedence.is_not(None),
            or_(
                audit_log.c.contactId.in_(member_ids),
                audit_log.c.newLinkedId == primary_id,
                audit_log.c.oldLinkedId == primary_id,
            ),
        )
    ).scalar_one()


__all__ = [
    "Order",
    "status_counts",
    "pending_count",
    "items_page",
    "item_with_pair",
    "item_guards",
    "item",
    "neighbour_id",
    "first_pending",
    "last_decision",
    "pending_items",
    "pending_edges",
    "items_with_pairs",
    "decided_snapshot",
    "contacts_any",
    "pending_pair_records",
    "set_status",
    "link_provenance",
    "add_cannot_link",
    "remove_cannot_link",
    "audit_note",
    "link_changes",
    "cause_of",
    "group_rows",
    "last_link_change",
]
