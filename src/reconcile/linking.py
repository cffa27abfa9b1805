"""The exact stage: the original contract's linking rules over one transaction.

Same normalised email or same normalised phone => same person; the oldest contact
(``createdAt``, then ``id``) is the primary and every other contact points straight at
it. This module decides; :class:`reconcile.store.ContactTx` reads and writes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .normalize import Identity
from .store import ContactRow, ContactTx


def age_key(row: ContactRow) -> tuple:
    """Order of seniority: the oldest contact of a group is its primary."""
    return (row.createdAt, row.id)


def primary_of(row: ContactRow) -> int:
    return row.id if row.linkedId is None else row.linkedId


@dataclass
class ExactOutcome:
    """What the exact stage did, and the group the request now belongs to."""

    primary_id: int
    members: list[ContactRow]
    created: list[ContactRow] = field(default_factory=list)
    demoted: list[int] = field(default_factory=list)
    relinked: list[int] = field(default_factory=list)
    matched: bool = False

    @property
    def method(self) -> str:
        return "exact" if self.matched else "new"


def fast_lookup(tx: ContactTx, identity: Identity) -> ExactOutcome | None:
    """Answer a request that brings nothing new without taking a write lock.

    Returns ``None`` whenever the request might need a write: an identifier nobody
    has, identifiers spread over several groups, or a group that moved under us.
    """
    matches = tx.find_matching(identity.email, identity.phone)
    if not matches:
        return None
    if identity.email is not None and not any(m.email == identity.email for m in matches):
        return None
    if identity.phone is not None and not any(m.phoneNumber == identity.phone for m in matches):
        return None
    primaries = {primary_of(m) for m in matches}
    if len(primaries) != 1:
        return None
    (primary_id,) = primaries
    members = tx.group_members([primary_id])
    if not members or members[0].id != primary_id or members[0].linkPrecedence != "primary":
        return None
    return ExactOutcome(primary_id=primary_id, members=members, matched=True)


def link_exact(tx: ContactTx, identity: Identity, cause: str) -> ExactOutcome:
    """Apply the contract inside a write transaction and return the resulting group."""
    matches = tx.find_matching(identity.email, identity.phone)
    if not matches:
        row = tx.insert_contact(identity, linked_id=None, method="new", cause=cause)
        return ExactOutcome(primary_id=row.id, members=[row], created=[row])

    primaries = sorted(tx.lock_primaries({primary_of(m) for m in matches}), key=age_key)
    winner, losers = primaries[0], primaries[1:]
    changed = tx.merge_groups(winner, losers, method="exact", cause=cause) if losers else []
    demoted = sorted(r.id for r in losers)
    relinked = sorted(set(changed) - set(demoted))

    created: list[ContactRow] = []
    new_email = identity.email is not None and not any(m.email == identity.email for m in matches)
    new_phone = identity.phone is not None and not any(m.phoneNumber == identity.phone for m in matches)
    if new_email or new_phone:
        created.append(tx.insert_contact(identity, linked_id=winner.id, method="exact", cause=cause))

    members = tx.group_members([winner.id])
    return ExactOutcome(
        primary_id=winner.id, members=members, created=created, demoted=demoted, relinked=relinked, matched=True
    )


def contact_payload(primary_id: int, members: list[ContactRow]) -> dict:
    """The contract's ``contact`` object for a group, members oldest first."""
    emails = list(dict.fromkeys(r.email for r in members if r.email is not None))
    phones = list(dict.fromkeys(r.phoneNumber for r in members if r.phoneNumber is not None))
    return {
        "primaryContactId": primary_id,
        "emails": emails,
        "phoneNumbers": phones,
        "secondaryContactIds": sorted(r.id for r in members if r.id != primary_id),
    }
