"""Who a person is and why: a contact's whole group, how each contact came to be in it,
the group's history, and the chain of links that joins two of its contacts.

Read-only and independent of Flask: the ``/persons`` JSON API and the review UI's person
page call these functions with a :class:`~reconcile.store.Store`; every read runs in one
read transaction (one snapshot on SQLite) and nothing is written.

Values (emails, phones, names) are always read from the contacts, never from audit or
guard text, so what an erasure removes from a contact is gone from these answers too.
The audit log says *which* contacts a change linked and why (its cause, and for model
links the comparison weights); the contacts say what they hold.
"""
from __future__ import annotations

import re
from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from ..engine.guards import Guards
from ..normalize import normalize_email, normalize_phone
from ..references import referenced_ids, render_json
from ..store import Store, persons
from ..store.contacts import ContactTx
from .queue import MAX_PAGE, MAX_PER_PAGE, iso

#: a search by email or phone lists at most this many groups (a shared value can sit in many)
MAX_SEARCH_GROUPS = 20

_REVIEW_CAUSE = re.compile(r"(review|review-undo):([0-9]{1,18}):(.+)", re.S)
_REQUEST_CAUSE = re.compile(r"identify:(.+)", re.S)
_FIELDS = ("email", "phoneNumber")


class PersonError(Exception):
    """A look-up that has no answer; ``code`` is stable for the API."""

    code = "person_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(PersonError):
    code = "not_found"


class NotLinked(PersonError):
    """The two contacts are in different groups: no chain of links joins them."""

    code = "not_linked"


# --- causes ------------------------------------------------------------------------------


def cause_parts(cause: str | None) -> dict[str, Any]:
    """What a cause names: the ``/identify`` request, or the review item and its reviewer."""
    parts: dict[str, Any] = {"requestId": None, "reviewer": None, "pendingMergeId": None}
    if cause is None:
        return parts
    if match := _REVIEW_CAUSE.fullmatch(cause):
        parts.update(pendingMergeId=int(match.group(2)), reviewer=match.group(3))
    elif match := _REQUEST_CAUSE.fullmatch(cause):
        parts["requestId"] = match.group(1)
    return parts


# --- the group -----------------------------------------------------------------------------


def _group_primary(row) -> int:
    return row.id if row.linkedId is None else row.linkedId


def _contact_json(row, last_link) -> dict[str, Any]:
    link = {
        "method": row.linkMethod,
        "score": row.linkScore,
        "modelVersion": row.linkModel,
        "cause": None,
        "at": None,
        **cause_parts(None),
    }
    if last_link is not None:
        link.update(cause=last_link.cause, at=iso(last_link.at), **cause_parts(last_link.cause))
    return {
        "id": row.id,
        "email": row.email,
        "phoneNumber": row.phoneNumber,
        "name": row.name,
        "createdAt": iso(row.createdAt),
        "deletedAt": iso(row.deletedAt),
        "linkPrecedence": row.linkPrecedence,
        "linkedId": row.linkedId,
        "link": link,
    }


def _review_summary(item, members: set[int]) -> dict[str, Any]:
    other = item.rightPrimaryId if item.leftPrimaryId in members else item.leftPrimaryId
    return {
        "id": item.id,
        "reason": item.reason,
        "guard": item.guard,
        "score": item.score,
        "modelVersion": item.modelVersion,
        "openedAt": iso(item.openedAt),
        "otherPrimaryId": other,
    }


def _person(tx: ContactTx, primary_id: int) -> dict[str, Any]:
    rows = persons.group_of(tx, primary_id)
    ids = [r.id for r in rows]
    last_link = {e.contactId: e for e in persons.link_events(tx, ids)}  # oldest first: the last one wins
    live = [r for r in rows if r.deletedAt is None]
    members = set(ids)
    return {
        "primaryContactId": primary_id,
        "emails": list(dict.fromkeys(r.email for r in live if r.email is not None)),
        "phoneNumbers": list(dict.fromkeys(r.phoneNumber for r in live if r.phoneNumber is not None)),
        "contacts": [_contact_json(r, last_link.get(r.id)) for r in rows],
        "openReviews": [_review_summary(i, members) for i in persons.open_reviews(tx, ids)],
    }


def _contact(tx: ContactTx, contact_id: int):
    row = persons.contact_by_id(tx, contact_id)
    if row is None:
        raise NotFound(f"contact {contact_id} does not exist")
    return row


def person(store: Store, contact_id: int) -> dict[str, Any]:
    """The whole group of ``contact_id``: every contact (live and erased) with how it was
    linked, the group's distinct values, and its open review items. Raises :class:`NotFound`."""
    with store.read() as tx:
        return _person(tx, _group_primary(_contact(tx, contact_id)))


def find(store: Store, *, email: str | None = None, phone: str | None = None) -> list[dict[str, Any]]:
    """The groups where a live contact holds the (already normalised) email or phone,
    oldest first, at most :data:`MAX_SEARCH_GROUPS`; ``[]`` when none does."""
    if (email is None) == (phone is None):
        raise ValueError("search by exactly one of email and phone")
    with store.read() as tx:
        primaries = persons.primaries_holding(tx, email=email, phone=phone, limit=MAX_SEARCH_GROUPS)
        return [_person(tx, p) for p in primaries]


def search(store: Store, text: str, default_region: str) -> list[dict[str, Any]]:
    """The review UI's search box: a contact id, an email or a phone, whichever ``text``
    reads as (digits are tried as an id and as a phone). Unreadable text finds nothing."""
    text = text.strip()
    found: list[dict[str, Any]] = []
    if re.fullmatch(r"[0-9]{1,18}", text) and 1 <= int(text) <= persons.MAX_CONTACT_ID:
        try:
            found.append(person(store, int(text)))
        except NotFound:
            pass
    try:
        if "@" in text:
            email = normalize_email(text)
            found += find(store, email=email) if email else []
        else:
            phone = normalize_phone(text, default_region)
            found += find(store, phone=phone) if phone else []
    except ValueError:  # neither an email nor a phone: the id look-up was all there was
        pass
    return list({p["primaryContactId"]: p for p in found}.values())


# --- history -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryPage:
    primary_id: int
    entries: list[dict[str, Any]]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    def as_json(self) -> dict[str, Any]:
        return {
            "primaryContactId": self.primary_id,
            "entries": self.entries,
            "page": self.page,
            "perPage": self.per_page,
            "pages": self.pages,
            "total": self.total,
        }


def _entry(kind: str, row, values: dict[int, Any], reviews: dict[int, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": kind,
        "id": row.id,
        "at": None,
        "action": kind,
        "contactId": None,
        "oldLinkedId": None,
        "newLinkedId": None,
        "oldPrecedence": None,
        "newPrecedence": None,
        "cause": None,
        **cause_parts(None),
        "status": None,
        "reason": None,
        "guard": None,
        "score": None,
        "modelVersion": None,
        "evidence": None,
    }
    if kind == persons.AUDIT:
        detail = row.detail if isinstance(row.detail, dict) else {}
        entry.update(
            at=iso(row.at),
            action=row.action,
            contactId=row.contactId,
            oldLinkedId=row.oldLinkedId,
            newLinkedId=row.newLinkedId,
            oldPrecedence=row.oldPrecedence,
            newPrecedence=row.newPrecedence,
            cause=row.cause,
            evidence=row.detail,
            **cause_parts(row.cause),
        )
        item = reviews.get(entry["pendingMergeId"])
        if item is not None and row.newPrecedence is not None:  # a link a review decided
            entry.update(score=item.score, modelVersion=item.modelVersion)
        elif "comparisons" in detail:  # a link the model made
            entry.update(score=_number(detail.get("matchProbability")), modelVersion=_text(detail.get("modelVersion")))
    elif kind == persons.GUARD:
        holder = values.get(row.contactId)
        entry.update(
            at=iso(row.createdAt),
            action="guarded",
            contactId=row.contactId,
            guard=row.guard,
            reason=row.reason,
            pendingMergeId=row.pendingMergeId,
            evidence={"field": row.field, "value": getattr(holder, row.field, None) if row.field in _FIELDS else None},
        )
    else:
        superseded = kind == persons.REVIEW_SUPERSEDED
        entry.update(
            at=iso(row.decidedAt if superseded else row.openedAt),
            contactId=row.contactId,
            pendingMergeId=row.id,
            # a resolved item's decidedBy is the cause of the change that closed it, not a person
            reviewer=row.decidedBy if superseded and row.status == "superseded" else None,
            status=row.status,
            reason=row.note if superseded else row.reason,
            guard=row.guard,
            score=row.score,
            modelVersion=row.modelVersion,
            evidence=row.evidence,
        )
    return entry


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def history(store: Store, contact_id: int, page: int = 1, per_page: int = 50) -> HistoryPage:
    """Every change to ``contact_id``'s group in time order, one page of it: contacts
    created, linked, merged (demoted), split (promoted), erased, review items opened,
    decided and superseded, guards that held a link; each with its cause, reviewer or
    request, model version and evidence. Raises :class:`NotFound`."""
    if not 1 <= page <= MAX_PAGE:
        raise ValueError(f"page must be from 1 to {MAX_PAGE}, not {page}")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise ValueError(f"per_page must be from 1 to {MAX_PER_PAGE}, not {per_page}")
    with store.read() as tx:
        primary_id = _group_primary(_contact(tx, contact_id))
        rows = persons.group_of(tx, primary_id)
        ids = [r.id for r in rows]
        total = persons.history_count(tx, ids)
        keyed = persons.history_page(tx, ids, limit=per_page, offset=(page - 1) * per_page)
        cited = [cause_parts(getattr(r, "cause", None))["pendingMergeId"] for k, r in keyed if k == persons.AUDIT]
        reviews = persons.reviews_by_id(tx, [i for i in cited if i is not None])
        # reasons and evidence name values by reference: read the ones outside the group too
        quoted = referenced_ids([getattr(r, c, None) for _, r in keyed for c in ("reason", "detail", "evidence")])
        outside = tx.contacts(quoted - set(ids)) if quoted - set(ids) else []
    values = {r.id: r for r in rows}
    known = {**values, **{r.id: r for r in outside}}

    def value_of(contact_id: int, name: str) -> str | None:
        return getattr(known[contact_id], name) if contact_id in known else None

    entries = []
    for k, r in keyed:
        entry = _entry(k, r, values, reviews)
        entry.update(reason=render_json(entry["reason"], value_of), evidence=render_json(entry["evidence"], value_of))
        entries.append(entry)
    return HistoryPage(primary_id, entries, total, page, per_page)


# --- why -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Link:
    """One reason two contacts of a group are one person, before it is told as JSON."""

    rule: str
    ends: tuple[int, ...]
    event: Any = None
    review: Any = None
    field: str | None = None


def _event_links(tx: ContactTx, members: dict[int, Any]) -> list[_Link]:
    """The audited link changes that put the group's contacts together and still stand.

    A contact created as a secondary is linked to the primary it was created under; a
    demoted primary to the contact its merge scored (model links record the pair), to
    the reviewed pair (review links), or else to the primary it was demoted under.
    Moves that only followed a demoted primary, splits, and anything undone since, are
    no reasons.
    """
    ids = list(members)
    events = persons.link_events(tx, ids)
    undone = persons.undone_audit_ids(tx, ids)
    reviews = persons.reviews_by_id(
        tx, [p for p in (cause_parts(e.cause)["pendingMergeId"] for e in events) if p is not None]
    )
    links = []
    for event in events:
        if event.id in undone or event.newPrecedence != "secondary" or event.newLinkedId not in members:
            continue
        if event.action in ("relinked", "promoted"):
            continue
        detail = event.detail if isinstance(event.detail, dict) else {}
        review = reviews.get(cause_parts(event.cause)["pendingMergeId"])
        ends: tuple[int, ...] = (event.contactId, event.newLinkedId)
        if event.action == "created":
            rule = "created"
        elif review is not None and event.cause.startswith("review:"):
            rule = "review"
            ends = _pair_or(ends, review.contactId, review.candidateId, members)
        elif "comparisons" in detail:
            rule = "model"
            ends = _pair_or(ends, detail.get("contactId"), detail.get("candidateId"), members)
        elif event.cause.startswith("identify:"):
            rule = "request"
        else:
            rule = "linked"
        links.append(_Link(rule, ends, event=event, review=review))
    return links


def _pair_or(default: tuple[int, ...], a: Any, b: Any, members: dict[int, Any]) -> tuple[int, ...]:
    """The recorded pair when both are contacts of the group, else ``default``."""
    if isinstance(a, int) and isinstance(b, int) and a in members and b in members and a != b:
        return (a, b)
    return default


def _chain(start: int, goal: int, adjacency: dict[Hashable, list[Hashable]]) -> list[tuple[int, Any, int]] | None:
    """The shortest chain of links from ``start`` to ``goal`` (breadth first), as
    (from, link node, to) steps; ``None`` when they are not connected."""
    parents: dict[Hashable, Hashable | None] = {("c", start): None}
    queue: deque[Hashable] = deque([("c", start)])
    while queue:
        node = queue.popleft()
        if node == ("c", goal):
            break
        for nxt in adjacency.get(node, ()):
            if nxt not in parents:
                parents[nxt] = node
                queue.append(nxt)
    if ("c", goal) not in parents:
        return None
    path: list[Hashable] = []
    node: Hashable | None = ("c", goal)
    while node is not None:
        path.append(node)
        node = parents[node]
    path.reverse()
    return [(path[i][1], path[i + 1], path[i + 2][1]) for i in range(0, len(path) - 2, 2)]


def _adjacency(members: dict[int, Any], links: list[_Link], guards: Guards) -> dict[Hashable, list[Hashable]]:
    """A graph of contacts and the links between them, each link a node of its own: a
    value held by several contacts joins them all (an exact link), as does each event.
    Values come before events in each contact's list, so of two equally short chains
    the one through shared values is found."""
    adjacency: dict[Hashable, list[Hashable]] = {}

    def join(link_node: Hashable, contact_ids: Iterable[int]) -> None:
        for cid in contact_ids:
            adjacency.setdefault(("c", cid), []).append(link_node)
            adjacency.setdefault(link_node, []).append(("c", cid))

    holders: dict[tuple[str, str], list[int]] = {}
    for row in members.values():
        for field in _FIELDS:
            value = getattr(row, field)
            if value is not None and row.deletedAt is None and guards.unlinkable(field, value) is None:
                holders.setdefault((field, value), []).append(row.id)
    for (field, value), ids in holders.items():
        if len(ids) > 1:
            join(("v", field, value), ids)
    for number, link in enumerate(links):
        join(("e", number), link.ends)
    return adjacency


def _link_json(step_from: int, node: Any, step_to: int, links: list[_Link]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "from": step_from,
        "to": step_to,
        "rule": "shared-value",
        "description": "",
        "field": None,
        "value": None,
        "at": None,
        "auditId": None,
        "cause": None,
        **cause_parts(None),
        "score": None,
        "modelVersion": None,
        "matchWeight": None,
        "comparisons": None,
    }
    if node[0] == "v":
        _, field, value = node
        label = "email" if field == "email" else "phone"
        out.update(field=field, value=value, description=f"both hold the {label} {value}")
        return out
    link = links[node[1]]
    event = link.event
    detail = event.detail if isinstance(event.detail, dict) else {}
    out.update(rule=link.rule, at=iso(event.at), auditId=event.id, cause=event.cause, **cause_parts(event.cause))
    if link.rule == "review":
        item = link.review
        out.update(score=item.score, modelVersion=item.modelVersion, matchWeight=item.matchWeight)
        out["comparisons"] = _comparisons(item.evidence)
        out["description"] = f"review {item.id} confirmed by {out['reviewer']}"
    elif link.rule == "model":
        out.update(
            score=_number(detail.get("matchProbability")),
            modelVersion=_text(detail.get("modelVersion")),
            matchWeight=_number(detail.get("matchWeight")),
            comparisons=_comparisons(detail),
        )
        weight = f"match weight {out['matchWeight']:.2f}" if out["matchWeight"] is not None else "a score"
        out["description"] = f"the model linked them ({weight}) in request {out['requestId']}"
    elif link.rule == "created":
        out["description"] = f"created as a secondary of contact {event.newLinkedId} by {event.cause}"
    elif link.rule == "request":
        out["description"] = f"request {out['requestId']} brought identifiers of both groups; the younger primary was demoted"
    else:
        out["description"] = f"linked by {event.cause}"
    return out


def _comparisons(evidence: Any) -> list[dict[str, Any]] | None:
    """The per-comparison levels and weights of recorded evidence (a list of them, or an
    object holding them under ``comparisons``)."""
    if isinstance(evidence, dict):
        evidence = evidence.get("comparisons")
    if not isinstance(evidence, list):
        return None
    return [
        {"comparison": str(e.get("comparison", "")), "level": _text(e.get("level")), "weight": _number(e.get("weight"))}
        for e in evidence
        if isinstance(e, dict)
    ]


def why(store: Store, contact_id: int, other_id: int, guards: Guards) -> dict[str, Any]:
    """The chain of links that joins two contacts of one group: shared values (the exact
    rule), model links with their comparison weights, review decisions, and the requests
    that joined groups. Raises :class:`NotFound`, or :class:`NotLinked` when the two
    are in different groups.

    The chain is a shortest one through the links that still stand. A group whose
    history does not connect the two (links made before the audit recorded their pair,
    or by a change this module does not know) is joined through the contacts' current
    links to their primary instead, rule ``member``.
    """
    with store.read() as tx:
        first, second = _contact(tx, contact_id), _contact(tx, other_id)
        primary, other_primary = _group_primary(first), _group_primary(second)
        if primary != other_primary:
            raise NotLinked(
                f"contacts {contact_id} and {other_id} are not one person: their groups' primaries are {primary} and {other_primary}"
            )
        members = {r.id: r for r in persons.group_of(tx, primary)}
        links = _event_links(tx, members)
    adjacency = _adjacency(members, links, guards)
    steps = _chain(contact_id, other_id, adjacency)
    if steps is not None:
        result = [_link_json(a, node, b, links) for a, node, b in steps]
    else:  # up to the primary, and down from it
        result = [_member_link(members[contact_id], members[contact_id].id, primary)] if contact_id != primary else []
        if other_id != primary:
            result.append(_member_link(members[other_id], primary, other_id))
    return {"contactId": contact_id, "otherId": other_id, "primaryContactId": primary, "links": result}


def _member_link(row, step_from: int, step_to: int) -> dict[str, Any]:
    """A secondary's current link to its primary, from its own columns, in the direction
    the chain walks it."""
    return {
        "from": step_from,
        "to": step_to,
        "rule": "member",
        "description": f"linked to primary {row.linkedId} ({row.linkMethod})",
        "field": None,
        "value": None,
        "at": None,
        "auditId": None,
        "cause": None,
        **cause_parts(None),
        "score": row.linkScore,
        "modelVersion": row.linkModel,
        "matchWeight": None,
        "comparisons": None,
    }


__all__ = [
    "MAX_SEARCH_GROUPS",
    "PersonError",
    "NotFound",
    "NotLinked",
    "HistoryPage",
    "cause_parts",
    "person",
    "find",
    "search",
    "history",
    "why",
]
