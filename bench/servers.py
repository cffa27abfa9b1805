"""Which server ``reconcile serve`` should run: the real service under load, with slow clients.

For each server set-up (``--configs``, e.g. ``granian:4`` = ``--server granian --threads 4``;
``gunicorn:1`` is gunicorn's sync workers, ``gunicorn:4`` its gthread workers), on a fresh
copy of the seeded SQLite database (``bench/identify.py``'s seed, 100k contacts by
default), with the service as it ships (model and guards on) and ``--workers 2``:

1. ``wrk`` drives ``bench/identify.lua``'s mixed load (50% look-ups of known people,
   30% new people, 20% new information) for ``--duration`` seconds: req/s, latency.
2. The same again while ``--slow`` connections of each kind (headers that never end,
   a body sent a byte a second, a chunked body sent a byte a second; see
   ``bench/slow_clients.py``) hold connections open, and a prober sends ``GET /healthz``
   and ``POST /identify`` on fresh connections twice a second: whether they still answer
   (within 5 s) and how fast.

Prints one table and writes ``bench/results/servers.json``. ``python -m bench servers --help``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from datetime import datetime, timezone

from .identify import (
    RESULTS,
    RUN_DIR,
    SEED,
    Backend,
    CpuMeter,
    RssSampler,
    Server,
    human,
    parse_size,
    run_wrk,
    seed_key,
    write_requests,
)
from .slow_clients import KINDS, Prober, SlowClients


def measure(backend: Backend, server: str, threads: int, args, log) -> dict:
    url = backend.fresh()
    reqfile = RUN_DIR / f"identify-{backend.size}-{seed_key(backend.size)}.requests"
    if not reqfile.exists():
        write_requests(url, backend.size, reqfile)
    srv = Server(url, args.workers, threads, True, RUN_DIR / f"servers-{server}-{threads}.log", server=server)
    result: dict = {"server": server, "threads": threads}
    try:
        run_wrk(srv.base, reqfile, args.warmup, args.connections, 1, (0.5, 0.3), "warm", 6_000_000)
        for phase, slow in (("plain", 0), ("slow", args.slow)):
            clients = SlowClients("127.0.0.1", srv.port, slow).start_all() if slow else None
            prober = Prober("127.0.0.1", srv.port)
            if slow:
                time.sleep(2)  # every slow connection open and stuck before the load starts
            prober.start()
            sampler = RssSampler(srv)
            sampler.start()
            load = os.getloadavg()[0]
            with CpuMeter(srv, url) as cpu:
                stats = run_wrk(srv.base, reqfile, args.duration, args.connections, 1, (0.5, 0.3), phase,
                                1_000_000 * (1 + len(result)))
            prober.stop()
            rss = sampler.finish()
            if clients:
                clients.stop()
            n = max(1, stats["requests"])
            health = prober.latencies["healthz"]
            result[phase] = {
                "rps": round(stats["rps"], 1),
                "p50_ms": stats["p50_us"] / 1000,
                "p99_ms": stats["p99_us"] / 1000,
                "errors": stats["non2xx"] + stats["connect_errors"] + stats["read_errors"] + stats["timeouts"],
                "cpu_ms_per_req": round(cpu.used["server"] * 1000 / n, 3) if stats["requests"] else None,
                "rss_mb": round(rss),
                "load_1m": round(load, 2),
                "probe_failures": sum(prober.failures.values()),
                "probes": sum(len(v) for v in prober.latencies.values()) + sum(prober.failures.values()),
                "healthz_p50_ms": round(statistics.median(health) * 1000, 1) if health else None,
                "healthz_max_ms": round(max(health) * 1000, 1) if health else None,
                "slow_reopened": clients.reopened if clients else 0,
            }
            log(f"{server}:{threads} {phase}: {result[phase]}")
    finally:
        srv.stop()
        backend.cleanup()
    return result


def print_table(results: list[dict], meta: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"reconcile serve --workers {meta['workers']}, SQLite {meta['size']} contacts, model and "
                        f"guards on; wrk -c{meta['connections']} -t1 {meta['duration']}s mixed load; 'slow': "
                        f"+{meta['slow']} slow connections of each kind ({', '.join(KINDS)})")
    for col in ["server", "threads", "req/s", "p50 ms", "p99 ms", "CPU ms/req", "errors",
                "req/s slow", "p99 ms slow", "errors slow", "probes failed", "healthz p50/max ms", "reopened",
                "RSS MB", "load 1m"]:
        table.add_column(col, justify="left" if col == "server" else "right")
    for r in results:
        a, b = r["plain"], r["slow"]
        table.add_row(
            r["server"], str(r["threads"]), f"{a['rps']:,.0f}", f"{a['p50_ms']:.1f}", f"{a['p99_ms']:.1f}",
            "—" if a["cpu_ms_per_req"] is None else f"{a['cpu_ms_per_req']:.2f}", str(a["errors"]), f"{b['rps']:,.0f}", f"{b['p99_ms']:.1f}", str(b["errors"]),
            f"{b['probe_failures']}/{b['probes']}", f"{b['healthz_p50_ms']}/{b['healthz_max_ms']}",
            str(b["slow_reopened"]), str(b["rss_mb"]), f"{a['load_1m']:.1f}/{b['load_1m']:.1f}",
        )
    Console(width=220).print(table)
    print("probes: GET /healthz and POST /identify on fresh connections twice a second, failed = no 200 within 5 s; "
          "reopened: slow connections the server closed (its timeouts at work).")
    print(f"machine: {os.cpu_count()} cores shared with other jobs; load average at start {meta['load_start']}, "
          f"at end {meta['load_end']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench servers", description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default="granian:2,granian:4,granian:8,gunicorn:1,gunicorn:4,gunicorn:8",
                    help="server:threads, comma-separated")
    ap.add_argument("--size", default="100k", help="contacts to seed")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=16, help="wrk connections")
    ap.add_argument("--duration", type=int, default=15, help="seconds of each measured phase")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--slow", type=int, default=12, help="slow connections of each kind in the 'slow' phase")
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    size = parse_size(args.size)
    meta = {k: getattr(args, k) for k in ("workers", "connections", "duration", "slow")}
    meta.update(size=human(size), seed=SEED, load_start=" ".join(f"{x:.2f}" for x in os.getloadavg()),
                started=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    backend = Backend("sqlite", size, log)
    results = []
    for config in args.configs.split(","):
        server, _, threads = config.strip().partition(":")
        results.append(measure(backend, server, int(threads or 1), args, log))
        (RESULTS / "servers.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    meta["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    (RESULTS / "servers.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print_table(results, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
