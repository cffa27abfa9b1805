"""Clustering metrics: hand-computed examples, and the contingency-table counts against
a brute-force walk over every pair."""
from __future__ import annotations

from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconcile.training.evaluation import cluster_metrics


def score(truth: list, predicted: list):
    return cluster_metrics(zip(truth, predicted))


def test_hand_computed_mixed_example():
    # persons a a a b b c in clusters 1 1 2 2 2 3
    m = score(list("aaabbc"), [1, 1, 2, 2, 2, 3])
    assert (m.true_positive_pairs, m.predicted_pairs, m.true_pairs) == (2, 4, 4)
    assert m.pairwise_precision == pytest.approx(0.5)
    assert m.pairwise_recall == pytest.approx(0.5)
    assert m.pairwise_f1 == pytest.approx(0.5)
    # B-cubed precision: (1 + 1 + 1/3 + 2/3 + 2/3 + 1) / 6 = 7/9; recall likewise 7/9
    assert m.bcubed_precision == pytest.approx(7 / 9)
    assert m.bcubed_recall == pytest.approx(7 / 9)
    assert m.bcubed_f1 == pytest.approx(7 / 9)
    assert (m.overmerged_clusters, m.split_persons) == (1, 1)
    assert (m.largest_cluster, m.largest_cluster_persons) == (3, 2)
    assert (m.items, m.persons, m.clusters) == (6, 3, 3)


def test_everything_in_one_cluster():
    m = score(list("aabb"), [7, 7, 7, 7])
    assert m.pairwise_precision == pytest.approx(2 / 6)
    assert m.pairwise_recall == 1.0
    assert m.pairwise_f1 == pytest.approx(0.5)
    assert m.bcubed_precision == pytest.approx(0.5)
    assert m.bcubed_recall == 1.0
    assert (m.overmerged_clusters, m.split_persons, m.largest_cluster, m.largest_cluster_persons) == (1, 0, 4, 2)


def test_all_singletons_have_no_predicted_pairs():
    m = score(list("aab"), [1, 2, 3])
    assert m.predicted_pairs == 0
    assert m.pairwise_precision == 1.0
    assert m.pairwise_recall == 0.0
    assert m.pairwise_f1 == 0.0
    assert m.bcubed_precision == 1.0
    assert m.bcubed_recall == pytest.approx((0.5 + 0.5 + 1) / 3)
    assert (m.overmerged_clusters, m.split_persons) == (0, 1)


def test_perfect_clustering_and_empty_input():
    m = score([1, 1, 2, 3, 3, 3], ["x", "x", "y", "z", "z", "z"])
    assert (m.pairwise_f1, m.bcubed_f1, m.overmerged_clusters, m.split_persons) == (1.0, 1.0, 0, 0)
    empty = score([], [])
    assert (empty.items, empty.pairwise_f1, empty.bcubed_f1, empty.largest_cluster) == (0, 1.0, 1.0, 0)


labels = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(labels)
def test_contingency_counts_match_brute_force_pairs(items):
    m = cluster_metrics(items)
    tp = predicted = true = 0
    for (p1, c1), (p2, c2) in combinations(items, 2):
        predicted += c1 == c2
        true += p1 == p2
        tp += c1 == c2 and p1 == p2
    assert (m.true_positive_pairs, m.predicted_pairs, m.true_pairs) == (tp, predicted, true)
    assert m.pairwise_precision == pytest.approx(tp / predicted if predicted else 1.0)
    assert m.pairwise_recall == pytest.approx(tp / true if true else 1.0)
    if items:
        b_p = sum(
            sum(1 for p2, c2 in items if c2 == c and p2 == p) / sum(1 for _, c2 in items if c2 == c) for p, c in items
        ) / len(items)
        b_r = sum(
            sum(1 for p2, c2 in items if c2 == c and p2 == p) / sum(1 for p2, _ in items if p2 == p) for p, c in items
        ) / len(items)
        assert m.bcubed_precision == pytest.approx(b_p)
        assert m.bcubed_recall == pytest.approx(b_r)
    assert m.overmerged_clusters == sum(1 for c in {c for _, c in items} if len({p for p, c2 in items if c2 == c}) > 1)
    assert m.split_persons == sum(1 for p in {p for p, _ in items} if len({c for p2, c in items if p2 == p}) > 1)
