"""Batch work at scale, one section per stage (``--stage``): ``import`` loads a realistic
stream with ``reconcile import``'s code path into a fresh SQLite database with the shipped
settings (model on, guards on) and reports events/s per window and overall, CPU ms per
event and peak RSS; ``resolve`` then runs ``reconcile resolve --dry-run`` over the imported
contacts on each engine of ``--engines`` (wall time, CPU, peak RSS of the process tree,
proposals) and scores the online groups and the batch clusters against the stream's truth
(each row's ``externalId`` names its person), pairwise and B-cubed.

The stream is the generator's noisiest, ``reconcile synth --size large`` (1M events of
~390k persons; the same cached file as ``bench growth``), its first ``--events`` events
written as an import file (JSON Lines: email, phoneNumber, name, createdAt = the event's
time, externalId = the person). Issue 9's target: at least 3,000 events/s for 1M events
on this 2-core machine.

Sections are functions in :data:`STAGES`. ``--stage import,resolve --events 1000000`` is
issue 9's benchmark on DuckDB; ``--stage import,resolve --events 100000 --engines spark``
its Spark ``local[2]`` run. ``--stage resolve`` alone resolves the database the last import
left. Run ``python -m bench batch --help`` for the options.
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


def stage_resolve(args, log) -> dict:
    """``reconcile resolve --dry-run`` over the imported database on each engine, then the
    accuracy of the online groups and of the batch clusters against the stream's truth."""
    from bench.resolve import run_resolve

    db = ib.RUN_DIR / "batch-import.db"
    if not db.exists():
        raise SystemExit(f"{db} is missing: run --stage import first (or --stage import,resolve)")
    runs = []
    for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
        extra = ["--memory-limit", args.memory_limit] if engine == "duckdb" else []
        runs.append(run_resolve(db, engine, log, extra))
    result: dict = {"stage": "resolve", "database": str(db.relative_to(ib.ROOT)), "runs": runs}
    if not args.skip_accuracy:
        result["accuracy"] = import_accuracy(db, args.memory_limit, log)
    return result


def import_accuracy(db: Path, memory_limit: str, log) -> dict:
    """Online groups and batch clusters (DuckDB, the active model) scored per loaded row
    against its ``externalId`` (the stream's person), pairwise and B-cubed."""
    from reconcile.batch.flow import resolve
    from reconcile.config import Settings
    from reconcile.store import Store
    from reconcile.store.exports import primary_of_each_contact
    from reconcile.store.imports import external_ids
    from reconcile.training.evaluation import cluster_metrics

    url = f"sqlite:///{db}"
    store = Store(url, pool_size=1)
    try:
        rows = external_ids(store)
        online = primary_of_each_contact(store)
        started = time.perf_counter()
        batch = resolve(store, Settings(database_url=url), memory_limit=memory_limit)
        seconds = time.perf_counter() - started
    finally:
        store.dispose()
    label = batch.clusters.label
    scored = [(person, contact) for person, contact in rows if contact in online]  # erased contacts have no group
    metrics = {
        "online": cluster_metrics((p, online[c]) for p, c in scored).as_dict(),
        "batch": cluster_metrics((p, label[c]) for p, c in scored).as_dict(),
    }
    log(f"accuracy: {len(scored):,} loaded rows scored; in-process resolve {seconds:.0f}s")
    return {
        "rows": len(scored), "metrics": metrics, "resolve_seconds": round(seconds, 1),
        "proposals": proposal_precision(batch.diff, rows),
    }


def proposal_precision(found, rows: list[tuple[str, int]]) -> dict:
    """What a reviewer would find in the proposals, by the stream's truth: a merge proposal
    is right when its pair (the contact and the candidate that joined the two groups) is
    one person, a split proposal when its bridge pair (the leaving contact and the one it
    was joined through) is two. A contact's person is that of the row that created it
    (a row answered by an existing group names the group's primary, not a new contact)."""
    person_of: dict[int, str] = {}
    for person, contact in rows:
        person_of.setdefault(contact, person)

    def share(pairs: list[tuple[int, int]], same: bool) -> dict:
        judged = [person_of[a] == person_of[b] for a, b in pairs if a in person_of and b in person_of]
        right = sum(judged) if same else len(judged) - sum(judged)
        return {"proposed": len(pairs), "judged": len(judged), "right": right,
                "precision": round(right / len(judged), 4) if judged else None}

    return {
        "merges": share([(m.contact_id, m.candidate_id) for m in found.merges], same=True),
        "splits": share([(s.contact_id, s.bridge_contact_id) for s in found.splits], same=False),
    }


#: --stage NAME -> the function that runs it and returns its result
STAGES: dict[str, Callable] = {"import": stage_import, "resolve": stage_resolve}


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


def print_resolve(result: dict) -> None:
    from bench.resolve import print_accuracy, print_runs

    print(f"\nreconcile resolve --dry-run on {result['database']}")
    print_runs(result["runs"])
    if "accuracy" in result:
        a = result["accuracy"]
        print_accuracy(f"accuracy per loaded row ({a['rows']:,} rows; truth: each row's externalId)", a["metrics"])
        for kind, p in a["proposals"].items():
            share = "-" if p["precision"] is None else f"{p['precision']:.4f}"
            print(f"{kind} proposals: {p['proposed']:,}, judged by the truth {p['judged']:,}, right {p['right']:,} (precision {share})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench batch", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="import", help=f"comma-separated: {', '.join(STAGES)}")
    parser.add_argument("--events", type=int, default=1_000_000, help="events of the large stream to import")
    parser.add_argument("--batch-size", type=int, default=None, help="events per transaction (default: reconcile import's for SQLite)")
    parser.add_argument("--workers", type=int, default=1, help="processes parsing records ahead (reconcile import --workers)")
    parser.add_argument("--window", type=int, default=50_000, help="events per table row")
    parser.add_argument("--check", action="store_true", help="run reconcile check on the result (slow at 1M)")
    parser.add_argument("--engines", default="duckdb", help="resolve stage: comma-separated engines (duckdb, spark)")
    parser.add_argument("--memory-limit", default="2GB", help="resolve stage: passed to resolve --memory-limit on DuckDB")
    parser.add_argument("--skip-accuracy", action="store_true", help="resolve stage: skip scoring against the truth")
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
        elif stage == "resolve":
            print_resolve(results[stage])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0
