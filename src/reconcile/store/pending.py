"""Opening pending merges, recording link guards, and looking up cannot-link pairs.

These are the writes the identify pipeline makes when it keeps two groups apart; the
reviewer's side of the queue (listing, deciding, labels) is decided in
:mod:`reconcile.review.queue`, with its statements in :mod:`reconcile.store.reviews`.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from .contacts import ContactTx, utcnow
from .prepared import Prepared
from .schema import cannot_link, contact, link_guard, pending_merge


_PROPOSED = (
    "leftPrimaryId", "rightPrimaryId", "contactId", "candidateId", "reason", "guard", "score", "matchWeight",
    "modelVersion", "evidence", "audit", "inclusionProbability", "status", "openedAt",
)


@functools.cache
def _propose_stmt(dialect: str) -> Prepared:
    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return Prepared(
        upsert(pending_merge)
        .values({c: bindparam(c, type_=pending_merge.c[c].type) for c in _PROPOSED})
        .on_conflict_do_nothing(index_elements=[pending_merge.c.leftPrimaryId, pending_merge.c.rightPrimaryId])
        .returning(pending_merge.c.id)
    )


_RECORD_GUARD = Prepared(
    insert(link_guard),
    columns=("contactId", "field", "value", "guard", "reason", "pendingMergeId", "createdAt"),
)


def open_pending_merge(
    tx: ContactTx,
    primary_a: int,
    primary_b: int,
    *,
    reason: str,
    contact_id: int | None = None,
    candidate_id: int | None = None,
    guard: str | None = None,
    score: float | None = None,
    match_weight: float | None = None,
    model_version: str | None = None,
    evidence: Any = None,
    audit: str | None = None,
    inclusion_probability: float | None = None,
) -> int | None:
    """Propose merging the groups of two primaries; ``None`` if that pair was proposed before.

    ``audit`` and ``inclusion_probability`` mark an item of the random audit sample
    (:mod:`reconcile.engine.audit_sampling`). The same pair of groups is never proposed twice, whatever became of the first
    proposal (a rejected pair is also a cannot-link; a confirmed one is one group).
    The insert does nothing on conflict with the pair's unique key, which answers both
    "proposed before" and two transactions proposing the same pair at once (the later
    gets ``None`` instead of a unique violation that would fail its request).
    """
    left, right = sorted((primary_a, primary_b))
    rows = _propose_stmt(tx.dialect).rows(
        tx.conn,
        {
            "leftPrimaryId": left,
            "rightPrimaryId": right,
            "contactId": contact_id,
            "candidateId": candidate_id,
            "reason": reason,
            "guard": guard,
            "score": score,
            "matchWeight": match_weight,
            "modelVersion": model_version,
            "evidence": evidence,
            "audit": audit,
            "inclusionProbability": inclusion_probability,
            "status": "pending",
            "openedAt": utcnow(),
        },
    )
    return rows[0].id if rows else None


def record_guard(
    tx: ContactTx,
    contact_id: int,
    *,
    field: str,
    value: str | None,
    guard: str,
    reason: str,
    pending_merge_id: int | None = None,
) -> None:
    """Record that a guard kept ``contact_id`` apart from the group(s) holding ``value``.

    ``reconcile check`` accepts two groups sharing an identifier only with such a record.
    """
    _RECORD_GUARD.run(
        tx.conn,
        {"contactId": contact_id, "field": field, "value": value, "guard": guard, "reason": reason,
         "pendingMergeId": pending_merge_id, "createdAt": utcnow()},
    )


def _cannot_link_stmt():
    ids = bindparam("ids", expanding=True)
    members = (
        select(contact.c.id, func.coalesce(contact.c.linkedId, contact.c.id).label("grp"))
        .where(or_(contact.c.id.in_(ids), contact.c.linkedId.in_(ids)))
        .subquery()
    )
    left, right = members.alias("l"), members.alias("r")
    return (
        select(left.c.grp, right.c.grp)
        .select_from(cannot_link)
        .join(left, left.c.id == cannot_link.c.leftContactId)
        .join(right, right.c.id == cannot_link.c.rightContactId)
        .where(left.c.grp != right.c.grp)
    )


# Built once; it starts from the groups' members (index look-ups), so its cost does not
# grow with the number of rejections ever recorded.
_CANNOT_LINK = Prepared(_cannot_link_stmt())


def cannot_link_pairs(tx: ContactTx, primary_ids: Iterable[int]) -> set[tuple[int, int]]:
    """Pairs of the given groups (by current primary) that a reviewer has rejected."""
    ids = sorted(set(primary_ids))
    if len(ids) < 2:
        return set()
    rows = _CANNOT_LINK.rows(tx.conn, {"ids": ids})
    return {tuple(sorted((a, b))) for a, b in rows}


__all__ = ["open_pending_merge", "record_guard", "cannot_link_pairs"]
