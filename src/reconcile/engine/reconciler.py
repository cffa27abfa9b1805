"""The identify pipeline, independent of HTTP: normalise, the exact stage, then the
probabilistic stage for every contact the exact stage created, all in one transaction.
The web layer and ``reconcile evaluate`` both call :meth:`Reconciler.identify`."""
from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..config import Settings
from ..normalize import Identity, parse_identity
from ..store import ContactTx, Store, utcnow
from ..store.batch import BatchContactTx
from .active_model import ModelManager, ModelSnapshot
from .exact import ExactOutcome, contact_payload, fast_lookup, link_exact
from .guards import Guards
from .audit_sampling import AuditPlan
from .probabilistic import Scorer, Thresholds, judge_held_pair, link_probabilistic

log = logging.getLogger(__name__)


@dataclass
class ModelOpinion:
    """What the probabilistic stage adds to an answer. ``version`` is the model this
    request would score with, even when nothing was scored (None: exact-only service);
    ``score`` and ``candidate_id`` are the best pair it did score, if any."""

    version: str | None
    score: float | None = None
    candidate_id: int | None = None


@dataclass(frozen=True)
class Event:
    """One request of a batch (:meth:`Reconciler.identify_many`): what it brings, the id
    its audit rows name (cause ``<source>:<request_id>``), and when it happened (``None``:
    now, by the clock; else what it creates or re-links is stamped with this time)."""

    identity: Identity
    request_id: str
    at: datetime | None = None
    source: str = "identify"


@dataclass
class IdentifyResult:
    contact: dict
    match: dict

    def as_json(self) -> dict:
        return {"contact": self.contact, "match": self.match}


class Reconciler:
    """Answers "which customer is this?" against one store."""

    def __init__(self, store: Store, settings: Settings, scorer: Scorer | None = None):
        self.store = store
        self.settings = settings
        self.guards = Guards.from_settings(settings)
        # the active model from the registry, re-checked every RECONCILE_MODEL_POLL_SECONDS
        self.models = ModelManager(store, settings, scorer)
        plan = AuditPlan(
            settings.audit_link_rate, settings.audit_near_rate, settings.audit_near_bits, settings.audit_seed,
            settings.audit_held_rate,
        )
        self.audit = plan if plan.enabled else None

    @property
    def scorer(self) -> Scorer | None:
        return self.models.current().scorer

    @property
    def thresholds(self) -> Thresholds:
        return self.models.current().thresholds

    def parse(self, payload: object) -> Identity:
        """Validate a decoded request body (raises :class:`reconcile.normalize.InvalidInput`)."""
        return parse_identity(payload, self.settings.default_region)

    def identify(self, identity: Identity, request_id: str | None = None, *, at: datetime | None = None) -> IdentifyResult:
        """Answer one request; ``match.warnings`` says which values it could not read
        (an empty list when it read them all), on every path.

        ``at`` stamps what the request creates or re-links with a historical time instead
        of the clock (a replayed event; see :meth:`identify_many`)."""
        request_id = request_id or uuid.uuid4().hex
        model = self.models.current()  # one snapshot for the whole request, retries included

        def look_up(tx: ContactTx) -> IdentifyResult | None:
            fast = fast_lookup(tx, identity, self.guards)
            return None if fast is None else self._result(fast, request_id, fast.method, ModelOpinion(model.version))

        event = Event(identity, request_id, at)
        result = self.store.read_else_write(
            look_up, lambda tx: self._write_path(tx, event, model), lock_keys=_lock_keys(identity)
        )
        result.match["warnings"] = identity.warnings
        return result

    def identify_many(
        self,
        events: Sequence[Event],
        then: Callable[[ContactTx, list[IdentifyResult]], None] | None = None,
    ) -> list[IdentifyResult]:
        """Answer ``events`` in order in ONE write transaction, each decided exactly as
        :meth:`identify` decides it alone (the same read path, exact and probabilistic
        stages, guards and model), so the outcome equals answering them one by one; only
        the per-request transaction cost (lock, BEGIN, COMMIT) is paid once.

        ``then(tx, results)`` runs in the same transaction before it commits (a bulk
        import records its progress there, so the events and the progress commit
        together). Its :class:`BatchContactTx` skips the reads a request whose values
        nobody holds would find empty. The transaction takes the write lock (SQLite) or
        the advisory locks of every event's identifiers in one sorted order (PostgreSQL)
        up front, and is retried whole on a lost race; ``then`` must not keep state
        across attempts. One model snapshot serves the whole batch.
        """
        model = self.models.current()

        def work(tx: BatchContactTx) -> list[IdentifyResult]:
            tx.expect(event.identity for event in events)
            results = []
            for event in events:
                fast = fast_lookup(tx, event.identity, self.guards)
                if fast is not None:
                    result = self._result(fast, event.request_id, fast.method, ModelOpinion(model.version))
                else:
                    result = self._write_path(tx, event, model)
                result.match["warnings"] = event.identity.warnings
                results.append(result)
            tx.flush()
            if then is not None:
                then(tx, results)
            return results

        keys = sorted({key for event in events for key in _lock_keys(event.identity)})
        return self.store.write(work, lock_keys=keys, tx_type=BatchContactTx)

    def _write_path(self, tx: ContactTx, event: Event, model: ModelSnapshot) -> IdentifyResult:
        """Both stages for one request that the read path could not answer, in ``tx``."""
        identity = event.identity
        cause = f"{event.source}:{event.request_id}"
        tx.clock = utcnow if event.at is None else (lambda: event.at)
        scorer = model.scorer
        screen = None
        if scorer is not None:
            screen = functools.partial(
                judge_held_pair, tx, scorer=scorer, thresholds=model.thresholds, audit=self.audit
            )
        exact = link_exact(tx, identity, cause, self.guards, screen)
        method, opinion = exact.method, ModelOpinion(model.version)
        if scorer is not None and exact.created:
            stage = link_probabilistic(
                tx,
                exact.created[0],
                exact.primary_id,
                scorer=scorer,
                guards=self.guards,
                thresholds=model.thresholds,
                per_key=self.settings.candidates_per_key,
                cause=cause,
                audit=self.audit,
            )
            exact.pending.extend(stage.pending)
            exact.demoted.extend(stage.demoted)
            exact.relinked.extend(stage.relinked)
            if stage.best is not None:
                opinion.score = stage.best["matchProbability"]
                opinion.candidate_id = stage.best["candidateId"]
            if stage.linked_to is not None:
                method = "probabilistic"
                exact.primary_id = stage.primary_id
                exact.members = tx.group_members([stage.primary_id])
        return self._result(exact, event.request_id, method, opinion)

    @staticmethod
    def _result(outcome: ExactOutcome, request_id: str, method: str, opinion: ModelOpinion) -> IdentifyResult:
        """The answer's ``match``: each contact id in at most one of the three lists.

        The lists describe the request's net effect, as other clients see it after the
        commit: ``created`` are the rows it inserted (one inserted as a primary and then
        linked by the model within the same transaction was never a primary to anyone
        else, so it is not also "demoted"); ``demoted`` are primaries that existed before
        and are secondaries now; ``relinked`` are secondaries that existed before and
        point at another primary now (a primary demoted and then moved again by the
        model stays "demoted").
        """
        created = [r.id for r in outcome.created]
        demoted = sorted(set(outcome.demoted) - set(created))
        relinked = sorted(set(outcome.relinked) - set(created) - set(demoted))
        guards, omitted = outcome.guards_json()
        match = {
            "method": method,
            "requestId": request_id,
            "createdContactIds": created,
            "demotedContactIds": demoted,
            "relinkedContactIds": relinked,
            "pendingMergeIds": outcome.pending,
            "guards": guards,
            "guardsOmitted": omitted,
            "modelVersion": opinion.version,
            "score": opinion.score,
            "candidateId": opinion.candidate_id,
        }
        return IdentifyResult(contact=contact_payload(outcome.primary_id, outcome.members), match=match)


def _lock_keys(identity: Identity) -> list[str]:
    keys = []
    if identity.email is not None:
        keys.append(f"email:{identity.email}")
    if identity.phone is not None:
        keys.append(f"phone:{identity.phone}")
    return keys
