"""Scoring done before the write lock, so the lock is held for less.

SQLite has one writer at a time across every worker process, and a request that creates
a contact holds that turn through the whole write path, the probabilistic stage's
scoring included (bench/README.md, "What a write request holds the writer turn for").
A score is a pure function of the two records' compared values and the model snapshot,
which the request fixes before it starts. So, on the same connection and before it
queues for the lock, the request reads the candidates a snapshot shows now and scores
them (:func:`prescore`); under the lock the stage reads its candidates again, as they
are then, and :class:`ScoreMemo` scores only the pairs it has not seen. The same values
give the same score, so every decision is the one the locked read alone would make; what
the snapshot read can do is save work, never add or drop a candidate.
"""
from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

from ..normalize import Identity
from ..store import ContactTx
from ..store.candidates import fetch_candidates
from .guards import Guards
from .probabilistic import ScoredPair, Scorer, blocking_keys, contact_features

#: no group has this primary id (ids start at 1): the snapshot read excludes no group,
#: as the request's own group is not known before the locked exact stage decides it
NO_GROUP = 0

Record = dict[str, str | None]


def _record_key(record: Record) -> tuple:
    """Every (column, value) of a record, in its order: records built by
    :func:`~reconcile.engine.probabilistic.contact_features` list their columns in one
    order, and two orders of the same values would only miss the memo, never mismatch."""
    return tuple(record.items())


class ScoreMemo:
    """A :class:`~reconcile.engine.probabilistic.Scorer` for one request that remembers
    every pair it scored, by the compared values of both records (every key of each
    record, so a record's own term-frequency values are part of it)."""

    def __init__(self, scorer: Scorer):
        self.scorer = scorer
        self.version = scorer.version
        self._scored: dict[tuple[tuple, tuple], ScoredPair] = {}

    def __len__(self) -> int:
        """How many distinct pairs it has scored."""
        return len(self._scored)

    def score_many(self, record: Record, candidates: Sequence[Record]) -> list[ScoredPair]:
        """The scores of ``record`` against each candidate: remembered ones as they were,
        the others from the model in one call."""
        own = _record_key(record)
        keys = [(own, _record_key(c)) for c in candidates]
        unseen: dict[tuple[tuple, tuple], Record] = {}
        for key, candidate in zip(keys, candidates):
            if key not in self._scored:
                unseen.setdefault(key, candidate)
        if unseen:
            scored = self.scorer.score_many(record, list(unseen.values()))
            self._scored.update(zip(unseen, scored))
        return [self._scored[key] for key in keys]


def prescore(tx: ContactTx, identity: Identity, memo: ScoreMemo, *, guards: Guards, per_key: int) -> None:
    """Score the contact ``identity`` would create against the candidates a snapshot read
    finds now (run outside any transaction, before the write lock). The contact gets
    exactly these columns (:meth:`ContactTx.insert_contact`), so its record is the one the
    locked stage scores; it has no id or group yet, so no group is excluded, and a member
    of the group it will join is scored in vain (the locked read leaves it out)."""
    row = SimpleNamespace(email=identity.email, phoneNumber=identity.phone, name=identity.name, **identity.keys)
    candidates = fetch_candidates(tx, blocking_keys(row, guards), NO_GROUP, per_key)
    if candidates:
        memo.score_many(contact_features(row), [contact_features(c) for c in candidates])
