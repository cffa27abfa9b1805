"""Retraining from every label, weighted by 1 / inclusion probability: the fit recovers a
known model from a sample drawn with known, score-dependent chances; the Beta prior
keeps a level with one label near the active model; no labels give the active model."""
from __future__ import annotations

import itertools
import json
import math
import random

import pytest

from reconcile.config import Settings
from reconcile.training import warm_start, weighted
from reconcile.training.thresholds import choose_thresholds
from reconcile.training.warm_start import PairLevels

U = [[0.001, 0.01, 0.989], [0.002, 0.03, 0.968], [0.01, 0.05, 0.94]]
TRUE_M = [[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.6, 0.25, 0.15]]
ACTIVE_M = [[0.5, 0.3, 0.2], [0.7, 0.2, 0.1], [0.4, 0.4, 0.2]]


def _weight(m, prior, levels):
    return math.log2(prior / (1 - prior)) + sum(math.log2(m[j][k] / U[j][k]) for j, k in enumerate(levels))


def _draw(rng, probs):
    x, acc = rng.random(), 0.0
    for k, p in enumerate(probs):
        acc += p
        if x < acc:
            return k
    return len(probs) - 1


def _population(rng, n, true_prior):
    out = []
    for _ in range(n):
        y = rng.random() < true_prior
        levels = tuple(_draw(rng, (TRUE_M if y else U)[j]) for j in range(3))
        out.append((levels, y))
    return out


def test_weighted_labels_from_a_score_dependent_sample_recover_the_true_model():
    """Pairs drawn from a known model; the band of the (wrong) active model is labelled in
    full, everything else audited at 25% and weighted 4. The fitted model gives every
    combination of levels the true match probability (what decisions use), where the
    active model was far off. m itself is pinned down only where u is not tiny: where u
    is tiny, the match probability is near 1 for a wide range of m."""
    rng = random.Random(5)
    true_prior, active_prior = 0.05, 0.1
    population = _population(rng, 80_000, true_prior)
    items, truth, weights = [], [], []
    for levels, y in population:
        w = _weight(ACTIVE_M, active_prior, levels)
        chance = 1.0 if -3 <= w <= 6 else 0.25  # the band in full, the rest audited at 25%
        if rng.random() < chance:
            items.append(PairLevels(w, levels))
            truth.append(y)
            weights.append(1 / chance)
    fitted = weighted.fit(ACTIVE_M, items, truth, weights, pseudo_pairs=1.0)
    deltas = warm_start._deltas(ACTIVE_M, fitted.shifts)[0]
    worst_active = worst_fitted = 0.0
    for levels in itertools.product(range(3), repeat=3):
        active_w = _weight(ACTIVE_M, active_prior, levels)
        true_p = 1 / (1 + 2 ** -_weight(TRUE_M, true_prior, levels))
        fitted_p = 1 / (1 + 2 ** -warm_start.new_weight(PairLevels(active_w, levels), deltas, fitted.prior_shift))
        worst_active = max(worst_active, abs(1 / (1 + 2**-active_w) - true_p))
        worst_fitted = max(worst_fitted, abs(fitted_p - true_p))
    assert worst_active > 0.3
    assert worst_fitted < 0.1  # the rarest combinations are seen a few times only
    new_m = warm_start._deltas(ACTIVE_M, fitted.shifts)[1]
    assert new_m[0] == pytest.approx(TRUE_M[0], abs=0.05)  # the first comparison's u is not tiny everywhere


def test_a_level_with_one_label_stays_near_the_active_model():
    item = PairLevels(0.0, (0, None, None))  # the active model says 50/50 for this pair
    strong = weighted.fit(ACTIVE_M, [item], [True], [1.0])
    moved = warm_start._deltas(ACTIVE_M, strong.shifts)[0][0][0] + strong.prior_shift
    assert 0 < moved < 0.2  # one pair against 20 pseudo-pairs: a fraction of a bit
    weak = weighted.fit(ACTIVE_M, [item], [True], [1.0], pseudo_pairs=0.5)
    assert warm_start._deltas(ACTIVE_M, weak.shifts)[0][0][0] + weak.prior_shift > 3 * moved


def test_an_audit_label_counts_as_the_pairs_it_stands_for():
    item = PairLevels(0.0, (1, None, None))
    once = weighted.fit(ACTIVE_M, [item], [False], [1.0])
    fifty = weighted.fit(ACTIVE_M, [item], [False], [50.0])
    def level_bits(f):
        return warm_start._deltas(ACTIVE_M, f.shifts)[0][0][1] + f.prior_shift
    assert level_bits(fifty) < level_bits(once) < 0


def test_no_labels_give_the_active_model_back():
    active = json.loads(open(Settings().model_path).read())
    m = warm_start.level_m(active)
    fitted = weighted.fit(m, [], [], [])
    assert warm_start.apply(active, fitted) == active


def test_weighted_thresholds_use_the_effective_sample_size():
    # 40 correct links seen once each reach a 0.9 target's Wilson bound; the same share
    # carried by 2 labels of weight 20 (an audit sample) does not
    scores = [0.999] * 40
    chosen = choose_thresholds(scores, [True] * 40, 0.9, z=1.645, weights=[1.0] * 40)
    assert chosen["upper"] == 0.999
    sparse = choose_thresholds([0.999, 0.999], [True, True], 0.9, z=1.645, fallback_upper=0.9995, weights=[20.0, 20.0])
    assert sparse["upper"] == 0.9995
