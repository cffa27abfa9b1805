"""Thresholds from labelled scores: the upper cut whose precision (and its one-sided
Wilson lower bound) reaches the target all the way up, the lower cut that keeps most
confirmed pairs, raised when that would open more review items than the budget allows. Used by :mod:`reconcile.training.retrain`."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from . import label_metrics
from .label_metrics import decision_metrics

TARGET_PRECISION = 0.99
LOWER_RECALL = 0.99
#: one-sided 95% Wilson bound on the precision the upper threshold must reach
CONFIDENCE_Z = 1.645


def wilson_lower(successes: int, n: int, z: float) -> float:
    """Wilson score lower bound of a proportion (the point estimate when ``z`` is 0)."""
    if n == 0:
        return 0.0
    p = successes / n
    if z <= 0:
        return p
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return (centre - spread) / (1 + z2 / n)


def choose_thresholds(
    scores: Sequence[float],
    is_match: Sequence[bool],
    target_precision: float = TARGET_PRECISION,
    lower_recall: float = LOWER_RECALL,
    *,
    z: float = 0.0,
    fallback_upper: float | None = None,
    lower_floor: Callable[[float], float] | None = None,
    weights: Sequence[float] | None = None,
    floor_precision: float | None = None,
) -> dict[str, Any]:
    """Upper and lower thresholds from labelled scores (see the module doc).

    ``z`` > 0 asks the upper cut's Wilson lower bound of precision (not just its point
    estimate) to reach the target; when no cut qualifies, ``fallback_upper`` (the active
    model's) is kept rather than guessed. ``lower_floor(upper)``, when given, is the
    lowest lower threshold that keeps the review load within budget; when that is above
    ``upper`` (guard-held pairs alone exceed the budget), the upper rises to it too
    (``natural_upper``, ``natural_lower``: the cuts the labels alone chose). ``weights`` (1 /
    inclusion probability per label) make every share a weighted one, its Wilson bound
    taken at Kish's effective sample size (:func:`label_metrics.weighted_cuts`).
    ``floor_precision``, when given and no cut reaches the target, picks the cut with
    the best F1 among those whose precision is at least that (the active model's on the
    same labels): a model whose scores moved is not held to a cut that meant something
    else on the old scale, and is not made worse than what it replaces.
    """
    ranked = sorted(zip(scores, is_match), key=lambda t: -t[0])
    matches = sum(is_match)
    non_matches = len(ranked) - matches
    if not ranked:
        upper = 1.0 if fallback_upper is None else fallback_upper
        return {"upper": upper, "lower": upper, "basis": "no labels: the active model's upper, nothing else decided"}
    # precision of score >= t at each distinct score, highest first
    if weights is None:
        cuts = [(t, tp, n, n) for t, tp, n in label_metrics.cuts(scores, is_match)]
    else:
        cuts = label_metrics.weighted_cuts(scores, is_match, weights)
    upper = None
    for t, tp_t, n_t, eff in cuts:  # descending t: stop at the first cut whose precision fails
        if tp_t / n_t < target_precision:
            break
        if wilson_lower(tp_t / n_t * eff, eff, z) >= target_precision:
            upper = t
    confidence = f" (Wilson lower bound, z={z:g})" if z > 0 else ""
    total_matches = cuts[-1][1] if cuts else 0.0
    if upper is not None:
        upper_basis = f"lowest score whose every higher cut has precision >= {target_precision}{confidence}"
    elif floor_precision is not None and total_matches and any(tp / n >= floor_precision for _, tp, n, _ in cuts):
        upper = max((2 * tp / (n + total_matches), t) for t, tp, n, _ in cuts if tp / n >= floor_precision)[1]
        upper_basis = (
            f"no cut reaches precision {target_precision}{confidence}: the best F1 among cuts with precision at "
            f"least the active model's on the same labels ({floor_precision:.4f})"
        )
    elif fallback_upper is not None:
        rejected_above = [s for s, m in ranked if not m and s >= fallback_upper]
        if all(tp_t / n_t >= target_precision for t, tp_t, n_t, _ in cuts if t >= fallback_upper):
            upper = fallback_upper
            upper_basis = f"no cut reaches precision {target_precision}{confidence}: the active model's upper threshold"
        else:
            upper = min(1.0, math.nextafter(max(rejected_above), math.inf))
            upper_basis = (
                f"no cut reaches precision {target_precision}{confidence} and the active model's upper does not either: "
                "just above the highest-scored rejected pair"
            )
    else:
        top_rejected = max(s for s, m in ranked if not m)
        upper = min(1.0, math.nextafter(top_rejected, math.inf))
        upper_basis = f"no cut reaches precision {target_precision}: just above the highest-scored rejected pair"
    match_scores = sorted(
        ((s, 1.0 if weights is None else w) for s, m, w in zip(scores, is_match, weights or scores) if m), reverse=True
    )
    if match_scores:
        needed = lower_recall * sum(w for _, w in match_scores)
        kept = 0.0
        for lower, w in match_scores:
            kept += w
            if kept >= needed - 1e-9:
                break
        lower_basis = f"highest score keeping {lower_recall:.0%} of confirmed pairs at or above it" + (
            " (weighted)" if weights is not None else ""
        )
    else:
        lower = upper
        lower_basis = "no confirmed pairs: lower = upper"
    natural_upper, natural_lower = upper, min(lower, upper)
    if lower_floor is not None:
        floor = lower_floor(upper)
        if floor > upper:
            # guard-held pairs are items whenever they score at or above lower, whatever the
            # upper: past the upper the budget can only be kept by raising both
            floor = min(floor, 1.0)
            upper_basis += f"; raised from {upper:.6g} with the lower threshold to keep the review load within budget"
            upper = floor
        if floor > lower:
            lower = floor
            lower_basis = (
                f"raised from {natural_lower:.6g}: the review load within budget (the active model's, "
                "estimated on the contact table's records in arrival order)"
            )
    lower = min(lower, upper)
    return {
        "upper": upper,
        "lower": lower,
        "natural_upper": natural_upper,
        "natural_lower": natural_lower,
        "target_precision": target_precision,
        "lower_recall": lower_recall,
        "confidence_z": z,
        "basis": {"upper": upper_basis, "lower": lower_basis},
        **decision_metrics(scores, is_match, upper, lower, weights),
        "labels": {"pairs": len(ranked), "confirmed": matches, "rejected": non_matches},
    }

