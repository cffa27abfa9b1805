"""What the decided audit sample says about the live service: the precision of
automatic links, the share of close non-links that were true matches (missed
matches near the lower threshold), and the share of pairs a shared-identifier guard held
apart while the model scored them below the lower threshold that were true matches
(matches those holds miss, now that such pairs reach people only through this sample),
each with a 95% interval.

The estimator. Item ``i`` was drawn with probability ``pi_i`` (its stratum's rate), so
``w_i = 1/pi_i`` decided items stand for it. The share of a kind that is a true match is
the Hajek (ratio Horvitz-Thompson) estimate ``p = sum(w_i y_i) / sum(w_i)`` over the
decided items, ``y_i`` 1 for a confirmation. Its interval is Wilson's score interval
evaluated at Kish's effective sample size ``n_eff = (sum w)^2 / sum(w^2)``: with one
stratum it is exactly Wilson's interval, and unequal weights shrink ``n_eff`` the way
they inflate the estimator's variance. Wilson (not the normal approximation) because
precision sits near 1, where the normal interval spills over 1 and under-covers with few
items; the coverage is checked by simulation in tests/test_audit_estimates.py.

Assumption, stated where the numbers are shown: decided items are a random subset of the
drawn ones (reviewers do not skip audit items for what they show; blind mode hides their
kind). Superseded items (a contact erased, or the groups of a close non-link joined by
other means) are left out.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..engine.audit_sampling import HELD, LINK, NEAR
from ..store import Store
from ..store.audit import audit_tally

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    """A weighted share with its interval; ``None`` values when nothing was decided."""

    decided: int
    pending: int
    share: float | None
    low: float | None
    high: float | None
    effective_n: float

    def as_json(self) -> dict[str, Any]:
        return {
            "decided": self.decided,
            "pending": self.pending,
            "estimate": self.share,
            "interval95": None if self.low is None else [self.low, self.high],
            "effectiveSampleSize": self.effective_n,
        }


def wilson_interval(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval of a proportion ``p`` seen over ``n`` (possibly effective) trials."""
    if n <= 0:
        return 0.0, 1.0
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - spread), min(1.0, centre + spread)


def weighted_share(items: Iterable[tuple[bool, float]], pending: int = 0, z: float = Z95) -> Estimate:
    """The Hajek estimate and its Wilson interval at Kish's effective size, from
    (outcome, inclusion probability) of each decided item."""
    total = squares = hits = 0.0
    decided = 0
    for outcome, probability in items:
        if not 0 < probability <= 1:
            raise ValueError(f"an inclusion probability must be in (0, 1], not {probability}")
        w = 1.0 / probability
        decided += 1
        total += w
        squares += w * w
        hits += w if outcome else 0.0
    if decided == 0:
        return Estimate(0, pending, None, None, None, 0.0)
    share = hits / total
    n_eff = total * total / squares
    low, high = wilson_interval(share, n_eff, z)
    return Estimate(decided, pending, share, low, high, n_eff)


def _estimate(tally: list[tuple[str, str, float | None, int]], kind: str) -> Estimate:
    items: list[tuple[bool, float]] = []
    pending = 0
    for audit, status, probability, count in tally:
        if audit != kind:
            continue
        if status == "pending":
            pending += count
        elif status in ("confirmed", "rejected"):
            items += [(status == "confirmed", probability if probability else 1.0)] * count
    return weighted_share(items, pending)


@dataclass(frozen=True)
class AuditReport:
    """Live precision of automatic links; the shares of close non-links and of guard-held
    clear non-links that match."""

    link_precision: Estimate
    near_match_rate: Estimate
    held_match_rate: Estimate
    rejected_links: int

    def as_json(self) -> dict[str, Any]:
        return {
            "automaticLinkPrecision": self.link_precision.as_json(),
            "closeNonLinkMatchRate": self.near_match_rate.as_json(),
            "heldNonLinkMatchRate": self.held_match_rate.as_json(),
            "rejectedAutomaticLinks": self.rejected_links,
            "method": "Hajek weighted share (weights 1/inclusion probability), Wilson 95% interval at Kish's effective sample size",
        }


def audit_report(store: Store) -> AuditReport:
    """The estimates from every decided audit item in the store."""
    tally = audit_tally(store)
    rejected = sum(count for audit, status, _, count in tally if audit == LINK and status == "rejected")
    return AuditReport(_estimate(tally, LINK), _estimate(tally, NEAR), _estimate(tally, HELD), rejected)


__all__ = ["Estimate", "AuditReport", "audit_report", "weighted_share", "wilson_interval"]
