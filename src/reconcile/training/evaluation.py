"""Clustering accuracy against ground truth: pairwise and B-cubed scores, and the two
failure modes the product exists to fix (over-merged groups, split persons).

Pure functions, no database. Everything is computed from the contingency table of
(cluster, person) counts, so a million items cost a million dictionary updates, never
the n^2 pairs: the pairs two items share are C(n, 2) per cell, per cluster, per person.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from dataclasses import asdict, dataclass


def pairs(n: int) -> int:
    """C(n, 2): the pairs among ``n`` items."""
    return n * (n - 1) // 2


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


@dataclass(frozen=True)
class ClusterMetrics:
    """Scores of a predicted clustering against the true one.

    Conventions for degenerate inputs: with no predicted pairs, pairwise precision is 1
    (nothing was wrongly joined); with no true pairs, pairwise recall is 1.
    """

    items: int
    persons: int
    clusters: int
    true_positive_pairs: int
    predicted_pairs: int
    true_pairs: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    #: clusters that hold more than one person
    overmerged_clusters: int
    #: persons whose items are spread over more than one cluster
    split_persons: int
    largest_cluster: int
    largest_cluster_persons: int

    def as_dict(self) -> dict:
        return asdict(self)


def cluster_metrics(labelled: Iterable[tuple[Hashable, Hashable]]) -> ClusterMetrics:
    """Score ``(true person, predicted cluster)`` pairs, one per item (event or contact)."""
    cells: Counter = Counter((cluster, person) for person, cluster in labelled)
    cluster_size: Counter = Counter()
    person_size: Counter = Counter()
    persons_in_cluster: Counter = Counter()
    clusters_of_person: Counter = Counter()
    for (cluster, person), n in cells.items():
        cluster_size[cluster] += n
        person_size[person] += n
        persons_in_cluster[cluster] += 1
        clusters_of_person[person] += 1
    items = sum(cluster_size.values())

    tp = sum(pairs(n) for n in cells.values())
    predicted = sum(pairs(n) for n in cluster_size.values())
    true = sum(pairs(n) for n in person_size.values())
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0

    # B-cubed: each item's precision is the share of its cluster that is its person,
    # its recall the share of its person that is in its cluster; a cell of n items
    # contributes n of each.
    if items:
        b_precision = sum(n * n / cluster_size[c] for (c, _), n in cells.items()) / items
        b_recall = sum(n * n / person_size[p] for (_, p), n in cells.items()) / items
    else:
        b_precision = b_recall = 1.0

    largest = max(cluster_size, key=lambda c: (cluster_size[c], persons_in_cluster[c]), default=None)
    return ClusterMetrics(
        items=items,
        persons=len(person_size),
        clusters=len(cluster_size),
        true_positive_pairs=tp,
        predicted_pairs=predicted,
        true_pairs=true,
        pairwise_precision=precision,
        pairwise_recall=recall,
        pairwise_f1=_f1(precision, recall),
        bcubed_precision=b_precision,
        bcubed_recall=b_recall,
        bcubed_f1=_f1(b_precision, b_recall),
        overmerged_clusters=sum(1 for n in persons_in_cluster.values() if n > 1),
        split_persons=sum(1 for n in clusters_of_person.values() if n > 1),
        largest_cluster=cluster_size[largest] if largest is not None else 0,
        largest_cluster_persons=persons_in_cluster[largest] if largest is not None else 0,
    )
