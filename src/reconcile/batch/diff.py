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
from dataclasses import dataclass, field
from typing import Any

from .clustering import Clusters
from .snapshot import Member


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
    pair: Pair | None


@dataclass(frozen=True)
class SplitProposal:
    primary_id: int
    #: the bridge: ``contact_id`` is on the leaving part, ``bridge_contact_id`` on the kept one
    contact_id: int
    bridge_contact_id: int
    kept_ids: tuple[int, ...]
    detached_ids: tuple[int, ...]
    pair: Pair | None
    refused_by: str | None
    crossing_pairs: int


@dataclass
class Diff:
    merges: list[MergeProposal] = field(default_factory=list)
    splits: list[SplitProposal] = field(default_factory=list)
    unchanged: int = 0
    live_groups: int = 0
    batch_clusters: int = 0


def diff(members: list[Member], clusters: Clusters, pairs: dict[tuple[int, int], Pair]) -> Diff:
    group_of = {m.id: m.group for m in members}
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
        a, b = min(link.a, link.b), max(link.a, link.b)
        out.merges.append(MergeProposal(key, a, b, link.kind, pairs.get((a, b))))

    groups: dict[int, list[Member]] = defaultdict(list)
    for m in members:
        groups[m.group].append(m)
    out.live_groups = len(groups)
    refusal = _refusals(clusters)
    cluster_size = Counter(label.values())
    for primary, group in sorted(groups.items()):
        parts: dict[int, list[int]] = defaultdict(list)
        for m in sorted(group, key=lambda m: (m.created, m.id)):
            parts[label[m.id]].append(m.id)
        if len(parts) == 1:
            out.unchanged += cluster_size[label[group[0].id]] == len(group)
            continue
        kept_label = label[primary] if primary in label else label[group[0].id]
        for part_label, part in sorted(parts.items()):
            if part_label == kept_label:
                continue
            out.splits.append(_split(primary, set(part), [m.id for m in group], pairs, refusal))
    return out


def _refusals(clusters: Clusters) -> dict[tuple[int, int], str]:
    return {(min(link.a, link.b), max(link.a, link.b)): why for link, why in clusters.refused}


def _split(
    primary: int, leaving: set[int], group: list[int], pairs: dict[tuple[int, int], Pair], refusal: dict[tuple[int, int], str]
) -> SplitProposal:
    crossing = _crossing(leaving, group, pairs)
    kept = tuple(i for i in group if i not in leaving)
    if crossing:
        best = max(crossing, key=lambda p: (round(p.weight, 6), -p.a, -p.b))
        inner, outer = (best.a, best.b) if best.a in leaving else (best.b, best.a)
        why = refusal.get((best.a, best.b), "below threshold")
        return SplitProposal(primary, inner, outer, kept, tuple(sorted(leaving)), best, why, len(crossing))
    # nothing across the cut was scored: the part is held only by history (a merge the model never sees)
    inner = min(leaving)
    return SplitProposal(primary, inner, kept[0], kept, tuple(sorted(leaving)), None, "not scored", 0)


def _crossing(leaving: set[int], group: list[int], pairs: dict[tuple[int, int], Pair]) -> list[Pair]:
    found = []
    members = set(group)
    for i in leaving:
        for j in members - leaving:
            pair = pairs.get((min(i, j), max(i, j)))
            if pair is not None:
                found.append(pair)
    return found


__all__ = ["Pair", "MergeProposal", "SplitProposal", "Diff", "diff"]
