"""What the store does for each kind of ``POST /identify``: statements, commits, pool
checkouts and CPU per request, counted in-process.

The service as it ships (model and guards on) over a fresh copy of ``bench/identify.py``'s
seeded database, called through ``app.wsgi_app`` as ``web_profile`` does, one request kind
at a time: look-ups of known people, new people (without a name, and "named": with a name
every one of them shares, as a quarter of identify.lua's new people do, so each has candidates
to score), new information (a known email with a new phone, or a known phone with a new
email). Counts do not move with the machine's load, unlike times: statements as the
database runs them (SQLite's trace callback: one per statement, ``BEGIN`` and ``COMMIT``
included, ``executemany`` once per row) or as the client sends them (PostgreSQL: one per ``execute``/``executemany`` of the driver, a multi-statement
message once), commits (SQLite's ``COMMIT``; PostgreSQL's driver ``commit()`` calls that
had a transaction to end), and checkouts of a pooled connection. CPU is this process's
(``time.process_time``); on PostgreSQL the server backends' CPU per request (``db CPU``, from
``/proc``) is printed beside it.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from .identify import RUN_DIR, SEED, Backend, _cpu_s, _pg_admin, _pg_drop, parse_size, pg_backend_pids, pg_copy_of_seed
from .lock_hold import HoldClock, Tally
from .web_profile import app_and_requests, call, request_values

KINDS = ("lookup", "new", "named", "info")
#: first names of identify.lua's named new people ("<first> Bench": one name key for all)
FIRST = ("alex", "sam", "maria", "li", "noor", "ivan", "zoe", "omar", "ines", "kofi")


def typed_bodies(reqfile, n: int, rng: random.Random, run: str = "") -> dict[str, list[bytes]]:
    """``n`` request bodies of each kind; new values unique to this run (and ``run``)."""
    known, emails, phones = request_values(reqfile)
    tag = f"c{os.getpid()}x{int(time.time())}{run}"
    out: dict[str, list[bytes]] = {k: [] for k in KINDS}
    for i in range(n):
        phone = f"+1 972 {200 + i // 10000 % 800} {i % 10000:04d}"
        out["lookup"].append(rng.choice(known).encode())
        out["new"].append(json.dumps({"email": f"new.{tag}.{i}@bench.example", "phoneNumber": phone}).encode())
        first = FIRST[i % len(FIRST)]
        out["named"].append(json.dumps({
            "email": f"{first}.named.{tag}.{i}@bench.example",
            "phoneNumber": f"+1 974 {200 + i // 10000 % 800} {i % 10000:04d}",
            "name": f"{first} Bench",
        }).encode())
        if i % 2:
            body = {"email": rng.choice(emails), "phoneNumber": f"+1 973 {200 + i // 10000 % 800} {i % 10000:04d}"}
        else:
            body = {"email": f"info.{tag}.{i}@bench.example", "phoneNumber": rng.choice(phones)}
        out["info"].append(json.dumps(body).encode())
    return out


class Counts:
    """Statements, commits and pool checkouts, hooked into the driver and the pool."""

    def __init__(self, dialect: str):
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
        from sqlalchemy.pool import Pool

        self.c: Counter = Counter()
        event.listen(Pool, "checkout", lambda *a: self.c.update(["checkouts"]))
        if dialect == "sqlite":
            event.listen(Engine, "connect", lambda dbapi, _rec: dbapi.set_trace_callback(self._traced))
        else:
            self._hook_psycopg()

    def _traced(self, sql: str) -> None:
        self.c["statements"] += 1
        if sql.lstrip().upper().startswith("COMMIT"):
            self.c["commits"] += 1

    def _hook_psycopg(self) -> None:
        import psycopg
        from psycopg import pq

        counts = self.c
        execute, executemany, commit = psycopg.Cursor.execute, psycopg.Cursor.executemany, psycopg.Connection.commit

        def counted_execute(cur, *a, **k):
            counts["statements"] += 1
            return execute(cur, *a, **k)

        def counted_executemany(cur, *a, **k):
            counts["statements"] += 1
            return executemany(cur, *a, **k)

        def counted_commit(conn):
            if conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
                counts["commits"] += 1
            return commit(conn)

        psycopg.Cursor.execute, psycopg.Cursor.executemany = counted_execute, counted_executemany
        psycopg.Connection.commit = counted_commit


class WalPages:
    """Pages written to a SQLite file, counted as the frames its write-ahead log gained.

    The WAL checkpointer is stopped for the run (its thread never starts), so the log only
    grows: each committed transaction appends one frame per page it changed, once however
    often it changed it. Unlike a time, the count does not move with the machine's load;
    B-tree page splits make it vary a little with the data."""

    def __init__(self, path: Path):
        import sqlite3

        from reconcile.store.checkpoint import WalCheckpointer

        WalCheckpointer.ensure_running = lambda self: None  # type: ignore[method-assign]
        db = sqlite3.connect(path)
        try:
            self.frame = db.execute("PRAGMA page_size").fetchone()[0] + 24  # a frame: its header and the page
        finally:
            db.close()
        self.wal = Path(f"{path}-wal")

    def frames(self) -> int:
        return self.wal.stat().st_size // self.frame if self.wal.exists() else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench store_calls", description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="100k")
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--requests", type=int, default=1000, help="requests of each kind")
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
    ap.add_argument(
        "--hold", action="store_true",
        help="also time the write lock's hold per request and what it is spent on (bench/lock_hold.py)",
    )
    ap.add_argument(
        "--pages", action="store_true",
        help="SQLite: also count the pages each request writes (WAL frames, the checkpointer stopped so the log only grows)",
    )
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        if not args.json:
            print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    size = parse_size(args.size)
    backend = Backend(args.backend, size, log)
    own_db = own_file = None
    if args.backend == "sqlite":  # a file of our own: Backend.fresh's is shared with `bench identify`
        own_file = RUN_DIR / f"store_calls-{os.getpid()}.db"
        shutil.copyfile(backend.seed, own_file)
        url = f"sqlite:///{own_file}"
    else:
        own_db, url = pg_copy_of_seed(backend.seed, "store_calls")
    counts = Counts(args.backend)
    hold = HoldClock() if args.hold else None
    pages = WalPages(own_file) if args.pages and own_file is not None else None
    try:
        app, reqfile = app_and_requests(url, size)
        rng = random.Random(SEED)
        for body in [b for kind in typed_bodies(reqfile, 100, rng, "warm").values() for b in kind]:  # warm
            call(app, body)
        work = typed_bodies(reqfile, args.requests, rng)
        load = os.getloadavg()[0]
        result = {"backend": args.backend, "size": size, "load": round(load, 2)}
        pids = pg_backend_pids(url) if own_db else []
        for kind in KINDS:
            counts.c.clear()
            if hold is not None:
                hold.tally = Tally()
            frames = pages.frames() if pages is not None else 0
            cpu, db = time.process_time(), sum(_cpu_s(p) for p in pids)
            statuses = [call(app, body) for body in work[kind]]
            cpu, db = time.process_time() - cpu, sum(_cpu_s(p) for p in pids) - db
            n = len(work[kind])
            result[kind] = {
                "cpu_ms": round(cpu * 1000 / n, 3),
                "db_cpu_ms": round(db * 1000 / n, 3),
                **{k: round(counts.c[k] / n, 3) for k in ("statements", "commits", "checkouts")},
                "errors": sum(s >= 400 for s in statuses),
            }
            if pages is not None:
                result[kind]["pages"] = round((pages.frames() - frames) / n, 2)
            if hold is not None:
                result[kind]["hold"] = hold.tally.summary(n)
        if args.json:
            print(json.dumps(result))
        else:
            print(f"{args.backend} {size:,} contacts, {args.requests} requests of each kind, load 1m {load:.2f}")
            print(f"{'kind':8} {'CPU ms':>7} {'db CPU':>7} {'stmts':>6} {'commits':>7} {'checkouts':>9} errors"
                  + ("  pages" if pages else ""))
            for kind in KINDS:
                r = result[kind]
                print(
                    f"{kind:8} {r['cpu_ms']:7.3f} {r['db_cpu_ms']:7.3f} {r['statements']:6.2f} {r['commits']:7.2f}"
                    f" {r['checkouts']:9.2f} {r['errors']:6}" + (f" {r['pages']:6.2f}" if pages else "")
                )
            if hold is not None:
                print("writer turn per request, ms wall/CPU, by part (wall time inside the turn, own time of each call):")
                for kind in KINDS:
                    h = result[kind]["hold"]
                    parts = ", ".join(f"{name} {w:.3f}/{c:.3f}" for name, (w, c) in h["parts_ms"].items() if w >= 0.001)
                    print(
                        f"{kind:8} {h['turns']:.2f} turns, hold {h['hold_ms']:.3f}/{h['hold_cpu_ms']:.3f}"
                        f" (COMMIT median {h['commit_median_ms']} ms, slowest 1% {h['commit_slowest_1pct_share']} of"
                        f" COMMIT time): {parts}"
                    )
        return 1 if any(result[k]["errors"] for k in KINDS) else 0
    finally:
        if own_db is not None:
            admin = _pg_admin()
            _pg_drop(admin, own_db)
            admin.dispose()
        if own_file is not None:
            for suffix in ("", "-wal", "-shm", "-writelock"):
                Path(f"{own_file}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
