"""What a batch re-resolution (``reconcile resolve``) reads in bulk, and the review items
it opens.

The reads stream the live ``Contact`` table in id order (a server-side cursor on
PostgreSQL, so a million rows never sit in memory at once) with the blocking keys the
store already keeps, and collect the judgements the batch must respect: reviewers'
cannot-links and confirmed merges, and the values a guard recorded as shared. What the
batch *means* by them is decided in :mod:`reconcile.batch`.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from . import Store
from .contacts import ContactTx, utcnow
from .schema import audit_log, cannot_link, contact, link_guard, pending_merge, split_proposal

_LIVE = select(
    contact.c.id,
    func.coalesce(contact.c.linkedId, contact.c.id).label("groupId"),
    contact.c.createdAt,
    contact.c.email,
    contact.c.phoneNumber,
    contact.c.name,
    contact.c.emailMailbox,
    contact.c.emailLocal,
    contact.c.phoneNational,
    contact.c.phoneTail,
    contact.c.nameKey,
).where(contact.c.deletedAt.is_(None)).order_by(contact.c.id)


def live_contact_batches(store: Store, size: int = 50_000) -> Iterator[list[tuple]]:
    """Every live contact as a tuple (id, groupId, createdAt, email, phoneNumber, name,
    emailMailbox, emailLocal, phoneNational, phoneTail, nameKey), ``size`` rows at a time,
    from one consistent read: a REPEATABLE READ transaction with a server-side cursor on
    PostgreSQL (writers carry on meanwhile), one read transaction on SQLite (WAL).

    The driver's own cursor, not SQLAlchemy's rows: a million rows pass through here, and
    building a Row for each cost as much as reading it. ``createdAt`` comes as the driver
    gives it (a datetime on PostgreSQL, SQLite's stored text): either orders correctly
    within one database.
    """
    sql = str(_LIVE.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}))
    options = {"isolation_level": "REPEATABLE READ"} if store.dialect == "postgresql" else {}
    with store.engine.connect().execution_options(**options) as conn, conn.begin():
        driver = conn.connection.dbapi_connection
        cursor = driver.cursor(name="reconcile_snapshot") if store.dialect == "postgresql" else driver.cursor()
        try:
            cursor.execute(sql)
            while batch := cursor.fetchmany(size):
                yield [tuple(r) for r in batch]
        finally:
            cursor.close()


@dataclass(frozen=True)
class Judgements:
    """What people (and guards) already decided, which a re-resolution never overrides."""

    #: pairs of contacts whose groups a reviewer (or a detachment) said are different people
    cannot_link: list[tuple[int, int]]
    #: pairs of contacts a reviewer said are one person (a confirmed merge, a rejected split)
    must_link: list[tuple[int, int]]
    #: (field, value) a guard recorded as shared by different people
    guarded: set[tuple[str, str]]
    #: the contacts each exact-stage merge went through: one request carried identifiers
    #: of several groups, so the customer presented them together (a merge by the model
    #: is not here: the batch decides those again)
    requests: list[tuple[int, ...]]


def judgements(store: Store, shared_by: frozenset[str]) -> Judgements:
    """The decisions a re-resolution keeps; ``shared_by`` are the guards whose records say
    different people use a value (:data:`reconcile.engine.guards.SHARED_BY_PEOPLE`)."""
    with store.read() as tx:
        cannot = [tuple(r) for r in tx.conn.execute(select(cannot_link.c.leftContactId, cannot_link.c.rightContactId))]
        must = [
            tuple(r)
            for r in tx.conn.execute(
                select(pending_merge.c.leftPrimaryId, pending_merge.c.rightPrimaryId).where(pending_merge.c.status == "confirmed")
            )
        ]
        # a rejected split proposal: the reviewer kept the bridge's two contacts together
        must += [
            tuple(r)
            for r in tx.conn.execute(
                select(split_proposal.c.contactId, split_proposal.c.bridgeContactId).where(split_proposal.c.status == "rejected")
            )
        ]
        guarded = {
            (r.field, r.value)
            for r in tx.conn.execute(
                select(link_guard.c.field, link_guard.c.value)
                .where(link_guard.c.value.is_not(None), link_guard.c.guard.in_(sorted(shared_by)))
                .distinct()
            )
        }
        requests = set()
        for (detail,) in tx.conn.execute(
            # a request's contacts joined through it, online or replayed by a bulk import
            select(audit_log.c.detail).where(
                audit_log.c.action == "demoted",
                or_(audit_log.c.cause.like("identify:%"), audit_log.c.cause.like("import:%")),
            )
        ):
            through = detail.get("through") if isinstance(detail, dict) and "matchProbability" not in detail else None
            if isinstance(through, list) and len(through) > 1:
                requests.add(tuple(sorted(through)))
    return Judgements(cannot, must, guarded, sorted(requests))


# --- split proposals ------------------------------------------------------------------


def open_split_proposal(
    tx: ContactTx,
    *,
    primary_id: int,
    contact_id: int,
    bridge_contact_id: int,
    kept_ids: list[int],
    detached_ids: list[int],
    score: float | None,
    match_weight: float | None,
    model_version: str | None,
    evidence: Any,
) -> int | None:
    """Propose splitting ``contact_id`` off its group; ``None`` if this bridge was proposed
    before (whatever became of it), so running the batch again proposes nothing twice."""
    upsert = postgresql.insert if tx.dialect == "postgresql" else sqlite.insert
    return tx.conn.execute(
        upsert(split_proposal)
        .values(
            primaryId=primary_id,
            contactId=contact_id,
            bridgeContactId=bridge_contact_id,
            keptContactIds=kept_ids,
            detachedContactIds=detached_ids,
            score=score,
            matchWeight=match_weight,
            modelVersion=model_version,
            evidence=evidence,
            status="pending",
            openedAt=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=[split_proposal.c.contactId, split_proposal.c.bridgeContactId])
        .returning(split_proposal.c.id)
    ).scalar_one_or_none()


def split_counts(tx: ContactTx) -> dict[str, int]:
    rows = tx.conn.execute(select(split_proposal.c.status, func.count()).group_by(split_proposal.c.status)).all()
    return {status: n for status, n in rows}


def list_splits(tx: ContactTx, status: str, limit: int, offset: int) -> tuple[int, list[Any]]:
    """(total, one page) of split proposals with ``status``, oldest first."""
    total = tx.conn.execute(select(func.count()).select_from(split_proposal).where(split_proposal.c.status == status)).scalar_one()
    rows = tx.conn.execute(
        select(split_proposal)
        .where(split_proposal.c.status == status)
        .order_by(split_proposal.c.openedAt, split_proposal.c.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return total, rows


def split_row(tx: ContactTx, split_id: int, *, for_update: bool = False) -> Any | None:
    stmt = select(split_proposal).where(split_proposal.c.id == split_id)
    if for_update and tx.dialect == "postgresql":
        stmt = stmt.with_for_update()
    return tx.conn.execute(stmt).one_or_none()


def decide_split(
    tx: ContactTx, split_id: int, *, status: str, by: str, note: str | None, detachment_id: int | None = None
) -> bool:
    """Record a decision on a pending split; False when it was no longer pending."""
    done = tx.conn.execute(
        update(split_proposal)
        .where(split_proposal.c.id == split_id, split_proposal.c.status == "pending")
        .values(status=status, decidedAt=utcnow(), decidedBy=by, note=note, detachmentId=detachment_id)
    )
    return done.rowcount == 1


def reopen_split_of_detachment(tx: ContactTx, detachment_id: int) -> Any | None:
    """Put the split proposal whose confirmation made this detachment back to ``pending``,
    its decision fields cleared (the detachment is being undone: the group is one again and
    the proposal asks its question again). Returns its (id, contactId, bridgeContactId), or
    ``None`` when the detachment was a reviewer's own, not a split's."""
    sp = split_proposal.c
    return tx.conn.execute(
        update(split_proposal)
        .where(sp.detachmentId == detachment_id, sp.status == "confirmed")
        .values(status="pending", decidedAt=None, decidedBy=None, note=None, detachmentId=None)
        .returning(sp.id, sp.contactId, sp.bridgeContactId)
    ).first()


__all__ = [
    "live_contact_batches",
    "Judgements",
    "judgements",
    "open_split_proposal",
    "split_counts",
    "list_splits",
    "split_row",
    "decide_split",
    "reopen_split_of_detachment",
]
