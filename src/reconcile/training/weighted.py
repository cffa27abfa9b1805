"""Retraining from every label, weighted: confirmed AND rejected decisions, each counted
``1 / inclusion probability`` times, update the active model's per-level evidence with a
Beta prior centred on the active model, so a level with few labels barely moves.

What the labels can estimate. Reviewed pairs are candidate pairs (they share a blocking
key) drawn from the uncertain band (every one) and from the audit sample (a known share),
so with their weights they stand for the candidate pairs scored from just below the
lower threshold upwards. Among such pairs the non-matches agree on far more than random
pairs do: their level shares are not the u of random pairs the model's prior is defined
against. What the labels do identify is each level's Bayes factor ``m/u`` in that
population (a selection on the score, itself a function of the levels, leaves
``P(match | levels)`` unbiased). So:

* u stays the active model's: Splink's estimate from random pairs with the exact-level
  fix (:mod:`reconcile.training.train`), which labels do not cover;
* each comparison's m becomes ``m'_k = m_k 2^{a_k} / sum_l m_l 2^{a_l}`` (still a
  distribution; the TF tables keep their meaning), the prior's log-odds moves by ``b``
  bits (the prior comes from the weighted sample: see below), and a pair's weight moves
  by ``b + sum_j log2(m'_j/m_j)`` at its levels, as in :mod:`reconcile.training.warm_start`;
* ``a`` and ``b`` maximise the weighted log-likelihood of the labels under ``P(match |
  levels)`` plus the log of a Beta prior per level and for the prior: for level ``k`` of
  comparison ``j``, Beta(``alpha q0``, ``alpha (1 - q0)``) on the share of matches among
  the labelled pairs at that level, ``q0`` the share the ACTIVE model expects there
  (its weighted mean match probability over those pairs; 1/2 for a level no label
  reaches). That prior is exactly ``alpha`` pseudo-pairs at the level whose outcome is
  ``q0``, so it is fitted as such: with no labels the optimum is the active model, one
  label moves a level by at most what one pair in ``alpha + 1`` can, and thousands of
  labels move it to what they say. The prior's shift ``b`` has the same prior, ``q0``
  being the active model's weighted mean over all labels.

The weights make the fit describe the population the labels stand for rather than the
band the reviewers mostly see: an audit item drawn with chance 1/50 counts as 50 pairs.
Fitting is Gauss-Newton with a line search, as in :mod:`reconcile.training.warm_start`
(a few dozen parameters, pure Python).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .warm_start import (
    LN2,
    PairLevels,
    _add_pair,
    _deltas,
    _log_sigmoid,
    _sigmoid,
    _solve,
    _unpack,
)

#: the Beta prior's strength: how many (weighted) pairs of the active model's opinion
#: stand at each level before any label
DEFAULT_PSEUDO_PAIRS = 20.0
MAX_ITERATIONS = 100
TOLERANCE = 1e-8
MAX_STEP_BITS = 4.0
RIDGE = 1e-6
#: shares the prior is centred on are kept this far from 0 and 1 (a level the active
#: model is certain about still moves when labels contradict it)
SHARE_FLOOR = 1e-4


@dataclass(frozen=True, slots=True)
class Item:
    """One fitted observation: the active model's weight (bits), its levels, how many
    pairs it stands for, its outcome (a share for a pseudo-pair), whether the prior's
    shift applies to it."""

    weight: float
    levels: tuple[int | None, ...]
    count: float
    outcome: float
    with_prior: bool = True


@dataclass
class WeightedFit:
    shifts: list[list[float]]
    prior_shift: float
    pseudo_pairs: float
    iterations: int
    objective: float
    levels: list[list[dict[str, float]]] = field(default_factory=list)


def _share(value: float) -> float:
    return min(1 - SHARE_FLOOR, max(SHARE_FLOOR, value))


def _logit2(q: float) -> float:
    return math.log2(q / (1 - q))


def prior_items(
    m: Sequence[Sequence[float]],
    labelled: Sequence[PairLevels],
    truth: Sequence[bool],
    weights: Sequence[float],
    pseudo_pairs: float,
) -> tuple[list[Item], list[list[dict[str, float]]]]:
    """The Beta priors as pseudo-pairs (see the module doc), and per level what the
    labels say: weighted pairs, weighted matches, the active model's expected share."""
    level_stats: list[list[dict[str, float]]] = [
        [{"pairs": 0.0, "matches": 0.0, "expected": 0.0} for _ in mj] for mj in m
    ]
    total = matches = expected = 0.0
    for item, y, w in zip(labelled, truth, weights):
        p = _sigmoid(item.weight * LN2)
        total += w
        matches += w * y
        expected += w * p
        for j, k in enumerate(item.levels):
            if k is not None:
                stats = level_stats[j][k]
                stats["pairs"] += w
                stats["matches"] += w * y
                stats["expected"] += w * p
    pseudo: list[Item] = []
    if pseudo_pairs <= 0:
        return pseudo, level_stats
    for j, mj in enumerate(m):
        for k in range(len(mj)):
            stats = level_stats[j][k]
            q0 = _share(stats["expected"] / stats["pairs"]) if stats["pairs"] else 0.5
            levels = tuple(k if jj == j else None for jj in range(len(m)))
            pseudo.append(Item(_logit2(q0), levels, pseudo_pairs, q0, with_prior=False))
    q0 = _share(expected / total) if total else 0.5
    pseudo.append(Item(_logit2(q0), tuple(None for _ in m), pseudo_pairs, q0, with_prior=True))
    return pseudo, level_stats


def _centred(theta: list[float], index: Sequence[tuple[int, int]], comparisons: int) -> list[float]:
    """The same model with each comparison's shifts moved to mean 0: ``m'`` depends only
    on their differences, and bounded shifts keep ``2**a`` finite."""
    sums = [0.0] * comparisons
    counts = [0] * comparisons
    for (j, _), v in zip(index, theta):
        sums[j] += v
        counts[j] += 1
    out = [v - sums[j] / counts[j] for (j, _), v in zip(index, theta)]
    return out + [theta[-1]]


def _z(item: Item, deltas: Sequence[Sequence[float]], prior_shift: float) -> float:
    shift = prior_shift if item.with_prior else 0.0
    return item.weight + shift + sum(deltas[j][k] for j, k in enumerate(item.levels) if k is not None)


def objective(items: Sequence[Item], deltas, prior_shift: float) -> float:
    total = 0.0
    for item in items:
        x = _z(item, deltas, prior_shift) * LN2
        total += item.count * (item.outcome * _log_sigmoid(x) + (1 - item.outcome) * _log_sigmoid(-x))
    return total


def fit(
    m: Sequence[Sequence[float]],
    labelled: Sequence[PairLevels],
    truth: Sequence[bool],
    weights: Sequence[float],
    pseudo_pairs: float = DEFAULT_PSEUDO_PAIRS,
) -> WeightedFit:
    """The posterior mode of the level shifts and the prior's shift (the module doc)."""
    if len(labelled) != len(truth) or len(truth) != len(weights):
        raise ValueError("labelled pairs, outcomes and weights must have the same length")
    if any(w <= 0 for w in weights):
        raise ValueError("every label's weight must be positive")
    pseudo, level_stats = prior_items(m, labelled, truth, weights, pseudo_pairs)
    items = [Item(p.weight, p.levels, w, 1.0 if y else 0.0) for p, y, w in zip(labelled, truth, weights)] + pseudo
    index = [(j, k) for j, mj in enumerate(m) for k in range(len(mj))]
    n = len(index) + 1
    theta = [0.0] * n

    def value(t: Sequence[float]) -> float:
        shifts, b = _unpack(m, index, t)
        return objective(items, _deltas(m, shifts)[0], b)

    current = value(theta)
    iterations = 0
    for iterations in range(1, MAX_ITERATIONS + 1):
        shifts, b = _unpack(m, index, theta)
        deltas, new_m = _deltas(m, shifts)
        grad = [0.0] * n
        # a small ridge: a comparison's shifts are defined up to a common constant
        hess = [[RIDGE if r == c else 0.0 for c in range(n)] for r in range(n)]
        for item in items:
            p = _sigmoid(_z(item, deltas, b) * LN2)
            _add_pair(
                grad, hess, item.levels, index, new_m, 1.0 if item.with_prior else 0.0,
                item.count * (item.outcome - p) * LN2, item.count * p * (1 - p) * LN2 * LN2,
            )
        step = _solve(hess, grad)
        largest = max(abs(s) for s in step)
        if largest < TOLERANCE:
            break
        # damped: at most MAX_STEP_BITS per parameter and iteration (labels of one class
        # only at a level, with large weights, would otherwise ask for a huge first step)
        t = min(1.0, MAX_STEP_BITS / largest)
        while t > 1e-8:
            trial = [v + t * s for v, s in zip(theta, step)]
            trial_value = value(trial)
            if trial_value >= current:
                break
            t /= 2
        else:
            break
        improvement = trial_value - current
        theta, current = _centred(trial, index, len(m)), trial_value
        if improvement < TOLERANCE:
            break
    shifts, b = _unpack(m, index, theta)
    return WeightedFit(shifts, b, pseudo_pairs, iterations, current, level_stats)


def summary(settings: dict, result: WeightedFit) -> list[dict[str, Any]]:
    """Per level: the weighted labels there, the active and the new m, the shift in bits."""
    out = []
    new_m = _deltas([[float(lv["m_probability"]) for lv in c["comparison_levels"] if not lv.get("is_null_level")]
                     for c in settings["comparisons"]], result.shifts)
    for c, deltas, mj, stats in zip(settings["comparisons"], new_m[0], new_m[1], result.levels):
        levels = [lv for lv in c["comparison_levels"] if not lv.get("is_null_level")]
        for lv, d, m_new, st in zip(levels, deltas, mj, stats):
            out.append(
                {
                    "comparison": c["output_column_name"],
                    "level": lv.get("label_for_charts"),
                    "weighted_pairs": st["pairs"],
                    "weighted_matches": st["matches"],
                    "active_expected_matches": st["expected"],
                    "m_active": float(lv["m_probability"]),
                    "m": m_new,
                    "bits": d,
                }
            )
    return out
