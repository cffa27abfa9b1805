"""``reconcile resolve --apply``: a re-resolution's differences become review items,
never changes. A proposed merge opens a pending merge (reason ``batch``) between the two
live groups; a suspected over-merge opens a split proposal naming its bridge. Both are
unique on what they propose (the pair of groups; the bridge), so a second run proposes
nothing twice, and a proposal a reviewer already decided is not reopened.

Each proposal is checked against the store as it is now, in its own write transaction:
a group that changed since the snapshot (merged, split, erased) is skipped, not guessed at.
"""
from __future__ import annotations

from typing import Any

from ..store import Store
from ..store.resolution import open_split_proposal
from ..store.contacts import ContactTx
from ..store.pending import open_pending_merge
from .flow import Resolution

#: the ``pending_merge.reason`` of a merge a re-resolution proposed
BATCH_REASON = "batch"


def apply(store: Store, resolution: Resolution) -> dict[str, Any]:
    """Open the review items; returns their ids and how many were skipped."""
    merges: list[int] = []
    splits: list[int] = []
    outcome = {"pendingMergeIds": merges, "splitProposalIds": splits, "alreadyProposed": 0, "changedSince": 0}
    version = resolution.model_version
    for m in resolution.diff.merges:
        def open_merge(tx: ContactTx, m=m) -> int | None | str:
            if not _still_primaries(tx, m.primary_ids):
                return "changed"
            return open_pending_merge(
                tx,
                *m.primary_ids,
                reason=BATCH_REASON,
                contact_id=m.contact_id,
                candidate_id=m.candidate_id,
                score=m.pair.probability if m.pair else None,
                match_weight=m.pair.weight if m.pair else None,
                model_version=version,
                evidence={**(m.pair.evidence(version) if m.pair else {}), "link": m.link, "source": "resolve"},
            )

        _count(store.write(open_merge), merges, outcome)
    for s in resolution.diff.splits:
        def open_split(tx: ContactTx, s=s) -> int | None | str:
            members = {c.id for c in tx.group_members([s.primary_id])}
            if not _still_primaries(tx, [s.primary_id]) or members != set(s.kept_ids) | set(s.detached_ids):
                return "changed"
            return open_split_proposal(
                tx,
                primary_id=s.primary_id,
                contact_id=s.contact_id,
                bridge_contact_id=s.bridge_contact_id,
                kept_ids=list(s.kept_ids),
                detached_ids=list(s.detached_ids),
                score=s.pair.probability if s.pair else None,
                match_weight=s.pair.weight if s.pair else None,
                model_version=version,
                evidence={
                    **(s.pair.evidence(version) if s.pair else {}),
                    "refusedBy": s.refused_by,
                    "crossingPairs": s.crossing_pairs,
                    "source": "resolve",
                },
            )

        _count(store.write(open_split), splits, outcome)
    return outcome


def _still_primaries(tx: ContactTx, ids) -> bool:
    rows = tx.contacts(list(ids))
    return len(rows) == len(set(ids)) and all(r.linkPrecedence == "primary" and r.deletedAt is None for r in rows)


def _count(result: int | None | str, ids: list[int], outcome: dict[str, Any]) -> None:
    if result == "changed":
        outcome["changedSince"] += 1
    elif result is None:
        outcome["alreadyProposed"] += 1
    else:
        ids.append(result)
