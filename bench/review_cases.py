"""The review queue as cases: how many decisions a day's queue takes, and what reading it costs.

``python -m bench review_cases [--size small] [--seed 0] [--queue 20000]``

1. Replay the committed sample stream, then the ``--size`` synthetic stream (generated
   when missing), through the shipped model into a fresh SQLite database: the review
   items opened, those that closed themselves ("resolved elsewhere"), those pending, and
   the cases they form (one decision each), the largest case.
2. Time reading the queue as cases (``review.cases.list_cases``: one page of 50, which
   reads every pending item's two current groups) and one case (``get_case``) over a
   queue of ``--queue`` separate pending pairs, median of 5.

Writes bench/results/review_cases.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from reconcile.config import PROJECT_ROOT, Settings
from reconcile.normalize import Identity
from reconcile.review import cases
from reconcile.review import queue as review
from reconcile.store import ContactTx, Store
from reconcile.store.migrate import upgrade
from reconcile.store.pending import open_pending_merge
from reconcile.synth.generator import SIZES, default_path, read_stream, write_stream
from reconcile.web import create_app


def _bulk_queue(store: Store, n: int) -> list[int]:
    """``n`` pending merges between fresh pairs of contacts, in one transaction."""

    def work(tx: ContactTx) -> list[int]:
        ids = []
        for i in range(n):
            a = tx.insert_contact(Identity(f"bulk{i}@hillvalley.edu", f"+1202555{i:04d}", "Bo Bulk"), linked_id=None, method="new", cause="bench")
            b = tx.insert_contact(Identity(f"bulk.{i}@hillvalley.edu", f"+1202556{i:04d}", "Bo Bulk"), linked_id=None, method="new", cause="bench")
            ids.append(open_pending_merge(tx, a.id, b.id, reason="score", contact_id=b.id, candidate_id=a.id, score=0.8 + (i % 97) / 500))
        return ids

    return store.write(work)


def _replay(url: str, streams: list[Path]) -> dict:
    app = create_app(Settings(database_url=url))
    rec = app.extensions["reconcile"]
    started = time.perf_counter()
    events = 0
    for path in streams:
        for event in read_stream(path, None):
            rec.identify(rec.parse({k: event.get(k) for k in ("email", "phoneNumber", "name")}))
            events += 1
    seconds = time.perf_counter() - started
    counts = review.counts(rec.store)
    found = cases.find_cases(rec.store)
    sizes = sorted((len(c.item_ids) for c in found), reverse=True)
    rec.store.dispose()
    opened = sum(counts.values())
    return {
        "events": events,
        "replay_seconds": round(seconds, 1),
        "items_opened": opened,
        "resolved_elsewhere": counts["resolved"],
        "pending": counts["pending"],
        "cases": len(found),
        "cases_of_several_items": sum(1 for s in sizes if s > 1),
        "largest_case_items": sizes[0] if sizes else 0,
        "largest_case_groups": max((len(c.groups) for c in found), default=0),
        "decisions_saved": opened - len(found),
    }


def _median_ms(call, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def _reading(url: str, n: int) -> dict:
    app = create_app(Settings(database_url=url, probabilistic=False))
    store = app.extensions["reconcile"].store
    ids = _bulk_queue(store, n)
    report = {
        "queue": n,
        "list_cases_ms": _median_ms(lambda: cases.list_cases(store, "score", 1, 50)),
        "get_case_ms": _median_ms(lambda: cases.get_case(store, ids[n // 2])),
        "list_items_ms": _median_ms(lambda: review.list_items(store, "pending", "score", 1, 50)),
    }
    store.dispose()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench review_cases")
    parser.add_argument("--size", default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--queue", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results" / "review_cases.json")
    args = parser.parse_args(argv)

    stream = default_path(args.size, args.seed)
    if not stream.exists():
        print(f"generating {stream} ...", flush=True)
        write_stream(stream, SIZES[args.size], args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        trial_url = f"sqlite:///{Path(tmp) / 'trial.db'}"
        upgrade(trial_url)
        print(f"1. replay data/sample_stream.jsonl then {stream.name} with the shipped model", flush=True)
        trial = _replay(trial_url, [PROJECT_ROOT / "data" / "sample_stream.jsonl", stream])
        queue_url = f"sqlite:///{Path(tmp) / 'queue.db'}"
        upgrade(queue_url)
        print(f"2. read a queue of {args.queue} pending pairs as cases", flush=True)
        reading = _reading(queue_url, args.queue)
    report = {"stream": stream.name, "trial": trial, "reading": reading}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    _print(report)
    print(f"wrote {args.out}")
    return 0


def _print(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    t = report["trial"]
    table = Table(title=f"A day's queue: sample + {report['stream']} ({t['events']} events) through the shipped model")
    for col in ("items opened", "resolved elsewhere", "pending", "cases (decisions)", "cases of 2+ items", "largest case", "decisions saved"):
        table.add_column(col, justify="right")
    table.add_row(
        str(t["items_opened"]), str(t["resolved_elsewhere"]), str(t["pending"]), str(t["cases"]), str(t["cases_of_several_items"]),
        f"{t['largest_case_items']} items / {t['largest_case_groups']} groups", str(t["decisions_saved"]),
    )
    console.print(table)
    r = report["reading"]
    table = Table(title=f"Reading a queue of {r['queue']} pending pairs (SQLite, median of 5)")
    for col in ("list_cases, page of 50", "get_case", "list_items, page of 50"):
        table.add_column(col, justify="right")
    table.add_row(f"{r['list_cases_ms']} ms", f"{r['get_case_ms']} ms", f"{r['list_items_ms']} ms")
    console.print(table)


if __name__ == "__main__":
    raise SystemExit(main())
