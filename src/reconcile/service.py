"""The identify pipeline, independent of HTTP: normalise, then the exact stage in one
transaction. The web layer and ``reconcile evaluate`` both call :meth:`Reconciler.identify`."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from .config import Settings
from .linking import ExactOutcome, contact_payload, fast_lookup, link_exact
from .normalize import Identity, parse_identity
from .store import ContactTx, Store


@dataclass
class IdentifyResult:
    contact: dict
    match: dict

    def as_json(self) -> dict:
        return {"contact": self.contact, "match": self.match}


class Reconciler:
    """Answers "which customer is this?" against one store."""

    def __init__(self, store: Store, settings: Settings):
        self.store = store
        self.settings = settings

    def parse(self, payload: object) -> Identity:
        """Validate a decoded request body (raises :class:`reconcile.normalize.InvalidInput`)."""
        return parse_identity(payload, self.settings.default_region)

    def identify(self, identity: Identity, request_id: str | None = None) -> IdentifyResult:
        request_id = request_id or uuid.uuid4().hex
        with self.store.read() as tx:
            outcome = fast_lookup(tx, identity)
        if outcome is None:
            cause = f"identify:{request_id}"

            def work(tx: ContactTx) -> ExactOutcome:
                return link_exact(tx, identity, cause)

            outcome = self.store.write(work, lock_keys=_lock_keys(identity))
        return IdentifyResult(
            contact=contact_payload(outcome.primary_id, outcome.members),
            match={
                "method": outcome.method,
                "requestId": request_id,
                "createdContactIds": [r.id for r in outcome.created],
                "demotedContactIds": outcome.demoted,
                "relinkedContactIds": outcome.relinked,
            },
        )


def _lock_keys(identity: Identity) -> list[str]:
    keys = []
    if identity.email is not None:
        keys.append(f"email:{identity.email}")
    if identity.phone is not None:
        keys.append(f"phone:{identity.phone}")
    return keys
