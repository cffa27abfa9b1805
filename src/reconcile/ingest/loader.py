"""Loading an import file's events through the engine, resumably.

Each batch of events is one call of :meth:`Reconciler.identify_many`: one write
transaction in which every event is decided exactly as ``POST /identify`` decides it,
and in which the run's position and totals also move (:func:`reconcile.store.imports.advance`).
A batch commits whole or not at all, with its progress; so after Ctrl-C, ``kill -9`` or a
crash, running the same command again skips exactly the committed events. Reading and
parsing the records runs ahead in worker processes (:mod:`reconcile.ingest.prepare`)
while this process applies the batches in order.
"""
from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..engine.reconciler import Event, IdentifyResult, Reconciler
from ..store import ContactTx
from ..store.imports import ImportRun, advance, find_run, rejects_of, run_by_id, start_run
from .collector import fewer_collections
from .prepare import Prefetcher, Ready, Refused
from .source import FIELDS, ImportFileError, Scan, check_regular_file, detect_format, fingerprint, raw_lines, scan

log = logging.getLogger(__name__)

#: events per transaction by database (``--batch-size`` unset). On SQLite a commit's CPU
#: grows much more slowly than its batch (at 60-80k contacts: ~37 ms for 500 events, ~75 ms
#: for 2,000; their writes land on the same index pages), so 500 -> 2,000 took the commits
#: from 0.08 to 0.04 CPU ms per event (bench/README.md ``batch``). A batch holds SQLite's write lock while it runs
#: (about 1-2 s of CPU for 2,000 events at 0.5-1M contacts), inside the 5 s default of
#: ``RECONCILE_DB_LOCK_TIMEOUT_SECONDS`` for a service writing meanwhile. On PostgreSQL a
#: batch takes an advisory lock per identifier in the server's shared lock table, so it
#: stays at 500 there.
DEFAULT_BATCH = {"sqlite": 2000, "postgresql": 500}
#: worker processes that read and parse records ahead of the engine (0: none, this
#: process does it between batches)
DEFAULT_WORKERS = 1


@dataclass
class ImportSummary:
    """Where a run stands after this invocation: its totals so far, and what this
    invocation did (``resumed_from``: the position it started at)."""

    run: ImportRun
    resumed_from: int
    loaded_now: int
    seconds: float
    rejects_path: Path | None
    already_done: bool = False

    @property
    def totals(self) -> dict[str, int]:
        return self.run.totals


def _tally(results: list[IdentifyResult]) -> dict[str, int]:
    """A batch's additions to the run's counters: ``created`` new persons (a new primary
    that nothing joined), ``linked`` events answered with an existing person, of which
    ``probabilistic`` by the model; ``contacts`` rows inserted; ``pending`` reviews opened."""
    totals = {"loaded": len(results), "created": 0, "linked": 0, "probabilistic": 0, "contacts": 0, "pending": 0}
    for result in results:
        match = result.match
        if match["method"] == "new":
            totals["created"] += 1
        else:
            totals["linked"] += 1
            totals["probabilistic"] += match["method"] == "probabilistic"
        totals["contacts"] += len(match["createdContactIds"])
        totals["pending"] += len(match["pendingMergeIds"])
    return totals


def answered_contact(result: IdentifyResult) -> int:
    """The contact an event stands for: the one it created, else its group's primary."""
    created = result.match["createdContactIds"]
    return created[0] if created else result.contact["primaryContactId"]


def import_file(
    path: str | Path,
    reconciler: Reconciler,
    *,
    file_format: str | None = None,
    batch_size: int | None = None,
    rejects_path: str | Path | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
    stop_after: int | None = None,
    workers: int = DEFAULT_WORKERS,
) -> ImportSummary:
    """Import ``path`` (or resume its import) through ``reconciler``.

    ``on_start(position, to_load)`` is called once the load order is known,
    ``on_batch(n)`` after each committed batch of ``n`` records (rejected ones included).
    ``stop_after`` stops after that many batches (tests; a resumable stop like Ctrl-C).
    ``workers`` processes read and parse the records ahead (0: this process does).
    ``batch_size`` events commit together (None: :data:`DEFAULT_BATCH` of the database).
    The rejects file (default ``<FILE>.rejects.csv``; written when there are rejects)
    lists every refused row of the run so far: ``line,reason,record``.
    """
    path = Path(path)
    check_regular_file(path)
    fmt = detect_format(path, file_format)
    reject_file = Path(rejects_path) if rejects_path else path.with_name(path.name + ".rejects.csv")
    check_writable(reject_file)
    digest = fingerprint(path)
    store = reconciler.store
    run = find_run(store, digest)
    started_at = run.started_at if run is not None else datetime.now(timezone.utc)
    found = scan(path, fmt, digest, started_at)
    ignored = [c for c in found.columns or () if c not in FIELDS]
    if ignored:  # said before loading: a "phone" column read as no phone at all would be a silent loss
        log.warning(
            "ignoring CSV column(s) %s of %s: only %s are read (names are case-sensitive)",
            ", ".join(ignored), path.name, ", ".join(FIELDS),
        )
    if run is None:
        run = start_run(
            store, fingerprint=digest, source=str(path), file_format=fmt, records=found.records,
            to_load=found.to_load, rejects=found.rejects, started_at=started_at,
        )
    clock = time.perf_counter()
    resumed_from = run.position
    if run.finished_at is not None:
        written = write_rejects(store, run, path, found, reject_file)
        return ImportSummary(run, resumed_from, 0, 0.0, written, already_done=True)
    if run.to_load != found.to_load:  # same bytes, same scan: only a change of the rules could do this
        raise RuntimeError(f"run {run.id} expected {run.to_load} records to load, the file now has {found.to_load}")
    if on_start is not None:
        on_start(run.position, found.to_load)

    position = run.position
    batch_size = batch_size or DEFAULT_BATCH[store.dialect]
    bounds = [
        (start, min(start + batch_size, found.to_load)) for start in range(position, found.to_load, batch_size)
    ][:stop_after]
    # no worker for a single batch: starting one costs more than it saves
    prefetcher = Prefetcher(path, found, started_at, reconciler.settings.default_region, workers if len(bounds) > 1 else 0)
    try:
        if position == found.to_load:  # nothing (left) to load: close the run
            store.write(lambda tx: advance(tx, run.id, start=position, position=position, totals={}, finished=True))
        with fewer_collections():
            for (start, stop), prepared in zip(bounds, prefetcher.batches(iter(bounds))):
                _load_batch(reconciler, run.id, found, start, stop, prepared)
                if on_batch is not None:
                    on_batch(stop - start)
    finally:
        prefetcher.close()
        run = run_by_id(store, run.id)
        written = write_rejects(store, run, path, found, reject_file)
    return ImportSummary(run, resumed_from, run.position - resumed_from, time.perf_counter() - clock, written)


def _load_batch(
    reconciler: Reconciler, run_id: int, found: Scan, start: int, stop: int, prepared: list[Ready | Refused]
) -> None:
    """Load positions ``start`` to ``stop`` (``prepared``) in one transaction with the run's progress."""
    events: list[Event] = []
    loaded: list[Ready] = []
    rejects: list[tuple[int, str]] = []
    for item in prepared:
        if isinstance(item, Refused):
            rejects.append((item.line, item.reason))
            continue
        events.append(Event(item.identity, f"{run_id}:{item.line}", item.at, source="import"))
        loaded.append(item)

    def record_progress(tx: ContactTx, results: list[IdentifyResult]) -> None:
        refs = [
            (record.line, record.external_id, answered_contact(result))
            for record, result in zip(loaded, results)
            if record.external_id is not None
        ]
        totals = {**_tally(results), "rejected": len(rejects)}
        advance(
            tx, run_id, start=start, position=stop, totals=totals, rejects=rejects, refs=refs,
            finished=stop == found.to_load,
        )

    reconciler.identify_many(events, then=record_progress)


def check_writable(target: Path) -> None:
    """Refuse a rejects file that could not be written, before anything loads: it is
    written after the batches commit, and failing then would hide the summary and the
    refused rows of a run that already loaded."""
    directory = target.parent
    if not directory.is_dir():
        raise ImportFileError(f"cannot write the rejects file {target}: no directory {directory}")
    if target.is_dir() or not os.access(target if target.exists() else directory, os.W_OK):
        raise ImportFileError(f"cannot write the rejects file {target}: permission denied (give another with --rejects)")


def write_rejects(store, run: ImportRun, path: Path, found: Scan, target: Path) -> Path | None:
    """Write every row the run refused so far (``line,reason,record``) to ``target``;
    None (and no file) when there is none."""
    refused = rejects_of(store, run.id)
    if not refused:
        return None
    texts = raw_lines(path, found, [line for line, _ in refused])
    # it quotes customers' records: readable by its owner only, like the database
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "reason", "record"])
        for line, reason in refused:
            writer.writerow([line, reason, texts.get(line, "")])
    return target
