"""The measured review loop: shipped model -> review queue decided from the truth ->
retrain from those labels -> before/after.

``python -m bench review_loop [--seed 1] [--limit 20000] [--fresh-events 10000] [--models-dir DIR]``

1. Replay the first ``--limit`` events of the medium synthetic stream (generated when
   missing) into a fresh SQLite database with the shipped model and thresholds.
2. A script plays reviewer on EVERY pending merge through review/queue.py: confirm when
   the item's two contacts belong to the same person, else reject.
3. ``train_from_labels`` (u by sampling on the contact table, m from confirmed pairs +
   EM, thresholds from confirmed + rejected pairs at the target precision).
4. Report:
   * pending-merge decisions: how the old model (its scores and thresholds, as stored)
     and the new one would have decided each pending scored pair on its own: link
     (>= upper), drop (< lower) or leave for review; precision/recall/F1 of "link"
     against the truth, and matches dropped. On all pending pairs (most of which the
     new model trained on) and on the held-out ones only;
   * the whole stream: pairwise P/R/F1 and B-cubed F1 of the grouping the engine ends
     with, replaying the same events on a fresh database with the new model and its
     thresholds (``reconcile.synth.replay.replay``), against the first replay; and, out of
     sample, the next ``--fresh-events`` events (persons the reviewer never saw) with
     each model.

Writes bench/results/review_loop.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from reconcile.synth.generator import SIZES, default_path, read_stream, write_stream
from reconcile.synth.replay import replay
from reconcile.synth.review_simulation import grouping_metrics, play_reviewer, replay_tracking
from sqlalchemy import select

from reconcile.config import PROJECT_ROOT, Settings
from reconcile.review.labels import LabelPair, Side, is_heldout
from reconcile.scoring.features import features
from reconcile.scoring.scorer import Scorer
from reconcile.store import Store
from reconcile.store.migrate import upgrade
from reconcile.store.schema import contact, pending_merge
from reconcile.training.retrain import train_from_labels

RESULTS = Path(__file__).resolve().parent / "results" / "review_loop.json"
STREAM_KEYS = ("pairwise_precision", "pairwise_recall", "pairwise_f1", "bcubed_f1", "pending_merges", "overmerged_clusters", "split_persons")


def _stream(seed: int) -> Path:
    path = default_path("medium", seed)
    if not path.exists():
        print(f"generating {path} ...", flush=True)
        write_stream(path, SIZES["medium"], seed)
    return path


def _slice(path: Path, start: int, count: int, out: Path) -> Path:
    with open(out, "w", encoding="utf-8") as handle:
        for i, event in enumerate(read_stream(path, start + count)):
            if i >= start:
                handle.write(json.dumps(event, ensure_ascii=False) + "\n")
    return out


def _pending_snapshot(store: Store, person_of: dict) -> list[dict]:
    """Every pending SCORED pair before review: features, truth, the old score."""
    a, b = contact.alias("a"), contact.alias("b")
    with store.read() as tx:
        rows = tx.conn.execute(
            select(
                pending_merge.c.id, pending_merge.c.contactId, pending_merge.c.candidateId, pending_merge.c.score,
                a.c.email, a.c.phoneNumber, a.c.name, b.c.email, b.c.phoneNumber, b.c.name,
            )
            .select_from(
                pending_merge.join(a, a.c.id == pending_merge.c.contactId).join(b, b.c.id == pending_merge.c.candidateId)
            )
            .where(pending_merge.c.status == "pending", pending_merge.c.candidateId.is_not(None))
        ).all()
    out = []
    for r in rows:
        left, right = Side(r[4], r[5], r[6]), Side(r[7], r[8], r[9])
        out.append(
            {
                "id": r.id,
                "match": person_of.get(r.contactId) == person_of.get(r.candidateId),
                "old_score": r.score,
                "left": features(*r[4:7]),
                "right": features(*r[7:10]),
                "heldout": is_heldout(LabelPair(left, right, "match", "review", "score")),
            }
        )
    return out


def _decisions(scores: list[float], truth: list[bool], upper: float, lower: float) -> dict:
    link_tp = sum(1 for s, m in zip(scores, truth) if s >= upper and m)
    link_fp = sum(1 for s, m in zip(scores, truth) if s >= upper and not m)
    drop_fn = sum(1 for s, m in zip(scores, truth) if s < lower and m)
    drop_tn = sum(1 for s, m in zip(scores, truth) if s < lower and not m)
    matches = sum(truth)
    precision = link_tp / (link_tp + link_fp) if link_tp + link_fp else 1.0
    recall = link_tp / matches if matches else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "pairs": len(truth), "matches": matches, "link": link_tp + link_fp, "link_wrong": link_fp,
        "drop": drop_fn + drop_tn, "drop_matches": drop_fn,
        "review": len(truth) - link_tp - link_fp - drop_fn - drop_tn,
        "precision": precision, "recall": recall, "f1": f1,
    }


def _replay(path: Path, settings: Settings, limit: int | None, tmp: Path, name: str) -> dict:
    url = f"sqlite:///{tmp / (name + '.db')}"
    upgrade(url)
    started = time.perf_counter()
    result = replay(path, replace(settings, database_url=url), limit)
    print(f"  {name}: {result['events']} events in {time.perf_counter() - started:.0f} s", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench review_loop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="medium stream seed (the shipped model was trained on seed 0)")
    parser.add_argument("--limit", type=int, default=20_000)
    parser.add_argument("--fresh-events", type=int, default=10_000, help="out-of-sample events after --limit (0: skip)")
    parser.add_argument("--target-precision", type=float, default=0.99)
    parser.add_argument("--models-dir", type=Path, default=None, help="where the new version goes (default: a temp dir)")
    parser.add_argument("--m-source", default="warm", help="train_from_labels' m_source (warm: the active model updated by the labels)")
    parser.add_argument("--proxy", default="live", help="person proxy for u/TF when training from scratch: live groups or exact")
    parser.add_argument("--version", default="review-loop")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    stream = _stream(args.seed)
    shipped = Settings()
    report: dict = {
        "stream": str(stream.relative_to(PROJECT_ROOT)), "limit": args.limit, "seed": args.seed,
        "shipped": {"model": shipped.model_path, "upper": shipped.upper_threshold, "lower": shipped.lower_threshold},
    }
    with tempfile.TemporaryDirectory(prefix="review-loop-") as tmp_name:
        tmp = Path(tmp_name)
        models_dir = args.models_dir or tmp / "models"
        url = f"sqlite:///{tmp / 'loop.db'}"
        upgrade(url)
        print(f"1. replay {args.limit} events of {stream.name} with the shipped model", flush=True)
        started = time.perf_counter()
        before, person_of, events = replay_tracking(stream, Settings(database_url=url), args.limit)
        print(f"  {before['events']} events in {time.perf_counter() - started:.0f} s, {before['pending_merges']} pending merges", flush=True)
        store = Store(url)
        try:
            snapshot = _pending_snapshot(store, person_of)
            print("2. the scripted reviewer decides every pending merge", flush=True)
            started = time.perf_counter()
            reviewed = play_reviewer(store, person_of)
            review_seconds = time.perf_counter() - started
            after_review = grouping_metrics(store, events)
            print(f"  {reviewed} in {review_seconds:.0f} s", flush=True)
            print("3. train from labels", flush=True)
            result = train_from_labels(
                store, Settings(database_url=url), models_dir, args.version, target_precision=args.target_precision,
                m_source=args.m_source, proxy=args.proxy, progress=True,
            )
        finally:
            store.dispose()
        model_path = result.directory / "model.json"
        upper, lower = result.thresholds["upper"], result.thresholds["lower"]
        new_scorer = Scorer.load(model_path)

        truth = [p["match"] for p in snapshot]
        old_scores = [p["old_score"] for p in snapshot]
        new_scores = [new_scorer.score(p["left"], p["right"]).match_probability for p in snapshot]
        held = [i for i, p in enumerate(snapshot) if p["heldout"]]
        pending_report = {}
        for subset, idx in (("all", range(len(snapshot))), ("heldout", held)):
            t = [truth[i] for i in idx]
            pending_report[subset] = {
                "old": _decisions([old_scores[i] for i in idx], t, shipped.upper_threshold, shipped.lower_threshold),
                "new": _decisions([new_scores[i] for i in idx], t, upper, lower),
            }

        print("4. replay the same events with the new model", flush=True)
        new_settings = Settings(model_path=str(model_path), upper_threshold=upper, lower_threshold=lower)
        after = _replay(stream, new_settings, args.limit, tmp, "after")
        fresh = None
        if args.fresh_events:
            print(f"5. out of sample: events {args.limit}..{args.limit + args.fresh_events} with each model", flush=True)
            sliced = _slice(stream, args.limit, args.fresh_events, tmp / "fresh.jsonl")
            fresh = {
                "events": f"{args.limit}..{args.limit + args.fresh_events}",
                "old": _replay(sliced, shipped, None, tmp, "fresh-old"),
                "new": _replay(sliced, new_settings, None, tmp, "fresh-new"),
            }
        report.update(
            reviewed=reviewed,
            review_seconds=review_seconds,
            training={
                "version": result.version,
                "directory": str(result.directory) if args.models_dir else None,
                "thresholds": {"upper": upper, "lower": lower},
                "labels": result.summary["labels"],
                "notes": result.notes,
                "method": result.summary["parameters"].get("method"),
                "threshold_basis": result.thresholds.get("basis"),
                "review_load": result.thresholds.get("review_load"),
                "seconds": result.summary["seconds"],
                "heldout_evaluation": {
                    k: {x: result.evaluation[k].get(x) for x in ("version", "upper", "lower", "precision", "recall", "f1", "average_precision", "roc_auc", "linked", "review", "dropped", "false_match_rate", "pending_merges")}
                    for k in ("candidate", "active")
                },
            },
            pending_decisions=pending_report,
            stream_metrics={
                "before": before,
                "before_plus_review": after_review,
                "after": after,
                **({"fresh_old": fresh["old"], "fresh_new": fresh["new"]} if fresh else {}),
            },
        )
    _print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


def _print(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    table = Table(title="Pending-merge decisions (each pending scored pair on its own): link >= upper, drop < lower")
    for col in ("pairs", "model", "link", "wrong links", "drop", "matches dropped", "left for review", "P(link)", "R(link)", "F1"):
        table.add_column(col, justify="right")
    for subset, block in report["pending_decisions"].items():
        for name, d in block.items():
            table.add_row(
                f"{subset} ({d['pairs']}, {d['matches']} matches)", name, str(d["link"]), str(d["link_wrong"]), str(d["drop"]),
                str(d["drop_matches"]), str(d["review"]), f"{d['precision']:.4f}", f"{d['recall']:.4f}", f"{d['f1']:.4f}",
            )
    console.print(table)
    table = Table(title=f"Whole stream ({report['stream']}, first {report['limit']} events unless noted): final grouping")
    for col in ("run", "pair P", "pair R", "pair F1", "B³ F1", "pending", "over-merged", "split"):
        table.add_column(col, justify="right")
    names = {
        "before": "shipped model",
        "before_plus_review": "shipped model + all reviews decided",
        "after": "new model (no review)",
        "fresh_old": "next events: shipped model",
        "fresh_new": "next events: new model",
    }
    for key, m in report["stream_metrics"].items():
        table.add_row(
            names[key], f"{m['pairwise_precision']:.4f}", f"{m['pairwise_recall']:.4f}", f"{m['pairwise_f1']:.4f}",
            f"{m['bcubed_f1']:.4f}", str(m.get("pending_merges", "-")), str(m["overmerged_clusters"]), str(m["split_persons"]),
        )
    console.print(table)
    t = report["training"]
    table = Table(title="Held-out labels (pairs the reviewer decided, not trained on)")
    for col in ("model", "upper", "lower", "P", "R", "F1", "avg precision", "ROC AUC", "linked", "review", "dropped"):
        table.add_column(col, justify="right")
    for name, b in t["heldout_evaluation"].items():
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        table.add_row(
            f"{name} ({b['version']})", f"{b['upper']:.6g}", f"{b['lower']:.6g}", fmt(b["precision"]), fmt(b["recall"]), fmt(b["f1"]),
            fmt(b.get("average_precision")), fmt(b.get("roc_auc")), str(b["linked"]), str(b["review"]), str(b["dropped"]),
        )
    console.print(table)
    console.print(f"method: {t.get('method')}; thresholds: {t.get('threshold_basis')}; review load on candidate pairs: {t.get('review_load')}")
    console.print(f"new model {t['version']}: upper {t['thresholds']['upper']:.6g}, lower {t['thresholds']['lower']:.6g}; labels {t['labels']['training']} training, {t['labels']['heldout']} held out")
    for note in t["notes"]:
        console.print(f"note: {note}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
