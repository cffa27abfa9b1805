"""The probabilistic stage: score a new contact against near-miss candidates from other
groups with the active Splink model, then link, propose a review, or do nothing.

Runs inside the same write transaction as the exact stage, right after it created a
contact, so the answer the client gets already reflects the decision.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..scoring.features import stored_features
from ..store import ContactRow, ContactTx
from ..store.candidates import fetch_candidates
from ..store.pending import cannot_link_pairs, open_pending_merge
from . import audit_sampling
from .audit_sampling import AuditPlan
from .exact import PairOpinion, age_key, primary_of
from .guards import Guards

MAX_REVIEWS_PER_CONTACT = 3
CANDIDATE_LOCK_TIMEOUT_MS = 200

_KEY_SOURCES = {
    "emailMailbox": "email",
    "emailLocal": "email",
    "phoneNational": "phoneNumber",
    "phoneTail": "phoneNumber",
    "nameKey": "name",
}


class ScoredPair(Protocol):
    match_weight: float
    match_probability: float

    @property
    def evidence(self) -> list[dict[str, Any]]: ...


class Scorer(Protocol):
    version: str

    def score_many(self, record: dict, candidates: list[dict]) -> list[ScoredPair]: ...


@dataclass(frozen=True)
class Thresholds:
    upper: float
    lower: float


@dataclass
class ProbabilisticOutcome:
    primary_id: int
    linked_to: int | None = None
    score: float | None = None
    demoted: list[int] = field(default_factory=list)
    relinked: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    best: dict | None = None


def _blocking_keys(row: ContactRow, guards: Guards) -> dict[str, str]:
    """The row's blocking keys, minus those derived from placeholders and role mailboxes."""
    keys = {}
    for column, source in _KEY_SOURCES.items():
        value = getattr(row, column)
        if value and not (source != "name" and guards.unlinkable(source, getattr(row, source))):
            keys[column] = value
    return keys


def contact_features(row: ContactRow) -> dict[str, str | None]:
    """The compared columns of a stored contact, from its stored keys (no phone parsed)."""
    return stored_features(
        row.email,
        row.phoneNumber,
        row.name,
        email_mailbox=row.emailMailbox,
        email_local=row.emailLocal,
        phone_national=row.phoneNational,
        phone_tail=row.phoneTail,
        name_key=row.nameKey,
    )


def _evidence(row: ContactRow, candidate: ContactRow, scored: ScoredPair, version: str) -> dict:
    return {
        "contactId": row.id,
        "candidateId": candidate.id,
        "modelVersion": version,
        "matchWeight": scored.match_weight,
        "matchProbability": scored.match_probability,
        "comparisons": scored.evidence,
    }


def link_probabilistic(
    tx: ContactTx,
    row: ContactRow,
    primary_id: int,
    *,
    scorer: Scorer,
    guards: Guards,
    thresholds: Thresholds,
    per_key: int,
    cause: str,
    audit: AuditPlan | None = None,
) -> ProbabilisticOutcome:
    """Score ``row`` (now in group ``primary_id``) against candidates and act on the scores.

    With an ``audit`` plan, an automatic link, or the best group scored just below the
    lower threshold, may also become an audit item (:mod:`reconcile.engine.audit_sampling`).
    """
    outcome = ProbabilisticOutcome(primary_id=primary_id)
    candidates = fetch_candidates(tx, _blocking_keys(row, guards), primary_id, per_key)
    if not candidates:
        return outcome
    scores = scorer.score_many(contact_features(row), [contact_features(c) for c in candidates])

    best: dict[int, tuple[ScoredPair, ContactRow]] = {}
    for candidate, scored in zip(candidates, scores):
        group = primary_of(candidate)
        if group not in best or scored.match_probability > best[group][0].match_probability:
            best[group] = (scored, candidate)
    ranked = sorted(best.items(), key=lambda item: -item[1][0].match_probability)
    top_scored, top_candidate = ranked[0][1]
    outcome.best = _evidence(row, top_candidate, top_scored, scorer.version)

    reviews: list[tuple[int, ScoredPair, ContactRow, str, str | None, str | None]] = []
    for rank, (group, (scored, candidate)) in enumerate(ranked):
        if scored.match_probability < thresholds.lower:
            if audit is not None:
                _audit_near(tx, audit, outcome.primary_id, group, row, candidate, scored, scorer.version, thresholds)
            break
        if rank == 0 and scored.match_probability >= thresholds.upper:
            block = _auto_link_block(tx, outcome.primary_id, group, guards)
            if block is None:
                evidence = _evidence(row, candidate, scored, scorer.version)
                chance = audit_sampling.link_probability(audit, scored.match_weight, thresholds.upper) if audit else 0.0
                sides = None
                if audit is not None and audit_sampling.drawn(audit, row.id, candidate.id, chance):
                    sides = (outcome.primary_id, group, _member_ids(tx, outcome.primary_id), _member_ids(tx, group))
                _merge(tx, outcome, group, evidence, cause)
                if sides is not None:
                    _audit_link(tx, sides, row, candidate, scored, evidence, chance)
                continue
            reviews.append((group, scored, candidate, *block))
            continue
        reviews.append((group, scored, candidate, "score", None, None))

    # a reviewer already rejected joining these groups (their primaries have changed since,
    # so the pair is new to the queue): the model being unsure does not reopen the question
    uncertain = [group for group, _, _, reason, _, _ in reviews if reason == "score"]
    if uncertain:
        rejected = cannot_link_pairs(tx, [outcome.primary_id, *uncertain])
        reviews = [
            review for review in reviews
            if review[3] != "score" or tuple(sorted((outcome.primary_id, review[0]))) not in rejected
        ]
    for group, scored, candidate, reason, guard, why in reviews[:MAX_REVIEWS_PER_CONTACT]:
        if group == outcome.primary_id:
            continue
        evidence = _evidence(row, candidate, scored, scorer.version)
        if guard:
            evidence["guard"] = guard
        if why:
            evidence["reason"] = why
        pending_id = open_pending_merge(
            tx,
            outcome.primary_id,
            group,
            reason=reason,
            guard=guard,
            contact_id=row.id,
            candidate_id=candidate.id,
            score=scored.match_probability,
            match_weight=scored.match_weight,
            model_version=scorer.version,
            evidence=evidence,
        )
        if pending_id is not None:
            outcome.pending.append(pending_id)
    return outcome


def judge_held_pair(
    tx: ContactTx,
    contact_id: int,
    candidate_id: int,
    *,
    scorer: Scorer,
    thresholds: Thresholds,
    audit: AuditPlan | None,
) -> PairOpinion:
    """The model's opinion of a pair a guard held apart (:data:`reconcile.engine.exact.Screen`):
    its score and evidence, which a reviewer sees beside the guard's reason and can sort
    by, and for a pair below the lower threshold the audit sample's draw (``held_rate``)."""
    rows = {r.id: r for r in tx.contacts({contact_id, candidate_id})}
    row, candidate = rows[contact_id], rows[candidate_id]
    (scored,) = scorer.score_many(contact_features(row), [contact_features(candidate)])
    below = scored.match_probability < thresholds.lower
    chance = audit.held_rate if audit is not None and below else 0.0
    return PairOpinion(
        score=scored.match_probability,
        match_weight=scored.match_weight,
        model_version=scorer.version,
        evidence=_evidence(row, candidate, scored, scorer.version),
        clear_non_match=below,
        chance=chance,
        drawn=audit is not None and audit_sampling.drawn(audit, contact_id, candidate_id, chance),
    )


def _member_ids(tx: ContactTx, primary_id: int) -> list[int]:
    return [m.id for m in tx.group_members([primary_id])]


def _audit_link(
    tx: ContactTx,
    sides: tuple[int, int, list[int], list[int]],
    row: ContactRow,
    candidate: ContactRow,
    scored: ScoredPair,
    evidence: dict,
    chance: float,
) -> None:
    """Put an automatic link just made in the queue as an audit item. Its pair of groups
    is the two groups as they were before the link (both sides' members are kept in the
    evidence, ``auditSides``), so a reviewer judges what the model joined."""
    first, second, first_ids, second_ids = sides
    left, right = (first_ids, second_ids) if first < second else (second_ids, first_ids)
    open_pending_merge(
        tx,
        first,
        second,
        reason="score",
        contact_id=row.id,
        candidate_id=candidate.id,
        score=scored.match_probability,
        match_weight=scored.match_weight,
        model_version=evidence["modelVersion"],
        evidence={**evidence, "auditSides": {"left": left, "right": right}},
        audit=audit_sampling.LINK,
        inclusion_probability=chance,
    )


def _audit_near(
    tx: ContactTx,
    audit: AuditPlan,
    primary_id: int,
    group: int,
    row: ContactRow,
    candidate: ContactRow,
    scored: ScoredPair,
    version: str,
    thresholds: Thresholds,
) -> None:
    """The best group scored below the lower threshold: an audit item when it is close
    and drawn. It is decided as any review (confirm merges, reject is a cannot-link)."""
    chance = audit_sampling.near_probability(audit, scored.match_weight, thresholds.lower)
    if group == primary_id or not audit_sampling.drawn(audit, row.id, candidate.id, chance):
        return
    open_pending_merge(
        tx,
        primary_id,
        group,
        reason="score",
        contact_id=row.id,
        candidate_id=candidate.id,
        score=scored.match_probability,
        match_weight=scored.match_weight,
        model_version=version,
        evidence=_evidence(row, candidate, scored, version),
        audit=audit_sampling.NEAR,
        inclusion_probability=chance,
    )


def _auto_link_block(tx: ContactTx, primary_id: int, group: int, guards: Guards) -> tuple[str, str, str] | None:
    """(reason, guard, why with its numbers) when an automatic link must become a review instead."""
    if cannot_link_pairs(tx, [primary_id, group]):
        return "conflict", "cannot-link", "a reviewer rejected joining these groups before"
    sizes = tx.group_sizes([primary_id, group])
    block = guards.merge_block([sizes.get(primary_id, 1), sizes.get(group, 1)])
    return ("guard", *block) if block else None


def _merge(tx: ContactTx, outcome: ProbabilisticOutcome, group: int, evidence: dict, cause: str) -> None:
    """Merge under the older primary; the audit records the scored pair (contact ids),
    the model version and each comparison's weight, so the link can be explained later."""
    tx.bound_lock_waits(CANDIDATE_LOCK_TIMEOUT_MS)
    primaries = sorted(tx.lock_primaries([outcome.primary_id, group]), key=age_key)
    winner, loser = primaries
    changed = tx.merge_groups(
        winner,
        [loser],
        method="probabilistic",
        cause=cause,
        score=evidence["matchProbability"],
        model=evidence["modelVersion"],
        detail=evidence,
    )
    outcome.primary_id = winner.id
    outcome.linked_to = group
    outcome.score = evidence["matchProbability"]
    outcome.demoted.append(loser.id)
    outcome.relinked.extend(i for i in changed if i != loser.id)
