"""Batch work at scale, one section per stage (``--stage``): ``import`` loads a realistic
stream with ``reconcile import``'s code path into a fresh SQLite database with the shipped
settings (model on, guards on) and reports events/s per window and overall, CPU ms per
event and peak RSS.

The stream is the generator's noisiest, ``reconcile synth --size large`` (1M events of
~390k persons; the same cached file as ``bench growth``), its first ``--events`` events
written as an import file (JSON Lines: email, phoneNumber, name, createdAt = the event's
time, externalId = the person). Issue 9's target: at least 3,000 events/s for 1M events
on this 2-core machine.

Sections are functions in :data:`STAGES`; a new stage (``resolve``) adds its own.
Run ``python -m bench batch --help`` for the options.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

from bench import growth
from bench import identify as ib

OUT = ib.RESULTS / "batch.json"
IMPORT_DIR = ib.RESULTS / "import"
TARGET_EVENTS_PER_S = 3000


def import_file_for(events: int, log) -> Path:
    """The first ``events`` events of the large stream as an import file (cached)."""
    from reconcile.synth.generator import read_stream

    stream = growth.ensure_stream("large", 0, log)
    path = IMPORT_DIR / f"{stream.name.split('.')[0]}-{events}.jsonl"
    if path.exists():
        return path
    IMPORT_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        for event in read_stream(stream, events):
            row = {k: event[k] for k in ("email", "phoneNumber", "name")}
            row["createdAt"], row["externalId"] = event["ts"], f"person-{event['person']}"
            out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
    tmp.rename(path)
    log(f"import file: {path.relative_to(ib.ROOT)}")
    return path


def stage_import(args, log) -> dict:
    """Import ``--events`` events into a fresh SQLite database; one row per window."""
    from reconcile.config import Settings
    from reconcile.engine.reconciler import Reconciler
    from reconcile.ingest.loader import DEFAULT_BATCH, import_file
    from reconcile.store import Store
    from reconcile.store.migrate import upgrade

    path = import_file_for(args.events, log)
    ib.RUN_DIR.mkdir(parents=True, exist_ok=True)
    db = ib.RUN_DIR / "batch-import.db"
    for suffix in ("", "-wal", "-shm", "-writelock"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{db}"
    upgrade(url)
    settings = Settings(database_url=url)  # the shipped settings: model on, guards on
    store = Store(url, pool_size=2)
    reconciler = Reconciler(store, settings)
    windows: list[dict] = []
    state = {"done": 0, "window_start": 0}
    clock = {"wall": 0.0, "cpu": 0.0}

    def open_window() -> None:
        growth._reset_peak_rss()
        clock["wall"], clock["cpu"] = time.perf_counter(), time.process_time()
        state["window_start"] = state["done"]

    def close_window() -> None:
        events = state["done"] - state["window_start"]
        wall = time.perf_counter() - clock["wall"]
        windows.append({
            "first": state["window_start"] + 1,
            "last": state["done"],
            "events_per_s": round(events / wall, 1) if wall else 0.0,
            "cpu_ms_per_event": round((time.process_time() - clock["cpu"]) * 1000 / max(1, events), 3),
            "peak_rss_mb": round(growth._peak_rss_mb()),
            "load_1m": round(os.getloadavg()[0], 2),
        })
        log(f"  events {windows[-1]['first']:,}-{windows[-1]['last']:,}: {windows[-1]['events_per_s']:,.0f}/s, "
            f"{windows[-1]['cpu_ms_per_event']} CPU ms/event, peak RSS {windows[-1]['peak_rss_mb']} MB")

    def on_start(position: int, total: int) -> None:
        log(f"loading {total:,} events (scan done in {time.perf_counter() - started:.1f}s)")
        open_window()

    def on_batch(n: int) -> None:
        state["done"] += n
        if state["done"] - state["window_start"] >= args.window:
            close_window()
            open_window()

    started = time.perf_counter()
    cpu_started = time.process_time()
    children_started = _children_cpu()
    growth._reset_peak_rss()
    try:
        summary = import_file(
            path, reconciler, batch_size=args.batch_size, workers=args.workers, on_start=on_start, on_batch=on_batch
        )
    finally:
        store.dispose()
    workers_cpu = _children_cpu() - children_started  # the workers have exited: their CPU is counted
    if state["done"] > state["window_start"]:
        close_window()
    seconds = time.perf_counter() - started
    result = {
        "stage": "import",
        "events": args.events,
        "batch_size": args.batch_size or DEFAULT_BATCH["sqlite"],
        "workers": args.workers,
        "seconds": round(seconds, 1),
        "events_per_s": round(summary.run.records / seconds, 1),
        "cpu_ms_per_event": round((time.process_time() - cpu_started) * 1000 / max(1, summary.run.records), 3),
        "workers_cpu_ms_per_event": round(workers_cpu * 1000 / max(1, summary.run.records), 3),
        "load_1m": round(os.getloadavg()[0], 2),
        "peak_rss_mb": max(w["peak_rss_mb"] for w in windows) if windows else round(growth._peak_rss_mb()),
        "totals": summary.totals,
        "windows": windows,
    }
    if args.check:
        from reconcile.store.invariants import check

        checker = Store(url, pool_size=1)
        try:
            result["invariants_broken"] = len(check(checker))
        finally:
            checker.dispose()
    return result


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's children that have exited."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: --stage NAME -> the function that runs it and returns its result
STAGES: dict[str, Callable] = {"import": stage_import}


def print_import(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    met = "meets" if result["events_per_s"] >= TARGET_EVENTS_PER_S else "misses"
    table = Table(title=(
        f"reconcile import, {result['events']:,} events, SQLite, model on, batch {result['batch_size']}, "
        f"{result['workers']} worker(s): "
        f"{result['events_per_s']:,.0f} events/s overall ({met} the {TARGET_EVENTS_PER_S:,}/s target)"
    ))
    for header in ("events", "events/s", "CPU ms/event", "peak RSS MB", "load 1m"):
        table.add_column(header, justify="right")
    for w in result["windows"]:
        table.add_row(f"{w['first']:,}-{w['last']:,}", f"{w['events_per_s']:,.0f}", f"{w['cpu_ms_per_event']:.3f}",
                      str(w["peak_rss_mb"]), f"{w['load_1m']:.1f}")
    table.add_row("all", f"{result['events_per_s']:,.0f}", f"{result['cpu_ms_per_event']:.3f}", str(result["peak_rss_mb"]), "", style="bold")
    console = Console(width=max(Console().width, 120))
    console.print(table)
    t = result["totals"]
    console.print(
        f"{result['seconds']}s in all (scan included); the workers' CPU {result['workers_cpu_ms_per_event']:.3f} ms/event "
        f"beside the main process's; load {result['load_1m']:.1f} at the end; loaded {t['loaded']:,} (linked {t['linked']:,}, probabilistic "
        f"{t['probabilistic']:,}; created {t['created']:,} persons, {t['contacts']:,} contacts), pending {t['pending']:,}, "
        f"rejected {t['rejected']:,}"
        + (f"; invariants broken: {result['invariants_broken']}" if "invariants_broken" in result else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench batch", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="import", help=f"comma-separated: {', '.join(STAGES)}")
    parser.add_argument("--events", type=int, default=1_000_000, help="events of the large stream to import")
    parser.add_argument("--batch-size", type=int, default=None, help="events per transaction (default: reconcile import's for SQLite)")
    parser.add_argument("--workers", type=int, default=1, help="processes parsing records ahead (reconcile import --workers)")
    parser.add_argument("--window", type=int, default=50_000, help="events per table row")
    parser.add_argument("--check", action="store_true", help="run reconcile check on the result (slow at 1M)")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, flush=True)

    results = {}
    for stage in [s.strip() for s in args.stage.split(",") if s.strip()]:
        if stage not in STAGES:
            parser.error(f"unknown stage {stage!r}: {', '.join(STAGES)}")
        results[stage] = STAGES[stage](args, log)
        if stage == "import":
            print_import(results[stage])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0
