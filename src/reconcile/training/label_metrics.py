"""How a model decides labelled pairs: precision, recall and F1 at its thresholds, the
precision-recall curve and threshold-free ranking metrics (average precision, ROC AUC).
Both the new and the active model are evaluated with these on the held-out labels."""
from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from ..review.labels import LabelPair
from ..scoring.scorer import Scorer

PR_POINTS = 200
#: paired bootstrap resamples behind an F1 difference's interval (seeded: the same labels
#: always give the same interval)
BOOTSTRAP_RESAMPLES = 1000
#: two-sided coverage of that interval; its lower end is a one-sided 95% bound
BOOTSTRAP_CONFIDENCE = 0.90


def score_pairs(scorer: Scorer, pairs: Sequence[LabelPair]) -> list[float]:
    return [scorer.score(p.left.features(), p.right.features()).match_probability for p in pairs]


def _f1(p: float | None, r: float | None) -> float | None:
    if p is None or r is None:
        return None
    return 2 * p * r / (p + r) if p + r else 0.0


def _ratio(part: float, whole: float) -> float | None:
    """``part / whole``, None (not measurable) when ``whole`` is 0: a model that links
    nothing has no precision, a label set with no match gives no recall. Never 1.0 by
    convention: an evaluation over nothing must not look perfect."""
    return part / whole if whole else None


def decision_metrics(
    scores: Sequence[float], is_match: Sequence[bool], upper: float, lower: float, weights: Sequence[float] | None = None
) -> dict[str, Any]:
    """How thresholds decide labelled pairs: link (>= upper), review, drop (< lower).

    ``weights`` (1 / inclusion probability per label) count each label as the pairs it
    stands for, so the rates describe the population the labels were sampled from.
    Precision, recall and F1 are None when undefined, and ``not_measurable`` says why."""
    w = [1] * len(scores) if weights is None else list(weights)
    matches = sum(x for x, m in zip(w, is_match) if m)
    non_matches = sum(w) - matches
    linked_tp = sum(x for s, m, x in zip(scores, is_match, w) if s >= upper and m)
    linked_fp = sum(x for s, m, x in zip(scores, is_match, w) if s >= upper and not m)
    dropped_fn = sum(x for s, m, x in zip(scores, is_match, w) if s < lower and m)
    dropped_tn = sum(x for s, m, x in zip(scores, is_match, w) if s < lower and not m)
    kept_tp = matches - dropped_fn
    kept_fp = non_matches - dropped_tn
    precision = _ratio(linked_tp, linked_tp + linked_fp)
    recall = _ratio(linked_tp, matches)
    kept_precision = _ratio(kept_tp, kept_tp + kept_fp)
    kept_recall = _ratio(kept_tp, matches)
    why = []
    if not is_match:
        why.append("no labelled pairs")
    else:
        if linked_tp + linked_fp == 0:
            why.append("no pair scored at or above the upper threshold (precision undefined)")
        if matches == 0:
            why.append("no matching pair (recall undefined)")
    return {
        "pairs": len(is_match),
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "not_measurable": "; ".join(why) or None,
        "linked": linked_tp + linked_fp,
        "review": sum(w) - (linked_tp + linked_fp) - (dropped_fn + dropped_tn),
        "dropped": dropped_fn + dropped_tn,
        "false_match_rate": linked_fp / non_matches if non_matches else 0.0,
        "false_non_match_rate": dropped_fn / matches if matches else 0.0,
        "at_lower": {"precision": kept_precision, "recall": kept_recall, "f1": _f1(kept_precision, kept_recall)},
    }


def paired_f1_difference(
    candidate: tuple[Sequence[float], float],
    active: tuple[Sequence[float], float],
    is_match: Sequence[bool],
    weights: Sequence[float] | None = None,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = BOOTSTRAP_CONFIDENCE,
    seed: int = 0,
) -> dict[str, Any]:
    """How much better (or worse) the candidate's F1 is than the active model's on the
    same held-out labels, with a paired bootstrap interval.

    ``candidate`` and ``active`` are each (scores of the labelled pairs, upper threshold).
    On a few dozen labels two models' F1 differ by several points by chance, so a
    point comparison lets a worse model through (the learning loop saw it at 79 held-out
    pairs). Resampling the labels (the same draw for both models: the difference, not each
    F1, is what varies) gives the spread of the difference; the activation gate asks its
    lower end to rule out a loss beyond a small margin. ``weights`` count each label as
    the pairs it stands for, as in :func:`decision_metrics`. A resample in which a model
    links nothing counts its F1 as 0."""
    n = len(is_match)
    w = [1.0] * n if weights is None else [float(x) for x in weights]
    # per label: what it adds to each model's true and false links, and to the matches
    rows = [
        (
            x * (m and c >= candidate[1]),
            x * (not m and c >= candidate[1]),
            x * (m and a >= active[1]),
            x * (not m and a >= active[1]),
            x * m,
        )
        for m, c, a, x in zip(is_match, candidate[0], active[0], w)
    ]

    def difference(sample: Sequence[tuple[float, ...]]) -> float:
        tp_c, fp_c, tp_a, fp_a, matches = (sum(column) for column in zip(*sample)) if sample else (0.0,) * 5
        return _f1_of(tp_c, fp_c, matches) - _f1_of(tp_a, fp_a, matches)

    result: dict[str, Any] = {"pairs": n, "difference": difference(rows), "confidence": confidence, "resamples": resamples}
    if n == 0:
        return {**result, "lower": None, "upper": None}
    rng = random.Random(seed)
    spread = sorted(difference(rng.choices(rows, k=n)) for _ in range(resamples))
    tail = (1 - confidence) / 2
    return {**result, "lower": spread[int(tail * (resamples - 1))], "upper": spread[round((1 - tail) * (resamples - 1))]}


def _f1_of(tp: float, fp: float, matches: float) -> float:
    """F1 from counts (2TP / (TP + FP + matches)); 0 when the model links nothing and
    nothing matches."""
    denominator = tp + fp + matches
    return 2 * tp / denominator if denominator else 0.0


def cuts(scores: Sequence[float], is_match: Sequence[bool]) -> list[tuple[float, int, int]]:
    """``(t, true positives, pairs)`` of ``score >= t`` at each distinct score, highest
    first: the one pass both the precision-recall curve and the threshold choice need."""
    ranked = sorted(zip(scores, is_match), key=lambda t: -t[0])
    out: list[tuple[float, int, int]] = []
    tp = fp = 0
    i = 0
    while i < len(ranked):
        t = ranked[i][0]
        while i < len(ranked) and ranked[i][0] == t:
            tp += ranked[i][1]
            fp += not ranked[i][1]
            i += 1
        out.append((t, tp, tp + fp))
    return out


def weighted_cuts(
    scores: Sequence[float], is_match: Sequence[bool], weights: Sequence[float]
) -> list[tuple[float, float, float, float]]:
    """``(t, weighted true positives, weighted pairs, effective pairs)`` of ``score >= t``
    at each distinct score, highest first: :func:`cuts` for labels that stand for
    ``weight`` pairs each (1 / inclusion probability). The effective count is Kish's
    ``(sum w)^2 / sum w^2``, what an interval on a weighted share is computed at."""
    ranked = sorted(zip(scores, is_match, weights), key=lambda t: -t[0])
    out: list[tuple[float, float, float, float]] = []
    tp = total = squares = 0.0
    i = 0
    while i < len(ranked):
        t = ranked[i][0]
        while i < len(ranked) and ranked[i][0] == t:
            _, match, w = ranked[i]
            tp += w if match else 0.0
            total += w
            squares += w * w
            i += 1
        out.append((t, tp, total, total * total / squares))
    return out


def pr_curve(scores: Sequence[float], is_match: Sequence[bool], points: int = PR_POINTS) -> list[dict[str, float]]:
    """Precision and recall of ``score >= t`` at each distinct score (thinned to ``points``)."""
    matches = sum(is_match)
    out = [
        {"threshold": t, "precision": tp / n, "recall": tp / matches if matches else 1.0}
        for t, tp, n in cuts(scores, is_match)
    ]
    if len(out) > points:
        step = len(out) / points
        out = [out[int(k * step)] for k in range(points)] + [out[-1]]
    return out


def ranking_metrics(weights: Sequence[float], is_match: Sequence[bool]) -> dict[str, float | None]:
    """Threshold-free: average precision and ROC AUC of the match weight over labelled
    pairs (ties share their rank). None when a class is absent."""
    matches = sum(is_match)
    if matches == 0 or matches == len(is_match):
        return {"average_precision": None, "roc_auc": None}
    ranked = sorted(zip(weights, is_match), key=lambda t: -t[0])
    ap = 0.0
    tp = seen = 0
    i = 0
    while i < len(ranked):  # a group of tied weights enters at once
        j = i
        group_tp = 0
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            group_tp += ranked[j][1]
            j += 1
        tp += group_tp
        seen += j - i
        ap += group_tp / matches * (tp / seen)
        i = j
    # AUC by ranks (Mann-Whitney), ascending, midranks for ties
    ascending = sorted(zip(weights, is_match), key=lambda t: t[0])
    rank_sum = 0.0
    i = 0
    while i < len(ascending):
        j = i
        while j < len(ascending) and ascending[j][0] == ascending[i][0]:
            j += 1
        midrank = (i + 1 + j) / 2
        rank_sum += midrank * sum(1 for k in range(i, j) if ascending[k][1])
        i = j
    non_matches = len(is_match) - matches
    auc = (rank_sum - matches * (matches + 1) / 2) / (matches * non_matches)
    return {"average_precision": ap, "roc_auc": auc}

