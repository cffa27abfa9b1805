"""Warm start: the ACTIVE model's parameters, updated only where reviewers' labels give
evidence.

Why not re-estimate: the labels are the pairs the active model scored between its
thresholds (plus guard items), a sample selected by the model's own score. Counting
levels among confirmed pairs (Splink's pairwise-label estimation) is biased by that
selection: exact identifiers look rare among matches because the exact stage already
linked those pairs. A CONDITIONAL model, P(match | levels), is not biased by a
selection that depends only on the levels; so the update is fitted as one.

The model: each level's m becomes ``m'_k = m_k 2^{a_k} / sum_l m_l 2^{a_l}`` (a
comparison's m still sums to 1, u and the TF tables are untouched, so every TF
adjustment keeps its meaning) and the prior's log-odds moves by ``b`` bits. A pair's new
match weight is then its active weight plus ``b + sum_j log2(m'_j / m_j)`` at the levels
it falls in. ``a`` and ``b`` maximise the labels' log-likelihood (logistic, the match
weight as the logit in bits) minus ``strength / 2 * (|a|^2 + b^2)``: a Gaussian prior
centred on the active model, ``strength`` per squared bit. With no labels the optimum is
``a = b = 0``: the active model exactly. ``strength`` is chosen by cross-validation over
the training labels (:func:`choose_strength`) when there are enough of them.

Fitting is damped Gauss-Newton with a backtracking line search on a few dozen
parameters, in pure Python (no numpy dependency).
"""
from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..scoring.scorer import Scorer

LN2 = math.log(2.0)
#: candidate strengths for cross-validation (per squared bit)
STRENGTHS: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
DEFAULT_STRENGTH = 3.0
CV_FOLDS = 5
#: cross-validate only with at least this many labels of each outcome
CV_MIN_PER_CLASS = 20
MAX_ITERATIONS = 100
TOLERANCE = 1e-7


@dataclass(frozen=True, slots=True)
class PairLevels:
    """One labelled pair under the active model: its match weight (prior, levels and TF
    adjustments, in bits) and, per comparison, the index of its level among that
    comparison's non-null levels (None: the null level)."""

    weight: float
    levels: tuple[int | None, ...]


@dataclass
class Fit:
    shifts: list[list[float]]  # a per comparison, per non-null level (bits)
    prior_shift: float  # b (bits)
    strength: float
    iterations: int
    objective: float


def level_m(settings: dict) -> list[list[float]]:
    """Each comparison's non-null levels' m, in order."""
    return [
        [float(lv["m_probability"]) for lv in c["comparison_levels"] if not lv.get("is_null_level")]
        for c in settings["comparisons"]
    ]


def pair_levels(scorer: Scorer, left: dict, right: dict) -> PairLevels:
    """The active model's view of one pair (see :class:`PairLevels`)."""
    result = scorer.score(left, right)
    levels = []
    for comparison, evidence in zip(scorer.comparisons, result.evidence):
        gamma = evidence["gamma"]
        non_null = sum(1 for lv in comparison.levels if lv.gamma >= 0)
        # Splink numbers non-null levels from n-1 (the first) down to 0 (ELSE)
        levels.append(None if gamma < 0 else non_null - 1 - gamma)
    return PairLevels(result.match_weight, tuple(levels))


def _deltas(m: Sequence[Sequence[float]], shifts: Sequence[Sequence[float]]) -> tuple[list[list[float]], list[list[float]]]:
    """Per level ``log2(m'/m)`` and the new m."""
    deltas, new_m = [], []
    for mj, aj in zip(m, shifts):
        if not any(aj):  # untouched: the active values exactly
            deltas.append([0.0] * len(mj))
            new_m.append(list(mj))
            continue
        z = sum(mk * 2.0**ak for mk, ak in zip(mj, aj))
        new_m.append([mk * 2.0**ak / z for mk, ak in zip(mj, aj)])
        deltas.append([ak - math.log2(z) for ak in aj])
    return deltas, new_m


def new_weight(item: PairLevels, deltas: Sequence[Sequence[float]], prior_shift: float) -> float:
    return item.weight + prior_shift + sum(deltas[j][k] for j, k in enumerate(item.levels) if k is not None)


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def log_likelihood(items: Sequence[PairLevels], truth: Sequence[bool], deltas, prior_shift: float) -> float:
    total = 0.0
    for item, y in zip(items, truth):
        x = new_weight(item, deltas, prior_shift) * LN2
        total += _log_sigmoid(x) if y else _log_sigmoid(-x)
    return total


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (the matrix is positive definite)."""
    n = len(vector)
    a = [row[:] + [v] for row, v in zip(matrix, vector)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(col + 1, n):
            f = a[r][col] / a[col][col]
            if f:
                for c in range(col, n + 1):
                    a[r][c] -= f * a[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (a[r][n] - sum(a[r][c] * x[c] for c in range(r + 1, n))) / a[r][r]
    return x


def _unpack(m: Sequence[Sequence[float]], index: Sequence[tuple[int, int]], t: Sequence[float]) -> tuple[list[list[float]], float]:
    """The parameter vector as per-level shifts (``index`` orders them) and the prior shift (last)."""
    shifts = [[0.0] * len(mj) for mj in m]
    for (j, k), v in zip(index, t):
        shifts[j][k] = v
    return shifts, t[-1]


def _add_pair(
    grad: list[float],
    hess: list[list[float]],
    levels: Sequence[int | None],
    index: Sequence[tuple[int, int]],
    new_m: Sequence[Sequence[float]],
    prior: float,
    g: float,
    h: float,
) -> None:
    """Add one pair's gradient ``g * row`` and Hessian ``h * row rowᵀ`` terms, where ``row``
    is d(match weight)/d(parameters): indicator of its level minus the new m, per level,
    and ``prior`` for the prior shift. Only the non-zero entries are visited."""
    row = [0.0] * len(grad)
    for pos, (j, k) in enumerate(index):
        level = levels[j]
        if level is not None:
            row[pos] = (1.0 if level == k else 0.0) - new_m[j][k]
    row[-1] = prior
    nz = [(r, v) for r, v in enumerate(row) if v]
    for r, v in nz:
        grad[r] += g * v
        hr = hess[r]
        for c, w in nz:
            hr[c] += h * v * w


def fit(m: Sequence[Sequence[float]], items: Sequence[PairLevels], truth: Sequence[bool], strength: float) -> Fit:
    """The penalised maximum-likelihood shifts (see the module doc)."""
    if strength <= 0:
        raise ValueError("strength must be positive")
    index = [(j, k) for j, mj in enumerate(m) for k in range(len(mj))]
    n = len(index) + 1  # + the prior shift
    theta = [0.0] * n

    def objective(t: Sequence[float]) -> float:
        shifts, b = _unpack(m, index, t)
        return log_likelihood(items, truth, _deltas(m, shifts)[0], b) - strength / 2 * sum(v * v for v in t)

    current = objective(theta)
    iterations = 0
    for iterations in range(1, MAX_ITERATIONS + 1):
        shifts, b = _unpack(m, index, theta)
        deltas, new_m = _deltas(m, shifts)
        grad = [-strength * v for v in theta]
        hess = [[strength if r == c else 0.0 for c in range(n)] for r in range(n)]
        for item, y in zip(items, truth):
            p = _sigmoid(new_weight(item, deltas, b) * LN2)
            _add_pair(grad, hess, item.levels, index, new_m, 1.0, (y - p) * LN2, p * (1 - p) * LN2 * LN2)
        step = _solve(hess, grad)
        if max(abs(s) for s in step) < TOLERANCE:
            break
        t = 1.0
        while t > 1e-8:
            trial = [v + t * s for v, s in zip(theta, step)]
            value = objective(trial)
            if value >= current:
                break
            t /= 2
        else:
            break
        improvement = value - current
        theta, current = trial, value
        if improvement < TOLERANCE:
            break
    shifts, b = _unpack(m, index, theta)
    return Fit(shifts, b, strength, iterations, current)


def _fold(key: str, folds: int) -> int:
    return int.from_bytes(hashlib.sha256(("fold\x1f" + key).encode("utf-8")).digest()[:8], "big") % folds


def choose_strength(
    m: Sequence[Sequence[float]],
    items: Sequence[PairLevels],
    truth: Sequence[bool],
    keys: Sequence[str],
    strengths: Sequence[float] = STRENGTHS,
    folds: int = CV_FOLDS,
) -> tuple[float, dict[str, Any]]:
    """The strength with the best cross-validated log-likelihood (folds by a hash of each
    pair's ``keys`` entry, so deterministic); ``DEFAULT_STRENGTH`` when a class has
    fewer than ``CV_MIN_PER_CLASS`` labels. Also the per-strength scores."""
    positives = sum(truth)
    if min(positives, len(truth) - positives) < CV_MIN_PER_CLASS:
        return DEFAULT_STRENGTH, {"basis": f"fewer than {CV_MIN_PER_CLASS} labels of a class: default strength"}
    fold_of = [_fold(k, folds) for k in keys]
    scores: dict[str, float] = {}
    for strength in strengths:
        total = 0.0
        for f in range(folds):
            train_idx = [i for i, x in enumerate(fold_of) if x != f]
            test_idx = [i for i, x in enumerate(fold_of) if x == f]
            result = fit(m, [items[i] for i in train_idx], [truth[i] for i in train_idx], strength)
            deltas = _deltas(m, result.shifts)[0]
            total += log_likelihood([items[i] for i in test_idx], [truth[i] for i in test_idx], deltas, result.prior_shift)
        scores[str(strength)] = total / len(truth)
    best = max(strengths, key=lambda s: scores[str(s)])
    return best, {"basis": f"{folds}-fold cross-validated log-likelihood per label", "per_strength": scores}


def apply(settings: dict, result: Fit) -> dict:
    """A copy of the active ``settings`` with the fitted m and prior."""
    out = copy.deepcopy(settings)
    new_m = _deltas(level_m(settings), result.shifts)[1]
    for comparison, mj in zip(out["comparisons"], new_m):
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        for level, value in zip(levels, mj):
            level["m_probability"] = value
    if result.prior_shift:
        prior = settings["probability_two_random_records_match"]
        odds = prior / (1 - prior) * 2.0**result.prior_shift
        out["probability_two_random_records_match"] = odds / (1 + odds)
    return out
