"""Replay a labelled stream through the engine and score the grouping it ends with.

The replay goes through exactly what ``POST /identify`` runs (``Reconciler.parse`` then
``Reconciler.identify``) on a fresh database, so the numbers describe the service, not a
model of it. Each event is scored by the group its contact belongs to at the END of the
replay: the contact the event created (or, when it created nothing, the primary it was
answered with) is mapped to its final primary with one query, since later merges move
whole groups under older primaries.
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from ..config import Settings
from ..engine.reconciler import IdentifyResult, Reconciler
from ..normalize import InvalidInput, parse_identity
from ..scoring.documents import ModelUnavailable
from ..store import Store
from ..store.exports import contact_count, pending_merge_count, primary_of_each_contact
from ..store.migrate import reset, upgrade
from ..training.evaluation import cluster_metrics
from .generator import read_stream

#: The runs ``reconcile evaluate`` compares: the exact rules alone, then the full pipeline.
RUNS: tuple[tuple[str, dict], ...] = (("exact baseline", {"probabilistic": False}), ("probabilistic", {}))
#: The reference row computed offline by :func:`contract_components`.
CONTRACT_RUN = "contract (offline)"


def contract_components(
    path: str | Path, default_region: str = "US", limit: int | None = None, assignments: list | None = None
) -> dict:
    """The grouping the original contract alone ends with, without the engine: connected
    components of events joined by a shared normalised email or phone.

    The engine's exact stage applies over-merge guards, so its baseline is already not
    the bare contract; this reference shows what transitive exact linking does unguarded.
    """
    parent: dict = {}

    def find(node):
        root = node
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    persons: list = []
    rejected = 0
    started = time.perf_counter()
    for i, event in enumerate(read_stream(path, limit)):
        try:
            identity = parse_identity({k: event.get(k) for k in ("email", "phoneNumber", "name")}, default_region)
        except InvalidInput:
            rejected += 1
            continue
        node = find(i)
        for key in (("email", identity.email), ("phone", identity.phone)):
            if key[1] is not None:
                other = find(key)
                if other != node:
                    parent[other] = node
        persons.append((event["person"], i))
    seconds = time.perf_counter() - started
    labelled = [(i, person, find(i)) for person, i in persons]
    if assignments is not None:
        assignments.extend(labelled)
    metrics = cluster_metrics((person, cluster) for _, person, cluster in labelled)
    events = len(persons) + rejected
    return {
        "events": events,
        "rejected": rejected,
        "seconds": seconds,
        "events_per_second": None,
        "pending_merges": None,
        "probabilistic": False,
        **metrics.as_dict(),
    }


def identify_events(
    reconciler: Reconciler, path: str | Path, limit: int | None = None
) -> Iterator[tuple[int, dict, IdentifyResult | None]]:
    """Each event of the stream (index from 0) through ``Reconciler.identify``, exactly as
    ``/identify`` runs it; ``None`` for an event rejected as invalid input."""
    for n, event in enumerate(read_stream(path, limit)):
        try:
            identity = reconciler.parse({k: event.get(k) for k in ("email", "phoneNumber", "name")})
        except InvalidInput:
            yield n, event, None
            continue
        yield n, event, reconciler.identify(identity)


def scored_contact(result: IdentifyResult) -> int:
    """The contact an event is scored by: the one it created, else its group's primary."""
    created = result.match.get("createdContactIds") or []
    return created[0] if created else result.contact["primaryContactId"]


def replay(
    path: str | Path,
    settings: Settings,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
    assignments: list | None = None,
) -> dict:
    """Replay ``path`` into the (already migrated, empty) database of ``settings`` and score it.

    ``assignments``, when given, receives ``(event index, person, final primary id)`` for
    every accepted event, for error analysis. ``progress(n)`` is called after each event,
    accepted or rejected (``n`` counted from 1).
    """
    store = Store(settings.database_url, pool_size=2)
    reconciler = Reconciler(store, settings)
    persons: list = []
    contact_ids: list[int] = []
    indices: list[int] = []
    rejected = 0
    try:
        started = time.perf_counter()
        for n, event, result in identify_events(reconciler, path, limit):
            if result is None:
                rejected += 1
            else:
                contact_ids.append(scored_contact(result))
                persons.append(event["person"])
                indices.append(n)
            if progress is not None:
                progress(n + 1)
        seconds = time.perf_counter() - started

        final = primary_of_each_contact(store)
        pending = pending_merge_count(store)
    finally:
        store.dispose()

    if assignments is not None:
        assignments.extend((i, person, final[cid]) for i, person, cid in zip(indices, persons, contact_ids))
    metrics = cluster_metrics((person, final[cid]) for person, cid in zip(persons, contact_ids))
    events = len(persons) + rejected
    return {
        "events": events,
        "rejected": rejected,
        "seconds": seconds,
        "events_per_second": events / seconds if seconds else 0.0,
        "pending_merges": pending,
        "contacts": len(final),
        "probabilistic": settings.probabilistic,
        **metrics.as_dict(),
    }


def evaluate_stream(
    path: str | Path,
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    limit: int | None = None,
    progress: Callable[[str, int], None] | None = None,
    assignments_path: str | Path | None = None,
) -> dict:
    """Score the exact-rules baseline and the full pipeline on ``path``, each on a fresh database.

    ``settings`` supplies the model and thresholds (default: ``Settings()``); each run
    overrides ``probabilistic`` (see :data:`RUNS`). Without ``database_url`` every run gets
    a temporary SQLite file; with one, that database must hold no contacts, and its
    tables are dropped and re-created before each run. A run whose model cannot be
    loaded is reported as ``{"error": ...}`` so the baseline still comes out.
    ``assignments_path`` receives one JSON line per run and event (``run``, ``event``,
    ``person``, ``cluster``) for error analysis.
    """
    base = settings or Settings()
    # the reset below is destructive: refusing a database with contacts means a mistyped
    # URL cannot wipe real data
    if database_url is not None and contact_count(database_url):
        raise ValueError("the evaluation database already holds contacts: give an empty scratch database")
    assigned: dict[str, list] = {CONTRACT_RUN: []}
    runs = {CONTRACT_RUN: contract_components(path, base.default_region, limit, assigned[CONTRACT_RUN])}
    for name, overrides in RUNS:
        assigned[name] = []
        step = (lambda n, run=name: progress(run, n)) if progress else None
        try:
            if database_url is None:
                with tempfile.TemporaryDirectory(prefix="reconcile-eval-") as tmp:
                    url = f"sqlite:///{Path(tmp) / 'replay.db'}"
                    upgrade(url)
                    run_settings = replace(base, database_url=url, **overrides)
                    runs[name] = replay(path, run_settings, limit, step, assigned[name])
            else:
                reset(database_url)
                run_settings = replace(base, database_url=database_url, **overrides)
                runs[name] = replay(path, run_settings, limit, step, assigned[name])
        except ModelUnavailable as exc:
            runs[name] = {"error": str(exc)}
    if assignments_path is not None:
        _write_assignments(assigned, assignments_path)
    return {"stream": str(path), "limit": limit, "runs": runs}


def _write_assignments(assigned: dict[str, list], path: str | Path) -> None:
    import json

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        for run, rows in assigned.items():
            for event, person, cluster in rows:
                out.write(json.dumps({"run": run, "event": event, "person": person, "cluster": cluster}) + "\n")


def print_report(report: dict) -> None:
    """The runs side by side, one row each, as a rich table on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report['stream']}: events scored by their final group; split = persons over >1 group")
    columns = (
        ("run", None), ("pair P", "pairwise_precision"), ("pair R", "pairwise_recall"),
        ("pair F1", "pairwise_f1"), ("B³ P", "bcubed_precision"), ("B³ R", "bcubed_recall"),
        ("B³ F1", "bcubed_f1"), ("over-merged", "overmerged_clusters"), ("split", "split_persons"),
        ("largest (persons)", None), ("pending", "pending_merges"), ("rejected", "rejected"),
        ("events/s", "events_per_second"),
    )
    for header, _ in columns:
        table.add_column(header, justify="left" if header == "run" else "right", no_wrap=header == "run")
    errors = []
    for name, run in report["runs"].items():
        if "error" in run:
            table.add_row(name, *(["n/a"] * (len(columns) - 1)))
            errors.append(f"{name}: {run['error']}")
            continue
        cells = []
        for header, key in columns:
            if header == "run":
                cells.append(name)
            elif header == "largest (persons)":
                cells.append(f"{run['largest_cluster']} ({run['largest_cluster_persons']})")
            elif run[key] is None:
                cells.append("-")
            elif isinstance(run[key], float):
                cells.append(f"{run[key]:.0f}" if key == "events_per_second" else f"{run[key]:.4f}")
            else:
                cells.append(str(run[key]))
        table.add_row(*cells)
    console = Console(width=max(Console().width, 160))
    console.print(table)
    for error in errors:
        console.print(error)
    reference = report["runs"][CONTRACT_RUN]
    console.print(
        f"{reference['events']} events of {reference['persons']} persons. "
        f"'{CONTRACT_RUN}': the bare contract's connected components, no guards, computed without the engine."
    )


def write_json(report: dict, path: str | Path) -> None:
    import json

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
