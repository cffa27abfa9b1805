"""Erasure on request (the tombstone pattern): forget a customer without breaking anyone
else's history.

*The person* is the whole group of the contact named: a customer asking to be forgotten
is every contact the service has joined into them, so every member is tombstoned (its
values cleared, ``deletedAt`` set) and keeps its id, ``linkedId`` and precedence. No
live contact points at a tombstone (the whole group goes), so the invariants hold and
``reconcile check`` passes: tombstoned contacts are not live.

By email or phone, the person is the group holding that value. A value held by several
groups (guards kept them apart: a shared phone, a placeholder) names several people and
is refused: the caller erases by contact id instead. Nothing holding the value, or a
group already erased, is success with nothing left to erase (idempotent).

The erased values never match again: no live contact holds them, no guard record keeps
them, no label copies them; a customer who brings one anew is a new customer. Review
items and split proposals naming an erased contact are superseded (they ask about a
person who is gone), and reviewers' notes about them, on review items, split proposals
and detachments alike, are cleared: a note is free text and may quote the customer. The
audit log records that an erasure happened, when and on whose request (its cause), never
what was erased. The statements are in :mod:`reconcile.store.erasure`.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ..normalize import InvalidInput, normalize_email, normalize_phone
from ..store import Store, StaleGroup
from ..store import erasure as statements
from ..store import labels
from ..store.contacts import ContactTx, utcnow

MAX_ATTEMPTS = 8
SUPERSEDED_NOTE = "a contact in it was erased"


class ErasureError(Exception):
    """An erasure that was refused; nothing was changed."""

    code = "erasure_refused"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UnknownContact(ErasureError):
    code = "not_found"


class AmbiguousValue(ErasureError):
    """The value is held by more than one group: it names more than one person."""

    code = "ambiguous_value"


@dataclass(frozen=True)
class ErasureKey:
    """What the request names the person by: exactly one of the three."""

    email: str | None = None
    phone: str | None = None
    contact_id: int | None = None

    @classmethod
    def parse(cls, email: Any = None, phone: Any = None, contact_id: Any = None, default_region: str = "US") -> "ErasureKey":
        """Normalise the key as ``/identify`` does; raises :class:`InvalidInput`."""
        given = [name for name, v in (("email", email), ("phoneNumber", phone), ("contactId", contact_id)) if v is not None]
        if len(given) != 1:
            raise InvalidInput("body", "send exactly one of email, phoneNumber and contactId")
        if contact_id is not None:
            if isinstance(contact_id, bool) or not isinstance(contact_id, int) or contact_id < 1:
                raise InvalidInput("contactId", "contactId must be a positive integer")
            return cls(contact_id=contact_id)
        if email is not None:
            value = normalize_email(email)
            if value is None:
                raise InvalidInput("email", "email is empty")
            return cls(email=value)
        value = normalize_phone(phone, default_region)
        if value is None:
            raise InvalidInput("phoneNumber", "phoneNumber is empty")
        return cls(phone=value)

    @property
    def kind(self) -> str:
        return "contactId" if self.contact_id is not None else "email" if self.email is not None else "phoneNumber"


@dataclass
class ErasureResult:
    request_id: str
    by: str
    #: every contact of the person (already erased ones included), by id
    contact_ids: list[int] = field(default_factory=list)
    #: the contacts this request tombstoned (empty when repeated)
    erased_ids: list[int] = field(default_factory=list)
    superseded_review_ids: list[int] = field(default_factory=list)
    superseded_split_ids: list[int] = field(default_factory=list)
    deleted_label_count: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "requestId": self.request_id,
            "erasedBy": self.by,
            "contactIds": self.contact_ids,
            "erasedContactIds": self.erased_ids,
            "supersededReviewIds": self.superseded_review_ids,
            "supersededSplitIds": self.superseded_split_ids,
            "deletedLabelCount": self.deleted_label_count,
        }


def erase(store: Store, key: ErasureKey, *, by: str) -> ErasureResult:
    """Tombstone the person ``key`` names, in one transaction; see the module docstring.

    Raises :class:`UnknownContact` for a contact id that was never issued and
    :class:`AmbiguousValue` for a value several groups hold.
    """
    request_id = uuid.uuid4().hex
    for _ in range(MAX_ATTEMPTS):
        with store.read() as tx:
            primary = _person(tx, key)
        if primary is None:
            return ErasureResult(request_id, by)
        with store.read() as tx:
            seen = statements.members(tx, primary)
        try:
            return store.write(
                lambda tx: _erase_group(tx, primary, seen, request_id, by), lock_keys=_lock_keys(primary, seen)
            )
        except StaleGroup:
            continue  # the group changed between reading and locking it: read it again
    raise StaleGroup(f"the group of {key} kept changing during its erasure")


def _person(tx: ContactTx, key: ErasureKey) -> int | None:
    """The group (primary id) the key names; ``None`` when no live contact holds the value."""
    if key.contact_id is not None:
        primary = statements.group_of(tx, key.contact_id)
        if primary is None:
            raise UnknownContact(f"contact {key.contact_id} does not exist")
        return primary
    field_name, value = ("email", key.email) if key.email is not None else ("phoneNumber", key.phone)
    groups = statements.groups_holding(tx, field_name, value)
    if len(groups) > 1:
        raise AmbiguousValue(
            f"this {field_name} is held by {len(groups)} separate groups (different people); erase by contactId"
        )
    return next(iter(groups), None)


def _lock_keys(primary: int, members: list) -> list[str]:
    """The advisory-lock keys ``/identify`` takes for each of the group's values, so no
    request can link to the group, or bring one of its values, while it is erased."""
    keys = {f"erasure:{primary}"}
    for m in members:
        if m.email is not None:
            keys.add(f"email:{m.email}")
        if m.phoneNumber is not None:
            keys.add(f"phone:{m.phoneNumber}")
    return sorted(keys)


def _erase_group(tx: ContactTx, primary: int, seen: list, request_id: str, by: str) -> ErasureResult:
    result = ErasureResult(request_id, by)
    if any(m.deletedAt is None for m in seen):
        tx.lock_primaries([primary])  # StaleGroup when it was merged or erased meanwhile
    members = statements.members(tx, primary)  # under the primary's lock: nothing joins now
    if [(m.id, m.deletedAt) for m in members] != [(m.id, m.deletedAt) for m in seen]:
        raise StaleGroup(f"group {primary} changed while it was read")
    live = [m for m in members if m.deletedAt is None]
    now = utcnow()
    result.contact_ids = [m.id for m in members]
    result.erased_ids = statements.tombstone(tx, [m.id for m in live], at=now, cause=f"erasure:{request_id}:{by}")
    result.superseded_review_ids = statements.supersede_reviews(tx, result.contact_ids, at=now, by=by, note=SUPERSEDED_NOTE)
    result.superseded_split_ids = statements.supersede_splits(tx, result.contact_ids, at=now, by=by, note=SUPERSEDED_NOTE)
    statements.clear_detach_notes(tx, result.contact_ids)
    emails = {m.email for m in live if m.email is not None}
    phones = {m.phoneNumber for m in live if m.phoneNumber is not None}
    result.deleted_label_count = labels.delete_labels(
        tx,
        [
            row.id
            for row in labels.import_label_rows(tx)
            if any(r.get("email") in emails or r.get("phoneNumber") in phones for r in [*row.leftRecords, *row.rightRecords])
        ],
    )
    return result


__all__ = ["ErasureKey", "ErasureResult", "ErasureError", "UnknownContact", "AmbiguousValue", "erase"]
