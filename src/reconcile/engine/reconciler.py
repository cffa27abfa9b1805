"""The identify pipeline, independent of HTTP: normalise, the exact stage, then the
probabilistic stage for every contact the exact stage created, all in one transaction.
The web layer and ``reconcile evaluate`` both call :meth:`Reconciler.identify`."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from ..config import Settings
from ..normalize import Identity, parse_identity
from ..store import ContactTx, Store
from .active_model import ModelManager
from .exact import ExactOutcome, contact_payload, fast_lookup, link_exact
from .guards import Guards
from .probabilistic import Scorer, Thresholds, link_probabilistic, score_reviews

log = logging.getLogger(__name__)


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

    @property
    def scorer(self) -> Scorer | None:
        return self.models.current().scorer

    @property
    def thresholds(self) -> Thresholds:
        return self.models.current().thresholds

    def parse(self, payload: object) -> Identity:
        """Validate a decoded request body (raises :class:`reconcile.normalize.InvalidInput`)."""
        return parse_identity(payload, self.settings.default_region)

    def identify(self, identity: Identity, request_id: str | None = None) -> IdentifyResult:
        request_id = request_id or uuid.uuid4().hex
        with self.store.read() as tx:
            fast = fast_lookup(tx, identity, self.guards)
        if fast is not None:
            return self._result(fast, request_id, fast.method, {})
        cause = f"identify:{request_id}"
        model = self.models.current()  # one snapshot for the whole request, retries included
        scorer = model.scorer

        def work(tx: ContactTx) -> tuple[ExactOutcome, str, dict]:
            exact = link_exact(tx, identity, cause, self.guards)
            method, extra = exact.method, {}
            if scorer is not None and exact.pending:
                score_reviews(tx, exact.pending, scorer)
            if scorer is None or not exact.created:
                return exact, method, extra
            stage = link_probabilistic(
                tx,
                exact.created[0],
                exact.primary_id,
                scorer=scorer,
                guards=self.guards,
                thresholds=model.thresholds,
                per_key=self.settings.candidates_per_key,
                cause=cause,
            )
            exact.pending.extend(stage.pending)
            exact.demoted.extend(stage.demoted)
            exact.relinked.extend(stage.relinked)
            extra["modelVersion"] = scorer.version
            if stage.best is not None:
                extra["score"] = stage.best["matchProbability"]
                extra["candidateId"] = stage.best["candidateId"]
            if stage.linked_to is not None:
                method = "probabilistic"
                exact.primary_id = stage.primary_id
                exact.members = tx.group_members([stage.primary_id])
            return exact, method, extra

        outcome, method, extra = self.store.write(work, lock_keys=_lock_keys(identity))
        return self._result(outcome, request_id, method, extra)

    @staticmethod
    def _result(outcome: ExactOutcome, request_id: str, method: str, extra: dict) -> IdentifyResult:
        match = {
            "method": method,
            "requestId": request_id,
            "createdContactIds": [r.id for r in outcome.created],
            "demotedContactIds": sorted(outcome.demoted),
            "relinkedContactIds": sorted(outcome.relinked),
            "pendingMergeIds": outcome.pending,
            "guards": [h.as_json() for h in outcome.holds],
            **extra,
        }
        return IdentifyResult(contact=contact_payload(outcome.primary_id, outcome.members), match=match)


def _lock_keys(identity: Identity) -> list[str]:
    keys = []
    if identity.email is not None:
        keys.append(f"email:{identity.email}")
    if identity.phone is not None:
        keys.append(f"phone:{identity.phone}")
    return keys
