"""The learning loop, measured: a scripted reviewer decides the review queue in batches,
the model is retrained from every decision after each batch, the activation gate
decides, and the next events are replayed with whatever model is then active.

``python -m bench learning_loop [--seed 53] [--first 20000] [--next 10000] [--batches 100,300,1000] [--start from-contacts|shipped] [--control]``

The stream is the generator's medium stream (50,000 events) with seed 53 by default: a
seed nobody used to train or tune anything (seed 0 trained the shipped model, seed 1 is
the README's held-out stream; 3, 4, 7, 12, 31, 41 and others were measured while tuning;
53 and 59 were report seeds since).
With ``--start from-contacts`` (the default, issue 12) the loop starts from the model a new
deployment would: events ``[0, --first)`` are replayed into a scratch database with the
shipped model and ``reconcile train --from-contacts`` (:func:`train_from_contacts`, EM
unless ``--contacts-m-source groups``) fits a model to that contact table with no labels;
each arm registers it and activates it with force (it has no labels, so the gate would
refuse it: an operator starting a deployment activates it by hand), with the configured
thresholds (``RECONCILE_UPPER_THRESHOLD`` / ``RECONCILE_LOWER_THRESHOLD``). ``--start
shipped`` starts from the shipped default model (``models/default.json``) instead.

1. Replay events ``[0, --first)`` into a fresh SQLite database: automatic links, the
   uncertain band and the random audit sample go to the review queue
   (:mod:`reconcile.engine.audit_sampling`; ``RECONCILE_*`` variables apply, e.g. the
   audit rates ``RECONCILE_AUDIT_LINK_RATE``, to compare settings on the same stream).
2. For each batch size (cumulative decisions: 100, then up to 300, then up to 1,000):
   the scripted reviewer (:func:`reconcile.synth.review_simulation.play_reviewer`)
   decides the oldest pending items from the truth until that many decisions are made;
   ``train_from_labels`` (weighted, the default) trains and registers a version; the
   registry's gate (``training.registry.activate`` without force) activates it when it
   allows; the next ``--next`` events are replayed with the active model.
3. Per row: the decisions so far; the audit sample's estimate of the precision of
   automatic links (with its 95% interval) against their TRUE precision, judged by the
   stream's truth, over the links of the period the decided audit items were drawn from
   (the reviewer decides oldest first) and over every automatic link so far; pairwise precision, recall and
   F1 and B-cubed F1 of the grouping of the events just replayed (the current grouping
   of their contacts, measured right after their replay); whether the gate activated.
   The review load per phase: items opened per 1,000 events (and how many of them are
   audit items), the share of them that are
   truly the same person, items left stale (their groups joined by other means, or an
   erased contact; an audited automatic link is joined by design and never stale).

``--control`` replays the same stream again with the same reviewer but no retraining,
so the effect of the retrained models is read against the starting model on the same
events with the same decisions. Each retrained version's ``training.review_load`` in the
JSON is the load its lower threshold was held to (:mod:`reconcile.training.review_load`:
predicted items per 1,000 live records, the active model's as the budget), to read
against the real items per 1,000 events of the next phase.

Writes bench/results/learning_loop.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from reconcile.config import PROJECT_ROOT, Settings
from reconcile.review.audit_estimates import audit_report
from reconcile.store import Store
from reconcile.store.exports import primary_of_each_contact
from reconcile.store.models import active_model
from reconcile.store.schema import pending_merge
from reconcile.synth.generator import SIZES, default_path, read_stream, write_stream
from reconcile.synth.review_simulation import play_reviewer, replay_tracking
from reconcile.training import registry
from reconcile.training.from_contacts import M_SOURCES as FROM_CONTACTS_M_SOURCES
from reconcile.training.from_contacts import train_from_contacts
from reconcile.training.retrain import train_from_labels

from .queue_mix import fresh_database

RESULTS = Path(__file__).resolve().parent / "results" / "learning_loop.json"
SEED = 53


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


def _items_since(store: Store, after_id: int) -> list:
    with store.read() as tx:
        return tx.conn.execute(
            select(
                pending_merge.c.id, pending_merge.c.contactId, pending_merge.c.candidateId, pending_merge.c.leftPrimaryId,
                pending_merge.c.rightPrimaryId, pending_merge.c.status, pending_merge.c.audit,
            ).where(pending_merge.c.id > after_id)
        ).all()


def _last_item_id(store: Store) -> int:
    items = _items_since(store, 0)
    return max((r.id for r in items), default=0)


def _review_load(store: Store, after_id: int, events: int, person_of: dict) -> dict:
    """The items opened since ``after_id``: per 1,000 events, truly the same person, stale."""
    items = _items_since(store, after_id)
    primary = primary_of_each_contact(store)
    same = known = stale = audit = 0
    for r in items:
        audit += r.audit is not None
        b = r.candidateId
        if b is None:  # a guard item: the contact against the other group's first primary
            b = r.rightPrimaryId if primary.get(r.contactId) != primary.get(r.rightPrimaryId) else r.leftPrimaryId
        if r.contactId in person_of and b in person_of:
            known += 1
            same += person_of[r.contactId] == person_of[b]
        if r.status == "superseded":
            stale += 1
        elif r.status == "pending" and r.audit != "link" and primary.get(r.leftPrimaryId) == primary.get(r.rightPrimaryId):
            stale += 1
    return {
        "opened": len(items),
        "audit_items": audit,
        "per_1000_events": 1000 * len(items) / events if events else 0.0,
        "audit_per_1000_events": 1000 * audit / events if events else 0.0,
        "same_person_share": same / known if known else None,
        "stale": stale,
    }


def _true_precision(links: list[tuple[int, int]], person_of: dict, store: Store | None = None) -> dict:
    """The share of automatic links joining the same person: over every link so far, and
    over the links the decided audit items stand for (made no later than the newest
    decided audited link: the reviewer decides oldest first, so that is the period the
    estimate describes)."""
    judged = [(a, person_of.get(a) == person_of.get(b)) for a, b in links if a in person_of and b in person_of]
    out = {"links": len(judged), "precision": sum(j for _, j in judged) / len(judged) if judged else None}
    if store is not None:
        with store.read() as tx:
            newest = tx.conn.execute(
                select(func.max(pending_merge.c.contactId)).where(
                    pending_merge.c.audit == "link", pending_merge.c.status.in_(("confirmed", "rejected"))
                )
            ).scalar()
        period = [j for a, j in judged if newest is not None and a <= newest]
        out["period_links"] = len(period)
        out["period_precision"] = sum(period) / len(period) if period else None
    return out


def start_model(stream: Path, tmp: Path, args: argparse.Namespace) -> dict:
    """``reconcile train --from-contacts`` on the contact table the first ``--first``
    events leave (replayed with the shipped model into a scratch database): the model a
    new deployment would start from. Both arms then replay those events again with it."""
    settings, store = fresh_database(f"sqlite:///{tmp / 'start.db'}")
    try:
        first = _slice(stream, 0, args.first, tmp / "start-first.jsonl")
        started = time.perf_counter()
        replay_tracking(first, settings)
        trained = train_from_contacts(store, settings, tmp / "start-models", "contacts", m_source=args.contacts_m_source, register=False)
        seconds = time.perf_counter() - started
        print(f"[start] from-contacts model ({args.contacts_m_source}) on events 0..{args.first}: {seconds:.0f} s", flush=True)
        return {"version": trained.version, "directory": str(trained.directory), "m_source": args.contacts_m_source,
                "records": trained.summary["records"], "seconds": round(seconds, 1)}
    finally:
        store.dispose()


def run_arm(stream: Path, tmp: Path, args: argparse.Namespace, retrain: bool, start: dict | None) -> dict:
    """One pass over the stream: replay, review in batches, (retrain, gate,) replay on."""
    name = "loop" if retrain else "control"
    settings, store = fresh_database(f"sqlite:///{tmp / (name + '.db')}")
    if start is not None:
        # unmeasured (no labels), so the gate would refuse it: activated as an operator would, with force
        registry.register_path(store, start["directory"], start["version"])
        registry.activate(store, start["version"], force=True, by="bench")
    person_of: dict = {}
    links: list[tuple[int, int]] = []
    rows: list[dict] = []
    try:
        first = _slice(stream, 0, args.first, tmp / f"{name}-first.jsonl")
        started = time.perf_counter()
        metrics, persons, _ = replay_tracking(first, settings, links=links)
        person_of.update(persons)
        print(f"[{name}] events 0..{args.first}: {time.perf_counter() - started:.0f} s", flush=True)
        load = _review_load(store, 0, args.first, person_of)
        rows.append(
            {
                "decisions": 0, "events": f"0..{args.first}", "active": active_model(store).version,
                "gate": "-", **_scores(metrics), "true_link_precision": _true_precision(links, person_of),
                "audit": audit_report(store).as_json(), "load": load,
            }
        )
        start = args.first
        decided = 0
        for n, batch in enumerate(args.batches, 1):
            reviewed = play_reviewer(store, person_of, by="oracle", limit=batch - decided)
            decided += reviewed["confirmed"] + reviewed["rejected"]
            gate = "not retrained"
            training = None
            if retrain:
                t0 = time.perf_counter()
                result = train_from_labels(
                    store, settings, tmp / f"{name}-models", f"loop-{n}", target_precision=args.target_precision
                )
                try:
                    _, decision = registry.activate(store, result.version, by="bench")
                    gate = f"activated ({decision.reason})"
                except registry.ActivationRefused as exc:
                    gate = f"refused: {exc.message}"
                training = {
                    "version": result.version, "seconds": time.perf_counter() - t0,
                    "thresholds": {"upper": result.thresholds["upper"], "lower": result.thresholds["lower"], "basis": result.thresholds.get("basis")},
                    "labels": result.summary["labels"],
                    "heldout": {k: {x: result.evaluation[k].get(x) for x in ("version", "precision", "recall", "f1", "upper", "lower", "average_precision")} for k in ("candidate", "active")},
                    "prior_shift_bits": result.summary["parameters"].get("prior_shift_bits"),
                    "review_load": result.thresholds["review_load"],
                    "natural": {"upper": result.thresholds["natural_upper"], "lower": result.thresholds["natural_lower"]},
                }
                print(f"[{name}] batch {n}: {decided} decisions, trained {result.version} in {training['seconds']:.0f} s: {gate}", flush=True)
            estimate = audit_report(store).as_json()
            truth = _true_precision(links, person_of, store)
            if start + args.next > SIZES["medium"]:
                break
            sliced = _slice(stream, start, args.next, tmp / f"{name}-{n}.jsonl")
            before_items = _last_item_id(store)
            started = time.perf_counter()
            metrics, persons, _ = replay_tracking(sliced, settings, links=links)
            person_of.update(persons)
            print(f"[{name}] events {start}..{start + args.next}: {time.perf_counter() - started:.0f} s", flush=True)
            rows.append(
                {
                    "decisions": decided, "reviewed": reviewed, "events": f"{start}..{start + args.next}",
                    "active": active_model(store).version, "gate": gate, "training": training,
                    **_scores(metrics), "true_link_precision": truth, "audit": estimate,
                    "load": _review_load(store, before_items, args.next, person_of),
                }
            )
            start += args.next
        final_links = _true_precision(links, person_of, store)
        return {"rows": rows, "final_true_link_precision": final_links, "final_audit": audit_report(store).as_json()}
    finally:
        store.dispose()


def _scores(metrics: dict) -> dict:
    keys = ("pairwise_precision", "pairwise_recall", "pairwise_f1", "bcubed_f1", "overmerged_clusters", "split_persons")
    return {k: metrics.get(k) for k in keys}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench learning_loop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=SEED, help="medium stream seed (default 53: never used for training or tuning)")
    parser.add_argument("--first", type=int, default=20_000, help="events replayed before the first review batch")
    parser.add_argument("--next", type=int, default=10_000, help="events replayed after each batch")
    parser.add_argument("--batches", default="100,300,1000", help="cumulative decisions after each batch")
    parser.add_argument("--target-precision", type=float, default=0.99)
    parser.add_argument("--control", action="store_true", help="also run the same loop without retraining")
    parser.add_argument("--start", choices=("from-contacts", "shipped"), default="from-contacts",
                        help="the model both arms start from (default: trained --from-contacts on the first events)")
    parser.add_argument("--contacts-m-source", choices=FROM_CONTACTS_M_SOURCES, default="em",
                        help="--start from-contacts: m by EM (the command's default) or from the live groups")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",")]
    stream = _stream(args.seed)
    report: dict = {"stream": str(stream.relative_to(PROJECT_ROOT)), "seed": args.seed, "first": args.first, "next": args.next,
                    "batches": args.batches, "start": args.start, "start_model": Settings().model_path}
    with tempfile.TemporaryDirectory(prefix="learning-loop-") as tmp_name:
        tmp = Path(tmp_name)
        start = start_model(stream, tmp, args) if args.start == "from-contacts" else None
        if start is not None:
            report["start_model"] = start
        report["loop"] = run_arm(stream, tmp, args, retrain=True, start=start)
        if args.control:
            report["control"] = run_arm(stream, tmp, args, retrain=False, start=start)
    _print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


def _fmt(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    for arm in ("loop", "control"):
        if arm not in report:
            continue
        title = (
            f"{'Learning loop' if arm == 'loop' else 'Control: same reviewer, no retraining'} on {report['stream']} "
            f"(seed {report['seed']}, start {report['start']}); metrics of the events replayed after each batch"
        )
        table = Table(title=title)
        for col in ("decisions", "events", "active model", "audit precision (95% CI)", "true: same period", "true: all links",
                    "pair P", "pair R", "pair F1", "B³ F1", "gate", "items/1k ev", "audit items/1k ev", "same person", "stale"):
            table.add_column(col, justify="right")
        for row in report[arm]["rows"]:
            est = row["audit"]["automaticLinkPrecision"]
            audit = "-" if est["estimate"] is None else (
                f"{est['estimate']:.4f} [{est['interval95'][0]:.4f}, {est['interval95'][1]:.4f}] n={est['decided']}"
            )
            truth = row["true_link_precision"]
            load = row["load"]
            table.add_row(
                str(row["decisions"]), row["events"], row["active"], audit,
                f"{_fmt(truth.get('period_precision'))} ({truth.get('period_links', '-')})",
                f"{_fmt(truth['precision'])} ({truth['links']})",
                _fmt(row["pairwise_precision"]), _fmt(row["pairwise_recall"]), _fmt(row["pairwise_f1"]), _fmt(row["bcubed_f1"]),
                row["gate"][:60], f"{load['per_1000_events']:.1f}", f"{load['audit_per_1000_events']:.1f}", _fmt(load["same_person_share"], 3), str(load["stale"]),
            )
        console.print(table)
        fin = report[arm]
        est = fin["final_audit"]["automaticLinkPrecision"]
        console.print(
            f"[{arm}] at the end: audit estimate of automatic-link precision {_fmt(est['estimate'])} "
            f"{est['interval95']} from {est['decided']} decided ({est['pending']} waiting); true "
            f"{_fmt(fin['final_true_link_precision']['period_precision'])} over the {fin['final_true_link_precision']['period_links']} "
            f"links of the decided period, {_fmt(fin['final_true_link_precision']['precision'])} over all "
            f"{fin['final_true_link_precision']['links']} links"
        )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
