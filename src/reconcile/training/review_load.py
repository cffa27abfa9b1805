"""What a model would cost reviewers on the live table: the pending merges it would
decide, and the review items the table's records would have opened under it, arriving in
order (:func:`candidate_pairs`, :func:`review_load`). A retrained model's lower threshold
is raised until that load is no more than the active model's on the same records."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..engine.probabilistic import MAX_REVIEWS_PER_CONTACT
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


@dataclass(frozen=True)
class ArrivalPairs:
    """Scored pairs by arriving record (:func:`candidate_pairs`)."""

    records: int  # arriving records the pairs stand for
    pairs: list[tuple[dict, dict]]  # (earlier, arriving) feature records
    arrival: list[int]  # the arriving record of each pair
    group: list[int]  # the exact group of the earlier record: what the pair is scored as
    held: list[bool]  # shares an email or phone across live groups: a guard held it apart


def _exact_groups(rows: Sequence[base_train.Row]) -> list[int]:
    """Each record's exact group: records of one live group joined by a shared email or phone."""
    return base_train.joined_by_keys(
        [[(r.person, kind, value) for kind, value in (("email", r.email), ("phone", r.phone)) if value] for r in rows]
    )


def _share_identifier(a: base_train.Row, b: base_train.Row) -> bool:
    return bool((a.email and a.email == b.email) or (a.phone and a.phone == b.phone))


def candidate_pairs(rows: Sequence[base_train.Row], per_key: int, max_pairs: int = LOAD_MAX_PAIRS) -> ArrivalPairs:
    """The pairs the probabilistic stage would have scored had the table arrived in its
    order: each record against the earlier records sharing a blocking key (at most
    ``per_key`` per key, the newest, as candidate retrieval caps them), except those of
    its own EXACT group, which the exact stage joined before any model looked.

    Why not only pairs of different live groups (the former estimate): a pair the active
    model linked is in one live group now, yet a candidate that links less would put it
    before a reviewer; leaving such pairs out hid most of a stricter model's band (the
    learning loop measured 26-28 items per 1,000 events where the estimate kept the load
    at the shipped model's 17-20). An exact group is a live group cut down to the records
    a shared email or phone joins; a pair sharing an identifier across exact groups is in
    two live groups, one a guard held apart (``held``). Deterministically thinned, by
    arriving record, to about ``max_pairs`` pairs."""
    feats = [features(r.email, r.phone, r.name) for r in rows]
    exact = _exact_groups(rows)
    buckets: dict[tuple[str, str], list[int]] = {}
    found: list[tuple[int, int]] = []
    for i, f in enumerate(feats):
        partners: set[int] = set()
        for key in model_spec.BLOCKING_KEYS:
            if f.get(key):
                members = buckets.setdefault((key, f[key]), [])
                partners.update(j for j in members[-per_key:] if exact[j] != exact[i])
                members.append(i)
        found.extend((j, i) for j in sorted(partners))
    step = max(1, math.ceil(len(found) / max_pairs))
    kept = [(j, i) for j, i in found if i % step == 0]
    return ArrivalPairs(
        records=len(range(0, len(rows), step)),
        pairs=[(feats[j], feats[i]) for j, i in kept],
        arrival=[i for _, i in kept],
        group=[exact[j] for j, _ in kept],
        held=[_share_identifier(rows[j], rows[i]) for j, i in kept],
    )


def _best_per_group(pairs: ArrivalPairs, probabilities: Sequence[float]) -> list[tuple[int, bool, float]]:
    """(arriving record, held, best probability) per arriving record and exact group: the
    engine decides on each group's best-scored member."""
    best: dict[tuple[int, int, bool], float] = {}
    for arrival, group, held, p in zip(pairs.arrival, pairs.group, pairs.held, probabilities):
        key = (arrival, group, held)
        if p > best.get(key, -1.0):
            best[key] = p
    return [(arrival, held, p) for (arrival, _, held), p in best.items()]


def review_load(pairs: ArrivalPairs, probabilities: Sequence[float], upper: float, lower: float) -> int:
    """Review items the arriving records would open: a group scored in ``[lower, upper)``,
    or held by a guard and scored at or above ``lower`` (held pairs below it stand
    without a person), at most ``MAX_REVIEWS_PER_CONTACT`` per record."""
    return _load(_best_per_group(pairs, probabilities), upper, lower)


def _load(best: Sequence[tuple[int, bool, float]], upper: float, lower: float) -> int:
    per_record: dict[int, int] = {}
    for arrival, held, p in best:
        if p >= lower and (held or p < upper):
            per_record[arrival] = per_record.get(arrival, 0) + 1
    return sum(min(n, MAX_REVIEWS_PER_CONTACT) for n in per_record.values())


def load_floor(pairs: ArrivalPairs, probabilities: Sequence[float], budget: int) -> Callable[[float], float]:
    """``upper -> the lowest lower threshold`` whose review load (:func:`review_load`) is
    at most ``budget`` (the load only falls as the lower threshold rises)."""
    best = _best_per_group(pairs, probabilities)
    values = sorted({p for _, _, p in best})

    def floor(upper: float) -> float:
        if _load(best, upper, 0.0) <= budget:
            return 0.0
        lo, hi = 0, len(values) - 1  # just above values[hi] nothing is left: within budget
        while lo < hi:
            mid = (lo + hi) // 2
            if _load(best, upper, math.nextafter(values[mid], math.inf)) <= budget:
                hi = mid
            else:
                lo = mid + 1
        return math.nextafter(values[lo], math.inf)

    return floor
