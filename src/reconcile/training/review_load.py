"""What a model would cost reviewers on the live table: the pending merges it would
decide, and the candidate pairs (different live groups sharing a blocking key) it would
put between its thresholds. The lower threshold is capped by the active model's load."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from ..scoring import model_spec
from ..scoring.features import features
from ..scoring.scorer import Scorer
from . import train as base_train

#: candidate pairs scored to estimate review loads (sampled deterministically beyond)
LOAD_MAX_PAIRS = 150_000


def pending_pairs(store: Any) -> tuple[list[tuple[dict, dict]], int]:
    """Feature records of each pending scored pair; also how many pending items have no
    scored pair (guard items, decided by people whatever the model says)."""
    from ..store.reviews import pending_pair_records

    rows = pending_pair_records(store)
    pairs = [(features(r[0], r[1], r[2]), features(r[3], r[4], r[5])) for r in rows if r[6] is not None]
    return pairs, len(rows) - len(pairs)


def pending_decisions(scorer: Scorer, pairs: Sequence[tuple[dict, dict]], upper: float, lower: float) -> dict[str, int]:
    link = drop = 0
    for fa, fb in pairs:
        p = scorer.score(fa, fb).match_probability
        link += p >= upper
        drop += p < lower
    return {"link": link, "drop": drop, "review": len(pairs) - link - drop, "scored_pending": len(pairs)}


def live_rows(database_url: str, default_region: str = "US") -> tuple[list[base_train.Row], int]:
    """De-duplicated live contacts, each with its LIVE GROUP (``COALESCE(linkedId, id)``)
    as its cluster: the service's own grouping (exact links, confident probabilistic
    links, confirmed reviews; rejected pairs are kept apart by cannot-link). Never the
    stream's truth: the table has none."""
    from ..store.exports import live_contacts_with_group

    raw = [(email, phone, name, f"group{group}") for email, phone, name, group in live_contacts_with_group(database_url)]
    return base_train._dedupe(raw, default_region)


#: person proxies for u, TF tables and the prior (see :func:`clusters_of`)
PROXIES = ("live", "exact")


def clusters_of(rows: Sequence[base_train.Row], proxy: str) -> list[str]:
    """Person proxy for u, TF tables and the prior: ``live`` groups, or ``exact`` (records
    sharing an exact email or phone, :func:`reconcile.training.train.proxy_clusters`)."""
    if proxy == "live":
        return [r.person or f"row{i}" for i, r in enumerate(rows)]
    if proxy == "exact":
        return base_train.proxy_clusters(list(rows))
    raise ValueError(f"proxy must be one of {PROXIES}")


def candidate_pairs(rows: Sequence[base_train.Row], per_key: int, max_pairs: int = LOAD_MAX_PAIRS) -> list[tuple[dict, dict]]:
    """Pairs of records of DIFFERENT live groups sharing a blocking key, at most
    ``per_key`` partners per record and key (as candidate retrieval caps them): the kind
    of pair the probabilistic stage scores. Deterministically thinned to ``max_pairs``."""
    feats = [features(r.email, r.phone, r.name) for r in rows]
    buckets: dict[tuple[str, str], list[int]] = {}
    for i, f in enumerate(feats):
        for key in model_spec.BLOCKING_KEYS:
            if f.get(key):
                buckets.setdefault((key, f[key]), []).append(i)
    seen: set[tuple[int, int]] = set()
    for members in buckets.values():
        for pos, i in enumerate(members):
            partners = [j for j in members[max(0, pos - per_key) : pos] if rows[j].person != rows[i].person]
            seen.update((j, i) for j in partners)
    ordered = sorted(seen)
    if len(ordered) > max_pairs:
        step = len(ordered) / max_pairs
        ordered = [ordered[int(k * step)] for k in range(max_pairs)]
    return [(feats[i], feats[j]) for i, j in ordered]


def review_load(probabilities: Sequence[float], upper: float, lower: float) -> int:
    return sum(1 for p in probabilities if lower <= p < upper)


def load_floor(candidate_probabilities: Sequence[float], budget: int) -> Callable[[float], float]:
    """``upper -> the lowest lower threshold`` whose review load (candidate pairs scored
    in ``[lower, upper)``) is at most ``budget``."""
    ranked = sorted(candidate_probabilities, reverse=True)

    def floor(upper: float) -> float:
        inside = [p for p in ranked if p < upper]
        if len(inside) <= budget:
            return 0.0
        # the (budget+1)-th highest below upper must fall out: just above it
        return math.nextafter(inside[budget], math.inf)

    return floor

