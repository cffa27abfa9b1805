"""``reconcile resolve --dry-run`` over a large live table: wall time and peak memory on
DuckDB (default 1M contacts) and Spark ``local[2]`` (default 100k), and the accuracy of
the batch clusters against a labelled stream's truth, beside the online pipeline's.

1. **Speed.** The contacts are the seeds of ``bench/identify.py`` (cached under
   ``bench/results/seed/``: life-shaped groups plus 5.6% shared values sent through the
   engine). Each run is the real command in a child process (``reconcile resolve
   --report``), its process tree's resident memory sampled every 0.2 s (the JVM is a
   grandchild on Spark).
2. **Accuracy.** A synthetic stream (``reconcile synth``; default ``small``, 5k events)
   is replayed through ``Reconciler.identify`` with the shipped model into a fresh SQLite
   file; every event is scored by the contact it created (else its group's primary), as
   ``reconcile evaluate`` does. The same contacts are then scored by the batch clusters
   of ``resolve`` (DuckDB), with ``training/evaluation.cluster_metrics``.

Prints a table and writes ``bench/results/resolve.json``. ``--help`` for the options.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.identify import RESULTS, ROOT, _children, _rss_kb, seed_sqlite

SIZES = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000}


def _tree_rss_kb(pid: int) -> int:
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += _rss_kb(p)
        stack += _children(p)
    return total


def run_resolve(db: Path, engine: str, log, extra: list[str] = ()) -> dict:
    """The CLI in a child process: wall seconds, peak tree RSS, and the report's numbers."""
    with tempfile.TemporaryDirectory(prefix="bench-resolve-") as tmp:
        report = Path(tmp) / "report.json"
        env = {**os.environ, "RECONCILE_DATABASE_URL": f"sqlite:///{db}", "PYTHONPATH": str(ROOT / "src")}
        cmd = [sys.executable, "-c", "from reconcile.cli import main; main()", "resolve", "--engine", engine,
               "--report", str(report), "--snapshot-dir", str(Path(tmp) / "snapshot"), *extra]
        peak = [0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _tree_rss_kb(child.pid))
                done.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        output, _ = child.communicate()
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        done.set()
        sampler.join()
        if child.returncode != 0:
            raise RuntimeError(f"resolve on {engine} failed:\n{output[-3000:]}")
        body = json.loads(report.read_text())
    log(output.strip().split("\n\n")[1] if "\n\n" in output else output)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"engine": engine, "seconds": seconds, "cpu_seconds": cpu, "peak_rss_mib": peak[0] / 1024, "load": os.getloadavg(),
            "counts": body["counts"], "stages": body["seconds"]}


def accuracy(size: str, log) -> dict:
    """Online pipeline vs batch clusters on one labelled stream (per event)."""
    from reconcile.batch.flow import resolve
    from reconcile.config import Settings
    from reconcile.engine.reconciler import Reconciler
    from reconcile.store import Store
    from reconcile.store.exports import primary_of_each_contact
    from reconcile.store.migrate import upgrade
    from reconcile.synth.generator import SIZES as STREAM_SIZES
    from reconcile.synth.generator import default_path, write_stream
    from reconcile.synth.replay import identify_events, scored_contact
    from reconcile.training.evaluation import cluster_metrics

    stream = default_path(size, 0)
    if not stream.exists():
        stream.parent.mkdir(parents=True, exist_ok=True)
        write_stream(stream, STREAM_SIZES[size], 0)
    with tempfile.TemporaryDirectory(prefix="bench-resolve-acc-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'replay.db'}"
        upgrade(url)
        settings = Settings(database_url=url)
        store = Store(url)
        try:
            reconciler = Reconciler(store, settings)
            started = time.perf_counter()
            scored = [(event["person"], scored_contact(result)) for _, event, result in identify_events(reconciler, stream, None) if result is not None]
            replay_s = time.perf_counter() - started
            online = primary_of_each_contact(store)
            batch = resolve(store, settings)
        finally:
            store.dispose()
    label = batch.clusters.label
    metrics = {
        "online": cluster_metrics((p, online[c]) for p, c in scored).as_dict(),
        "batch": cluster_metrics((p, label[c]) for p, c in scored).as_dict(),
    }
    log(f"accuracy on {stream.name}: {len(scored):,} events replayed in {replay_s:.0f}s; resolve {batch.timings['total']:.1f}s")
    return {"stream": stream.name, "events": len(scored), "metrics": metrics,
            "proposals": {"merges": len(batch.diff.merges), "splits": len(batch.diff.splits)}}


def print_runs(runs: list[dict]) -> None:
    """One line per :func:`run_resolve` result."""
    print(f"{'engine':<8}{'contacts':>10}{'wall s':>9}{'CPU s':>8}{'peak RSS MiB':>14}{'snapshot s':>12}{'predict s':>11}{'cluster s':>11}{'merges':>8}{'splits':>8}")
    for r in runs:
        c, s = r["counts"], r["stages"]
        print(f"{r['engine']:<8}{c['contacts']:>10,}{r['seconds']:>9.1f}{r['cpu_seconds']:>8.1f}{r['peak_rss_mib']:>14.0f}{s.get('snapshot', 0):>12.1f}"
              f"{s.get('predict', 0):>11.1f}{s.get('cluster', 0):>11.1f}{c['proposedMerges']:>8,}{c['suspectedOverMerges']:>8,}"
              f"  load {' '.join(f'{x:.1f}' for x in r['load'])}")


def print_accuracy(title: str, metrics: dict[str, dict]) -> None:
    """Pairwise and B-cubed scores, one line per way of clustering (online, batch)."""
    print(f"\n{title}")
    print(f"{'clusters':<10}{'pair P':>8}{'pair R':>8}{'pair F1':>9}{'B3 P':>8}{'B3 R':>8}{'B3 F1':>8}{'over-merged':>13}{'split persons':>15}")
    for name, m in metrics.items():
        print(f"{name:<10}{m['pairwise_precision']:>8.4f}{m['pairwise_recall']:>8.4f}{m['pairwise_f1']:>9.4f}{m['bcubed_precision']:>8.4f}"
              f"{m['bcubed_recall']:>8.4f}{m['bcubed_f1']:>8.4f}{m['overmerged_clusters']:>13,}{m['split_persons']:>15,}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench resolve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duckdb-size", default="1M", choices=sorted(SIZES))
    parser.add_argument("--spark-size", default="100k", choices=sorted(SIZES))
    parser.add_argument("--skip-spark", action="store_true")
    parser.add_argument("--memory-limit", default="2GB", help="passed to resolve --memory-limit on DuckDB")
    parser.add_argument("--accuracy-stream", default="small", choices=["sample", "small", "medium"], help="synthetic stream for the accuracy part")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, flush=True)

    results: dict = {"runs": []}
    plan = [("duckdb", args.duckdb_size)] + ([] if args.skip_spark else [("spark", args.spark_size)])
    for engine, size in plan:
        db = seed_sqlite(SIZES[size], log)
        run = run_resolve(db, engine, log, ["--memory-limit", args.memory_limit] if engine == "duckdb" else [])
        run["size"] = size
        results["runs"].append(run)
    if not args.skip_accuracy:
        results["accuracy"] = accuracy(args.accuracy_stream, log)

    print()
    print_runs(results["runs"])
    if "accuracy" in results:
        a = results["accuracy"]
        print_accuracy(f"accuracy on {a['stream']} ({a['events']:,} events)", a["metrics"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "resolve.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
