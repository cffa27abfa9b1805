"""The random audit sample: which automatic links and which close non-links go to the
review queue besides the uncertain band, and with what chance.

Why: reviewers otherwise only ever see pairs the active model put between its
thresholds, a sample selected by the model's own score. Nothing then says how often an
automatic link is wrong or how many true matches fall just under the lower threshold,
and labels from the band alone bias retraining. A small random sample of both, each item
carrying the chance it had of being drawn (its inclusion probability), turns decided
items into unbiased (Horvitz-Thompson) estimates and lets retraining weight every label
by the inverse of that chance (:mod:`reconcile.review.audit_estimates`,
:mod:`reconcile.training.weighted`).

Stratified by match weight: the stratum next to a threshold is sampled at the configured
rate, and each stratum further away (``STRATUM_BITS`` wide) at half the rate of the one
before, down to ``LINK_STRATA``/``NEAR_STRATA`` strata; pairs far from the thresholds are
almost never wrong (links) or right (non-links), so most of the sample goes where errors
are. A close non-link is one whose match weight is within ``audit_near_bits`` below the
lower threshold's.

Held non-links: a pair a shared-identifier guard kept apart (a family phone, a borrowed
email) that the model scores below the lower threshold is not a question for a person
(the guard and the model agree: no link), so it goes to the queue only as an audit item,
at ``audit_held_rate`` (one stratum: the guard, not the score, put it here), and the
decided sample estimates how many true matches such holds keep apart.

Sized to a budget, not to a share of links. The sample exists for its intervals, and an
interval's width follows the number of decided items (Wilson's 95% interval around a
precision of 0.9 is 0.24 wide at 25 items, 0.12 at 100, 0.06 at 400), not the share of links
drawn; every item is also a decision a reviewer makes instead of one from the uncertain band.
So the rates are chosen for the load they put on the queue, in items per 1,000 events:
each rate times the pairs of its stratum. On the tuning streams (bench/README.md,
``learning_loop`` and ``queue_mix``) the shipped model makes about 40 automatic links, 59
close non-links and 22 guard-held clear non-links per 1,000 events; with the strata halving,
the defaults (links 0.1, close non-links 0.01, held 0.02) draw about 2, 0.55 and 0.45 of
them: about 3 audit items per 1,000 events (3-6 with models fitted to the contact table),
against 6.7 at the former 0.2, 0.03 and 0.05, which were 40-58% of the learning loop's
queue. An operator with a different budget scales the rates: items per 1,000 events grow in
proportion to each rate. Halving per stratum is close to Neyman's allocation for the link
precision (rates in proportion to each stratum's standard deviation, 1 : 0.43 : 0.21 on
the tuning streams).

The draw is a hash of (seed, contact, candidate) compared with the probability: the same
pair is drawn the same way in every worker and on a retried transaction, the draw cannot
depend on whether the pair truly matches (the ids do not), and a seeded run is
reproducible.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

LINK = "link"
NEAR = "near"
HELD = "held"
STRATUM_BITS = 4.0
LINK_STRATA = 3


@dataclass(frozen=True)
class AuditPlan:
    """Sampling rates (per stratum next to a threshold) and the draw's seed."""

    link_rate: float
    near_rate: float
    near_bits: float
    seed: str
    held_rate: float = 0.0

    @property
    def enabled(self) -> bool:
        return self.link_rate > 0 or self.near_rate > 0 or self.held_rate > 0


def weight_of(probability: float) -> float:
    """A match probability as a match weight in bits (log2 of the odds)."""
    if probability <= 0:
        return -math.inf
    if probability >= 1:
        return math.inf
    return math.log2(probability / (1 - probability))


def link_probability(plan: AuditPlan, match_weight: float, upper: float) -> float:
    """The chance an automatic link of this weight is audited (0 when auditing is off)."""
    distance = max(0.0, match_weight - weight_of(upper))
    stratum = min(int(distance // STRATUM_BITS), LINK_STRATA - 1) if math.isfinite(distance) else LINK_STRATA - 1
    return plan.link_rate / 2**stratum


def near_probability(plan: AuditPlan, match_weight: float, lower: float) -> float:
    """The chance a non-link of this weight is audited: 0 unless it lies within
    ``near_bits`` below the lower threshold's weight."""
    distance = weight_of(lower) - match_weight
    if not 0 < distance <= plan.near_bits or plan.near_rate <= 0:
        return 0.0
    return plan.near_rate / 2 ** int((distance - 1e-12) // STRATUM_BITS)


def drawn(plan: AuditPlan, contact_id: int, candidate_id: int, probability: float) -> bool:
    """Whether the pair is in the sample, for a pair whose chance is ``probability``."""
    if probability <= 0:
        return False
    digest = hashlib.sha256(f"{plan.seed}\x1f{contact_id}\x1f{candidate_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < probability
