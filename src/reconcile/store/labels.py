"""The ``label`` table: every decision as a training label, and labels imported from CSV.

A review decision writes its label in the decision's own transaction
(:mod:`reconcile.review.queue`), and an undo deletes it in the undo's, so retraining
never learns from an undone decision; so is a split proposal's confirmation label, in
its detachment's undo (:mod:`reconcile.review.splits`, :mod:`reconcile.review.detach`).
Which pair of records a label trains on is decided in :mod:`reconcile.review.labels`.

A review label's records name contacts by id only (``[{"id": 7}, ...]``): their values
are read from the contacts when the labels are loaded (:func:`contact_values`), so an
erased contact takes its values out of every label. An imported label belongs to no
contact and keeps its values; erasure deletes the imported labels holding an erased
value (:func:`import_label_rows`, :func:`delete_labels`).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from collections.abc import Iterable

from sqlalchemy import bindparam, delete, insert, select

from . import Store
from .contacts import ContactTx
from .schema import contact, label, pending_merge

_VALUES = select(contact.c.id, contact.c.email, contact.c.phoneNumber, contact.c.name).where(
    contact.c.id.in_(bindparam("ids", expanding=True))
)
_CHUNK = 5000


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


def delete_split_labels(tx: ContactTx, contact_id: int, bridge_contact_id: int, outcome: str) -> list[tuple[int, str]]:
    """Delete the review labels with ``outcome`` that a split proposal's decision wrote on
    its bridge pair; returns the (id, outcome) of each. A split's label belongs to no
    pending merge (``pendingMergeId`` NULL, unlike every review item's) and names the pair
    as (leaving contact, bridge); a bridge is proposed once (``uq_split_bridge``), so the
    pair names the proposal."""
    return [
        tuple(r)
        for r in tx.conn.execute(
            delete(label)
            .where(
                label.c.source == "review",
                label.c.pendingMergeId.is_(None),
                label.c.leftContactId == contact_id,
                label.c.rightContactId == bridge_contact_id,
                label.c.outcome == outcome,
            )
            .returning(label.c.id, label.c.outcome)
        ).all()
    ]


def labels_with_items(store: Store) -> list[Any]:
    """Every label row, oldest first, with its item's scored pair (``pm_contact``,
    ``pm_candidate``; None for an imported label or a guard item) and the chance the
    item had of being drawn into the audit sample (``pm_inclusion``; None: not drawn)."""
    with store.read() as tx:
        return tx.conn.execute(
            select(
                label,
                pending_merge.c.contactId.label("pm_contact"),
                pending_merge.c.candidateId.label("pm_candidate"),
                pending_merge.c.inclusionProbability.label("pm_inclusion"),
            )
            .select_from(label.outerjoin(pending_merge, pending_merge.c.id == label.c.pendingMergeId))
            .order_by(label.c.id)
        ).all()


def contact_values(store: Store, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Each contact's values as a label record (``id``, ``email``, ``phoneNumber``,
    ``name``); an erased contact's are ``None``."""
    wanted = sorted(set(ids))
    found: dict[int, dict[str, Any]] = {}
    with store.read() as tx:
        for start in range(0, len(wanted), _CHUNK):
            for row in tx.conn.execute(_VALUES, {"ids": wanted[start : start + _CHUNK]}):
                found[row.id] = dict(row._mapping)
    return found


def import_label_rows(tx: ContactTx) -> list[Any]:
    """(id, leftRecords, rightRecords) of every imported label."""
    return tx.conn.execute(
        select(label.c.id, label.c.leftRecords, label.c.rightRecords).where(label.c.source == "import")
    ).all()


def delete_labels(tx: ContactTx, ids: Iterable[int]) -> int:
    """Delete the given labels; returns how many there were."""
    wanted = sorted(set(ids))
    if not wanted:
        return 0
    return tx.conn.execute(delete(label).where(label.c.id.in_(wanted))).rowcount


def import_labels(store: Store, rows: list[dict[str, Any]]) -> int:
    """Write imported ``label`` rows (column name -> value, each with its ``importKey``)
    in one transaction, skipping keys already stored; imports queue on one lock, so the
    check and the insert see the same table (the unique key is the backstop). Returns
    how many were written."""

    def write(tx: ContactTx) -> int:
        keys = [r["importKey"] for r in rows]
        present: set[str] = set()
        for start in range(0, len(keys), _CHUNK):
            present.update(
                tx.conn.execute(
                    select(label.c.importKey).where(label.c.importKey.in_(keys[start : start + _CHUNK]))
                ).scalars()
            )
        fresh = [r for r in rows if r["importKey"] not in present]
        if fresh:
            tx.conn.execute(insert(label), fresh)
        return len(fresh)

    return store.write(write, lock_keys=["labels:import"])


__all__ = [
    "add_review_label",
    "delete_review_labels",
    "delete_split_labels",
    "labels_with_items",
    "contact_values",
    "import_label_rows",
    "delete_labels",
    "import_labels",
]
