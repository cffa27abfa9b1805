"""Clustering the whole table: greedy agglomerative merging under constraints.

Connected components over every link above a threshold chains strangers: one false
link (a family phone, a recycled number) joins two people and everyone linked to
either. Here the links are taken one at a time, strongest first, and each joins two
clusters only if the joined cluster would still be one person as far as the data and
people's decisions say:

1. **Order.** A pair a reviewer confirmed comes first, then pairs sharing an email or
   phone that links (the contract's own rule, for values that are not placeholders, not
   recorded by a guard as shared, and not carried by clearly different names) and the
   contacts one request presented together (an exact-stage merge), then the
   model's pairs at or above the threshold by descending match weight (ties by ids, so
   every engine gives the same order).
2. **Refusals.** A link is refused when its two clusters hold a cannot-link pair (a
   reviewer's rejection or a detachment: nomenklatura's negative judgements), when the
   joined cluster would exceed the group-size cap (for a shared value between clusters
   whose names are all one person's, the higher cap the online guard gives them:
   :meth:`reconcile.engine.guards.Guards.merge_block`), or (except for a reviewer's
   confirmation) when no name of one cluster is compatible with any name of the other
   (:func:`reconcile.names.keys_compatible`: equal, initial, nickname or near spelling;
   the online ``shared-identifier`` guard's test, applied to whole clusters).

Cannot-links and the size caps only grow stricter as clusters grow (a cluster's names
only add clashes), so a link refused for them stays refused. Every accepted and refused link is kept, so the diff can say which
link joined two live groups and why a live group came apart.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..names import keys_compatible, one_person

#: the kinds of link, strongest first
REVIEW, SHARED_VALUE, MODEL = "review", "shared-value", "model"
_RANK = {REVIEW: 0, SHARED_VALUE: 1, MODEL: 2}
#: names kept per cluster to compare (a cluster is at most the group-size cap anyway)
MAX_NAMES = 32


@dataclass(frozen=True)
class Link:
    a: int
    b: int
    kind: str
    weight: float | None = None

    def order(self) -> tuple:
        weight = -round(self.weight, 6) if self.weight is not None else 0.0
        return (_RANK[self.kind], weight, min(self.a, self.b), max(self.a, self.b))


@dataclass
class Clusters:
    """The outcome: each contact's cluster (named by its smallest contact id), and what
    became of every link that was considered."""

    label: dict[int, int]
    accepted: list[Link] = field(default_factory=list)
    #: link -> the refusal: cannot-link, group-size or names
    refused: list[tuple[Link, str]] = field(default_factory=list)


def cluster(
    names: dict[int, str | None],
    links: Iterable[Link],
    *,
    cannot_link: Iterable[tuple[int, int]],
    max_size: int,
    one_person_size: int | None = None,
) -> Clusters:
    """Cluster the contacts ``names`` lists (id -> stored name key) along ``links``.

    ``one_person_size`` (default ``max_size``) is the cap on a shared-value link between
    two clusters whose names are all one person's (:func:`reconcile.names.one_person`), as
    the online exact stage allows them; a live group grown so would otherwise come back
    from every re-resolution as a proposed split.

    A contact no link touches stays a cluster of its own without costing an entry in the
    union-find (most of a million contacts are alone): ``parent``, ``size`` and the
    clusters' names are filled in as links reach them."""
    parent: dict[int, int] = {}
    size: dict[int, int] = {}
    cluster_names: dict[int, list[str]] = {}
    forbidden: dict[int, set[int]] = {}
    for a, b in cannot_link:
        if a in names and b in names:
            forbidden.setdefault(a, set()).add(b)
            forbidden.setdefault(b, set()).add(a)

    def find(i: int) -> int:
        root = i
        while (up := parent.get(root, root)) != root:
            root = up
        while i != root and parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    def names_of(root: int) -> list[str]:
        if root not in cluster_names:
            key = names[root]
            cluster_names[root] = [key] if key else []
        return cluster_names[root]

    outcome = Clusters(label={})
    for link in sorted(links, key=Link.order):
        ra, rb = find(link.a), find(link.b)
        if ra == rb:
            continue
        refusal = None
        if any(find(x) == rb for x in forbidden.get(ra, ())):
            refusal = "cannot-link"
        elif size.get(ra, 1) + size.get(rb, 1) > _cap(link, names_of(ra), names_of(rb), max_size, one_person_size):
            refusal = "group-size"
        elif link.kind != REVIEW and not _names_agree(names_of(ra), names_of(rb)):
            refusal = "names"
        if refusal:
            outcome.refused.append((link, refusal))
            continue
        if size.get(ra, 1) < size.get(rb, 1):
            ra, rb = rb, ra
        parent[rb] = ra
        size[ra] = size.get(ra, 1) + size.pop(rb, 1)
        merged = names_of(ra)
        for key in names_of(rb):
            if key not in merged and len(merged) < MAX_NAMES:
                merged.append(key)
        del cluster_names[rb]
        if rb in forbidden:
            forbidden.setdefault(ra, set()).update(forbidden.pop(rb))
        outcome.accepted.append(link)
    smallest: dict[int, int] = {}
    for i in parent:
        root = find(i)
        smallest[root] = min(smallest.get(root, root), i)
    outcome.label = {i: smallest.get(find(i), i) for i in names}
    return outcome


def _cap(link: Link, left: list[str], right: list[str], max_size: int, one_person_size: int | None) -> int:
    """The size a cluster joined by ``link`` may reach."""
    if one_person_size is not None and link.kind == SHARED_VALUE and one_person(left, right):
        return one_person_size
    return max_size


def _names_agree(left: list[str], right: list[str]) -> bool:
    """True unless both clusters carry names and none of one is compatible with any of the other."""
    if not left or not right:
        return True
    return any(keys_compatible(a, b) for a in left for b in right)
