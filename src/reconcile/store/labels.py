"""The ``label`` table: every decision as a training label, and labels imported from CSV.

A review decision writes its label in the decision's own transaction
(:mod:`reconcile.review.queue`), and an undo deletes it in the undo's, so retraining
never learns from an undone decision. Which pair of records a label trains on is
decided in :mod:`reconcile.review.labels`.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select

from . import Store
from .contacts import ContactTx
from .schema import label, pending_merge


def add_review_label(
    tx: ContactTx,
    *,
    pending_merge_id: int,
    left_contact_id: int,
    right_contact_id: int,
    outcome: str,
    left_records: list[dict[str, Any]],
    right_records: list[dict[str, Any]],
    decided_by: str,
    decided_at: datetime,
) -> None:
    """A reviewer's decision on an item, with both sides' records as they were."""
    tx.conn.execute(
        insert(label).values(
            pendingMergeId=pending_merge_id,
            leftContactId=left_contact_id,
            rightContactId=right_contact_id,
            outcome=outcome,
            leftRecords=left_records,
            rightRecords=right_records,
            source="review",
            decidedBy=decided_by,
            decidedAt=decided_at,
        )
    )


def delete_review_labels(tx: ContactTx, pending_merge_id: int) -> list[tuple[int, str]]:
    """Delete the review labels of an item; returns the (id, outcome) of each."""
    return [
        tuple(r)
        for r in tx.conn.execute(
            delete(label)
            .where(label.c.pendingMergeId == pending_merge_id, label.c.source == "review")
            .returning(label.c.id, label.c.outcome)
        ).all()
    ]


def labels_with_items(store: Store) -> list[Any]:
    """Every label row, oldest first, with its item's scored pair (``pm_contact``,
    ``pm_candidate``; None for an imported label or a guard item)."""
    with store.read() as tx:
        return tx.conn.execute(
            select(
                label,
                pending_merge.c.contactId.label("pm_contact"),
                pending_merge.c.candidateId.label("pm_candidate"),
            )
            .select_from(label.outerjoin(pending_merge, pending_merge.c.id == label.c.pendingMergeId))
            .order_by(label.c.id)
        ).all()


def import_labels(store: Store, rows: list[dict[str, Any]]) -> None:
    """Write ``label`` rows (column name -> value) in one transaction; imports queue on one lock."""
    store.write(lambda tx: tx.conn.execute(insert(label), rows), lock_keys=["labels:import"])


__all__ = ["add_review_label", "delete_review_labels", "labels_with_items", "import_labels"]
