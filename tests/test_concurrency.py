"""/identify under concurrency: the real server with several worker processes, and the
engine driven by threads, on SQLite and on PostgreSQL.

What must hold however requests interleave (PRODUCT.md, invariants and contract):
- every request gets its answer (200), and the answer holds the values it sent;
- the invariants hold (``check`` finds nothing);
- nothing is duplicated: every contact is the first row holding its email or the first
  holding its phone (a row that brought nothing new must not exist), and no two live
  contacts carry the same (email, phone) pair;
- nothing is lost: every value sent is in the database;
- the grouping is exactly the connected components of the values sent together
  (union-find over the requests, whatever their order);
- the older primary always wins a merge, however many merges race;
- a failed request changes nothing.

Only the exact rules are under test: the probabilistic stage is switched off and the
group-size guards are raised out of reach, so the union-find reference is the truth.
"""
from __future__ import annotations

import dataclasses
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from conftest import assert_sound, sqlite_url
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from reconcile.config import Settings
from reconcile.engine.exact import age_key, contact_payload
from reconcile.normalize import Identity, normalize_email, normalize_phone
from reconcile.store import StaleGroup, Store
from reconcile.store.migrate import upgrade
from reconcile.store.pending import open_pending_merge
from reconcile.store.schema import audit_log, contact, pending_merge
from reconcile.web import create_app

RECONCILE_BIN = Path(sys.executable).with_name("reconcile")
REGION = "US"
#: keeps the over-merge guards out of the way: the exact rules alone are under test
EXACT_ONLY_ENV = {
    "RECONCILE_PROBABILISTIC": "0",
    "RECONCILE_MAX_GROUP_SIZE": "1000000",
    "RECONCILE_LARGE_GROUP_SIZE": "1000000",
}

backends = pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])


# --- the workload -----------------------------------------------------------------


def email_value(family: int, k: int, rng: random.Random) -> str:
    """An email of a family, sometimes spelled with capitals and spaces (same value)."""
    value = f"f{family}m{k}@hill{family % 7}.edu"
    return rng.choice([value, value.upper(), f"  {value} ", value.capitalize()])


def phone_digits(family: int, k: int) -> str:
    """Six digits: not a valid number anywhere, so kept as its digits; no digit runs."""
    return str(100000 + (family * 131 + k * 7919) % 899999)


def phone_value(family: int, k: int, rng: random.Random) -> str | int:
    """The same phone as a string, as a JSON number, or with separators."""
    digits = phone_digits(family, k)
    return rng.choice([digits, int(digits), f"{digits[:3]}-{digits[3:]}", f"({digits[:3]}) {digits[3:]}"])


def mixed_workload(rng: random.Random, n: int, families: int, per_family: int, bridge_rate: float) -> list[dict]:
    """Requests drawn from small pools per family so groups collide and merge constantly;
    a few bridge a family to the next one, so families merge too."""
    body = []
    for _ in range(n):
        fam = rng.randrange(families)
        phone_fam = (fam + 1) % families if rng.random() < bridge_rate else fam
        email = email_value(fam, rng.randrange(per_family), rng)
        phone = phone_value(phone_fam, rng.randrange(per_family), rng)
        shape = rng.random()
        if shape < 0.6:
            body.append({"email": email, "phoneNumber": phone})
        elif shape < 0.8:
            body.append({"email": email, "phoneNumber": None})
        else:
            body.append({"phoneNumber": phone})
    return body


def normalised(body: dict) -> tuple[str | None, str | None]:
    return normalize_email(body.get("email")), normalize_phone(body.get("phoneNumber"), REGION)


# --- the reference: connected components of the values sent together ---------------


class UnionFind:
    def __init__(self):
        self.parent: dict[tuple, tuple] = {}

    def find(self, x: tuple) -> tuple:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: tuple, b: tuple) -> None:
        self.parent[self.find(a)] = self.find(b)

    def components(self) -> set[frozenset]:
        groups = defaultdict(set)
        for x in list(self.parent):
            groups[self.find(x)].add(x)
        return {frozenset(g) for g in groups.values()}


def value_nodes(email: str | None, phone: str | None) -> list[tuple]:
    return [n for n in (("email", email) if email else None, ("phone", phone) if phone else None) if n]


def reference_components(bodies: list[dict]) -> set[frozenset]:
    uf = UnionFind()
    for body in bodies:
        nodes = value_nodes(*normalised(body))
        for node in nodes:
            uf.find(node)
        if len(nodes) == 2:
            uf.union(*nodes)
    return uf.components()


# --- what the database holds --------------------------------------------------------


def live_contacts(store: Store) -> list:
    with store.read() as tx:
        return list(tx.conn.execute(select(contact).where(contact.c.deletedAt.is_(None)).order_by(contact.c.id)))


def audit_actions(store: Store) -> dict[str, int]:
    with store.read() as tx:
        counts = tx.conn.execute(select(audit_log.c.action, func.count()).group_by(audit_log.c.action))
        return defaultdict(int, {action: n for action, n in counts})


def db_groups(rows: list) -> dict[int, list]:
    """Members of each group by primary id, oldest first (the contract's order)."""
    groups = defaultdict(list)
    for row in rows:
        groups[row.linkedId or row.id].append(row)
    for members in groups.values():
        members.sort(key=lambda r: (r.createdAt, r.id))
    return groups


def db_components(rows: list) -> set[frozenset]:
    return {
        frozenset(n for r in members for n in value_nodes(r.email, r.phoneNumber))
        for members in db_groups(rows).values()
    }


def assert_graph_matches(store: Store, bodies: list[dict]) -> list:
    """Everything the module docstring promises about the final database."""
    assert_sound(store)
    rows = live_contacts(store)

    # no duplicates: each row was the first to bring its email or its phone
    first_email: dict[str, int] = {}
    first_phone: dict[str, int] = {}
    for r in rows:  # ascending id: rows sharing a value were inserted in id order
        if r.email is not None:
            first_email.setdefault(r.email, r.id)
        if r.phoneNumber is not None:
            first_phone.setdefault(r.phoneNumber, r.id)
    redundant = [
        (r.id, r.email, r.phoneNumber)
        for r in rows
        if first_email.get(r.email) != r.id and first_phone.get(r.phoneNumber) != r.id
    ]
    assert not redundant, f"contacts that brought nothing new: {redundant[:10]}"
    pairs = [(r.email, r.phoneNumber) for r in rows]
    assert len(pairs) == len(set(pairs)), "two live contacts carry the same (email, phone)"

    # nothing lost, nothing invented, grouping = connected components of what was sent
    expected = reference_components(bodies)
    sent = set().union(*expected)
    stored = {n for r in rows for n in value_nodes(r.email, r.phoneNumber)}
    assert stored == sent, f"lost: {sorted(sent - stored)[:10]}, invented: {sorted(stored - sent)[:10]}"
    actual = db_components(rows)
    assert actual == expected, (
        f"{len(actual)} groups in the database, {len(expected)} connected components sent; "
        f"e.g. {sorted(map(sorted, actual ^ expected))[:2]}"
    )
    return rows


def assert_responses_consistent(results: list[tuple[dict, int, dict]], rows: list) -> None:
    """Each answer was 200, held the values sent, and named a group that is (part of)
    the final group of those values."""
    primary_of_node = {}
    for primary, members in db_groups(rows).items():
        for r in members:
            for n in value_nodes(r.email, r.phoneNumber):
                primary_of_node[n] = primary
    final_primary_of_id = {r.id: r.linkedId or r.id for r in rows}
    errors = [(body, status, answer) for body, status, answer in results if status != 200]
    assert not errors, f"{len(errors)} request(s) failed, e.g. {errors[:3]}"
    for body, _, answer in results:
        email, phone = normalised(body)
        got = answer["contact"]
        assert email is None or email in got["emails"], (body, got)
        assert phone is None or phone in got["phoneNumbers"], (body, got)
        final = {primary_of_node[n] for n in value_nodes(email, phone)}
        assert len(final) == 1
        assert final_primary_of_id[got["primaryContactId"]] in final, (body, got)
        assert got["secondaryContactIds"] == sorted(got["secondaryContactIds"])
        assert got["primaryContactId"] not in got["secondaryContactIds"]


# --- the real server ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(url: str, log_path: Path, workers: int = 3):
    """``reconcile serve --workers N`` (gunicorn) over ``url``; always stopped afterwards."""
    port = free_port()
    env = {**os.environ, "RECONCILE_DATABASE_URL": url, **EXACT_ONLY_ENV}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(RECONCILE_BIN), "serve", "--workers", str(workers), "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the master and its workers
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not healthy after 90s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass


@pytest.fixture
def database(backend, tmp_path, request):
    if backend == "sqlite":
        url = sqlite_url(tmp_path)
        upgrade(url)
        return url
    return request.getfixturevalue("pg_url")


@pytest.fixture
def server(database, tmp_path):
    with running_server(database, tmp_path / "server.log") as base:
        yield base


@pytest.fixture
def db_store(database):
    store = Store(database, pool_size=2)
    yield store
    store.dispose()


def fire(base: str, bodies: list[dict], threads: int, barrier: threading.Barrier | None = None) -> list:
    """Send ``bodies`` from ``threads`` threads (a session each); results in send order."""
    results: list = [None] * len(bodies)

    def worker(offset: int) -> None:
        with requests.Session() as session:
            if barrier is not None:
                barrier.wait()
            for i in range(offset, len(bodies), threads):
                resp = session.post(f"{base}/identify", json=bodies[i], timeout=60)
                try:
                    answer = resp.json()
                except ValueError:
                    answer = {"raw": resp.text[:200]}
                results[i] = (bodies[i], resp.status_code, answer)

    with ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(worker, t) for t in range(threads)]:
            f.result()
    return results


# --- over HTTP, several worker processes ----------------------------------------------


@backends
def test_overlapping_requests_over_http_leave_exactly_the_connected_components(server, db_store):
    rng = random.Random(20240611)
    bodies = mixed_workload(rng, n=2000, families=40, per_family=5, bridge_rate=0.03)
    started = time.monotonic()
    results = fire(server, bodies, threads=24)
    elapsed = time.monotonic() - started

    rows = assert_graph_matches(db_store, bodies)
    assert_responses_consistent(results, rows)
    actions = audit_actions(db_store)
    print(f"{len(bodies)} requests in {elapsed:.1f}s: {len(rows)} contacts, {len(db_groups(rows))} groups, {actions}")
    assert actions["demoted"] >= 20 and actions["relinked"] >= 20, "the workload no longer makes groups merge"

    # afterwards, asking for any single value answers exactly the group in the database
    count = len(rows)
    with requests.Session() as session:
        for primary, members in db_groups(rows).items():
            expected = contact_payload(primary, members)
            for email in expected["emails"]:
                got = session.post(f"{server}/identify", json={"email": email}, timeout=30)
                assert got.status_code == 200 and got.json()["contact"] == expected
            for phone in expected["phoneNumbers"]:
                sent = int(phone) if phone.isdigit() and rng.random() < 0.5 else phone
                got = session.post(f"{server}/identify", json={"phoneNumber": sent}, timeout=30)
                assert got.status_code == 200 and got.json()["contact"] == expected
    assert len(live_contacts(db_store)) == count


def seeded_groups(base: str, tag: str, k: int) -> list[dict]:
    """``k`` groups created one after another (so group i is older than group i+1), each
    with a primary and a secondary; returns their values and primary ids."""
    groups = []
    with requests.Session() as session:
        for i in range(k):
            values = {"emails": [f"{tag}g{i}a@race.io", f"{tag}g{i}b@race.io"], "phone": f"9{i:02d}{tag}7"}
            first = session.post(f"{base}/identify", json={"email": values["emails"][0], "phoneNumber": values["phone"]})
            second = session.post(f"{base}/identify", json={"email": values["emails"][1], "phoneNumber": values["phone"]})
            assert first.status_code == second.status_code == 200
            values["primary"] = first.json()["contact"]["primaryContactId"]
            assert second.json()["contact"]["primaryContactId"] == values["primary"]
            groups.append(values)
    return groups


@backends
def test_racing_bridges_always_keep_the_oldest_primary(server, db_store):
    """Many clients at once each bring a new (email, phone) pair joining two groups made
    at different times: every answer names the older primary, and in the end every group
    hangs off the oldest one, with no chains."""
    rng = random.Random(7)
    k, threads = 10, 24
    for round_no in range(3):
        tag = f"{round_no}{rng.randrange(10, 99)}"
        groups = seeded_groups(server, tag, k)
        pairs = [(i, i + 1) for i in range(k - 1)]  # a spanning chain, so all end up one group
        pairs += [tuple(rng.sample(range(k), 2)) for _ in range(threads * 8 - len(pairs))]
        rng.shuffle(pairs)
        bodies = [
            {"email": rng.choice(groups[i]["emails"]), "phoneNumber": groups[j]["phone"]} for i, j in pairs
        ]
        results = fire(server, bodies, threads=threads, barrier=threading.Barrier(threads))

        assert all(status == 200 for _, status, _ in results), [r for r in results if r[1] != 200][:3]
        rank = {g["primary"]: n for n, g in enumerate(groups)}  # 0 = oldest
        for (i, j), (_, _, answer) in zip(pairs, results):
            winner = answer["contact"]["primaryContactId"]
            assert winner in rank, answer
            assert rank[winner] <= min(i, j), f"bridge {i}-{j} answered by group {rank[winner]}"

        assert_sound(db_store)
        rows = [r for r in live_contacts(db_store) if r.email and r.email.startswith(tag)]
        assert len(rows) == 2 * k  # bridges of known values create nothing
        oldest = groups[0]["primary"]
        assert {r.linkedId or r.id for r in rows} == {oldest}
        assert [r.id for r in rows if r.linkPrecedence == "primary"] == [oldest]


# --- in process: threads straight on the engine -------------------------------------


def exact_only(url: str) -> Settings:
    wanted = {"database_url": url, "probabilistic": False, "max_group_size": 10**6, "large_group_size": 10**6}
    known = {f.name for f in dataclasses.fields(Settings)}
    return Settings(**{k: v for k, v in wanted.items() if k in known})


@pytest.fixture
def engine_reconciler(database):
    app = create_app(exact_only(database))
    reconciler = app.extensions["reconcile"]
    yield reconciler
    reconciler.store.dispose()


@backends
def test_threads_on_the_engine_leave_exactly_the_connected_components(engine_reconciler):
    """No HTTP: threads call ``Reconciler.identify`` at once, from a barrier, on one pool."""
    rng = random.Random(99)
    bodies = mixed_workload(rng, n=400, families=8, per_family=4, bridge_rate=0.05)
    threads = 12
    barrier = threading.Barrier(threads)

    def worker(offset: int) -> list:
        barrier.wait()
        out = []
        for i in range(offset, len(bodies), threads):
            result = engine_reconciler.identify(engine_reconciler.parse(bodies[i]))
            out.append((bodies[i], 200, result.as_json()))
        return out

    with ThreadPoolExecutor(threads) as pool:
        results = [r for f in [pool.submit(worker, t) for t in range(threads)] for r in f.result()]
    rows = assert_graph_matches(engine_reconciler.store, bodies)
    assert_responses_consistent(results, rows)
    actions = audit_actions(engine_reconciler.store)
    print(f"{len(bodies)} requests: {len(rows)} contacts, {len(db_groups(rows))} groups, {dict(actions)}")
    assert actions["demoted"] >= 5, "the workload no longer makes groups merge"


def dump(store: Store) -> tuple[list, list]:
    with store.read() as tx:
        contacts = list(map(tuple, tx.conn.execute(select(contact).order_by(contact.c.id))))
        audits = list(map(tuple, tx.conn.execute(select(audit_log).order_by(audit_log.c.id))))
    return contacts, audits


def two_groups(reconciler) -> None:
    for body in (
        {"email": "george@hillvalley.edu", "phoneNumber": "919191"},
        {"email": "george2@hillvalley.edu", "phoneNumber": "919191"},
        {"email": "biffsucks@hillvalley.edu", "phoneNumber": "717171"},
        {"email": "biff2@hillvalley.edu", "phoneNumber": "717171"},
    ):
        reconciler.identify(reconciler.parse(body))


class Boom(RuntimeError):
    pass


def merge_and_add(tx, cause: str) -> int:
    """What a request bridging the two groups of :func:`two_groups` writes: lock both
    primaries, demote the newer (relinking its secondary), add a contact. Returns its id."""
    matches = tx.find_matching("george@hillvalley.edu", "717171")
    primaries = tx.lock_primaries({m.linkedId or m.id for m in matches})
    winner, loser = sorted(primaries, key=age_key)
    changed = tx.merge_groups(winner, [loser], method="exact", cause=cause)
    assert len(changed) == 2  # the partial write really happened: a demotion and a relink
    newcomer = Identity(email="marty@hillvalley.edu", phone="717171")
    return tx.insert_contact(newcomer, linked_id=winner.id, method="exact", cause=cause).id


LOCK_KEYS = ["email:george@hillvalley.edu", "email:marty@hillvalley.edu", "phone:717171"]


@backends
def test_a_request_that_fails_after_writing_changes_nothing(engine_reconciler):
    """A merge, a relink and an insert are written, then the work fails: a crash in our
    code, then an error from the database. Every row and audit entry is as before."""
    store = engine_reconciler.store
    two_groups(engine_reconciler)
    before = dump(store)

    def crash(tx):
        merge_and_add(tx, "test:crash")
        raise Boom("the process dies half-way")

    with pytest.raises(Boom):
        store.write(crash, lock_keys=LOCK_KEYS)
    assert dump(store) == before

    def database_error(tx):
        merge_and_add(tx, "test:db-error")
        # a row the database refuses: an audit entry for a contact that does not exist
        tx.conn.execute(audit_log.insert().values(at=before[1][0][1], contactId=10**9, action="x", cause="x"))

    with pytest.raises(IntegrityError):
        store.write(database_error, lock_keys=LOCK_KEYS)
    assert dump(store) == before
    assert_sound(store)


@backends
def test_a_lost_race_is_rolled_back_before_the_retry(engine_reconciler):
    """The first attempt writes, then finds its group stale; only the retry's writes stay."""
    store = engine_reconciler.store
    two_groups(engine_reconciler)
    contacts_before, audits_before = dump(store)
    attempts = []

    def work(tx):
        attempts.append(len(attempts) + 1)
        created = merge_and_add(tx, f"test:attempt{len(attempts)}")
        if len(attempts) == 1:
            raise StaleGroup("lost a race after writing")
        return created

    created = store.write(work, lock_keys=LOCK_KEYS)
    assert attempts == [1, 2]
    contacts_after, audits_after = dump(store)
    assert [c[0] for c in contacts_after] == [c[0] for c in contacts_before] + [created]
    new_audits = audits_after[len(audits_before):]
    assert len(new_audits) == 3 and {a[-2] for a in new_audits} == {"test:attempt2"}
    assert_sound(store)


@backends
def test_a_primary_stamped_by_a_clock_that_runs_ahead_stays_the_oldest(engine_reconciler):
    """``createdAt`` comes from the clock of whichever worker inserts the row. Workers on
    hosts whose clocks disagree (or a clock stepped back by NTP) must still never give a
    group a secondary that counts as older than its primary."""
    store = engine_reconciler.store
    first = engine_reconciler.identify(engine_reconciler.parse({"email": "doc@hillvalley.edu", "phoneNumber": "121121"}))
    primary = first.contact["primaryContactId"]

    def stamp_ahead(tx):  # as a worker whose clock runs an hour ahead would have stamped it
        (row,) = tx.contacts([primary])
        tx.conn.execute(update(contact).where(contact.c.id == primary).values(createdAt=row.createdAt + timedelta(hours=1)))

    store.write(stamp_ahead)
    second = engine_reconciler.identify(engine_reconciler.parse({"email": "emmett@hillvalley.edu", "phoneNumber": 121121}))
    assert second.contact["primaryContactId"] == primary
    assert second.contact["emails"] == ["doc@hillvalley.edu", "emmett@hillvalley.edu"]
    assert_sound(store)


@backends
def test_two_requests_proposing_the_same_merge_at_once_both_succeed(engine_reconciler):
    """Two requests in different groups (so holding different locks) can propose the same
    pair of groups for review at the same moment: one proposal is kept, neither fails."""
    store = engine_reconciler.store
    two_groups(engine_reconciler)
    with store.read() as tx:
        a, b = sorted({m.linkedId or m.id for m in tx.find_matching("george@hillvalley.edu", "717171")})
    first_wrote, release = threading.Event(), threading.Event()

    def first(tx):
        opened = open_pending_merge(tx, a, b, reason="guard", guard="shared-identifier")
        first_wrote.set()
        release.wait(10)  # still uncommitted while the second one tries
        return opened

    def second(tx):
        return open_pending_merge(tx, b, a, reason="score", score=0.9)

    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(store.write, first)
        assert first_wrote.wait(10)
        two = pool.submit(store.write, second)
        time.sleep(0.5)  # the second has checked, found nothing, and waits on the first's insert
        release.set()
        assert one.result(timeout=30) is not None
        assert two.result(timeout=30) is None
    with store.read() as tx:
        assert tx.conn.execute(select(func.count()).select_from(pending_merge)).scalar_one() == 1


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_request_racing_an_undone_merge_never_splits_an_identifier(engine_reconciler):
    """An undo splits a group while its primary stays primary. A request that read its
    matches before the split and locks that primary after it must notice and start over,
    or it would add its contact to a group that no longer holds the value it matched on.

    PostgreSQL only: SQLite runs one writer at a time, so the two cannot interleave. The
    interleaving is forced with a third transaction holding the primary's row lock: the
    undo queues on it first, the request (having read its matches) second."""
    from reconcile.review import queue as review

    reconciler, store = engine_reconciler, engine_reconciler.store
    older = reconciler.identify(reconciler.parse({"email": "doc@hillvalley.edu", "phoneNumber": "111222"}))
    newer = reconciler.identify(reconciler.parse({"email": "marty@hillvalley.edu", "phoneNumber": "333444"}))
    winner = older.contact["primaryContactId"]
    item = store.write(lambda tx: open_pending_merge(tx, winner, newer.contact["primaryContactId"], reason="score"))
    review.confirm(store, item, "alice")

    with store.engine.connect() as blocker, ThreadPoolExecutor(2) as pool:
        with blocker.begin():
            blocker.execute(select(contact.c.id).where(contact.c.id == winner).with_for_update())
            undone = pool.submit(review.undo, store, item, "alice")
            time.sleep(0.5)  # the undo waits for the primary's lock
            request = pool.submit(
                reconciler.identify, reconciler.parse({"email": "marty@hillvalley.edu", "phoneNumber": "555666"})
            )
            time.sleep(0.5)  # the request has read marty in the merged group, and waits too
        assert undone.result(timeout=30).status == "pending"
        answer = request.result(timeout=30).contact
    assert "marty@hillvalley.edu" in answer["emails"] and "555666" in answer["phoneNumbers"]
    assert answer["primaryContactId"] == newer.contact["primaryContactId"]
    assert_sound(store)
