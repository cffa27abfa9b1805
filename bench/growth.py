"""Does the cost of an event stay flat as the table grows? A realistic 1M-event stream,
fed in order through the engine in one process, timed per 50k-event window.

Uniform bulk seeds hid a guard whose cost grew with every holder of a shared value (issue
13: 627 events/s over the first 50k events, 64 by 458k). This benchmark replays the
generator's ``large`` stream (``reconcile synth --size large``: family phones,
placeholders, role mailboxes, recycled numbers, typos) exactly as ``POST /identify`` runs
it (``Reconciler.parse`` then ``Reconciler.identify``, the shipped settings: model on,
guards on) into a fresh database, on SQLite and PostgreSQL, and prints per window:
events/s, CPU ms per event, single-call p50/p99/max, the garbage collector's pauses, the
process's peak RSS and the contacts, guard entries and pending merges so far; and each
window's slowest calls with their cause (CPU, collector pause, background WAL checkpoints,
page faults, preemptions, the answer's shape). Once set up it calls
``engine.heap.settle_heap`` as a server worker does, so it measures what the workers run.

Targets (issue 13): the last window at least 0.7 times the first, the whole 1M in one run,
and single calls at p99 <= 10 ms and max <= 100 ms on the grown table (the last window). ``--max-minutes`` stops a backend cleanly (the table so far is still printed), so a
slow build cannot hold the machine for hours; Ctrl-C does the same.

Run ``python -m bench growth --help`` for the options.
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import heapq
import inspect
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bench import identify as ib

STREAMS = ib.RESULTS / "streams"
OUT = ib.RESULTS / "growth.json"
#: the issue's target: the last window's events/s at least this share of the first's
FLAT_TARGET = 0.7
#: and a single in-process call's p99 and maximum on the grown table
P99_TARGET_MS = 10
MAX_TARGET_MS = 100


def stream_path(size: str, seed: int) -> Path:
    """The cached stream for (size, seed), regenerated when the generator's code changes."""
    from reconcile.synth import generator

    key = hashlib.sha256(inspect.getsource(generator).encode()).hexdigest()[:10]
    return STREAMS / f"stream-{size}-seed{seed}-{key}.jsonl.gz"


def ensure_stream(size: str, seed: int, log) -> Path:
    from reconcile.synth.generator import SIZES, write_stream

    path = stream_path(size, seed)
    if path.exists():
        log(f"stream: cached {path.relative_to(ib.ROOT)}")
        return path
    for old in STREAMS.glob(f"stream-{size}-seed{seed}-*.jsonl.gz*"):
        old.unlink()
    tmp = path.with_name(path.name + ".tmp.gz")
    started = time.perf_counter()
    write_stream(tmp, SIZES[size], seed)
    tmp.rename(path)
    log(f"stream: generated {SIZES[size]:,} events in {time.perf_counter() - started:.0f}s -> {path.relative_to(ib.ROOT)}")
    return path


# --- measuring one window -----------------------------------------------------------------


def _reset_peak_rss() -> bool:
    """Reset this process's VmHWM so the next reading is the window's own peak (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pct(samples: list[float], q: float) -> float:
    if len(samples) < 2:
        return samples[0] if samples else 0.0
    return statistics.quantiles(samples, n=1000, method="inclusive")[round(q * 10) - 1]


class GcClock:
    """The garbage collector's pauses in this process (``gc.callbacks``): CPU ms so far,
    and how many full (generation 2) collections, so a slow call can name its cause."""

    def __init__(self) -> None:
        self.ms = 0.0
        self.full = 0
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.thread_time()
            return
        self.ms += (time.thread_time() - self._t0) * 1000
        if info["generation"] == 2:
            self.full += 1


#: the slowest calls each window keeps, with what they did and what happened meanwhile
SLOWEST = 3


@dataclass
class Window:
    """The events of one window: their wall, CPU and per-call times."""

    start: int
    calls_ms: list[float] = field(default_factory=list)
    #: each call's CPU time (this thread's): what the code costs, whatever else the machine runs
    calls_cpu_ms: list[float] = field(default_factory=list)
    guards: int = 0
    rejected: int = 0
    wall0: float = field(default_factory=time.perf_counter)
    cpu0: float = field(default_factory=time.process_time)
    db_cpu0: dict[int, float] = field(default_factory=dict)
    gc_ms0: float = 0.0
    gc_full0: int = 0
    #: PostgreSQL: ``ANALYZE`` runs in the window (:class:`Analyser`), not in its wall time
    analysed: int = 0
    #: (wall ms, event, cause) of the window's slowest calls, a min-heap of SLOWEST
    slowest: list[tuple[float, int, dict]] = field(default_factory=list)

    def slow_enough(self, wall_ms: float) -> bool:
        return len(self.slowest) < SLOWEST or wall_ms > self.slowest[0][0]

    def keep_slow(self, wall_ms: float, event: int, cause: dict) -> None:
        item = (wall_ms, event, cause)
        if len(self.slowest) < SLOWEST:
            heapq.heappush(self.slowest, item)
        else:
            heapq.heapreplace(self.slowest, item)

    def close(self, end: int, db_cpu: dict[int, float], gc_clock: GcClock) -> dict:
        wall = time.perf_counter() - self.wall0
        events = end - self.start
        calls = sorted(self.calls_ms)
        cpu_calls = sorted(self.calls_cpu_ms)
        return {
            "first": self.start + 1,
            "last": end,
            "events": events,
            "seconds": round(wall, 2),
            "events_per_s": round(events / wall, 1) if wall else 0.0,
            "cpu_ms_per_event": round((time.process_time() - self.cpu0) * 1000 / max(1, events), 3),
            "db_cpu_ms_per_event": round(sum(s - self.db_cpu0.get(p, 0.0) for p, s in db_cpu.items()) * 1000 / max(1, events), 3),
            "p50_ms": round(_pct(calls, 50), 2),
            "p99_ms": round(_pct(calls, 99), 2),
            "max_ms": round(calls[-1], 1) if calls else 0.0,
            "cpu_p99_ms": round(_pct(cpu_calls, 99), 2),
            "cpu_max_ms": round(cpu_calls[-1], 1) if cpu_calls else 0.0,
            "peak_rss_mb": round(_peak_rss_mb()),
            "rejected": self.rejected,
            "guard_entries": self.guards,
            "gc_ms_per_event": round((gc_clock.ms - self.gc_ms0) / max(1, events), 3),
            "full_gcs": gc_clock.full - self.gc_full0,
            "analysed": self.analysed,
            "slowest": [{"event": e, "ms": round(ms, 1), **cause} for ms, e, cause in sorted(self.slowest, reverse=True)],
            "load_1m": round(os.getloadavg()[0], 2),
        }


# --- one backend ------------------------------------------------------------------------------


def _fresh_database(backend: str) -> tuple[str, object]:
    """A migrated, empty database for the run, and what :func:`_drop` needs to remove it."""
    from reconcile.store.migrate import upgrade

    if backend == "sqlite":
        ib.RUN_DIR.mkdir(parents=True, exist_ok=True)
        path = ib.RUN_DIR / "growth.db"
        for suffix in ("", "-wal", "-shm", "-writelock"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
        upgrade(url)
        return url, path
    from sqlalchemy import text

    db = f"{ib.PG_PREFIX}_growth_run"
    admin = ib._pg_admin()
    try:
        ib._pg_drop(admin, db)
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{db}"'))
    finally:
        admin.dispose()
    url = ib._pg_url(db)
    upgrade(url)
    return url, db


def _drop(backend: str, handle) -> None:
    if backend == "sqlite":
        for suffix in ("", "-wal", "-shm", "-writelock"):
            Path(f"{handle}{suffix}").unlink(missing_ok=True)
        return
    admin = ib._pg_admin()
    try:
        ib._pg_drop(admin, handle)
    finally:
        admin.dispose()


def _table_stats(store) -> dict:
    """Contacts and merges proposed so far (one count each, outside the window's timing)."""
    from reconcile.store.exports import contact_count, pending_merge_count

    return {"contacts": contact_count(store.url), "pending_merges": pending_merge_count(store)}


class Analyser:
    """PostgreSQL: ``ANALYZE`` the run's database as autovacuum would, outside the timing.

    Without statistics the planner estimates every table by its size on disk with default
    selectivities, and plans made for an empty table serve one of a million rows. A
    production server's autovacuum analyses a table once the rows changed since its last
    analysis pass ``autovacuum_analyze_threshold`` + ``autovacuum_analyze_scale_factor``
    of it (50 + 10%, the defaults), in a process of its own; a server run with autovacuum
    off (as the benchmark machine's is) never does. This applies the same rule to the
    events replayed (each changes about one row), on a connection of its own, and the
    window's wall time leaves it out, as a request never waits for autovacuum.
    """

    THRESHOLD, SCALE = 50, 0.1

    def __init__(self, url: str):
        self.conninfo = url.replace("postgresql+psycopg://", "postgresql://")
        self.next = self.THRESHOLD
        self.runs = 0
        self.seconds = 0.0

    def due(self, n: int) -> bool:
        return n >= self.next

    def run(self, n: int) -> float:
        """Analyse every table now; returns the wall seconds it took."""
        import psycopg

        t0 = time.perf_counter()
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute("ANALYZE")
        took = time.perf_counter() - t0
        self.next = n + self.THRESHOLD + self.SCALE * n
        self.runs += 1
        self.seconds += took
        return took


def run_backend(backend: str, stream: Path, args, log) -> dict:
    """Replay ``stream`` into a fresh ``backend`` database; windows until done or out of time."""
    from reconcile.config import Settings
    from reconcile.engine.heap import settle_heap
    from reconcile.engine.reconciler import Reconciler
    from reconcile.normalize import InvalidInput
    from reconcile.store import Store
    from reconcile.synth.generator import read_stream

    url, handle = _fresh_database(backend)
    settings = Settings(database_url=url)  # the shipped configuration: model on, guards on
    store = Store(url, pool_size=2)
    reconciler = Reconciler(store, settings)
    settle_heap()  # as a server worker does once it is set up (create_serving_app)
    gc_clock = GcClock()
    gc.callbacks.append(gc_clock)
    checkpointer = store.checkpointer

    def checkpoints() -> int:
        return checkpointer.runs if checkpointer is not None else 0

    def db_cpu() -> dict[int, float]:
        """CPU seconds so far of each PostgreSQL backend serving this run's pool."""
        return {p: ib._cpu_s(p) for p in ib.pg_backend_pids(url)} if backend == "postgresql" else {}

    analyser = Analyser(url) if backend == "postgresql" and args.analyse else None
    deadline = time.monotonic() + args.max_minutes * 60
    windows: list[dict] = []
    stop_reason = "done"
    n = 0
    _reset_peak_rss()
    window = Window(0, db_cpu0=db_cpu())
    started = time.perf_counter()
    try:
        for event in read_stream(stream, args.events):
            result = None
            gc_ms0, gc_full0, ckpt0 = gc_clock.ms, gc_clock.full, checkpoints()
            usage0 = resource.getrusage(resource.RUSAGE_THREAD)
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                identity = reconciler.parse({k: event.get(k) for k in ("email", "phoneNumber", "name")})
            except InvalidInput:
                window.rejected += 1
            else:
                result = reconciler.identify(identity)
                window.guards += len(result.match["guards"])
            wall_ms, cpu_ms = (time.perf_counter() - t0) * 1000, (time.thread_time() - c0) * 1000
            window.calls_ms.append(wall_ms)
            window.calls_cpu_ms.append(cpu_ms)
            n += 1
            if window.slow_enough(wall_ms):
                window.keep_slow(wall_ms, n, _cause(result, cpu_ms, gc_clock, gc_ms0, gc_full0, checkpoints() - ckpt0, usage0))
            if analyser is not None and analyser.due(n):
                took = analyser.run(n)
                window.wall0 += took  # not the requests' time: autovacuum's, in a process of its own
                window.analysed += 1
            if n % args.window == 0:
                windows.append(window.close(n, db_cpu(), gc_clock) | _table_stats(store))
                _log_window(log, backend, windows[-1])
                _reset_peak_rss()
                window = Window(n, db_cpu0=db_cpu(), gc_ms0=gc_clock.ms, gc_full0=gc_clock.full)
            if time.monotonic() > deadline:
                stop_reason = f"stopped at the {args.max_minutes:g}-minute budget"
                break
    except KeyboardInterrupt:
        stop_reason = "interrupted"
    finally:
        gc.callbacks.remove(gc_clock)
        if n > (windows[-1]["last"] if windows else 0):
            part = window.close(n, db_cpu(), gc_clock) | _table_stats(store)
            part["partial"] = True
            windows.append(part)
            _log_window(log, backend, part)
        store.dispose()
        if not args.keep_db:
            _drop(backend, handle)
    total = time.perf_counter() - started
    full = [w for w in windows if not w.get("partial")]
    ratio = round(full[-1]["events_per_s"] / full[0]["events_per_s"], 2) if len(full) >= 2 else None
    analysed = None if analyser is None else {"runs": analyser.runs, "seconds": round(analyser.seconds, 1)}
    log(f"{backend}: {n:,} events in {total / 60:.1f} min ({stop_reason}); last/first window events/s: {ratio}"
        + (f"; ANALYZE {analyser.runs} times, {analyser.seconds:.1f} s outside the windows' time" if analyser else ""))
    return {"backend": backend, "events": n, "seconds": round(total, 1), "stop": stop_reason,
            "windows": windows, "last_over_first": ratio, "analysed": analysed,
            "kept": str(handle) if args.keep_db else None}


def _cause(result, cpu_ms: float, gc_clock: GcClock, gc_ms0: float, gc_full0: int, checkpoints: int,
           usage0: resource.struct_rusage) -> dict:
    """What a slow call did and what ran meanwhile: its CPU (of it in the kernel), the
    collector's pause inside it, background WAL checkpoints that ran during it, its page
    faults (major ones read the disk: SQLite reads the file through a memory map) and the
    times the scheduler took the core from it, and its answer's shape (the path, contacts
    created, the group's size, reviews opened, guards listed)."""
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    cause = {"cpu_ms": round(cpu_ms, 1), "sys_ms": round((usage.ru_stime - usage0.ru_stime) * 1000, 1),
             "gc_ms": round(gc_clock.ms - gc_ms0, 1), "full_gc": gc_clock.full - gc_full0, "checkpoints": checkpoints,
             "minor_faults": usage.ru_minflt - usage0.ru_minflt, "major_faults": usage.ru_majflt - usage0.ru_majflt,
             "preempted": usage.ru_nivcsw - usage0.ru_nivcsw, "waits": usage.ru_nvcsw - usage0.ru_nvcsw}
    if result is not None:
        match = result.match
        cause |= {"method": match["method"], "created": len(match["createdContactIds"]),
                  "group": 1 + len(result.contact["secondaryContactIds"]), "pending": len(match["pendingMergeIds"]),
                  "guards": len(match["guards"]) + match["guardsOmitted"], "scored": match["score"] is not None}
    return cause


def _log_window(log, backend: str, w: dict) -> None:
    log(f"{backend} {w['first']:,}-{w['last']:,}: {w['events_per_s']:,.0f} events/s, "
        f"p50/p99/max {w['p50_ms']}/{w['p99_ms']}/{w['max_ms']} ms (CPU p99/max {w['cpu_p99_ms']}/{w['cpu_max_ms']}), peak RSS {w['peak_rss_mb']} MB, "
        f"{w['contacts']:,} contacts, GC {w['gc_ms_per_event']} ms/event ({w['full_gcs']} full), load {w['load_1m']}")
    for slow in w["slowest"]:
        log(f"  slow call {slow}")


# --- report ---------------------------------------------------------------------------------


def print_tables(runs: list[dict], meta: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=230)
    for run in runs:
        ratio = run["last_over_first"]
        verdict = "—" if ratio is None else ("ok" if ratio >= FLAT_TARGET else "MISS")
        title = (f"{run['backend']}: {run['events']:,} events in {run['seconds'] / 60:.1f} min ({run['stop']}); "
                 f"last/first full window {ratio if ratio is not None else '—'} (target >= {FLAT_TARGET}: {verdict})")
        if run["windows"]:
            last = run["windows"][-1]
            title += (f"; last window p99 {last['p99_ms']:.1f} ms (target <= {P99_TARGET_MS}), "
                      f"max {last['max_ms']:,.0f} ms (target <= {MAX_TARGET_MS}); by CPU time p99 {last['cpu_p99_ms']:.1f}, "
                      f"max {last['cpu_max_ms']:,.1f} ms")
        t = Table(title=title)
        for col in ["events", "events/s", "x first", "CPU ms/event", "CPU x first", "db CPU ms/event", "p50 ms", "p99 ms",
                    "max ms", "CPU p99 ms", "CPU max ms", "GC ms/event", "full GCs", "peak RSS MB", "contacts", "merges proposed", "guard entries", "rejected", "load 1m"]:
            t.add_column(col, justify="right")
        first = run["windows"][0]["events_per_s"] if run["windows"] else 0
        first_cpu = run["windows"][0]["cpu_ms_per_event"] if run["windows"] else 0
        for w in run["windows"]:
            label = f"{w['first']:,}-{w['last']:,}" + (" (partial)" if w.get("partial") else "")
            t.add_row(label, f"{w['events_per_s']:,.0f}", f"{w['events_per_s'] / first:.2f}" if first else "—",
                      f"{w['cpu_ms_per_event']:.2f}", f"{w['cpu_ms_per_event'] / first_cpu:.2f}" if first_cpu else "—",
                      f"{w['db_cpu_ms_per_event']:.2f}" if run["backend"] == "postgresql" else "—",
                      f"{w['p50_ms']:.2f}", f"{w['p99_ms']:.2f}", f"{w['max_ms']:,.1f}",
                      f"{w['cpu_p99_ms']:.2f}", f"{w['cpu_max_ms']:,.1f}", f"{w.get('gc_ms_per_event', 0):.3f}",
                      str(w.get("full_gcs", "—")), str(w["peak_rss_mb"]),
                      f"{w['contacts']:,}", f"{w['pending_merges']:,}", f"{w['guard_entries']:,}", str(w["rejected"]),
                      f"{w['load_1m']:.1f}")
        console.print(t)
        print("The slowest call of each window (wall ms; its CPU; the collector's pause inside it and whether a full "
              "collection; background WAL checkpoints meanwhile; its path, created contacts, group size, reviews opened, guards):")
        for w in run["windows"]:
            if w.get("slowest"):
                print(f"  {w['first']:,}-{w['last']:,}: {w['slowest'][0]}")
    print("Per window: events/s = events / wall seconds; CPU ms/event = this process's CPU (engine, driver, SQLite) per "
          "event, steadier than events/s on a shared machine (CPU x first: its growth over the first window's); db CPU = the PostgreSQL backends'; p50/p99/max = one "
          "parse + identify call (wall); CPU p99/max = the same calls' CPU time (the thread's), which the machine's load does not inflate; GC ms/event and full GCs = the garbage collector's pauses (CPU) and full collections in the window; peak RSS = this process's high-water mark within the window; contacts / merges "
          "proposed (pending merges of any status) = at the window's end; guard entries = entries in the answers' match.guards.")
    print(f"stream: {meta['stream']} (seed {meta['seed']}); shipped settings (model on, guards on); "
          f"{os.cpu_count()} cores; uptime at start: {meta['uptime_start']}; at end: {meta['uptime_end']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench growth", description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=None, help="replay only the first N events (default: the whole stream)")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--window", type=int, default=50_000, help="events per window")
    ap.add_argument("--max-minutes", type=float, default=60.0, help="wall-time budget per backend; then stop and report")
    ap.add_argument("--size", default="large", help="the generator's stream size (reconcile synth --size)")
    ap.add_argument("--seed", type=int, default=0, help="the generator's seed")
    ap.add_argument("--no-analyse", dest="analyse", action="store_false",
                    help="PostgreSQL: never ANALYZE the run's tables (by default as autovacuum would, outside the timing)")
    ap.add_argument("--keep-db", action="store_true",
                    help="keep the grown database (bench/results/run/growth.db, PostgreSQL <prefix>_growth_run)")
    args = ap.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    uptime = lambda: subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()  # noqa: E731
    ib.RESULTS.mkdir(parents=True, exist_ok=True)
    stream = ensure_stream(args.size, args.seed, log)
    meta = {"stream": str(stream.relative_to(ib.ROOT)), "seed": args.seed, "events_limit": args.events,
            "window": args.window, "max_minutes": args.max_minutes, "uptime_start": uptime(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ib.ROOT, capture_output=True, text=True).stdout.strip()}
    runs: list[dict] = []
    for backend in backends:
        runs.append(run_backend(backend, stream, args, log))
        OUT.write_text(json.dumps({"meta": meta, "runs": runs}, indent=2))
    meta["uptime_end"] = uptime()
    OUT.write_text(json.dumps({"meta": meta, "runs": runs}, indent=2))
    print_tables(runs, meta)
    print(f"written {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
