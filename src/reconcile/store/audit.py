"""Reads of the random audit sample (review items with an ``audit`` kind): how many of
each kind, status and inclusion probability, for the estimates in
:mod:`reconcile.review.audit_estimates`."""
from __future__ import annotations

from sqlalchemy import func, select

from . import Store
from .schema import pending_merge


def audit_tally(store: Store) -> list[tuple[str, str, float | None, int]]:
    """(audit kind, status, inclusion probability, items) over the whole audit sample.

    One grouped read over the ``(audit, status)`` index; the probabilities take a few
    values (one per stratum), so the answer stays small at any queue size."""
    with store.read() as tx:
        rows = tx.conn.execute(
            select(
                pending_merge.c.audit,
                pending_merge.c.status,
                pending_merge.c.inclusionProbability,
                func.count().label("items"),
            )
            .where(pending_merge.c.audit.is_not(None))
            .group_by(pending_merge.c.audit, pending_merge.c.status, pending_merge.c.inclusionProbability)
        ).all()
    return [(r.audit, r.status, r.inclusionProbability, int(r.items)) for r in rows]


__all__ = ["audit_tally"]
