"""Where one worker's time goes on ``POST /identify``: a cProfile of the WSGI app.

The service as it ships (model and guards on) over a fresh copy of ``bench/identify.py``'s
seeded database (SQLite, or PostgreSQL with ``--backend postgresql``; 100k contacts by
default), called in-process through
``app.wsgi_app`` (no HTTP server, no client: only what a worker runs) with the same
mix as ``bench/identify.lua`` (50% look-ups of known people, 30% new people, 20% new
information). Prints the top functions by own time and the share of the run spent in
each area (cumulative time of its entry points, so areas can overlap). With ``--no-profile``
it prints requests per second of one thread instead (no profiler overhead). On PostgreSQL
it also prints the CPU its server backends spent per request (from ``/proc``): the profile
sees only the client's side.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import sys
import time
from pathlib import Path
from typing import Any

from .identify import (
    RUN_DIR, SEED, Backend, _cpu_s, _pg_admin, _pg_drop, human, parse_size, pg_backend_pids, pg_copy_of_seed, seed_key,
    write_requests,
)

#: Entry points whose cumulative time is an area's cost (file path fragment, function).
AREAS = {
    "phonenumbers.parse": ("phonenumbers/phonenumberutil.py", "parse"),
    "normalise (parse_identity)": ("reconcile/normalize.py", "parse_identity"),
    "Identity.keys": ("reconcile/normalize.py", "keys"),
    "JSON decode (json.loads)": ("json/__init__.py", "loads"),
    "the /identify route (IdentifyRoute, web/identify.py)": ("reconcile/web/identify.py", "__call__"),
    "engine (Reconciler.identify)": ("reconcile/engine/reconciler.py", "identify"),
    "SQLAlchemy execute": ("sqlalchemy/engine/base.py", "execute"),
    "sqlite3 execute": ("~", "<method 'execute' of 'sqlite3.Cursor' objects>"),
    "commit": ("~", "<method 'commit' of 'sqlite3.Connection' objects>"),
    "metrics (observe_identify)": ("reconcile/web/metrics.py", "observe_identify"),
    "Flask full_dispatch_request": ("flask/app.py", "full_dispatch_request"),
}


def app_and_requests(url: str, size: int) -> tuple[Any, Path]:
    """The service's WSGI app on ``url``, model on, and the seed's request-values file
    (written by :func:`bench.identify.write_requests` on first use)."""
    reqfile = RUN_DIR / f"identify-{size}-{seed_key(size)}.requests"
    if not reqfile.exists():
        write_requests(url, size, reqfile)
    os.environ.update(RECONCILE_DATABASE_URL=url, RECONCILE_PROBABILISTIC="1")
    from reconcile.web.app import create_app

    return create_app(), reqfile


def request_values(reqfile: Path) -> tuple[list[str], list[str], list[str]]:
    """(known request bodies, known emails, known phones) of a request-values file."""
    known: list[str] = []
    emails: list[str] = []
    phones: list[str] = []
    for line in reqfile.read_text().splitlines():
        kind, rest = line[0], line[2:]
        (known if kind == "K" else emails if kind == "E" else phones).append(rest)
    return known, emails, phones


def bodies(reqfile, n: int, rng: random.Random) -> list[bytes]:
    """``n`` request bodies in identify.lua's mix, new values unique to this run."""
    known, emails, phones = request_values(reqfile)
    tag = f"p{os.getpid()}x{int(time.time())}"
    out = []
    for i in range(n):
        r = rng.random()
        phone = f"+1 971 {200 + i // 10000 % 800} {i % 10000:04d}"
        if r < 0.5:
            out.append(rng.choice(known).encode())
        elif r < 0.8:
            out.append(json.dumps({"email": f"new.{tag}.{i}@bench.example", "phoneNumber": phone}).encode())
        elif r < 0.9:
            out.append(json.dumps({"email": rng.choice(emails), "phoneNumber": phone}).encode())
        else:
            out.append(json.dumps({"email": f"info.{tag}.{i}@bench.example", "phoneNumber": rng.choice(phones)}).encode())
    return out


def call(app, body: bytes) -> int:
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/identify", "QUERY_STRING": "", "SERVER_NAME": "bench",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": True,
        "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0),
    }
    status: list[str] = []
    result = app(environ, lambda s, h, e=None: status.append(s))
    b"".join(result)
    return int(status[0].split()[0])


def area_shares(stats: pstats.Stats) -> dict[str, float]:
    total = stats.total_tt
    shares = {}
    for name, (path, func) in AREAS.items():
        cum = sum(v[3] for (file, _, fn), v in stats.stats.items() if fn == func and file.endswith(path) or
                  (path == "~" and fn == func))
        shares[name] = round(100 * cum / total, 1)
    return shares


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench web_profile", description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="100k")
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--no-profile", dest="profile", action="store_false")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    size = parse_size(args.size)
    backend = Backend(args.backend, size, log)
    own_db = None
    if args.backend == "sqlite":
        url = backend.fresh()
    else:
        own_db, url = pg_copy_of_seed(backend.seed, "web_profile")
    try:
        app, reqfile = app_and_requests(url, size)
        rng = random.Random(SEED)
        for body in bodies(reqfile, 300, rng):  # warm: caches, model, connections
            call(app, body)
        work = bodies(reqfile, args.requests, rng)
        profiler = cProfile.Profile() if args.profile else None
        load = os.getloadavg()[0]
        pids = pg_backend_pids(url) if own_db else []
        db_started = sum(_cpu_s(p) for p in pids)
        started, cpu_started = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        statuses = [call(app, body) for body in work]
        if profiler:
            profiler.disable()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        db = f", PostgreSQL backends {(sum(_cpu_s(p) for p in pids) - db_started) * 1000 / len(work):.2f}" if own_db else ""
        bad = sum(s >= 400 for s in statuses)
        print(f"{len(work)} requests at {human(size)} contacts in {elapsed:.2f}s: {len(work) / elapsed:,.0f} req/s in one "
              f"thread{' under cProfile' if profiler else ''} ({elapsed * 1000 / len(work):.2f} ms/request, CPU "
              f"{cpu * 1000 / len(work):.2f} ms/request{db}); "
              f"{bad} errors; load 1m {load:.2f}")
        if profiler:
            stats = pstats.Stats(profiler)
            print("share of the run (cumulative time of each area's entry point):")
            for name, share in area_shares(stats).items():
                print(f"  {share:5.1f}%  {name}")
            stats.sort_stats("tottime").print_stats(args.top)
        return 1 if bad else 0
    finally:
        backend.cleanup()
        if own_db is not None:
            admin = _pg_admin()
            _pg_drop(admin, own_db)
            admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
