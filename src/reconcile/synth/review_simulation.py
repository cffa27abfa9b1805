"""A labelled stream through the engine, and a scripted reviewer that decides the review
queue from the stream's truth: the real flow that produces labels, for tests and the
measured loop (bench/review_loop.py).

:func:`replay_tracking` runs what :func:`reconcile.synth.replay.replay` runs (``Reconciler.parse``
then ``Reconciler.identify`` per event) and also remembers which person each created
contact belongs to, which the reviewer needs.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ..config import Settings
from ..engine.reconciler import Reconciler
from ..review import queue as review
from ..store import Store
from ..store.exports import pending_merge_count, primary_of_contact, primary_of_each_contact
from ..store.reviews import pending_items
from ..training.evaluation import cluster_metrics
from .replay import identify_events, scored_contact


def replay_tracking(
    path: str | Path,
    settings: Settings,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
    links: list[tuple[int, int]] | None = None,
) -> tuple[dict, dict[int, object], list[tuple[object, int]]]:
    """Replay ``path`` into the (migrated) database of ``settings``.

    Returns the metrics :func:`reconcile.synth.replay.replay` reports, contact id -> person,
    and (person, contact id the event is scored by) per accepted event. ``links``, when
    given, receives (new contact, candidate) of every automatic (probabilistic) link.
    """
    store = Store(settings.database_url, pool_size=2)
    person_of: dict[int, object] = {}
    events: list[tuple[object, int]] = []
    rejected = 0
    try:
        reconciler = Reconciler(store, settings)
        started = time.perf_counter()
        for n, event, result in identify_events(reconciler, path, limit):
            if result is None:
                rejected += 1
                continue
            for cid in result.match.get("createdContactIds") or []:
                person_of[cid] = event["person"]
            if links is not None and result.match.get("method") == "probabilistic":
                links.append((result.match["createdContactIds"][0], result.match["candidateId"]))
            events.append((event["person"], scored_contact(result)))
            if progress is not None and (n + 1) % 1000 == 0:
                progress(n + 1)
        seconds = time.perf_counter() - started
        metrics = grouping_metrics(store, events)
        pending = pending_merge_count(store)
    finally:
        store.dispose()
    metrics.update(
        events=len(events) + rejected, rejected=rejected, seconds=seconds, pending_merges=pending,
        events_per_second=(len(events) + rejected) / seconds if seconds else 0.0,
    )
    return metrics, person_of, events


def grouping_metrics(store: Store, events: list[tuple[object, int]]) -> dict:
    """Pairwise and B-cubed scores of the store's CURRENT grouping of the events' contacts."""
    final = primary_of_each_contact(store)
    return cluster_metrics((person, final[cid]) for person, cid in events).as_dict()


def play_reviewer(
    store: Store, person_of: dict[int, object], by: str = "oracle", limit: int | None = None
) -> dict[str, int]:
    """Decide every pending merge (oldest first; at most ``limit`` decisions) from the
    truth: confirm when the item's two contacts (the scored pair, or for a guard item
    its contact and the other group's primary) belong to the same person, else reject.
    Items that go stale meanwhile are skipped. Returns the counts."""
    items = pending_items(store)
    counts = {"confirmed": 0, "rejected": 0, "stale": 0, "unknown": 0}
    for item in items:
        if limit is not None and counts["confirmed"] + counts["rejected"] >= limit:
            break
        a = item.contactId
        if item.candidateId is not None:
            b = item.candidateId
        else:  # a guard item: the contact against the primary of the other group
            b = item.leftPrimaryId if _primary(store, a) == item.rightPrimaryId else item.rightPrimaryId
        if a not in person_of or b not in person_of:
            counts["unknown"] += 1
            continue
        decision = "confirm" if person_of[a] == person_of[b] else "reject"
        try:
            review.decide(store, item.id, by, decision)
        except review.ReviewError:
            counts["stale"] += 1
            continue
        counts["confirmed" if decision == "confirm" else "rejected"] += 1
    return counts


def _primary(store: Store, contact_id: int | None) -> int | None:
    return None if contact_id is None else primary_of_contact(store, contact_id)
