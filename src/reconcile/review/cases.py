"""Cases: the pending items that touch the same groups, decided together.

One person split into several groups by the guards opens an item per pair of groups;
asked one by one, a reviewer answers the same question many times. A case is a
connected component of the graph whose nodes are groups (by their *current* primary)
and whose edges are pending items. The reviewer says which of its groups are one
person; every item of the case is then settled in one transaction: an item between two
groups of the same person is confirmed (merging them, unless an earlier step of the
case already did), an item between different people is rejected (a cannot-link). Each
item gets its own label, both sides as they were when the case was opened.

Cases are computed when read, from the pending items and the contacts' current links,
so they are never stale; a case is named by its lowest item id. Items of any kind slot
in: a case needs only each item's two groups.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..engine.audit_sampling import LINK as AUDIT_LINK
from ..engine.exact import age_key
from ..store import Store, reviews
from ..store.contacts import ContactTx, utcnow
from .explain import Bands
from .queue import (
    MAX_PAGE,
    MAX_PER_PAGE,
    DecisionResult,
    NotFound,
    Order,
    ReviewError,
    _apply_confirm,
    _apply_reject,
    _current_sides,
    _write_label,
    as_utc,
    record,
    summaries,
)


class CaseChanged(ReviewError):
    """The case is no longer what the reviewer saw (an item decided or closed, a group
    merged or split meanwhile): nothing was written; reload it."""

    code = "case_changed"


@dataclass(frozen=True)
class Case:
    """Items (ids, ascending) and the groups they join (current primaries, ascending)."""

    item_ids: tuple[int, ...]
    groups: tuple[int, ...]
    score: float | None
    #: as the store hands it back (SQLite: naive UTC), comparable within one database
    opened_at: datetime

    @property
    def id(self) -> int:
        return self.item_ids[0]


def find_cases(store: Store) -> list[Case]:
    """Every pending item in exactly one case (union-find over the groups it joins).

    One read of every pending item's two current groups, then linear work: at tens of
    thousands of pending items this is the cost of reading the queue (bench
    ``review_cases``)."""
    edges, cases = [], []
    for item_id, left, right, score, opened, audit in reviews.pending_edges(store):
        if audit == AUDIT_LINK:
            # an audited automatic link joins two groups already made one: it asks about
            # that link alone (its item page shows the two groups as the model found them)
            cases.append(Case((item_id,), (left,), score, opened))
        else:
            edges.append((item_id, left, right, score, opened))
    parent: dict[int, int] = {}

    def root(node: int) -> int:
        top = node
        while parent.get(top, top) != top:
            top = parent[top]
        while node != top:  # path compression
            parent[node], node = top, parent[node]
        return top

    for _, left, right, _, _ in edges:
        a, b = root(left), root(right)
        if a != b:
            parent[max(a, b)] = min(a, b)
    members: dict[int, list[tuple]] = {}
    for e in edges:
        members.setdefault(root(e[1]), []).append(e)
    for found in members.values():
        if len(found) == 1:  # most cases: one pair, nothing to merge or sort
            item_id, left, right, score, opened = found[0]
            cases.append(Case((item_id,), (left, right) if left < right else (right, left), score, opened))
            continue
        scores = [e[3] for e in found if e[3] is not None]
        cases.append(
            Case(
                item_ids=tuple(sorted(e[0] for e in found)),
                groups=tuple(sorted({g for e in found for g in (e[1], e[2])})),
                score=max(scores) if scores else None,
                opened_at=min(e[4] for e in found),
            )
        )
    return cases


def _ordered(cases: list[Case], order: Order) -> list[Case]:
    if order == "age":
        return sorted(cases, key=lambda c: (c.opened_at, c.id))
    # the largest cases first among equal scores: one decision settles the most there
    return sorted(cases, key=lambda c: (c.score is None, -(c.score or 0.0), -len(c.item_ids), c.id))


@dataclass(frozen=True)
class CasePage:
    cases: list[dict[str, Any]]
    total: int
    items: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def list_cases(
    store: Store, order: Order = "score", page: int = 1, per_page: int = 50, bands: Bands | None = None
) -> CasePage:
    """One page of cases, each with its items as the list shows them."""
    if not 1 <= page <= MAX_PAGE:
        raise ValueError(f"page must be from 1 to {MAX_PAGE}, not {page}")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise ValueError(f"per_page must be from 1 to {MAX_PER_PAGE}, not {per_page}")
    cases = _ordered(find_cases(store), order)
    shown = cases[(page - 1) * per_page : page * per_page]
    with store.read() as tx:
        rows = reviews.items_with_pairs(tx, [i for c in shown for i in c.item_ids])
    by_id = {item["id"]: item for item in summaries(store, rows, bands or {})}
    return CasePage(
        [_case_summary(c, [by_id[i] for i in c.item_ids if i in by_id]) for c in shown],
        len(cases),
        sum(len(c.item_ids) for c in cases),
        page,
        per_page,
    )


def _case_summary(case: Case, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A case as the list shows it: its size, best score, and each scored contact once."""
    people: dict[int, dict[str, Any]] = {}
    for item in items:
        for side in (item["contact"], item["candidate"]):
            if side is not None:
                people.setdefault(side["id"], side)
    return {
        "id": case.id,
        "itemIds": list(case.item_ids),
        "groups": list(case.groups),
        "pairs": len(case.item_ids),
        "score": case.score,
        "openedAt": as_utc(case.opened_at).isoformat(),
        "items": items,
        "contacts": sorted(people.values(), key=lambda c: c["id"]),
    }


def case_of(store: Store, item_id: int) -> Case:
    """The pending case holding item ``item_id``; :class:`NotFound` when no pending item has it."""
    for case in find_cases(store):
        if item_id in case.item_ids:
            return case
    raise NotFound(item_id, f"no pending case holds review {item_id}")


def get_case(store: Store, item_id: int, bands: Bands | None = None) -> dict[str, Any]:
    """The case holding ``item_id``: every group in full (oldest first), and every item
    with its explanation, which names the two groups it joins now."""
    case = case_of(store, item_id)
    with store.read() as tx:
        rows = reviews.items_with_pairs(tx, case.item_ids)
        sides = {r.id: _current_sides(tx, r).primaries for r in rows}
        members = tx.group_members(case.groups)
    items = summaries(store, rows, bands or {})
    for item in items:
        item["leftGroup"], item["rightGroup"] = sides[item["id"]]["left"], sides[item["id"]]["right"]
    by_group: dict[int, list[Any]] = {g: [] for g in case.groups}
    for m in members:
        by_group[m.linkedId or m.id].append(m)
    groups = sorted(
        ({"primaryId": g, "contacts": [record(c) for c in sorted(cs, key=age_key)]} for g, cs in by_group.items()),
        key=lambda g: g["primaryId"],
    )
    summary = _case_summary(case, items)
    summary["groupMembers"] = groups
    return summary


def _validate(case: Case, persons: Sequence[Sequence[int]], edges: list[tuple[int, int, int]]) -> dict[int, int]:
    """Each group's person (index into ``persons``). :class:`CaseChanged` when the
    persons name a group the case no longer joins; ``ValueError`` when a group is named
    twice or not at all, or a person's groups are not joined by the case's items among
    them (a merge needs an item to confirm)."""
    person_of: dict[int, int] = {}
    for n, groups in enumerate(persons):
        for g in groups:
            if g in person_of:
                raise ValueError(f"group {g} is in two persons")
            person_of[g] = n
    if not set(person_of) <= set(case.groups):
        raise CaseChanged(case.id, f"case {case.id} now joins groups {list(case.groups)}, not the ones named; reload it")
    if set(person_of) != set(case.groups):
        missing = sorted(set(case.groups) - set(person_of))
        raise ValueError(f"give every group of the case a person: groups {missing} have none")
    for n, groups in enumerate(persons):
        reached, frontier = {groups[0]}, [groups[0]]
        while frontier:
            node = frontier.pop()
            for _, a, b in edges:
                for x, y in ((a, b), (b, a)):
                    if x == node and y not in reached and person_of[y] == n:
                        reached.add(y)
                        frontier.append(y)
        if reached != set(groups):
            raise ValueError(
                f"groups {sorted(groups)} are one person, but no item of the case joins "
                f"{sorted(set(groups) - reached)} to the others: decide them from the person page"
            )
    return person_of


def decide_case(
    store: Store,
    item_ids: Sequence[int],
    persons: Sequence[Sequence[int]],
    decided_by: str,
    note: str | None = None,
    *,
    case_id: int | None = None,
) -> list[DecisionResult]:
    """Settle every item of a case at once, in one transaction.

    ``item_ids`` are the case's items as the reviewer saw them (the case is the one
    holding ``case_id``, by default the lowest of them); ``persons`` partitions its groups
    (current primaries) into people. Items between groups of one person are confirmed,
    the others rejected; one label per item. Raises :class:`NotFound` when no pending
    case holds ``case_id``, :class:`CaseChanged` (nothing written) when the case now
    holds other items or joins other groups, ``ValueError`` for a partition that does
    not fit it.
    """
    if not item_ids:
        raise ValueError("a case has at least one item")
    case = case_of(store, min(item_ids) if case_id is None else case_id)
    if set(case.item_ids) != set(item_ids):
        raise CaseChanged(case.id, f"case {case.id} now holds reviews {list(case.item_ids)}, not the ones decided; reload it")
    wanted = set(case.item_ids)
    edges = [(e.id, e.left, e.right) for e in reviews.pending_edges(store) if e.id in wanted]
    person_of = _validate(case, persons, edges)

    def work(tx: ContactTx) -> list[DecisionResult] | ReviewError:
        rows = [reviews.item(tx, i, for_update=True) for i in case.item_ids]
        sides = {}
        for row in rows:
            current = _current_sides(tx, row)
            pair = (current.primaries["left"], current.primaries["right"])
            if row.status != "pending" or current.stale_reason is not None or not set(pair) <= set(case.groups):
                return CaseChanged(row.id, f"case {case.id} changed since it was read (review {row.id}); reload it")
            sides[row.id] = pair
        tx.lock_primaries(case.groups)  # StaleGroup (retried) if one was merged meanwhile
        snapshot = {g: tx.group_members([g]) for g in case.groups}
        now = utcnow()
        results: list[DecisionResult] = []
        rejects = [r for r in rows if person_of[sides[r.id][0]] != person_of[sides[r.id][1]]]
        confirms = [r for r in rows if r not in rejects]
        for row in rejects + confirms:
            left, right = sides[row.id]
            cause = f"review:{row.id}:{decided_by}"
            if row in rejects:
                result = _apply_reject(tx, row, left, right, cause, decided_by, now)
            else:
                now_sides = _current_sides(tx, row).primaries
                if now_sides["left"] == now_sides["right"]:  # an earlier confirmation of this case joined them
                    result = DecisionResult(row.id, "confirmed", decided_by, now, primary_id=now_sides["left"])
                else:
                    primaries = sorted(tx.lock_primaries([now_sides["left"], now_sides["right"]]), key=age_key)
                    result = _apply_confirm(tx, row, primaries, cause, decided_by, now, keep_open=case.item_ids)
            reviews.set_status(tx, row.id, result.status, at=now, by=decided_by, note=note)
            _write_label(
                tx, row, {"left": left, "right": right}, {"left": snapshot[left], "right": snapshot[right]},
                "match" if result.status == "confirmed" else "non-match", decided_by, now,
            )
            results.append(result)
        return sorted(results, key=lambda r: r.id)

    outcome = store.write(work, lock_keys=[f"review:{i}" for i in case.item_ids])
    if isinstance(outcome, ReviewError):
        raise outcome
    return outcome


__all__ = ["Case", "CaseChanged", "CasePage", "find_cases", "list_cases", "case_of", "get_case", "decide_case"]
