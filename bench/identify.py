"""``POST /identify`` over HTTP against the production server, at 100k and 1M contacts,
beside bare-framework ceilings measured in the same run.

1. Seeds a fresh database directly (no HTTP): realistic groups (most people one row,
   some 2-5 rows: a primary plus secondaries), the normalised blocking keys computed
   with :class:`reconcile.normalize.Identity`, ``createdAt`` increasing with ``id`` and a
   ``created`` audit row per contact, written at schema revision ``SEED_REVISION`` and
   then migrated to head. Then 5.6% of the rows are people who share values (family
   phones, role mailboxes, placeholders, fillers: ``bench/shared_values.py``), sent
   through the engine so the guards record what they would in production. SQLite seeds
   are cached under ``bench/results/seed/``; PostgreSQL seeds are template databases
   (``bench_identify_seed_*``; ``bench`` is ``RECONCILE_BENCH_PG_PREFIX``) copied for every run.
2. For each (backend, size), runs the configurations of :data:`CONFIGS`: a Flask echo app
   (``bench/echo_app.py``, the service's JSON shape, no database) on gunicorn sync workers
   and on granian, then the service through ``reconcile serve --workers W --threads T
   [--server S]`` as it ships (model on, guards on) and with the model off. ``wrk`` and
   ``bench/identify.lua`` drive each: 50% look-ups of known people, 30% new people, 20%
   new information for known people.
3. Prints one table (req/s, the ratio to each echo ceiling, latency percentiles, peak
   RSS, CPU ms per request) and writes ``bench/results/identify.json``.

Run ``python -m bench identify --help`` for the options.
"""
from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench import shared_values

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
SEED_DIR = RESULTS / "seed"
RUN_DIR = RESULTS / "run"
LUA = BENCH / "identify.lua"
VENV_BIN = Path(sys.executable).parent
RECONCILE = VENV_BIN / "reconcile"

SEED_VERSION = 2  # bump when the generator below changes: invalidates cached seeds
#: the schema revision the bulk rows are written at (``CONTACT_COLS``); the seed is then
#: migrated to head like any production database, so a later migration that builds state
#: from existing contacts (a backfill) builds it for the seeded ones too
SEED_REVISION = "0005"
SEED = 20261121
PG_ADMIN_URL = os.environ.get("RECONCILE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
#: the first part of every PostgreSQL database a bench creates: several people (or branches)
#: benchmarking on one server each set their own, so no run drops another's databases
PG_PREFIX = os.environ.get("RECONCILE_BENCH_PG_PREFIX", "bench")

# --- synthetic people ------------------------------------------------------------------

# Rows per person: most people have one contact row, some a primary plus secondaries.
GROUP_SIZES = [1, 2, 3, 4, 5]
GROUP_WEIGHTS = [0.78, 0.12, 0.06, 0.03, 0.01]
# Seeded phones use these area codes; identify.lua's new phones use others (no collision).
SEED_AREAS = [201, 202, 212, 213, 214, 215, 216, 301, 303, 305, 310, 312, 313, 314, 404, 407,
              408, 410, 412, 415, 469, 512, 602, 612, 614, 615, 617, 619, 646, 650, 702, 703,
              704, 713, 718, 720, 773, 801, 818, 917]
EXCHANGES = 800  # 200..999: all valid for these area codes (checked below)
FIRST = ["james", "mary", "robert", "patricia", "john", "jennifer", "michael", "linda", "david",
         "elizabeth", "william", "barbara", "richard", "susan", "joseph", "jessica", "thomas",
         "sarah", "charles", "karen", "priya", "wei", "fatima", "ahmed", "sofia", "lucas", "amara",
         "hiroshi", "olga", "diego", "chloe", "mateo", "aisha", "noah", "emma", "liam", "mia", "yusuf"]
LAST = ["smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
        "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson", "thomas", "taylor",
        "moore", "jackson", "martin", "lee", "perez", "thompson", "white", "harris", "sanchez",
        "clark", "ramirez", "lewis", "robinson", "walker", "young", "allen", "king", "wright",
        "nguyen", "okafor", "kowalski", "schmidt", "rossi", "tanaka", "silva", "ivanova", "haddad"]
DOMAINS = ["gmail.com"] * 8 + ["yahoo.com"] * 3 + ["outlook.com"] * 2 + ["hotmail.com", "icloud.com",
           "aol.com", "proton.me", "acme-corp.com", "comcast.net", "fastmail.com", "mail.de"]


def seed_phone(i: int) -> str:
    """The i-th seeded phone (unique for i < 40 * 8M), already E.164."""
    area = SEED_AREAS[i % len(SEED_AREAS)]
    j = (i // len(SEED_AREAS) * 7919 + 12345) % (EXCHANGES * 10000)  # a permutation: looks random
    return f"+1{area}{200 + j // 10000}{j % 10000:04d}"


def check_phones() -> None:
    """Every (area, exchange) we generate must normalise to itself, else look-ups would miss."""
    from reconcile.normalize import normalize_phone

    new_areas = [206, 253, 360, 425, 509, 503, 541, 971, 458, 907]  # identify.lua's NEW_AREAS
    for area in SEED_AREAS + new_areas:
        for exch in range(200, 200 + EXCHANGES, 7):
            phone = f"+1{area}{exch}4321"
            if normalize_phone(phone) != phone:
                raise SystemExit(f"generated phone {phone} does not normalise to itself")


def _email(rng: random.Random, first: str, last: str, person: int, k: int) -> str:
    style = rng.random()
    if style < 0.4:
        local = f"{first}.{last}{person}"
    elif style < 0.6:
        local = f"{first}{last}{person}"
    elif style < 0.8:
        local = f"{first[0]}{last}.{person}"
    else:
        local = f"{first}_{person}"
    if k:
        local = f"{local}.{k}"
    if rng.random() < 0.05:
        local += "+shop"
    return f"{local}@{rng.choice(DOMAINS)}"


class Population:
    """What seeded people look like: their names, emails and phones. :func:`generate`
    owns the group structure; other benchmarks subclass this (``bench/probabilistic.py``)
    for other value distributions. ``tag`` names the cached seeds and bench databases."""

    tag = "identify"
    #: a few percent of the rows share values (families, role mailboxes, placeholders,
    #: fillers: ``bench/shared_values.py``), sent through the engine after the bulk load
    shared = True

    def person(self, rng: random.Random, person: int) -> tuple[str, str, str | None]:
        """(first, last) for emails, and the display name (or None)."""
        first, last = rng.choice(FIRST), rng.choice(LAST)
        return first, last, (f"{first.title()} {last.title()}" if rng.random() < 0.7 else None)

    def email(self, rng: random.Random, first: str, last: str, person: int, k: int) -> str:
        return _email(rng, first, last, person, k)

    def phone(self, i: int) -> str:
        """The i-th seeded phone, E.164 (normalises to itself)."""
        return seed_phone(i)

    def fingerprint(self) -> str:
        import inspect

        return "".join(inspect.getsource(cls) for cls in type(self).__mro__[:-1])


def generate(size: int, seed: int = SEED, population: Population | None = None) -> list[tuple]:
    """``size`` contact rows ``(id, phone, email, linkedId, precedence, createdAt, name, keys)``.

    People arrive in order; a person's secondaries arrive later (exponentially spread),
    each bringing one new email or phone beside one the group already has. Rows are
    ordered by arrival, so ``id`` and ``createdAt`` increase together and every
    secondary's primary has a smaller id.
    """
    from reconcile.normalize import Identity

    pop = population or Population()
    rng = random.Random(seed)
    cumulative = [sum(GROUP_WEIGHTS[: i + 1]) for i in range(len(GROUP_WEIGHTS))]
    people = int(size / sum(s * w for s, w in zip(GROUP_SIZES, GROUP_WEIGHTS))) + 1
    spread = max(1.0, 0.05 * people)
    events: list[tuple] = []  # (arrival, person, email, phone, name)
    phone_i = 0
    person = 0
    while len(events) < size * 1.02 + 10:
        n = GROUP_SIZES[bisect.bisect_left(cumulative, rng.random() * cumulative[-1])]
        first, last, name = pop.person(rng, person)
        kind = rng.random()
        email = pop.email(rng, first, last, person, 0) if kind >= 0.05 else None
        phone = None
        if kind < 0.05 or kind >= 0.10:
            phone, phone_i = pop.phone(phone_i), phone_i + 1
        events.append((float(person), person, email, phone, name))
        emails = [email] if email else []
        phones = [phone] if phone else []
        for k, offset in enumerate(sorted(rng.expovariate(1 / spread) for _ in range(n - 1)), start=1):
            if emails and (not phones or rng.random() < 0.5):
                e, p = rng.choice(emails), pop.phone(phone_i)
                phone_i += 1
                phones.append(p)
            else:
                e, p = pop.email(rng, first, last, person, k), rng.choice(phones)
                emails.append(e)
            events.append((person + offset, person, e, p, name))
        person += 1
    events.sort(key=lambda ev: ev[0])
    del events[size:]
    primary_of: dict[int, int] = {}
    rows = []
    for row_id, (_, who, email, phone, name) in enumerate(events, start=1):
        linked = primary_of.setdefault(who, row_id)
        linked = None if linked == row_id else linked
        keys = Identity(email, phone, name).keys
        rows.append((row_id, phone, email, linked, name, keys))
    return rows


def timestamps(size: int) -> list[datetime]:
    """``createdAt`` per id: spread over three years before now, strictly increasing."""
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=1)
    span = timedelta(days=3 * 365)
    step = span / size
    start = end - span
    return [start + step * i for i in range(1, size + 1)]


KEY_COLS = ["emailMailbox", "emailLocal", "phoneNational", "phoneTail", "nameKey"]
CONTACT_COLS = ["id", "phoneNumber", "email", "linkedId", "linkPrecedence", "createdAt", "updatedAt",
                "deletedAt", "name", *KEY_COLS, "linkMethod", "linkScore", "linkModel", "unreadableEmail",
                "unreadablePhone"]
AUDIT_COLS = ["id", "at", "contactId", "action", "oldLinkedId", "newLinkedId", "oldPrecedence",
              "newPrecedence", "cause", "detail"]


def records(size: int, fmt_time, population: Population | None = None) -> tuple[list[tuple], list[tuple]]:
    rows = generate(size, population=population)
    times = timestamps(size)
    contacts, audits = [], []
    for (row_id, phone, email, linked, name, keys), at in zip(rows, times):
        ts = fmt_time(at)
        precedence = "primary" if linked is None else "secondary"
        contacts.append((row_id, phone, email, linked, precedence, ts, ts, None, name,
                         *(keys[c] for c in KEY_COLS), "new" if linked is None else "exact", None, None, None, None))
        audits.append((row_id, ts, row_id, "created", None, linked, None, precedence, "seed:bench", None))
    return contacts, audits


def seed_key(size: int, population: Population | None = None) -> str:
    """Changes when the generator, the population, the size or the schema's migrations change."""
    import inspect

    pop = population or Population()
    h = hashlib.sha256(f"{SEED_VERSION}:{SEED}:{size}:{GROUP_WEIGHTS}:{SEED_AREAS}:{FIRST}:{LAST}:{DOMAINS}".encode())
    if type(pop) is not Population:  # the default keeps its old keys (and cached seeds)
        h.update(pop.fingerprint().encode())
    if pop.shared:
        h.update(inspect.getsource(shared_values).encode())
    for fn in (seed_phone, _email, generate, timestamps, records):
        h.update(inspect.getsource(fn).encode())
    import reconcile

    versions = Path(reconcile.__file__).parent / "migrations" / "versions"  # the code that will run
    for path in sorted(versions.glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


# --- seeding -----------------------------------------------------------------------------


def shared_bodies(size: int, population: Population) -> list[dict]:
    """The requests of people who share values (none when the population has none)."""
    return shared_values.SharedValues(SEED + size, seed_phone).bodies(size) if population.shared else []


def seed_shared(url: str, bodies: list[dict], log) -> dict:
    return shared_values.seed_through_engine(url, bodies, log) if bodies else {}


def seed_sqlite(size: int, log, population: Population | None = None) -> Path:
    """A migrated, seeded SQLite file, from the cache when the seed is unchanged."""
    from reconcile.store.migrate import upgrade

    pop = population or Population()
    SEED_DIR.mkdir(parents=True, exist_ok=True)
    path = SEED_DIR / f"{pop.tag}-sqlite-{size}-{seed_key(size, pop)}.db"
    if path.exists():
        log(f"sqlite {size:,}: cached seed {path.name}")
        return path
    for old in SEED_DIR.glob(f"{pop.tag}-sqlite-{size}-*.db"):
        old.unlink()
    tmp = path.with_suffix(".tmp")
    for suffix in ("", "-wal", "-shm", "-writelock"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    t0 = time.perf_counter()
    upgrade(f"sqlite:///{tmp}", SEED_REVISION)
    shared = shared_bodies(size, pop)
    contacts, audits = records(size - len(shared), lambda d: f"{d:%Y-%m-%d %H:%M:%S.%f}", pop)
    t1 = time.perf_counter()
    con = sqlite3.connect(tmp, isolation_level=None)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-512000")
    indexes = con.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('Contact', 'audit_log')"
    ).fetchall()
    con.execute("BEGIN")
    for name, _ in indexes:  # faster to build them once, after the rows, with the same DDL
        con.execute(f'DROP INDEX "{name}"')
    for table, cols, rows in (('"Contact"', CONTACT_COLS, contacts), ("audit_log", AUDIT_COLS, audits)):
        names = ",".join(f'"{c}"' for c in cols)
        con.executemany(f'INSERT INTO {table} ({names}) VALUES ({",".join("?" * len(cols))})', rows)
    for _, sql in indexes:
        con.execute(sql)
    con.execute("COMMIT")
    con.execute("PRAGMA journal_mode=WAL")
    con.close()
    t2 = time.perf_counter()
    url = f"sqlite:///{tmp}"
    # no derived state is written by hand here: the migrations after SEED_REVISION backfill
    # what they keep about existing contacts (0008's identifier_group), as in production
    upgrade(url)
    engine_counts = seed_shared(url, shared, log)
    con = sqlite3.connect(tmp)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    for suffix in ("-wal", "-shm", "-writelock"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    tmp.rename(path)
    log(f"sqlite {size:,}: seeded in {time.perf_counter() - t0:.1f}s (generate {t1 - t0:.1f}s, load {t2 - t1:.1f}s, "
        f"migrate to head and {len(shared):,} shared-value requests through the engine {time.perf_counter() - t2:.1f}s: {engine_counts})")
    return path


def _pg_admin():
    from sqlalchemy import create_engine

    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _pg_url(db: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(PG_ADMIN_URL).set(database=db).render_as_string(hide_password=False)


def pg_copy_of_seed(seed: str, purpose: str) -> tuple[str, str]:
    """A PostgreSQL database of this process's own, copied from the template ``seed`` (a
    ``Backend.fresh`` name is shared with ``bench identify``): its name and URL."""
    from sqlalchemy import text

    own_db = f"{PG_PREFIX}_{purpose}_{os.getpid()}"
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{own_db}" TEMPLATE "{seed}"'))
    admin.dispose()
    return own_db, _pg_url(own_db)


def _pg_exists(admin, db: str) -> bool:
    from sqlalchemy import text

    with admin.connect() as conn:
        return conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": db}).first() is not None


def _pg_drop(admin, db: str) -> None:
    from sqlalchemy import text

    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))


def seed_postgresql(size: int, log, population: Population | None = None) -> str:
    """A seeded template database ``<PG_PREFIX>_<tag>_seed_<size>_<key>`` (reused if present)."""
    import psycopg
    from sqlalchemy import text

    from reconcile.store.migrate import upgrade

    pop = population or Population()
    db = f"{PG_PREFIX}_{pop.tag}_seed_{size}_{seed_key(size, pop)}"
    admin = _pg_admin()
    try:
        if _pg_exists(admin, db):
            log(f"postgresql {size:,}: reusing seed database {db}")
            return db
        with admin.connect() as conn:
            for (old,) in conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                                       {"p": f"{PG_PREFIX}_{pop.tag}_seed_{size}_%"}):
                conn.execute(text(f'DROP DATABASE "{old}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{db}"'))
    finally:
        admin.dispose()
    t0 = time.perf_counter()
    url = _pg_url(db)
    upgrade(url, SEED_REVISION)
    shared = shared_bodies(size, pop)
    contacts, audits = records(size - len(shared), lambda d: f"{d:%Y-%m-%d %H:%M:%S.%f}+00", pop)
    t1 = time.perf_counter()
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as conn:
        with conn.cursor() as cur:
            cur.execute("SET session_replication_role = replica")  # no per-row FK triggers
            cur.execute("SET maintenance_work_mem = '256MB'")
            cur.execute(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename IN ('Contact', 'audit_log')"
                " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
            )
            indexes = cur.fetchall()
            for name, _ in indexes:
                cur.execute(f'DROP INDEX "{name}"')
            for table, cols, rows in (('"Contact"', CONTACT_COLS, contacts), ("audit_log", AUDIT_COLS, audits)):
                quoted = ",".join(f'"{c}"' for c in cols)
                with cur.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                    buf = []
                    for row in rows:
                        buf.append("\t".join("\\N" if v is None else str(v) for v in row))
                        if len(buf) >= 50_000:
                            copy.write("\n".join(buf) + "\n")
                            buf.clear()
                    if buf:
                        copy.write("\n".join(buf) + "\n")
            for _, sql in indexes:
                cur.execute(sql)
            for table in ("Contact", "audit_log"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), (SELECT max(id) FROM \"{table}\"))")
        conn.commit()
        conn.autocommit = True
        conn.execute('VACUUM ANALYZE "Contact"')
        conn.execute("VACUUM ANALYZE audit_log")
    t2 = time.perf_counter()
    upgrade(url)  # backfills derived state (0008's identifier_group) from the bulk rows
    engine_counts = seed_shared(url, shared, log)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    log(f"postgresql {size:,}: seeded {db} in {time.perf_counter() - t0:.1f}s (generate {t1 - t0:.1f}s, load {t2 - t1:.1f}s, "
        f"migrate to head and {len(shared):,} shared-value requests through the engine {time.perf_counter() - t2:.1f}s: {engine_counts})")
    return db


# --- the workload --------------------------------------------------------------------------


def _fmt_phone(phone: str, rng: random.Random) -> str:
    """A seeded E.164 phone as a client might send it (all normalise back to it). A phone
    that is not a North American E.164 number (the shared-value fillers ``0``, ``1``...) is
    sent as stored: cut into groups it would be ``--``, which the service rightly refuses."""
    national = phone[2:]
    style = rng.random()
    if style < 0.4 or not (phone.startswith("+1") and len(phone) == 12):
        return phone
    if style < 0.7:
        return f"({national[:3]}) {national[3:6]}-{national[6:]}"
    if style < 0.9:
        return f"{national[:3]}-{national[3:6]}-{national[6:]}"
    return national


def _fmt_email(email: str, rng: random.Random) -> str:
    style = rng.random()
    if style < 0.8:
        return email
    if style < 0.9:
        return email.upper()
    return f"  {email.title()} "


def write_requests(url: str, size: int, path: Path, sample: int = 50_000) -> None:
    """The request file identify.lua reads: look-ups and known values of seeded people."""
    from sqlalchemy import bindparam, create_engine, select

    from reconcile.store.schema import contact

    rng = random.Random(SEED + size)
    ids = sorted(rng.sample(range(1, size + 1), min(sample, size)))
    engine = create_engine(url)
    rows = []
    try:
        with engine.connect() as conn:
            stmt = select(contact.c.email, contact.c.phoneNumber).where(contact.c.id.in_(bindparam("ids", expanding=True)))
            for i in range(0, len(ids), 5000):
                rows.extend(conn.execute(stmt, {"ids": ids[i:i + 5000]}).all())
    finally:
        engine.dispose()
    rng.shuffle(rows)
    lines = []
    for email, phone in rows:
        body: dict = {}
        pick = rng.random()
        if email and (pick < 0.4 or not phone):
            body["email"] = _fmt_email(email, rng)
        if phone and (pick >= 0.4 and pick < 0.7 or not email):
            body["phoneNumber"] = _fmt_phone(phone, rng)
        if pick >= 0.7 and email and phone:
            body = {"email": _fmt_email(email, rng), "phoneNumber": _fmt_phone(phone, rng)}
        if not body:
            body["email" if email else "phoneNumber"] = email or phone
        lines.append("K " + json.dumps(body))
        if email:
            lines.append("E " + email)
        if phone:
            lines.append("P " + _fmt_phone(phone, rng))
    path.write_text("\n".join(lines) + "\n")


# --- the server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pg_backend_pids(url: str) -> list[int]:
    """The server processes of the connections to ``url``'s database (our pools')."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"),
                {"d": make_url(url).database})]
    finally:
        engine.dispose()


class CpuMeter:
    """CPU seconds used by the server (master + workers), its PostgreSQL backends and wrk."""

    def __init__(self, server: "Server", url: str | None):
        self.server, self.url = server, url

    def _sample(self) -> dict[str, float]:
        pg = pg_backend_pids(self.url) if self.url and self.url.startswith("postgresql") else []
        self._pg_seen = set(pg)
        return {"server": sum(_cpu_s(p) for p in self.server.pids()), "db": sum(_cpu_s(p) for p in pg),
                "wrk": resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
                + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime}

    def __enter__(self):
        self.before = self._sample()
        return self

    def __exit__(self, *exc):
        after = self._sample()
        self.used = {k: after[k] - self.before[k] for k in after}
        return False


def serve_servers() -> tuple[list[str], str]:
    """The servers ``reconcile serve --server`` offers and its default, from its ``--help``
    (``([], "gunicorn")`` while it has no such option: then it runs gunicorn)."""
    out = subprocess.run([str(RECONCILE), "serve", "--help"], capture_output=True, text=True).stdout
    match = re.search(r"--server\s+\[([^\]]+)\](.*?)(?=\n\s+--|\Z)", out, re.S)
    if not match:
        return [], "gunicorn"
    default = re.search(r"default:\s*([\w-]+)", match.group(2))
    return match.group(1).split("|"), default.group(1) if default else match.group(1).split("|")[0]


class Server:
    """``reconcile serve --workers W --threads T [--server S]`` on 127.0.0.1, stopped by :meth:`stop`."""

    def __init__(self, db_url: str, workers: int, threads: int, probabilistic: bool, log_path: Path,
                 server: str | None = None):
        self.port = free_port()
        env = dict(os.environ)
        env.update(
            RECONCILE_DATABASE_URL=db_url,
            RECONCILE_PROBABILISTIC="1" if probabilistic else "0",
            RECONCILE_DB_POOL_SIZE=str(max(8, threads)),
        )
        cmd = [str(RECONCILE), "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--workers", str(workers), "--threads", str(threads)]
        self._start(cmd + (["--server", server] if server else []), env, workers, log_path)

    def _start(self, cmd: list[str], env: dict, workers: int, log_path: Path) -> None:
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.workers = workers
        self.base = f"http://127.0.0.1:{self.port}"
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as resp:
                    if resp.status == 200 and len(_children(self.proc.pid)) >= self.workers:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout}s; see {self.log.name}")

    def pids(self) -> list[int]:
        return [self.proc.pid, *_children(self.proc.pid)]

    def rss_mb(self) -> float:
        return sum(_rss_kb(p) for p in self.pids()) / 1024

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # our own session only
                self.proc.wait()
        self.log.close()


class EchoServer(Server):
    """``bench/echo_app.py`` (no database) on gunicorn sync workers or granian's WSGI
    interface: the bare-framework ceilings the service's req/s is divided by."""

    KINDS = ("gunicorn", "granian")

    def __init__(self, kind: str, workers: int, threads: int, log_path: Path):
        self.port = free_port()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
        if kind == "gunicorn":
            cmd = [str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
                   "--worker-class", "sync", "--no-control-socket", "--log-level", "warning", "bench.echo_app:app"]
        elif kind == "granian":
            cmd = [str(VENV_BIN / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", str(workers), "--blocking-threads", str(threads), "--http", "1", "--no-ws",
                   "--log-level", "warning", "bench.echo_app:app"]
        else:
            raise ValueError(f"unknown echo server {kind!r}; one of {self.KINDS}")
        self._start(cmd, env, workers, log_path)


class RssSampler(threading.Thread):
    def __init__(self, server: Server):
        super().__init__(daemon=True)
        self.server, self.peak, self._done = server, 0.0, threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.5):
            self.peak = max(self.peak, self.server.rss_mb())

    def finish(self) -> float:
        self._done.set()
        self.join()
        return max(self.peak, self.server.rss_mb())


def run_wrk(base: str, reqfile: Path, duration: int, connections: int, threads: int,
            mix: tuple[float, float], tag: str, counter_base: int) -> dict:
    return wrk(base, LUA, [reqfile, SEED, mix[0], mix[1], tag, counter_base, threads], duration, connections, threads)


def wrk(base: str, script: Path, script_args: list, duration: int, connections: int, threads: int) -> dict:
    """Run ``wrk --latency -s script``; the script's ``done`` prints one ``BENCHJSON {...}`` line."""
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--timeout", "10s",
           "--latency", "-s", str(script), base, "--", *map(str, script_args)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr or out.stdout}")
    for line in out.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            stats = json.loads(line[len("BENCHJSON "):])
            stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
            return stats
    raise RuntimeError(f"no BENCHJSON line in wrk output:\n{out.stdout}\n{out.stderr}")


def count_contacts(url: str) -> int:
    from sqlalchemy import create_engine, func, select

    from reconcile.store.schema import contact

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(contact)).scalar_one()
    finally:
        engine.dispose()


def check_invariants(url: str) -> int:
    from reconcile.store import Store
    from reconcile.store.invariants import check

    store = Store(url)
    try:
        return sum(v.count for v in check(store))
    finally:
        store.dispose()


# --- one measurement -----------------------------------------------------------------------


class Backend:
    """A fresh copy of the seeded database per trial."""

    def __init__(self, name: str, size: int, log, population: Population | None = None):
        self.name, self.size, self.log = name, size, log
        self.tag = (population or Population()).tag
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        self.seed = seed_sqlite(size, log, population) if name == "sqlite" else seed_postgresql(size, log, population)
        self.run_db: str | None = None

    def fresh(self) -> str:
        self.cleanup()
        if self.name == "sqlite":
            path = RUN_DIR / f"{self.tag}-{self.size}.db"
            for suffix in ("", "-wal", "-shm", "-writelock"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            shutil.copyfile(self.seed, path)
            self.run_db = str(path)
            return f"sqlite:///{path}"
        from sqlalchemy import text

        self.run_db = f"{PG_PREFIX}_{self.tag}_run_{self.size}"
        admin = _pg_admin()
        try:
            _pg_drop(admin, self.run_db)
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.run_db}" TEMPLATE "{self.seed}"'))
        finally:
            admin.dispose()
        return _pg_url(self.run_db)

    def cleanup(self) -> None:
        if self.run_db is None:
            return
        if self.name == "sqlite":
            for suffix in ("", "-wal", "-shm", "-writelock"):
                Path(f"{self.run_db}{suffix}").unlink(missing_ok=True)
        else:
            admin = _pg_admin()
            try:
                _pg_drop(admin, self.run_db)
            finally:
                admin.dispose()
        self.run_db = None

    def drop_seed(self) -> None:
        if self.name == "postgresql":
            admin = _pg_admin()
            try:
                _pg_drop(admin, self.seed)
            finally:
                admin.dispose()


#: the rows of every (backend, size) block, in the order they run
CONFIGS = {
    "echo-gunicorn": "bench/echo_app.py on gunicorn, sync workers: the ceiling the ratio divides by",
    "echo-granian": "bench/echo_app.py on granian (WSGI): the faster server's ceiling",
    "shipped": "the service as it ships (model on, guards on)",
    "model-off": "the service with the model off (RECONCILE_PROBABILISTIC=0), guards on",
}


def request_file(backend: Backend) -> Path:
    """identify.lua's request file for this seed (written from a fresh copy once)."""
    reqfile = RUN_DIR / f"identify-{backend.size}-{seed_key(backend.size)}.requests"
    if not reqfile.exists():
        write_requests(backend.fresh(), backend.size, reqfile)
        backend.cleanup()
    return reqfile


def _start(make) -> Server:
    for attempt in range(3):  # the working tree may be mid-edit by someone else: retry a start
        try:
            return make()
        except RuntimeError:
            if attempt == 2:
                raise
            time.sleep(10)
    raise AssertionError("unreachable")


def measure(server: Server, url: str | None, reqfile: Path, args, duration: int) -> dict:
    """Warm up, then one measured ``wrk`` run with the server's RSS and CPU sampled."""
    try:
        if args.warmup:
            run_wrk(server.base, reqfile, args.warmup, args.connections, args.wrk_threads, args.mix, "warm", 6_000_000)
        before = count_contacts(url) if url else None
        load_before = os.getloadavg()
        sampler = RssSampler(server)
        sampler.start()
        with CpuMeter(server, url) as cpu:
            stats = run_wrk(server.base, reqfile, duration, args.connections, args.wrk_threads, args.mix, "run", 0)
        stats["rss_mb"] = sampler.finish()
        n = max(1, stats["requests"])
        stats["cpu_ms_per_req"] = {k: round(v * 1000 / n, 3) for k, v in cpu.used.items()}
        total = sum(cpu.used.values()) * 1000 / n
        # what the two cores could serve if nothing else ran: a load-independent yardstick
        stats["est_rps_idle"] = round((os.cpu_count() or 1) * 1000 / total) if total else None
        stats["load_before"] = load_before
        stats["load_after"] = os.getloadavg()
    finally:
        server.stop()
    stats["created"] = count_contacts(url) - before if url else None
    return stats


def trial(backend: Backend, args, config: str, threads: int, duration: int, check: bool) -> dict:
    """One measured run of ``config`` (see :data:`CONFIGS`) on a fresh copy of the seed."""
    reqfile = request_file(backend)
    if config.startswith("echo-"):
        kind = config.removeprefix("echo-")
        t = 1 if kind == "gunicorn" else args.echo_threads
        log_path = RUN_DIR / f"echo-{kind}.log"
        server = _start(lambda: EchoServer(kind, args.workers, t, log_path))
        stats = measure(server, None, reqfile, args, duration)
        stats.update(threads=t, server=kind)
        return stats
    url = backend.fresh()
    log_path = RUN_DIR / f"server-{backend.name}-{backend.size}.log"
    server = _start(lambda: Server(url, args.workers, threads, config == "shipped", log_path, args.server))
    stats = measure(server, url, reqfile, args, duration)
    stats.update(threads=threads, server=args.server or args.serve_default)
    if check:
        t = time.perf_counter()
        stats["invariant_violations"] = check_invariants(url)
        stats["check_s"] = round(time.perf_counter() - t, 1)
    backend.cleanup()
    return stats


# --- reporting -----------------------------------------------------------------------------


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text[:-1] if text[-1] in "km" else text) * mult)


def human(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def with_ratios(results: list[dict]) -> list[dict]:
    """Each row's req/s over the echo ceilings measured in its own (backend, size) block."""
    for r in results:
        block = {x["config"]: x for x in results if (x["backend"], x["size"]) == (r["backend"], r["size"])}
        for kind in ("gunicorn", "granian"):
            echo = block.get(f"echo-{kind}")
            r[f"ratio_{kind}_echo"] = round(r["rps"] / echo["rps"], 3) if echo else None
            idle = echo and echo["est_rps_idle"] and r["est_rps_idle"]
            r[f"cpu_ratio_{kind}_echo"] = round(r["est_rps_idle"] / echo["est_rps_idle"], 3) if idle else None
    return results


def print_table(results: list[dict], meta: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"POST /identify over HTTP: the service beside bare-framework ceilings; {meta['workers']} workers, "
                        f"wrk -c{meta['connections']} -t{meta['wrk_threads']}, {meta['duration']}s, "
                        f"mix known/new/new-info {meta['mix'][0]:.0%}/{meta['mix'][1]:.0%}/{1 - sum(meta['mix']):.0%}")
    cols = ["backend", "contacts", "config", "server", "threads", "req/s", "/ gunicorn echo", "/ granian echo",
            "CPU-based / gunicorn echo",
            "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "created", "RSS MB", "CPU ms/req srv+db+wrk",
            "est. req/s idle", "load 1m", "invariants", "sweep req/s by threads"]
    for col in cols:
        table.add_column(col, justify="left" if col in ("backend", "config", "server", "sweep req/s by threads") else "right")
    ratio = lambda v: "—" if v is None else f"{v:.2f}"  # noqa: E731
    for r in results:
        table.add_row(
            r["backend"] if not r["config"].startswith("echo-") else f"({r['backend']})", human(r["size"]), r["config"],
            r["server"], str(r["threads"]), f"{r['rps']:,.0f}", ratio(r["ratio_gunicorn_echo"]), ratio(r["ratio_granian_echo"]),
            ratio(r["cpu_ratio_gunicorn_echo"]),
            f"{r['p50_us'] / 1000:.1f}", f"{r['p95_us'] / 1000:.1f}", f"{r['p99_us'] / 1000:.1f}",
            f"{r['lat_max_us'] / 1000:.0f}", str(r["non2xx"] + r["connect_errors"] + r["read_errors"] + r["timeouts"]),
            "—" if r["created"] is None else f"{r['created']:,}", f"{r['rss_mb']:.0f}",
            "+".join(f"{r['cpu_ms_per_req'][k]:.2f}" for k in ("server", "db", "wrk")), f"{r['est_rps_idle']:,}",
            f"{r['load_before'][0]:.1f}→{r['load_after'][0]:.1f}",
            "—" if r.get("invariant_violations") is None else ("ok" if r["invariant_violations"] == 0 else str(r["invariant_violations"])),
            " ".join(f"{t}:{v:,.0f}" for t, v in r.get("sweep", {}).items()),
        )
    Console(width=300).print(table)
    for name, what in CONFIGS.items():
        print(f"  {name}: {what}")
    print("/ gunicorn echo, / granian echo: req/s over the echo ceiling measured in the same block (the backend in "
          "brackets: the echo touches no database). CPU-based / gunicorn echo: est. req/s idle over the gunicorn "
          "echo's, the same ratio from CPU time per request (steadier when other processes load the machine). errors: non-2xx + socket errors (must be 0). created: contacts "
          "written during the measured run. est. req/s idle = cores x 1000 / CPU ms per request (server + its "
          "database backends + wrk): what the machine could serve with nothing else running; CPU time is measured, "
          "so it is far less noisy than req/s.")
    print("Targets (issue 13): shipped at 1M contacts on SQLite >= 0.5 of the gunicorn echo (stretch: 0.5 of the "
          "fastest echo), p99 <= 15 ms at 16 connections; on PostgreSQL >= 0.4.")
    print(f"seed: bulk unique people plus {sum(shared_values.SHARES.values()):.1%} shared-value rows sent through the "
          f"engine (bench/shared_values.py); machine: {os.cpu_count()} cores; load average at start {meta['load_start']}, "
          f"at end {meta['load_end']} (other processes share the CPU: numbers are noisy)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench identify", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100k,1M", help="contacts to seed, e.g. 100k,1M")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"rows per (backend, size), from {', '.join(CONFIGS)}")
    ap.add_argument("--server", default=None,
                    help="passed to `reconcile serve --server` (when it has the option); default: its own default")
    ap.add_argument("--duration", type=int, default=20, help="seconds of each measured run")
    ap.add_argument("--threads", default="1,2,4,8",
                    help="threads per service worker; several: sweep them on `shipped`, keep the best by req/s for both service rows")
    ap.add_argument("--sweep-duration", type=int, default=8, help="seconds per sweep trial")
    ap.add_argument("--workers", type=int, default=2, help="worker processes of the service and of both echo servers")
    ap.add_argument("--echo-threads", type=int, default=1, help="granian blocking threads per worker for echo-granian")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections")
    ap.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (they share the 2 cores)")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per trial (0: none)")
    ap.add_argument("--mix", default="0.5,0.3", help="fractions of known look-ups and new people; rest new info")
    ap.add_argument("--no-check", dest="check", action="store_false", help="skip the invariant check after runs")
    ap.add_argument("--keep-pg-seed", action="store_true", help="keep the PostgreSQL seed databases for the next run")
    ap.add_argument("--seed-only", action="store_true", help="seed (or find cached seeds) and stop")
    args = ap.parse_args(argv)
    args.mix = tuple(float(x) for x in args.mix.split(","))
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    backends = [b.strip() for b in args.backends.split(",")]
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    thread_options = [int(t) for t in args.threads.split(",")]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        print(f"unknown configs {sorted(unknown)}; choose from {list(CONFIGS)}", file=sys.stderr)
        return 2
    servers, args.serve_default = serve_servers()
    if args.server and args.server not in servers:
        print(f"`reconcile serve` offers no --server {args.server!r} (it offers: {servers or 'no --server option'})",
              file=sys.stderr)
        return 2
    if shutil.which("wrk") is None and not args.seed_only:
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    RESULTS.mkdir(parents=True, exist_ok=True)
    check_phones()
    meta = {k: getattr(args, k) for k in ("duration", "workers", "connections", "wrk_threads", "mix", "server", "echo_threads")}
    meta["serve_default"] = args.serve_default
    meta["load_start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    meta["started"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    meta["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    results: list[dict] = []
    out = RESULTS / "identify.json"
    for name in backends:
        for size in sizes:
            backend = Backend(name, size, log)
            try:
                if args.seed_only:
                    continue
                best = thread_options[0]
                sweep: dict[int, float] = {}
                for config in configs:
                    if config == "shipped" and len(thread_options) > 1:
                        for t in thread_options:
                            s = trial(backend, args, config, t, args.sweep_duration, check=False)
                            sweep[t] = s["rps"]
                            log(f"{name} {human(size)} sweep threads={t}: {s['rps']:,.0f} req/s p99 {s['p99_us'] / 1000:.1f} ms "
                                f"CPU/req {s['cpu_ms_per_req']} non-2xx {s['non2xx']} load {s['load_after'][0]:.1f}")
                        best = max(sweep, key=sweep.get)
                    r = trial(backend, args, config, best, args.duration, check=args.check and not config.startswith("echo-"))
                    r.update(backend=name, size=size, config=config, sweep=sweep if config == "shipped" else {})
                    if r["created"] is not None:
                        r["created_expected"] = r["sent_new"] + r["sent_info"]
                    log(f"{name} {human(size)} {config} ({r['server']}, threads={r['threads']}): {r['rps']:,.0f} req/s "
                        f"p50 {r['p50_us'] / 1000:.1f} p99 {r['p99_us'] / 1000:.1f} ms, CPU/req {r['cpu_ms_per_req']}, "
                        f"created {r['created']} (requests for new rows sent: {r.get('created_expected')}), "
                        f"invariants broken: {r.get('invariant_violations')}")
                    results.append(r)
                    out.write_text(json.dumps({"meta": meta, "results": with_ratios(results)}, indent=2, default=str))
            finally:
                backend.cleanup()
                if not args.keep_pg_seed:
                    backend.drop_seed()
    meta["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    if results:
        out.write_text(json.dumps({"meta": meta, "results": with_ratios(results)}, indent=2, default=str))
        print_table(results, meta)
        print(f"written {out}")
    bad = [r for r in results if r["non2xx"] or r.get("invariant_violations")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
