"""Splitting a wrong merge: a reviewer takes a contact, and the contacts that joined its
group only through it, out into a group of their own; and the undo of that.

Why a contact is in a group is read from the data and the link history (the rule, with
an example, is in docs/ARCHITECTURE.md, *Detaching a contact*): two members are joined
by an edge when they share a normalised email or phone that links (not a placeholder,
not a value a guard recorded as shared), or when an audited merge joined their groups
through them (the request's matching contacts, the scored pair, the reviewed pair). The
contacts still connected to the oldest other member once the contact is taken out stay;
the contact and everything that reached the group only through it leave together.

Each side's primary is its oldest contact, every other contact points straight at it,
a cannot-link keeps the two sides from being joined again automatically, and each value
left in both groups gets a ``link_guard`` row, so PRODUCT.md's invariant 3 (and
``reconcile check``) hold: the two groups sharing it were kept apart by a recorded guard.

Independent of Flask; the statements are :mod:`reconcile.store.detach`'s, run in one
write transaction that takes the locks a review confirm or an identify takes: advisory
locks on every identifier of the group (PostgreSQL), then the primary's row.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..engine.exact import FIELDS, age_key, primary_of
from ..engine.guards import SHARED_BY_PEOPLE, Guards
from ..engine.reconciler import _lock_keys
from ..normalize import Identity
from ..store import Store, detach as statements, labels, resolution
from ..store.contacts import ContactRow, ContactTx, utcnow
from .queue import iso

METHOD = "detach"
#: a group can gain identifiers between reading it and locking it; each round locks them too
MAX_KEY_ROUNDS = 5


class DetachError(Exception):
    """A detachment (or undo) that was refused; nothing was changed."""

    code = "detach_error"

    def __init__(self, target_id: int, message: str):
        super().__init__(message)
        self.target_id = target_id
        self.message = message


class NotFound(DetachError):
    code = "not_found"


class NothingToDetach(DetachError):
    """The contact is alone in its group."""

    code = "nothing_to_detach"


class CannotUndo(DetachError):
    """Already undone, or the groups changed since the detachment."""

    code = "cannot_undo"


class NotYours(DetachError):
    """Only the reviewer who detached (or an admin) may undo a detachment."""

    code = "not_your_detachment"


class GroupBusy(DetachError):
    """The group kept gaining identifiers while it was being locked; retrying may succeed."""

    code = "group_busy"


class _MoreKeys(Exception):
    """The group holds identifiers this transaction did not lock: lock them and retry."""

    def __init__(self, keys: set[str]):
        self.keys = keys


@dataclass
class Detachment:
    id: int
    contact_id: int
    primary_id: int
    detached_primary_id: int
    kept_ids: list[int]
    detached_ids: list[int]
    changed_ids: list[int]
    cannot_link: tuple[int, int]
    guarded: list[tuple[int, str]]
    by: str
    at: datetime
    note: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "contactId": self.contact_id,
            "primaryContactId": self.primary_id,
            "detachedPrimaryContactId": self.detached_primary_id,
            "keptContactIds": self.kept_ids,
            "detachedContactIds": self.detached_ids,
            "changedContactIds": self.changed_ids,
            "cannotLink": list(self.cannot_link),
            "guardedValues": [{"contactId": c, "field": f} for c, f in self.guarded],
            "detachedBy": self.by,
            "detachedAt": iso(self.at),
            "note": self.note,
        }


@dataclass
class Undone:
    id: int
    primary_id: int
    changed_ids: list[int]
    by: str
    at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": "undone",
            "primaryContactId": self.primary_id,
            "changedContactIds": self.changed_ids,
            "undoneBy": self.by,
            "undoneAt": iso(self.at),
        }


# --- the rule -------------------------------------------------------------------------


Node = Hashable  # a member's id, or a piece of evidence: ("email", value), ("merge", n)


def evidence_graph(
    members: Sequence[ContactRow],
    merges: Iterable[Any],
    *,
    guards: Guards,
    guarded: set[tuple[str, str]],
) -> dict[Node, set[Node]]:
    """What joins the members of one group: each member is linked to every piece of
    evidence it takes part in, so a piece shared by many joins them all at once.

    A shared email or phone joins its holders, unless it cannot link (a placeholder, a
    role mailbox) or a guard recorded it as shared by different people. An audited merge
    joins the contacts it went through (``detail.through``: the request's matches, the
    reviewed pair; a model link's scored pair, ``detail.contactId`` and ``candidateId``;
    before those were recorded, the primary it demoted and the primary it joined).
    """
    ids = {m.id for m in members}
    graph: dict[Node, set[Node]] = {i: set() for i in ids}

    def join(evidence: Node, contact_ids: Iterable[int]) -> None:
        present = {i for i in contact_ids if i in ids}
        if len(present) < 2:
            return
        graph[evidence] = present
        for i in present:
            graph[i].add(evidence)

    holders: dict[tuple[str, str], list[int]] = defaultdict(list)
    for m in members:
        for name in FIELDS:
            value = getattr(m, name)
            if value is not None and (name, value) not in guarded and not guards.unlinkable(name, value):
                holders[(name, value)].append(m.id)
    for value, holder_ids in holders.items():
        join(value, holder_ids)
    for n, merge in enumerate(merges):
        detail = merge.detail if isinstance(merge.detail, dict) else {}
        through = detail.get("through", [detail.get("contactId"), detail.get("candidateId")])
        if not (isinstance(through, list) and len(through) >= 2 and all(isinstance(i, int) for i in through)):
            through = [merge.contactId, merge.newLinkedId]
        join(("merge", n), through)
    return graph


def split_group(
    members: Sequence[ContactRow], target_id: int, graph: dict[Node, set[Node]]
) -> tuple[list[ContactRow], list[ContactRow]]:
    """(kept, detached), each oldest first: kept are the members still connected to the
    oldest member other than the target once the target is taken out; detached are the
    target and every member that reached the group only through it."""
    ordered = sorted(members, key=age_key)
    anchor = next(m.id for m in ordered if m.id != target_id)
    reached, frontier = {anchor}, [anchor]
    while frontier:
        for node in graph[frontier.pop()]:
            if node != target_id and node not in reached:
                reached.add(node)
                frontier.append(node)
    return [m for m in ordered if m.id in reached], [m for m in ordered if m.id not in reached]


def values_on_both_sides(kept: Sequence[ContactRow], detached: Sequence[ContactRow]) -> list[tuple[int, str, str]]:
    """(detached holder, field, value) of each value both sides hold, the oldest holder."""
    kept_values = {(name, getattr(m, name)) for m in kept for name in FIELDS if getattr(m, name) is not None}
    held: dict[tuple[str, str], int] = {}
    for m in detached:
        for name in FIELDS:
            value = getattr(m, name)
            if (name, value) in kept_values:
                held.setdefault((name, value), m.id)
    return [(holder, name, value) for (name, value), holder in held.items()]


def _lock_keys_of(members: Iterable[ContactRow]) -> set[str]:
    """The advisory-lock keys an identify takes for these contacts' identifiers."""
    return {key for m in members for key in _lock_keys(Identity(m.email, m.phoneNumber, None))}


def _with_group_keys(store: Store, target_id: int, keys: set[str], work) -> Any:
    """Run ``work`` holding the advisory locks on ``keys``, growing them while the group
    turns out to hold identifiers that were not locked (a contact joined meanwhile)."""
    for _ in range(MAX_KEY_ROUNDS):
        try:
            return store.write(lambda tx: work(tx, keys), lock_keys=sorted(keys))
        except _MoreKeys as more:
            keys = keys | more.keys
    raise GroupBusy(target_id, "the group kept changing while it was being locked; retry")


def _require_locked(keys: set[str], members: Iterable[ContactRow]) -> None:
    missing = _lock_keys_of(members) - keys
    if missing:
        raise _MoreKeys(missing)


# --- detaching ------------------------------------------------------------------------


#: asked inside the detachment's transaction with the group's live members, before
#: anything changes: an error refuses the detachment (a split proposal that is no longer
#: pending, or whose bridge moved)
Check = Callable[[ContactTx, Sequence[ContactRow]], "DetachError | None"]
#: run inside the same transaction once the detachment is written (a decision recorded with it)
Record = Callable[[ContactTx, "Detachment"], None]


def detach(
    store: Store,
    guards: Guards,
    contact_id: int,
    by: str,
    note: str | None = None,
    *,
    check: Check | None = None,
    record: Record | None = None,
) -> Detachment:
    """Split ``contact_id`` (and what joined only through it) out of its group.

    Raises :class:`NotFound` (no such live contact) or :class:`NothingToDetach` (alone in
    its group), or what ``check`` returns; in each case nothing changed. ``check`` and
    ``record`` let a caller (accepting a split proposal) decide in the same transaction.
    """
    with store.read() as tx:
        found = tx.contacts([contact_id])
        if not found or found[0].deletedAt is not None:
            raise NotFound(contact_id, f"contact {contact_id} does not exist")
        keys = _lock_keys_of(tx.group_members([primary_of(found[0])]))

    def work(tx: ContactTx, locked: set[str]) -> Detachment | DetachError:
        rows = tx.contacts([contact_id])
        if not rows or rows[0].deletedAt is not None:
            return NotFound(contact_id, f"contact {contact_id} does not exist")
        (primary,) = tx.lock_primaries([primary_of(rows[0])])
        members = tx.group_members([primary.id])
        _require_locked(locked, members)
        refused = check(tx, members) if check else None
        if refused is not None:
            return refused
        if len(members) == 1:
            return NothingToDetach(contact_id, f"contact {contact_id} is alone in its group: there is nothing to detach it from")
        guarded = tx.guarded_values(((n, getattr(m, n)) for m in members for n in FIELDS), SHARED_BY_PEOPLE)
        merges = statements.merge_history(tx, [m.id for m in members])
        graph = evidence_graph(members, merges, guards=guards, guarded=guarded)
        kept, detached = split_group(members, contact_id, graph)
        done = _apply(tx, primary, kept, detached, contact_id, by, note)
        if record:
            record(tx, done)
        return done

    outcome = _with_group_keys(store, contact_id, keys, work)
    if isinstance(outcome, DetachError):
        raise outcome
    return outcome


def _apply(
    tx: ContactTx,
    primary: ContactRow,
    kept: list[ContactRow],
    detached: list[ContactRow],
    contact_id: int,
    by: str,
    note: str | None,
) -> Detachment:
    now = utcnow()
    kept_primary, detached_primary = kept[0].id, detached[0].id
    moves: list[statements.Move] = []
    for side, head in ((kept, kept_primary), (detached, detached_primary)):
        for m in side:
            linked = None if m.id == head else head
            if (m.linkedId, m.linkPrecedence) != (linked, "primary" if linked is None else "secondary"):
                moves.append(
                    statements.Move(m.id, m.linkedId, m.linkPrecedence, linked, "primary" if linked is None else "secondary", METHOD)
                )
    low, high = sorted((kept_primary, detached_primary))
    held = values_on_both_sides(kept, detached)
    by_id = {m.id: m for m in kept + detached}
    detail = {
        "contactId": contact_id,
        "fromPrimaryId": primary.id,
        "primaryId": kept_primary,
        "detachedPrimaryId": detached_primary,
        "kept": [m.id for m in kept],
        "detached": [m.id for m in detached],
        "previous": {str(m.contact_id): [by_id[m.contact_id].linkMethod, by_id[m.contact_id].linkScore, by_id[m.contact_id].linkModel] for m in moves},
        "cannotLink": [low, high],
        "cannotLinkCreated": not statements.cannot_link_exists(tx, low, high),
        "guarded": [[holder, name] for holder, name, _ in held],
        "note": note,
    }
    detachment_id = statements.add_detachment_note(tx, now, contact_id, by, detail)
    statements.move_contacts(tx, moves, cause=f"detach:{detachment_id}:{by}", detail={"detachment": detachment_id}, at=now)
    statements.add_cannot_link(tx, low, high, at=now, by=by)
    statements.add_guards(tx, detachment_id, held, at=now)
    return Detachment(
        id=detachment_id,
        contact_id=contact_id,
        primary_id=kept_primary,
        detached_primary_id=detached_primary,
        kept_ids=sorted(m.id for m in kept),
        detached_ids=sorted(m.id for m in detached),
        changed_ids=sorted(m.contact_id for m in moves),
        cannot_link=(low, high),
        guarded=[(holder, name) for holder, name, _ in held],
        by=by,
        at=now,
        note=note,
    )


# --- undoing --------------------------------------------------------------------------


def undo(store: Store, detachment_id: int, by: str, *, admin: bool = False) -> Undone:
    """Join the two sides again exactly as the detachment found them, only while both
    groups are as it left them: any later change (a new contact, a merge, another
    detachment, an erasure) refuses with :class:`CannotUndo`. The cannot-link it added
    and its ``link_guard`` rows are removed; everything is audited.

    A detachment a split proposal's confirmation made takes the decision back with it, as
    a review undo does: the proposal is ``pending`` again and its ``non-match`` label is
    deleted, so retraining never learns from an undone decision (the undo's audit row
    names the proposal and the labels removed)."""
    with store.read() as tx:
        note = statements.audit_row(tx, detachment_id)
        if note is None or note.action != "detached":
            raise NotFound(detachment_id, f"detachment {detachment_id} does not exist")
        detail = note.detail
        keys = _lock_keys_of(tx.contacts(detail["kept"] + detail["detached"]))

    def work(tx: ContactTx, locked: set[str]) -> Undone | DetachError:
        decided_by = note.cause.split(":", 2)[2]
        if decided_by != by and not admin:
            return NotYours(detachment_id, f"detachment {detachment_id} was made by {decided_by}; only they or an admin may undo it")
        if statements.undo_of(tx, detachment_id) is not None:
            return CannotUndo(detachment_id, f"detachment {detachment_id} was undone already")
        refused = _changed_since(tx, note.cause, detail, locked)
        if refused is not None:
            return CannotUndo(detachment_id, f"detachment {detachment_id} cannot be undone: {refused}")
        now = utcnow()
        cause = f"detach-undo:{detachment_id}:{by}"
        moves = statements.link_changes(tx, note.cause)
        previous = detail.get("previous", {})
        statements.move_contacts(
            tx,
            [
                statements.Move(
                    m.contactId, m.newLinkedId, m.newPrecedence, m.oldLinkedId, m.oldPrecedence, *previous[str(m.contactId)], undoes=m.id
                )
                for m in moves
            ],
            cause=cause,
            detail={"detachment": detachment_id},
            at=now,
        )
        tx.reopen_resolved(note.cause)  # the items the detachment settled ask again
        if detail["cannotLinkCreated"]:
            statements.remove_cannot_link(tx, *detail["cannotLink"])
        statements.remove_guards(tx, detachment_id)
        undo_detail: dict[str, Any] = {"detachment": detachment_id}
        split = resolution.reopen_split_of_detachment(tx, detachment_id)
        if split is not None:
            removed = labels.delete_split_labels(tx, split.contactId, split.bridgeContactId, "non-match")
            undo_detail.update(splitProposalId=split.id, labels=[list(r) for r in removed])
        statements.add_undo_note(tx, now, note.contactId, cause, undo_detail)
        return Undone(detachment_id, detail["fromPrimaryId"], sorted(m.contactId for m in moves), by, now)

    outcome = _with_group_keys(store, detachment_id, keys, work)
    if isinstance(outcome, DetachError):
        raise outcome
    return outcome


def _changed_since(tx: ContactTx, cause: str, detail: dict, locked: set[str]) -> str | None:
    """Why the two groups are no longer as the detachment left them, or ``None``."""
    sides = [detail["primaryId"], detail["detachedPrimaryId"]]
    heads = tx.contacts(sides)
    if len(heads) != 2 or any(h.linkPrecedence != "primary" or h.deletedAt is not None for h in heads):
        return "one of its groups has since been merged into another or erased"
    tx.lock_primaries(sides)  # StaleGroup (retried) if one is demoted between these two reads
    # contacts erased before the detachment still point at a primary: only the live count
    live = [r.id for r in statements.group_rows(tx, sides) if r.deletedAt is None]
    if set(live) != set(detail["kept"]) | set(detail["detached"]):
        return "its groups have gained, lost or erased contacts since"
    _require_locked(locked, tx.contacts(live))
    last = statements.last_link_change(tx, live, sides)
    moves = statements.link_changes(tx, cause)
    if not moves or last != moves[-1].id:
        return "its groups have changed since"
    return None
