"""Batch clusters against live groups: every difference, classified.

- **Proposed merge**: an accepted link of the clustering joins contacts of two live
  groups. One proposal per pair of live groups, with the strongest such link as its
  evidence (the first the clustering accepted).
- **Suspected over-merge**: a live group whose contacts fall into several batch
  clusters. The part holding the group's primary stays; every other part is one split
  proposal. Its **bridge** is the strongest scored pair across the cut (every other pair
  across it is weaker; removing the bridge's contact with what reached the group only
  through it is what a reviewer's acceptance does, :func:`reconcile.review.splits.confirm`),
  with the reason the clustering refused to keep the two parts together.
- **Unchanged**: a live group that is exactly one batch cluster.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from .clustering import Clusters
from .snapshot import Snapshot


@dataclass(frozen=True)
class Pair:
    """One scored pair: the model's evidence for or against two contacts being one person."""

    a: int
    b: int
    probability: float
    weight: float
    comparisons: tuple[dict[str, Any], ...]

    def evidence(self, model_version: str | None) -> dict[str, Any]:
        return {
            "contactId": self.a,
            "candidateId": self.b,
            "modelVersion": model_version,
            "matchWeight": self.weight,
            "matchProbability": self.probability,
            "comparisons": list(self.comparisons),
        }


@dataclass(frozen=True)
class MergeProposal:
    primary_ids: tuple[int, int]
    contact_id: int
    candidate_id: int
    link: str  # the kind of link that joined them
    pair: Pair | None = None


@dataclass(frozen=True)
class SplitProposal:
    primary_id: int
    kept_ids: tuple[int, ...]
    detached_ids: tuple[int, ...]
    #: the bridge: ``contact_id`` is on the leaving part, ``bridge_contact_id`` on the kept one
    contact_id: int = 0
    bridge_contact_id: int = 0
    pair: Pair | None = None
    refused_by: str | None = None
    crossing_pairs: int = 0

    def crossing(self) -> list[tuple[int, int]]:
        """Every pair of contacts across the cut, (smaller id, larger id): the bridge is one."""
        return [(min(i, j), max(i, j)) for i in self.detached_ids for j in self.kept_ids]


@dataclass
class Diff:
    merges: list[MergeProposal] = field(default_factory=list)
    splits: list[SplitProposal] = field(default_factory=list)
    unchanged: int = 0
    live_groups: int = 0
    batch_clusters: int = 0

    def pairs_to_explain(self) -> set[tuple[int, int]]:
        """The pairs whose evidence the proposals show: each merge's link, every pair across each cut."""
        wanted = {(m.contact_id, m.candidate_id) for m in self.merges}
        for s in self.splits:
            wanted.update(s.crossing())
        return wanted


def diff(snapshot: Snapshot, clusters: Clusters) -> Diff:
    """Classify every live group against the batch clusters (bridges come later, from
    :func:`with_evidence`, once the pairs across each cut are scored)."""
    group_of = dict(zip(snapshot.ids, snapshot.groups))
    label = clusters.label
    out = Diff(batch_clusters=len(set(label.values())))

    proposed: set[tuple[int, int]] = set()
    for link in clusters.accepted:
        ga, gb = group_of[link.a], group_of[link.b]
        if ga == gb:
            continue
        key = (min(ga, gb), max(ga, gb))
        if key in proposed:
            continue
        proposed.add(key)
        out.merges.append(MergeProposal(key, min(link.a, link.b), max(link.a, link.b), link.kind))

    # each live group's members, oldest first (createdAt, then id: ids are unique, so the
    # tuples never compare their groups, and no key function runs a million times)
    groups: dict[int, list[int]] = defaultdict(list)
    for _, contact_id, group in sorted(zip(snapshot.created, snapshot.ids, snapshot.groups)):
        groups[group].append(contact_id)
    out.live_groups = len(groups)
    cluster_size = Counter(label.values())
    for primary, members in sorted(groups.items()):
        parts: dict[int, list[int]] = defaultdict(list)
        for contact_id in members:
            parts[label[contact_id]].append(contact_id)
        if len(parts) == 1:
            out.unchanged += cluster_size[label[members[0]]] == len(members)
            continue
        kept_label = label[primary] if primary in label else label[members[0]]
        for part_label, part in sorted(parts.items()):
            if part_label != kept_label:
                leaving = set(part)
                kept = tuple(sorted(i for i in members if i not in leaving))
                out.splits.append(SplitProposal(primary, kept, tuple(sorted(part))))
    return out


def with_evidence(found: Diff, clusters: Clusters, pairs: dict[tuple[int, int], Pair], threshold: float) -> Diff:
    """The proposals with their evidence: each merge's scored link, and each split's
    bridge (the strongest scored pair across its cut) with the reason the clustering
    did not keep it."""
    refusal = {(min(link.a, link.b), max(link.a, link.b)): why for link, why in clusters.refused}
    merges = [replace(m, pair=pairs.get((m.contact_id, m.candidate_id))) for m in found.merges]
    splits = []
    for s in found.splits:
        crossing = [pairs[k] for k in s.crossing() if k in pairs]
        if not crossing:  # nothing across the cut could be scored
            splits.append(replace(s, contact_id=s.detached_ids[0], bridge_contact_id=s.kept_ids[0], refused_by="not scored"))
            continue
        best = max(crossing, key=lambda p: (round(p.weight, 6), -p.a, -p.b))
        leaving = set(s.detached_ids)
        inner, outer = (best.a, best.b) if best.a in leaving else (best.b, best.a)
        why = refusal.get((best.a, best.b)) or ("below threshold" if best.probability < threshold else "not blocked")
        splits.append(replace(s, contact_id=inner, bridge_contact_id=outer, pair=best, refused_by=why, crossing_pairs=len(crossing)))
    return replace(found, merges=merges, splits=splits)


__all__ = ["Pair", "MergeProposal", "SplitProposal", "Diff", "diff", "with_evidence"]
