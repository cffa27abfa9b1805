"""The exact stage: the original contract's linking rules, with over-merge guards.

Same normalised email or same normalised phone => same person; the oldest contact
(``createdAt``, then ``id``) is the primary and every other contact points straight at
it. Guards (see :mod:`reconcile.engine.guards`) may refuse a link on one identifier or hold a
merge of two groups for review; every refusal is recorded (a ``link_guard`` row for
each created contact that shares a value with a group it was kept from, and a pending
merge unless the value is a mere placeholder). Without names, placeholders, rejected
pairs or huge groups, this is exactly the contract.

With a model, each pair a guard holds is scored before its review opens (a
:data:`Screen`): the reviewer sees the model's opinion beside the guard's, and a
shared-identifier hold the model clearly rejects (below its lower threshold) is no
question for a person: the guard's "no link" stands, recorded as every hold is, and
only the audit sample's draw of such pairs reaches the queue
(:mod:`reconcile.engine.audit_sampling`, kind ``held``).

This module decides; :class:`reconcile.store.ContactTx` reads and writes.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from ..names import NamedKey
from ..names import one_person as names_one_person
from ..normalize import Identity, name_key
from ..references import ref, render_from_rows
from ..store import ContactRow, ContactTx
from ..store.pending import cannot_link_pairs, open_pending_merge, record_guard
from .audit_sampling import HELD
from .guards import SHARED_BY_PEOPLE, Guards

FIELDS = ("email", "phoneNumber")
MAX_REVIEWS_PER_GUARD = 3
#: holds an answer (and the audit row of a contact created beside them) lists; the rest
#: are counted in ``guardsOmitted``. Also the held groups read per value never read whole.
MAX_LISTED_HOLDS = 10


@dataclass(frozen=True)
class PairOpinion:
    """The model's view of a pair of contacts a guard held apart.

    ``clear_non_match``: scored below the lower threshold. For such a pair, ``chance`` is
    its chance of being drawn into the audit sample and ``drawn`` whether it was."""

    score: float
    match_weight: float
    model_version: str
    evidence: dict
    clear_non_match: bool
    chance: float = 0.0
    drawn: bool = False


#: (the request's contact, the held group's contact) -> the model's view of the pair
Screen = Callable[[int, int], PairOpinion]


def age_key(row: ContactRow) -> tuple:
    """Order of seniority: the oldest contact of a group is its primary."""
    return (row.createdAt, row.id)


def primary_of(row: ContactRow) -> int:
    return row.id if row.linkedId is None else row.linkedId


def request_values(identity: Identity) -> dict[str, str | None]:
    return {"email": identity.email, "phoneNumber": identity.phone}


def request_name(identity: Identity) -> NamedKey | None:
    return (identity.name, name_key(identity.name)) if identity.name else None


def _name_keys_by_group(members: list[ContactRow]) -> dict[int, list[str]]:
    """Each group's distinct stored name keys (``nameKey``), the evidence the size and
    known-shared holds weigh (:func:`reconcile.names.one_person`)."""
    found: dict[int, set[str]] = defaultdict(set)
    for m in members:
        keys = found[primary_of(m)]  # a group without names is listed, with none
        if m.nameKey:
            keys.add(m.nameKey)
    return {group: sorted(keys) for group, keys in found.items()}


def names_of(rows: list[ContactRow]) -> list[NamedKey]:
    """The rows' names with the keys stored beside them (never normalised again)."""
    return [(r.name, r.nameKey) for r in rows if r.name]


def holders_of(rows: list[ContactRow]) -> list[tuple[int, NamedKey]]:
    """:func:`names_of` with each name's contact, which a guard's reason refers to."""
    return [(r.id, (r.name, r.nameKey)) for r in rows if r.name]


@dataclass(frozen=True)
class HeldValue:
    """A request value the exact stage does not read across the table: a placeholder or
    role mailbox (never links by itself), or one held by more groups than the guards let
    link. ``groups`` are the first :data:`MAX_LISTED_HOLDS` groups holding it, ``total``
    how many do (both from ``identifier_group``)."""

    unlinkable: str | None
    groups: list[int]
    total: int


@dataclass
class Hold:
    """A group the request touched but may not join: why, and what records it.

    ``reason`` names values by reference (:mod:`reconcile.references`): it is what the
    audit log, guard records and reviews store. ``shown`` is the same text with the
    values filled in, for the answer to the request that brought them.
    """

    primary_id: int
    guard: str
    reason: str
    review: bool
    values: list[tuple[str, str]] = field(default_factory=list)
    shown: str | None = None
    #: each held field's own (guard, reason): a guard record on the phone speaks of the
    #: phone; ``guard`` and ``reason`` are the first field's, the ones the review shows
    field_reasons: dict[str, tuple[str, str]] = field(default_factory=dict)

    def hold_value(self, name: str, value: str, guard: str, reason: str) -> None:
        """Add a value this hold keeps apart, with the guard that holds it and why."""
        self.values.append((name, value))
        self.field_reasons.setdefault(name, (guard, reason))

    def as_json(self) -> dict:
        """The hold as the answer to the request shows it."""
        return {"primaryContactId": self.primary_id, "guard": self.guard, "reason": self.shown or self.reason}

    def as_record(self) -> dict:
        """The hold as it is stored: the reason's values by reference only."""
        return {"primaryContactId": self.primary_id, "guard": self.guard, "reason": self.reason}


@dataclass
class ExactOutcome:
    """What the exact stage did, and the group the request now belongs to."""

    primary_id: int
    members: list[ContactRow]
    created: list[ContactRow] = field(default_factory=list)
    demoted: list[int] = field(default_factory=list)
    relinked: list[int] = field(default_factory=list)
    matched: bool = False
    holds: list[Hold] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    #: held groups not among ``holds`` (beyond the first few of a much-shared value)
    unlisted: int = 0

    @property
    def method(self) -> str:
        return "exact" if self.matched else "new"

    def guards_json(self, stored: bool = False) -> tuple[list[dict], int]:
        """The first :data:`MAX_LISTED_HOLDS` holds as the answer shows them (``stored``:
        as the audit log keeps them, values by reference), and how many more there are."""
        listed = [h.as_record() if stored else h.as_json() for h in self.holds[:MAX_LISTED_HOLDS]]
        return listed, self.unlisted + max(0, len(self.holds) - MAX_LISTED_HOLDS)


def fast_lookup(tx: ContactTx, identity: Identity, guards: Guards) -> ExactOutcome | None:
    """Answer a request that brings nothing new without taking a write lock.

    Returns ``None`` whenever the request might need a write or a guard's judgement:
    an identifier nobody has, identifiers spread over several groups, a placeholder,
    a name that clashes with the identifier's holders, or a group that moved under us.
    It reads with one statement (:meth:`ContactTx.groups_holding`), so it needs no
    transaction: the store runs it as :meth:`reconcile.store.Store.read_else_write`'s read.
    """
    values = request_values(identity)
    members = tx.groups_holding(identity.email, identity.phone)
    matches = [m for m in members if any(v is not None and getattr(m, n) == v for n, v in values.items())]
    if not matches:
        return None
    primaries = {primary_of(m) for m in matches}
    if len(primaries) != 1:
        return None
    for name, value in values.items():
        if value is None:
            continue
        holders = [m for m in matches if getattr(m, name) == value]
        if not holders or guards.unlinkable(name, value):
            return None
        if guards.shared_identifier(request_name(identity), holders_of(holders), names_of(holders)):
            return None
    (primary_id,) = primaries
    if members[0].id != primary_id or members[0].linkPrecedence != "primary":
        return None
    return ExactOutcome(primary_id=primary_id, members=members, matched=True)


def _held_values(tx: ContactTx, identity: Identity, guards: Guards) -> dict[str, HeldValue]:
    """The request's values not to read holder by holder: unlinkable ones, and ones more
    groups hold than :meth:`Guards.widely_shared` allows (one capped read of the state)."""
    held: dict[str, HeldValue] = {}
    values = {n: v for n, v in request_values(identity).items() if v is not None}
    holding = tx.holding_groups(values, MAX_LISTED_HOLDS)
    for name, value in values.items():
        groups, total = holding.get(name, ([], 0))
        unlinkable = guards.unlinkable(name, value)
        if unlinkable or guards.widely_shared(total):
            held[name] = HeldValue(unlinkable, groups, total)
    return held


def _judge_links(
    tx: ContactTx, identity: Identity, matches: list[ContactRow], held: dict[str, HeldValue], guards: Guards
) -> tuple[set[int], dict[int, Hold], set[int], int]:
    """Split the matched groups into those the request may join and those held apart.

    The second set holds the joinable groups the request reaches only through values
    already known to be shared by different people (:data:`SHARED_BY_PEOPLE`): such a
    value alone does not say which of its holders the request is, so
    :func:`link_exact` joins them only on their names' evidence. The count is of held
    groups not read (a held value's groups beyond the first few, which are all held
    alike).
    """
    values = request_values(identity)
    by_group: dict[int, dict[str, list[ContactRow]]] = defaultdict(dict)
    groups_by_value: dict[str, set[int]] = defaultdict(set)  # every live holder of a read value is in ``matches``
    for m in matches:
        for name, value in values.items():
            if value is not None and getattr(m, name) == value:
                by_group[primary_of(m)].setdefault(name, []).append(m)
                groups_by_value[name].add(primary_of(m))
    unlisted = sum(max(0, value.total - len(groups_by_value[name])) for name, value in held.items())

    known_shared = (  # weak or strong only matters when there is more than one group
        tx.guarded_values(((n, v) for n, v in values.items() if v is not None), SHARED_BY_PEOPLE)
        if len(by_group) > 1
        else set()
    )
    strong: set[int] = set()
    weak: set[int] = set()
    holds: dict[int, Hold] = {}
    # an email nobody holds yet: a request bringing a known one joins its holder's group,
    # and joining that to the phone's group is the contract's merge, not a borrowed phone
    new_email = identity.email is not None and "email" not in groups_by_value and "email" not in held
    for group, fields in by_group.items():
        usable_via: list[str] = []
        for name, rows in fields.items():
            value = values[name]
            quoted = f"{name} '{ref(rows[0].id, name)}'"
            unlinkable = guards.unlinkable(name, value)
            if unlinkable:
                why = f"{quoted} is a {unlinkable}"
                holds.setdefault(group, Hold(group, unlinkable, why, False)).hold_value(name, value, unlinkable, why)
                continue
            spread = guards.widely_shared(held[name].total if name in held else len(groups_by_value[name]))
            if spread:  # no review either: the data already shows many people share it
                why = f"{quoted} {spread}"
                holds.setdefault(group, Hold(group, "shared-value", why, False)).hold_value(name, value, "shared-value", why)
                continue
            value_names = names_of([r for r in matches if getattr(r, name) == value])
            reason = guards.shared_identifier(request_name(identity), holders_of(rows), value_names)
            if not reason and name == "phoneNumber" and identity.name is None and new_email:
                reason = guards.borrowed_phone(identity.email, holders_of(rows), [r.email for r in rows if r.email])
            if reason:
                why = f"{quoted} {reason}"
                holds.setdefault(group, Hold(group, "shared-identifier", why, True)).hold_value(name, value, "shared-identifier", why)
                continue
            usable_via.append(name)
        if usable_via:
            holds.pop(group, None)
            if all((n, values[n]) in known_shared for n in usable_via):
                weak.add(group)
            else:
                strong.add(group)
    for hold in holds.values():
        hold.shown = render_from_rows(hold.reason, matches)
    return strong | weak, holds, weak, unlisted


def link_exact(
    tx: ContactTx, identity: Identity, cause: str, guards: Guards, screen: Screen | None = None
) -> ExactOutcome:
    """Apply the contract inside a write transaction and return the resulting group.

    ``screen`` (with a model) scores each held pair before its review opens.

    What it reads is bounded whatever the table holds: a value many groups share is
    not read holder by holder (:func:`_held_values`), so the holders read are those of
    values held by at most ``max_groups_per_identifier`` groups, plus the held values'
    holders inside those groups.
    """
    held = _held_values(tx, identity, guards)
    matches = tx.find_matching(
        identity.email, identity.phone, frozenset(held), {g for h in held.values() for g in h.groups}
    )
    if not matches and not any(h.total for h in held.values()):
        row = tx.insert_contact(identity, linked_id=None, method="new", cause=cause)
        return ExactOutcome(primary_id=row.id, members=[row], created=[row])

    joinable, holds, weak, unlisted = _judge_links(tx, identity, matches, held, guards)
    if not joinable:
        return _new_primary_beside(tx, identity, matches, holds, cause, unlisted, screen)

    locked, members = tx.lock_groups(joinable, matches)
    # the oldest group reached through a value not known to be shared comes first (or
    # the oldest of all when there is none); each other group is weighed against it
    primaries = sorted(locked, key=lambda r: (r.id in weak and len(weak) < len(locked), age_key(r)))
    sizes = Counter(primary_of(m) for m in members)
    names = _name_keys_by_group(members)
    asked = [name_key(identity.name)] if identity.name else []
    rejected = cannot_link_pairs(tx, joinable)
    merged = [primaries[0]]
    for candidate in primaries[1:]:
        one_person = names_one_person([*asked, *(k for m in merged for k in names.get(m.id, ()))], names.get(candidate.id, ()))
        if candidate.id in weak and not one_person:
            holds[candidate.id] = Hold(
                candidate.id, "shared-identifier",
                "reached only through values already known to be shared by different people", True,
            )
            continue
        if any(tuple(sorted((candidate.id, m.id))) in rejected for m in merged):
            holds[candidate.id] = Hold(candidate.id, "cannot-link", "a reviewer rejected merging these groups", True)
            continue
        block = guards.merge_block([sum(sizes.get(m.id, 1) for m in merged), sizes.get(candidate.id, 1)], one_person)
        if block:
            holds[candidate.id] = Hold(candidate.id, block[0], block[1], True)
            continue
        merged.append(candidate)
    merged.sort(key=age_key)  # the oldest contact of the joined groups is their primary
    winner = merged[0]
    for hold in holds.values():
        if not hold.values:
            hold.values = [
                (n, v) for n, v in request_values(identity).items()
                if v is not None and any(primary_of(m) == hold.primary_id and getattr(m, n) == v for m in matches)
            ]

    losers = merged[1:]
    # the contacts the request matched in the joined groups: what a later detach reads as the join
    through = sorted(m.id for m in matches if primary_of(m) in {r.id for r in merged})
    changed = tx.merge_groups(winner, losers, method="exact", cause=cause, detail={"through": through}) if losers else []
    demoted = sorted(r.id for r in losers)
    outcome = ExactOutcome(
        primary_id=winner.id,
        members=[],
        demoted=demoted,
        relinked=sorted(set(changed) - set(demoted)),
        matched=True,
        unlisted=unlisted,
    )

    merged_ids = {m.id for m in merged}
    in_group = [m for m in matches if primary_of(m) in merged_ids]
    brings_new = any(
        value is not None and not any(getattr(m, name) == value for m in in_group)
        for name, value in request_values(identity).items()
    )
    if brings_new:
        group_size = sum(sizes.get(i, 1) for i in merged_ids)
        known_person = names_one_person(asked, [k for i in merged_ids for k in names.get(i, ())])
        if group_size >= guards.size_limit(known_person):
            holds[winner.id] = Hold(
                winner.id, "group-size", f"the group already holds {group_size} contacts", True,
                [(n, v) for n, v in request_values(identity).items() if v is not None],
            )
            beside = _new_primary_beside(tx, identity, matches, holds, cause, unlisted, screen)
            beside.demoted, beside.relinked = outcome.demoted, outcome.relinked  # the merge above stands
            return beside
        row = tx.insert_contact(identity, linked_id=winner.id, method="exact", cause=cause)
        outcome.created.append(row)
        _record_holds(tx, row, winner.id, holds, outcome, matches, screen)
    elif holds:
        _open_reviews(tx, winner.id, None, holds, outcome, matches, merged_ids, screen)
    # the joined groups as read under their locks, plus the row just created
    merged_members = [m for m in members if primary_of(m) in merged_ids] + outcome.created
    outcome.members = sorted(merged_members, key=age_key)
    return outcome


def _new_primary_beside(
    tx: ContactTx,
    identity: Identity,
    matches: list[ContactRow],
    holds: dict[int, Hold],
    cause: str,
    unlisted: int,
    screen: Screen | None,
) -> ExactOutcome:
    """Every matched group is held apart: the request starts a group of its own."""
    outcome = ExactOutcome(primary_id=0, members=[], matched=False, holds=list(holds.values()), unlisted=unlisted)
    listed, omitted = outcome.guards_json(stored=True)
    row = tx.insert_contact(
        identity, linked_id=None, method="new", cause=cause, detail={"guards": listed, "guardsOmitted": omitted}
    )
    outcome.primary_id, outcome.members, outcome.created = row.id, [row], [row]
    _record_holds(tx, row, row.id, holds, outcome, matches, screen)
    return outcome


def _record_holds(
    tx: ContactTx,
    row: ContactRow,
    primary_id: int,
    holds: dict[int, Hold],
    outcome: ExactOutcome,
    matches: list[ContactRow],
    screen: Screen | None,
) -> None:
    """A created contact shares values with held groups: record each guard (whether or
    not a review opens for it), open reviews."""
    pending_by_group = _open_reviews(tx, primary_id, row.id, holds, outcome, matches, {primary_id}, screen)
    recorded: set[tuple[str, str, str]] = set()
    for hold in holds.values():
        for name, value in hold.values:
            guard, reason = hold.field_reasons.get(name, (hold.guard, hold.reason))
            key = (name, value, guard)
            if key in recorded:
                continue
            recorded.add(key)
            record_guard(
                tx, row.id, field=name, value=value, guard=guard, reason=reason,
                pending_merge_id=pending_by_group.get(hold.primary_id),
            )


def _open_reviews(
    tx: ContactTx,
    primary_id: int,
    contact_id: int | None,
    holds: dict[int, Hold],
    outcome: ExactOutcome,
    matches: list[ContactRow],
    own_groups: set[int],
    screen: Screen | None,
) -> dict[int, int]:
    """Open a review for each reviewable hold, naming the pair of contacts it is about:
    the request's contact (or its match in the joined group) and the held group's match,
    with the model's opinion of that pair when there is a model (``screen``).

    A shared-identifier hold of a pair the model scores below its lower threshold opens
    only when the audit sample draws it (kind ``held``, with its chance): the guard and
    the model agree, and measured on the synthetic streams (bench/README.md,
    ``queue_mix``) such items were about half the queue and 2% the same person."""
    outcome.holds = list(holds.values())
    opened: dict[int, int] = {}
    own = contact_id or next((m.id for m in matches if primary_of(m) in own_groups), None)
    reviewable = sorted((h for h in holds.values() if h.review and h.primary_id != primary_id), key=lambda h: h.primary_id)
    asked = 0
    for hold in reviewable:
        if asked >= MAX_REVIEWS_PER_GUARD:
            break
        candidate = next((m.id for m in matches if primary_of(m) == hold.primary_id), None)
        opinion = screen(own, candidate) if screen is not None and own is not None and candidate is not None else None
        audit = None
        if opinion is not None and hold.guard == "shared-identifier" and opinion.clear_non_match:
            if not opinion.drawn:
                continue
            audit = HELD
        asked += 1
        evidence = {"guard": hold.guard, "reason": hold.reason, "values": _value_refs(hold, contact_id, matches)}
        pending_id = open_pending_merge(
            tx,
            primary_id,
            hold.primary_id,
            reason="conflict" if hold.guard == "cannot-link" else "guard",
            guard=hold.guard,
            contact_id=own,
            candidate_id=candidate,
            score=opinion.score if opinion else None,
            match_weight=opinion.match_weight if opinion else None,
            model_version=opinion.model_version if opinion else None,
            evidence={**evidence, **opinion.evidence} if opinion else evidence,
            audit=audit,
            inclusion_probability=opinion.chance if audit else None,
        )
        if pending_id is not None:
            opened[hold.primary_id] = pending_id
            outcome.pending.append(pending_id)
    return opened


def _value_refs(hold: Hold, created_id: int | None, matches: list[ContactRow]) -> list[list[str]]:
    """A hold's values as ``[field, reference]``: to the contact just created (it holds
    every value of the request), else to the held group's holder of the value."""
    refs = []
    for name, value in hold.values:
        holder = created_id
        if holder is None:
            holder = next((m.id for m in matches if getattr(m, name) == value), None)
        if holder is not None:
            refs.append([name, ref(holder, name)])
    return refs


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
