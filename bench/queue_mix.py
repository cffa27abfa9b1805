"""What the review queue is made of: replay part of a synthetic stream and count the
items opened by kind, with the share of each that is truly the same person.

``python -m bench queue_mix [--seed 3] [--events 20000] [--size medium]``

Why: the learning loop (``bench/learning_loop.py``) reports the queue's load as one
number per phase; deciding what to cut needs to know which kind of item brings
reviewers true matches and which only costs them decisions. This replays the first
``--events`` events of the stream into a fresh SQLite database with the shipped model
(no reviewer, no retraining: a few minutes instead of the loop's twenty) and sorts every
item opened:

- ``audit link`` / ``audit near``: the random audit sample (automatic links; close
  non-links below the lower threshold), :mod:`reconcile.engine.audit_sampling`;
- ``score, first`` / ``score, second``: the uncertain band; "second" when the contact
  was linked automatically to another group in the same request (a second match);
- ``guard <name>, <band>``: a guard held the pair apart; band is where the model's score
  of the held pair falls (``below`` the lower threshold, ``band``, ``above`` the upper);
- ``conflict``: an automatic link blocked by a reviewer's earlier rejection.

Also: link-guard records written (the guard decisions that stand without a review) and
the items left stale (pending, their groups already one). Tune on one seed, report on
another (bench/README.md says which). Writes ``bench/results/queue_mix.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

from sqlalchemy import func, select

from reconcile.config import Settings
from reconcile.engine.active_model import ModelManager
from reconcile.store import Store
from reconcile.store.exports import primary_of_each_contact
from reconcile.store.migrate import upgrade
from reconcile.store.schema import contact, link_guard, pending_merge
from reconcile.synth.generator import SIZES, default_path, write_stream
from reconcile.synth.review_simulation import replay_tracking
from reconcile.training import registry

RESULTS = Path(__file__).resolve().parent / "results" / "queue_mix.json"


def _stream(size: str, seed: int) -> Path:
    path = default_path(size, seed)
    if not path.exists():
        print(f"generating {path} ...", flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_stream(path, SIZES[size], seed)
    return path


def _band(score: float | None, upper: float, lower: float) -> str:
    if score is None:
        return "unscored"
    return "below" if score < lower else ("above" if score >= upper else "band")


def kind_of(item, method: str | None, upper: float, lower: float) -> str:
    """The item's kind as the table reports it (see the module docstring)."""
    if item.audit is not None:
        return f"audit {item.audit}"
    if item.reason == "score":
        return "score, second" if method == "probabilistic" else "score, first"
    if item.reason == "conflict":
        return f"conflict, {_band(item.score, upper, lower)}"
    return f"guard {item.guard}, {_band(item.score, upper, lower)}"


def queue_mix(store: Store, person_of: dict, upper: float, lower: float) -> dict:
    """Counts, same-person shares and stale items per kind over every item in ``store``."""
    with store.read() as tx:
        items = tx.conn.execute(
            select(
                pending_merge.c.id, pending_merge.c.contactId, pending_merge.c.candidateId, pending_merge.c.leftPrimaryId,
                pending_merge.c.rightPrimaryId, pending_merge.c.reason, pending_merge.c.guard, pending_merge.c.score,
                pending_merge.c.status, pending_merge.c.audit, contact.c.linkMethod,
            ).outerjoin(contact, contact.c.id == pending_merge.c.contactId)
        ).all()
        guards = dict(tx.conn.execute(select(link_guard.c.guard, func.count()).group_by(link_guard.c.guard)).all())
    primary = primary_of_each_contact(store)
    kinds: dict[str, Counter] = defaultdict(Counter)
    for item in items:
        row = kinds[kind_of(item, item.linkMethod, upper, lower)]
        row["items"] += 1
        other = item.candidateId
        if other is None:
            other = item.rightPrimaryId if primary.get(item.contactId) != primary.get(item.rightPrimaryId) else item.leftPrimaryId
        if item.contactId in person_of and other in person_of:
            row["known"] += 1
            row["same"] += person_of[item.contactId] == person_of[other]
        joined = primary.get(item.leftPrimaryId) == primary.get(item.rightPrimaryId)
        row["stale"] += item.status == "superseded" or (item.status == "pending" and item.audit != "link" and joined)
    return {"kinds": {k: dict(v) for k, v in sorted(kinds.items())}, "items": len(items), "link_guards": guards}


def fresh_database(url: str) -> tuple[Settings, Store]:
    """The database at ``url`` migrated to head, with the shipped model registered (active
    unless one already is), and the settings to replay into it: ``RECONCILE_*`` variables
    apply, so a benchmark can be run under other rates or thresholds. The caller disposes
    of the store."""
    upgrade(url)
    settings = replace(Settings.from_env(), database_url=url)
    store = Store(url)
    registry.ensure_default_registered(store, settings, by="bench")
    return settings, store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench queue_mix", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=3, help="stream seed (default 3: a tuning seed)")
    parser.add_argument("--size", default="medium", choices=[s for s in SIZES if s not in ("sample", "large")])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", type=Path, help="keep the replayed SQLite database at this (new) path, to look into")
    args = parser.parse_args(argv)
    stream = _stream(args.size, args.seed)
    with tempfile.TemporaryDirectory(prefix="queue-mix-") as tmp:
        settings, store = fresh_database(f"sqlite:///{args.keep or Path(tmp) / 'mix.db'}")
        try:
            thresholds = ModelManager(store, settings).current().thresholds
            cpu, started = time.process_time(), time.perf_counter()
            metrics, person_of, _ = replay_tracking(stream, settings, limit=args.events)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - started
            mix = queue_mix(store, person_of, thresholds.upper, thresholds.lower)
        finally:
            store.dispose()
    events = metrics["events"]
    report = {
        "stream": stream.name, "seed": args.seed, "events": events, "thresholds": [thresholds.lower, thresholds.upper],
        "cpu_seconds": cpu, "wall_seconds": wall, "load_average": os.getloadavg(),
        "accuracy": {k: metrics.get(k) for k in ("pairwise_precision", "pairwise_recall", "pairwise_f1", "bcubed_f1")},
        **mix,
    }
    _print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def _print(report: dict) -> None:
    events = report["events"]
    print(f"{report['stream']}: {events} events, thresholds {report['thresholds']}, "
          f"CPU {report['cpu_seconds']:.0f} s, load average {' '.join(f'{x:.1f}' for x in report['load_average'])}")
    print(f"{'kind':34} {'items':>6} {'/1k ev':>7} {'same person':>12} {'stale':>6}")
    total = Counter()
    for kind, row in report["kinds"].items():
        total.update(row)
        share = f"{row.get('same', 0) / row['known']:.0%}" if row.get("known") else "-"
        print(f"{kind:34} {row['items']:6d} {1000 * row['items'] / events:7.1f} {share:>12} {row.get('stale', 0):6d}")
    share = f"{total['same'] / total['known']:.0%}" if total["known"] else "-"
    print(f"{'all':34} {total['items']:6d} {1000 * total['items'] / events:7.1f} {share:>12} {total['stale']:6d}")
    print("link-guard records:", report["link_guards"])
    acc = report["accuracy"]
    print("pairwise P/R/F1 {:.4f} {:.4f} {:.4f}, B3 F1 {:.4f}".format(
        acc["pairwise_precision"], acc["pairwise_recall"], acc["pairwise_f1"], acc["bcubed_f1"]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
