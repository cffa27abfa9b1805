"""`reconcile import`: historical events through the engine, many per transaction, with
the same outcome as sending them one by one; resumable after a kill; every bad row
reported with its line."""
from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from reconcile.config import PROJECT_ROOT, Settings
from reconcile.engine.reconciler import Reconciler
from reconcile.ingest.loader import DEFAULT_BATCH, import_file
from reconcile.ingest.prepare import prepare_batch
from reconcile.normalize import InvalidInput
from reconcile.store import Store
from reconcile.store import imports as import_store
from reconcile.store.schema import audit_log, contact, identifier_group, import_ref, import_run, link_guard, pending_merge
from reconcile.synth.generator import generate

from conftest import assert_sound, sqlite_url
from reconcile.store.migrate import upgrade

EVENTS = 2500


def synth_events(n: int = EVENTS, seed: int = 11) -> list[dict]:
    """A labelled synthetic stream as an import file's rows (``createdAt`` from its time)."""
    events, _ = generate(n, seed)
    return [
        {"email": e["email"], "phoneNumber": e["phoneNumber"], "name": e["name"], "createdAt": e["ts"], "externalId": f"p{e['person']}"}
        for e in events
    ]


def write_jsonl(path: Path, rows: list) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(row if isinstance(row, str) else json.dumps(row, ensure_ascii=False))
            f.write("\n")
    return path


def graph(url: str) -> dict[str, list]:
    """Everything the engine decided, comparable between two databases (audit causes
    without their ``identify:``/``import:`` prefix)."""
    engine = create_engine(url)
    c = contact.c
    try:
        with engine.connect() as conn:
            return {
                "contacts": [tuple(r) for r in conn.execute(select(
                    c.id, c.email, c.phoneNumber, c.name, c.linkedId, c.linkPrecedence, c.createdAt, c.linkMethod,
                    c.linkScore, c.linkModel, c.unreadableEmail, c.unreadablePhone,
                ).order_by(c.id))],
                "pending": [tuple(r) for r in conn.execute(select(
                    pending_merge.c.id, pending_merge.c.leftPrimaryId, pending_merge.c.rightPrimaryId,
                    pending_merge.c.contactId, pending_merge.c.candidateId, pending_merge.c.reason,
                    pending_merge.c.guard, pending_merge.c.score, pending_merge.c.evidence,
                ).order_by(pending_merge.c.id))],
                "guards": [tuple(r) for r in conn.execute(select(
                    link_guard.c.contactId, link_guard.c.field, link_guard.c.value, link_guard.c.guard,
                    link_guard.c.reason, link_guard.c.pendingMergeId,
                ).order_by(link_guard.c.id))],
                "identifier_group": [tuple(r) for r in conn.execute(select(identifier_group).order_by(
                    identifier_group.c.field, identifier_group.c.value, identifier_group.c.groupId))],
                "audit": [
                    (r.id, r.contactId, r.action, r.oldLinkedId, r.newLinkedId, r.oldPrecedence, r.newPrecedence,
                     r.cause.split(":", 1)[1], r.detail)
                    for r in conn.execute(select(audit_log).order_by(audit_log.c.id))
                ],
            }
    finally:
        engine.dispose()


def people(url: str) -> dict[str, list]:
    """The graph by content, not ids: PostgreSQL's sequences are not transactional, so
    the ids a killed batch drew are skipped (never reused) and later ids differ."""
    engine = create_engine(url)
    c = contact.c
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(contact).order_by(c.id)).all()
            content = {r.id: (r.email, r.phoneNumber, r.name, r.createdAt, r.linkMethod, r.linkScore) for r in rows}
            groups: dict = {}
            for r in rows:
                groups.setdefault(content[r.linkedId or r.id], []).append(content[r.id])
            pending = conn.execute(select(pending_merge)).all()
            guards = conn.execute(select(link_guard)).all()
            return {
                "groups": sorted(((primary, sorted(members, key=repr)) for primary, members in groups.items()), key=repr),
                "pending": sorted((
                    (content[p.leftPrimaryId], content[p.rightPrimaryId], content[p.contactId], content[p.candidateId],
                     p.reason, p.guard, p.score) for p in pending
                ), key=repr),
                "guards": sorted(((content[g.contactId], g.field, g.value, g.guard) for g in guards), key=repr),
                "audit_rows": [conn.execute(select(func.count()).select_from(audit_log)).scalar_one()],
            }
    finally:
        engine.dispose()


def replay_one_by_one(url: str, rows: list[dict], run_id: int) -> None:
    """The reference: each row alone through ``Reconciler.identify`` (``/identify``'s
    path), in the import's documented order (createdAt, then line; undated last)."""
    store = Store(url, pool_size=2)
    reconciler = Reconciler(store, Settings(database_url=url))
    try:
        numbered = [(line, row) for line, row in enumerate(rows, start=1)]
        dated = sorted((r for r in numbered if r[1].get("createdAt")), key=lambda r: (_time(r[1]["createdAt"]), r[0]))
        undated = [r for r in numbered if not r[1].get("createdAt")]
        for line, row in dated + undated:
            try:
                identity = reconciler.parse({k: row.get(k) for k in ("email", "phoneNumber", "name")})
            except InvalidInput:
                continue
            at = _time(row["createdAt"]) if row.get("createdAt") else None
            reconciler.identify(identity, f"{run_id}:{line}", at=at)
    finally:
        store.dispose()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def run_import(url: str, path: Path, settings: Settings | None = None, **kwargs):
    store = Store(url, pool_size=2)
    try:
        return import_file(path, Reconciler(store, settings or Settings(database_url=url)), **kwargs)
    finally:
        store.dispose()


@pytest.fixture
def second_db(request, tmp_path, db_url):
    """Another fresh migrated database on the same backend as ``db_url``."""
    if db_url.startswith("sqlite"):
        other = tmp_path / "other"
        other.mkdir()
        url = sqlite_url(other)
        upgrade(url)
        yield url
        return
    admin_url = request.getfixturevalue("pg_admin_url")
    name = f"reconcile_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_import_equals_replaying_the_events_one_by_one(db_url, second_db, tmp_path):
    """Batched transactions change nothing: the same contacts (ids, links, primaries,
    times), reviews, guards and audit trail as each event sent alone, in the same order.
    The file is shuffled, so the import has to sort it by createdAt itself."""
    rows = synth_events()
    random.Random(5).shuffle(rows)
    path = write_jsonl(tmp_path / "events.jsonl", rows)

    summary = run_import(db_url, path, batch_size=200)
    replay_one_by_one(second_db, rows, summary.run.id)

    imported, replayed = graph(db_url), graph(second_db)
    assert len(imported["contacts"]) > EVENTS / 2 and imported["pending"]  # the stream exercises the model and guards
    for table in imported:
        assert imported[table] == replayed[table], table
    assert summary.totals["loaded"] + summary.totals["rejected"] == EVENTS
    assert summary.totals["contacts"] == len(imported["contacts"])
    assert_sound(Store(db_url))


def test_created_at_orders_the_load_and_stamps_the_contacts(sqlite_db, tmp_path):
    """The older event makes the primary even when it comes later in the file; rows
    without createdAt come after every dated one, in file order, stamped by the clock."""
    path = write_jsonl(tmp_path / "e.jsonl", [
        {"email": "doc@hv.edu", "phoneNumber": "555", "createdAt": "2024-05-01T10:00:00Z"},
        {"email": "doc@hv.edu", "phoneNumber": None},
        {"email": "marty@hv.edu", "phoneNumber": "555", "createdAt": "2024-03-01T09:30:00+01:00"},
    ])
    run_import(sqlite_db, path)
    engine = create_engine(sqlite_db)
    with engine.connect() as conn:
        rows = conn.execute(select(contact.c.id, contact.c.email, contact.c.linkedId, contact.c.createdAt).order_by(contact.c.id)).all()
    engine.dispose()
    assert [(r.id, r.email, r.linkedId) for r in rows] == [(1, "marty@hv.edu", None), (2, "doc@hv.edu", 1)]
    assert rows[0].createdAt == datetime(2024, 3, 1, 8, 30)  # stored in UTC
    assert rows[1].createdAt == datetime(2024, 5, 1, 10, 0)


def test_bad_rows_go_to_the_rejects_file_with_line_and_reason(sqlite_db, tmp_path):
    path = write_jsonl(tmp_path / "e.jsonl", [
        {"email": "ok@x.com", "phoneNumber": "5551234", "createdAt": "2024-01-01T00:00:00Z"},
        "{not json",
        "[1, 2]",
        {"email": "no-at-sign", "phoneNumber": None},
        {"email": None, "phoneNumber": None, "name": "Nobody"},
        {"email": "when@x.com", "createdAt": "yesterday"},
        {"email": "future@x.com", "createdAt": "2999-01-01T00:00:00Z"},
        {"email": "ext@x.com", "externalId": ["a list"]},
        "",
        {"email": "last@x.com", "phoneNumber": 5559876, "externalId": 42},
    ])
    summary = run_import(sqlite_db, path)
    assert summary.totals["loaded"] == 2 and summary.totals["rejected"] == 7
    with open(summary.rejects_path, newline="", encoding="utf-8") as f:
        rejected = list(csv.DictReader(f))
    assert [int(r["line"]) for r in rejected] == [2, 3, 4, 5, 6, 7, 8]
    reasons = {int(r["line"]): r["reason"] for r in rejected}
    assert reasons[2].startswith("not JSON") and reasons[3] == "not a JSON object"
    assert reasons[4].startswith("email:") and reasons[5].startswith("body:")
    assert "ISO 8601" in reasons[6] and "later than the import's start" in reasons[7] and "externalId" in reasons[8]
    assert rejected[0]["record"] == "{not json"
    assert os.stat(summary.rejects_path).st_mode & 0o077 == 0  # it quotes customers' records


def test_csv_loads_like_jsonl_and_reports_its_physical_lines(sqlite_db, tmp_path):
    rows = synth_events(300, seed=3)
    jsonl_url = sqlite_db
    other = tmp_path / "csvdb"
    other.mkdir()
    csv_url = sqlite_url(other)
    upgrade(csv_url)
    run_import(jsonl_url, write_jsonl(tmp_path / "e.jsonl", rows))

    path = tmp_path / "e.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["createdAt", "email", "phoneNumber", "name", "externalId"])
        for row in rows:
            writer.writerow([row["createdAt"], row["email"] or "", row["phoneNumber"] or "", row["name"] or "", row["externalId"]])
        writer.writerow(["2024-01-01T00:00:00Z", "two\nlines@x.com", "", "", ""])  # a quoted field over two lines
        writer.writerow(["2024-01-01T00:00:00Z", "short@x.com"])  # too few fields
    summary = run_import(csv_url, path)
    assert graph(csv_url)["contacts"] == graph(jsonl_url)["contacts"]
    with open(summary.rejects_path, newline="", encoding="utf-8") as f:
        rejected = list(csv.DictReader(f))
    physical = path.read_text(encoding="utf-8").split("\n")  # some synthetic emails end in a line break
    two_lines = next(i for i, text in enumerate(physical, start=1) if text.startswith('2024-01-01T00:00:00Z,"two'))
    assert [(int(r["line"]), r["reason"].split(":")[0]) for r in rejected] == [
        (two_lines, "email"), (two_lines + 2, "expected 5 fields as in the header, found 2"),
    ]
    assert rejected[0]["record"] == '2024-01-01T00:00:00Z,"two\nlines@x.com",,,\r'.rstrip("\r")


def test_a_stopped_import_resumes_where_it_stopped_and_loads_nothing_twice(sqlite_db, tmp_path):
    rows = synth_events(1200, seed=4)
    path = write_jsonl(tmp_path / "e.jsonl", rows)
    first = run_import(sqlite_db, path, batch_size=100, stop_after=4)
    assert first.run.position == 400 and first.run.finished_at is None
    second = run_import(sqlite_db, path, batch_size=300)
    assert second.resumed_from == 400 and second.run.finished_at is not None
    assert second.totals["loaded"] + second.totals["rejected"] == 1200

    clean = tmp_path / "clean"
    clean.mkdir()
    clean_url = sqlite_url(clean)
    upgrade(clean_url)
    reference = run_import(clean_url, path)
    assert graph(sqlite_db) == graph(clean_url)
    assert second.totals == reference.totals

    again = run_import(sqlite_db, path)
    assert again.already_done and again.loaded_now == 0 and graph(sqlite_db) == graph(clean_url)


def test_an_unset_batch_size_commits_the_databases_default_number_of_events_at_once(db_url, tmp_path):
    """SQLite (one writer) commits 2,000 events a transaction, PostgreSQL (an advisory lock
    per identifier) 500: a run stopped after its first batch stands at exactly that."""
    rows = synth_events(2100, seed=6)
    path = write_jsonl(tmp_path / "e.jsonl", rows)
    dialect = make_url(db_url).get_backend_name()
    first = run_import(db_url, path, stop_after=1)
    assert first.run.position == DEFAULT_BATCH[dialect] == {"sqlite": 2000, "postgresql": 500}[dialect]


def test_external_ids_name_the_contact_each_row_became(sqlite_db, tmp_path):
    path = write_jsonl(tmp_path / "e.jsonl", [
        {"email": "a@x.com", "externalId": "crm-1", "createdAt": "2024-01-01T00:00:00Z"},
        {"email": "a@x.com", "phoneNumber": "5551234", "externalId": "crm-2", "createdAt": "2024-01-02T00:00:00Z"},
        {"email": "a@x.com", "phoneNumber": "5551234", "externalId": "crm-3", "createdAt": "2024-01-03T00:00:00Z"},
    ])
    run_import(sqlite_db, path)
    store = Store(sqlite_db)
    try:
        refs = import_store.external_ids(store)
    finally:
        store.dispose()
    assert refs == [("crm-1", 1), ("crm-2", 2), ("crm-3", 1)]  # the last brought nothing new


# The audit sample draws a pair by hashing its contact ids; PostgreSQL's sequences skip
# the ids a killed batch drew, so the resumed and the clean import would draw different
# pairs. The resume tests compare the graphs with the sample off.
NO_AUDIT = {"RECONCILE_AUDIT_LINK_RATE": "0", "RECONCILE_AUDIT_NEAR_RATE": "0", "RECONCILE_AUDIT_HELD_RATE": "0"}


def _cli(url: str, *args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, **NO_AUDIT, "RECONCILE_DATABASE_URL": url, "PYTHONPATH": str(PROJECT_ROOT / "src")}
    code = "from reconcile.cli import main; main()"
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, **popen)


def _position(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(import_run.c.position)).scalar() or 0
    finally:
        engine.dispose()


def _children(pid: int) -> list[int]:
    """The ids of the processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_an_import_killed_mid_way_resumes_to_the_same_result_as_a_clean_one(db_url, second_db, tmp_path):
    """kill -9 while batches are being written: the next run skips exactly what was
    committed, and the end result equals an import that was never interrupted."""
    rows = synth_events(3000, seed=8)
    path = write_jsonl(tmp_path / "e.jsonl", rows)
    proc = _cli(db_url, "import", str(path), "--batch-size", "50", "--no-progress", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _position(db_url) < 500 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()
    helpers = _children(proc.pid)  # the worker parsing ahead (and multiprocessing's tracker)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _position(db_url)
    assert 500 <= killed_at < 3000
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in helpers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert helpers and not any(Path(f"/proc/{pid}").exists() for pid in helpers), "a worker outlived its import"

    resumed = _cli(db_url, "import", str(path), "--no-progress", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()
    assert f"resuming at event {killed_at:,}" in err.decode()

    run_import(
        second_db, path, Settings(database_url=second_db, audit_link_rate=0.0, audit_near_rate=0.0, audit_held_rate=0.0)
    )
    if db_url.startswith("sqlite"):
        assert graph(db_url) == graph(second_db)
    else:
        assert people(db_url) == people(second_db)
    assert_sound(Store(db_url))


def test_an_export_that_fails_midway_leaves_no_half_written_file(sqlite_db, tmp_path, monkeypatch):
    """The partial files hold customers' values; a failed export (a full disk, a lost
    database) must not leave them behind, where no erasure would find them."""
    from reconcile.export import parquet

    run_import(sqlite_db, write_jsonl(tmp_path / "e.jsonl", synth_events(50, seed=7)))

    chunks = parquet.live_contacts_by_person

    def chunks_then_failure(store):
        yield from chunks(store)
        raise OSError(28, "No space left on device")

    store = Store(sqlite_db, pool_size=2)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(parquet, "live_contacts_by_person", chunks_then_failure)
            with pytest.raises(OSError):
                parquet.export_parquet(store, tmp_path / "gold")
    finally:
        store.dispose()
    assert list((tmp_path / "gold").iterdir()) == []


def test_parquet_export_holds_one_row_per_person_and_per_live_contact(sqlite_db, tmp_path):
    """Read back with DuckDB: each person's values in the contract's order (as /identify
    lists them), its size and first/last seen; erased people are absent, values and all."""
    import duckdb

    from reconcile.engine.erasure import ErasureKey, erase
    from reconcile.engine.exact import contact_payload
    from reconcile.export.parquet import export_parquet

    rows = synth_events(800, seed=6)
    run_import(sqlite_db, write_jsonl(tmp_path / "e.jsonl", rows))
    store = Store(sqlite_db, pool_size=2)
    try:
        with store.read() as tx:
            live = tx.conn.execute(select(contact).where(contact.c.deletedAt.is_(None)).order_by(contact.c.createdAt, contact.c.id)).all()
        victim = live[0]
        erase(store, ErasureKey.parse(None, None, victim.id, "US"), by="test")
        with store.read() as tx:
            live = tx.conn.execute(select(contact).where(contact.c.deletedAt.is_(None)).order_by(contact.c.createdAt, contact.c.id)).all()
            refs = tx.conn.execute(select(import_ref.c.externalId, import_ref.c.contactId).order_by(import_ref.c.runId, import_ref.c.line)).all()
        summary = export_parquet(store, tmp_path / "gold")
    finally:
        store.dispose()

    groups: dict[int, list] = {}
    for row in live:
        groups.setdefault(row.linkedId or row.id, []).append(row)
    group_of = {row.id: row.linkedId or row.id for row in live}
    persons = duckdb.sql(
        "SELECT primaryId, emails, phoneNumbers, names, externalIds, epoch_us(firstSeen), epoch_us(lastSeen), size"
        f" FROM '{tmp_path / 'gold' / 'persons.parquet'}' ORDER BY primaryId"
    ).fetchall()
    contacts = duckdb.sql(f"SELECT id, primaryId, email FROM '{tmp_path / 'gold' / 'contacts.parquet'}' ORDER BY id").fetchall()
    assert (summary.persons, summary.contacts) == (len(groups), len(live)) == (len(persons), len(contacts))
    assert [(c[0], c[1]) for c in contacts] == sorted((row.id, group_of[row.id]) for row in live)
    for primary_id, emails, phones, names, external_ids, first_seen, last_seen, size in persons:
        members = groups[primary_id]
        payload = contact_payload(primary_id, members)
        assert (emails, phones, size) == (payload["emails"], payload["phoneNumbers"], len(members))
        assert names == list(dict.fromkeys(m.name for m in members if m.name))
        assert first_seen == _epoch_us(min(m.createdAt for m in members))
        assert last_seen == _epoch_us(max(m.createdAt for m in members))
        assert external_ids == list(dict.fromkeys(e for e, cid in refs if group_of.get(cid) == primary_id))
    everything = (tmp_path / "gold" / "persons.parquet").read_bytes() + (tmp_path / "gold" / "contacts.parquet").read_bytes()
    assert victim.email is None or victim.email.encode() not in everything
    assert victim.id not in {c[0] for c in contacts}
    assert all(group_of.get(cid) is not None for _, cid in refs)  # the erased person's external ids went with them


def _epoch_us(stored: datetime) -> int:
    """Microseconds since the epoch of a timestamp SQLite handed back naive (UTC)."""
    delta = stored.replace(tzinfo=timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def test_a_second_import_of_the_same_file_at_once_loads_nothing_twice(sqlite_db, tmp_path):
    """Two processes on one file: a batch whose run moved meanwhile rolls back whole."""
    from reconcile.store.imports import ImportConflict, find_run
    import reconcile.ingest.loader as loader

    path = write_jsonl(tmp_path / "e.jsonl", synth_events(300, seed=9))
    run_import(sqlite_db, path, batch_size=100, stop_after=1)
    store = Store(sqlite_db, pool_size=2)
    try:
        run = find_run(store, loader.fingerprint(path))
        found = loader.scan(path, "jsonl", run.fingerprint, run.started_at)
        before = graph(sqlite_db)
        with pytest.raises(ImportConflict):  # as a process that read position 0 before the first batch committed
            settings = Settings(database_url=sqlite_db)
            prepared = prepare_batch(path, found, 0, 100, run.started_at, settings.default_region)
            loader._load_batch(Reconciler(store, settings), run.id, found, 0, 100, prepared)
    finally:
        store.dispose()
    assert graph(sqlite_db) == before


def test_records_prepared_ahead_are_parsed_exactly_as_the_engine_parses_them(sqlite_db, tmp_path):
    """A worker's identities (and the blocking keys it computed) are the engine's own:
    the same values, keys and refusals as ``Reconciler.parse`` on the same records."""
    from reconcile.ingest.source import fingerprint, records_at, scan

    rows = synth_events(300, seed=3) + [
        {"email": "no-at-sign"},
        {"email": None, "phoneNumber": "1"},
        {"email": " Doc.Brown+lab@GoogleMail.com ", "phoneNumber": "+1 (415) 555-2671 ext. 9", "name": "Émmett  Brown"},
        {"email": "x@y.com", "phoneNumber": "not a phone"},
    ]
    path = write_jsonl(tmp_path / "e.jsonl", rows)
    started = datetime.now(timezone.utc)
    found = scan(path, "jsonl", fingerprint(path), started)
    store = Store(sqlite_db, pool_size=1)
    try:
        reconciler = Reconciler(store, Settings(database_url=sqlite_db))
        prepared = prepare_batch(path, found, 0, found.to_load, started, reconciler.settings.default_region)
        records = list(records_at(path, found, 0, found.to_load, started))
        assert [p.line for p in prepared] == [r.line for r in records]
        refused = 0
        for item, record in zip(prepared, records):
            try:
                expected = reconciler.parse(record.payload)
            except InvalidInput as exc:
                assert item.reason == f"{exc.field}: {exc.message}"
                refused += 1
                continue
            got = item.identity
            assert (got.email, got.phone, got.name, got.unreadable) == (
                expected.email, expected.phone, expected.name, expected.unreadable
            )
            assert got.keys == expected.keys and got.warnings == expected.warnings
            assert (item.at, item.external_id) == (record.at, record.external_id)
        assert refused == 1
    finally:
        store.dispose()


def test_worker_processes_change_nothing(tmp_path):
    """Parsing in two worker processes ahead of the engine gives the graph parsing in
    the importing process gives, row for row."""
    rows = synth_events(1200, seed=4)
    random.Random(2).shuffle(rows)
    path = write_jsonl(tmp_path / "e.jsonl", rows)
    urls = []
    for workers in (0, 2):
        folder = tmp_path / f"w{workers}"
        folder.mkdir()
        urls.append(sqlite_url(folder))
        upgrade(urls[-1])
        summary = run_import(urls[-1], path, batch_size=100, workers=workers)
        assert summary.totals["loaded"] == 1200
    assert graph(urls[0]) == graph(urls[1])


def _rejected(summary) -> dict[int, str]:
    """The rejects file as {line: reason} ({} when there is none)."""
    if summary.rejects_path is None:
        return {}
    with open(summary.rejects_path, newline="", encoding="utf-8") as f:
        return {int(r["line"]): r["reason"] for r in csv.DictReader(f)}


def _emails(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(select(contact.c.email)).scalars())
    finally:
        engine.dispose()


def test_a_stray_quote_loses_no_line(sqlite_db, tmp_path):
    """A quote inside an unquoted field (``5'10"``) is text, and a quote left open or
    followed by text refuses its own line only: every line is loaded or rejected."""
    path = tmp_path / "e.csv"
    path.write_text(
        "email,phoneNumber,name\n"
        "a1@x.com,,Bob 5'10\"\n"          # 2: loads
        "a2@x.com,,\"Open\n"              # 3: a quote never closed
        "a3@x.com,,Ann\n"                 # 4
        "a4@x.com,,\"Two\nlines\"\n"      # 5-6: one record
        "a5@x.com,,\"Cat\"x\n"            # 7: text after the closing quote
        "a6@x.com,,Dan\n"                 # 8
        "a7@x.com,,\"open at the end\n",  # 9
        encoding="utf-8",
    )
    summary = run_import(sqlite_db, path)
    rejected = _rejected(summary)
    assert set(rejected) == {3, 7, 9} and all(r.startswith("unreadable CSV") for r in rejected.values())
    assert _emails(sqlite_db) == {"a1@x.com", "a3@x.com", "a4@x.com", "a6@x.com"}
    assert summary.run.records == 7 and summary.totals["loaded"] + summary.totals["rejected"] == 7


def test_a_bare_carriage_return_inside_a_line_rejects_it_whole(sqlite_db, tmp_path):
    """csv would read two records from it and keep the first: the line is refused instead."""
    path = tmp_path / "e.csv"
    path.write_bytes(b"email,phoneNumber\nc1@x.com,\rc2@x.com,\nc3@x.com,\n")
    summary = run_import(sqlite_db, path)
    assert list(_rejected(summary)) == [2] and _emails(sqlite_db) == {"c3@x.com"}


def test_a_pipe_is_refused_before_any_run_is_recorded(sqlite_db, tmp_path):
    """A pipe is read once: hashed, then scanned empty, it would be a finished run of
    nothing that the real file later counts as imported already."""
    from reconcile.ingest.source import ImportFileError

    rows = [{"email": "a@x.com", "phoneNumber": "111"}, {"email": "b@y.com", "phoneNumber": "222"}]
    fifo = tmp_path / "events.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(ImportFileError, match="not a regular file"):
        run_import(sqlite_db, fifo)
    cli = _cli(sqlite_db, "import", str(fifo), "--no-progress", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = cli.communicate(timeout=120)
    assert cli.returncode != 0 and "not a regular file" in err and "Traceback" not in err, (out, err)
    assert _position(sqlite_db) == 0 and not _emails(sqlite_db)
    summary = run_import(sqlite_db, write_jsonl(tmp_path / "real.jsonl", rows))
    assert not summary.already_done and summary.totals["loaded"] == 2


def test_one_unreadable_field_rejects_its_row_and_the_rest_loads(sqlite_db, tmp_path):
    """A CSV field past the csv module's limit, a createdAt before year 1 in UTC."""
    path = tmp_path / "e.csv"
    path.write_text(f"email,phoneNumber,name\nb1@x.com,,{'x' * 140_000}\nb2@x.com,,Ann\n", encoding="utf-8")
    summary = run_import(sqlite_db, path)
    limit = csv.field_size_limit(1 << 20)  # the rejects file quotes the whole record
    try:
        assert _rejected(summary) == {2: "unreadable CSV: field larger than field limit (131072)"}
    finally:
        csv.field_size_limit(limit)
    assert _emails(sqlite_db) == {"b2@x.com"}

    path = write_jsonl(tmp_path / "e.jsonl", [
        {"email": "y1@x.com", "createdAt": "0001-01-01T00:00:00+01:00"},
        {"email": "y2@x.com", "createdAt": "2024-01-01T00:00:00Z"},
    ])
    summary = run_import(sqlite_db, path)
    assert _rejected(summary) == {1: "createdAt is out of range in UTC"} and summary.totals["loaded"] == 1


def test_an_unreadable_csv_header_is_a_clear_error(sqlite_db, tmp_path):
    from reconcile.ingest.source import ImportFileError

    path = tmp_path / "e.csv"
    path.write_bytes(b"email,phoneNumber\rc1@x.com,\r")
    with pytest.raises(ImportFileError, match="header cannot be read"):
        run_import(sqlite_db, path)


def test_csv_columns_the_import_does_not_read_are_named_before_it_loads(sqlite_db, tmp_path, caplog):
    """A ``phone`` column (not ``phoneNumber``) would load every row without its phone:
    the import says so instead of dropping the values without a word."""
    path = tmp_path / "e.csv"
    path.write_text("email,phone,Name\nw1@x.com,4155552671,Ann\n", encoding="utf-8")
    with caplog.at_level("WARNING", logger="reconcile.ingest.loader"):
        summary = run_import(sqlite_db, path)
    assert summary.totals["loaded"] == 1
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "reconcile.ingest.loader"]
    assert warning.startswith("ignoring CSV column(s) phone, Name of e.csv")


def test_an_external_id_with_control_characters_is_rejected(sqlite_db, tmp_path):
    """PostgreSQL refuses NUL in text: such a row would stop every attempt at the import."""
    path = write_jsonl(tmp_path / "e.jsonl", [
        {"email": "n@x.com", "externalId": "a\u0000b"},
        {"email": "t@x.com", "externalId": "a\u001bb"},
        {"email": "ok@x.com", "externalId": " crm-1 "},
    ])
    summary = run_import(sqlite_db, path)
    assert _rejected(summary) == {1: "externalId must not contain control characters", 2: "externalId must not contain control characters"}
    assert _emails(sqlite_db) == {"ok@x.com"}


def test_a_byte_order_mark_is_not_part_of_the_first_record(sqlite_db, tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"email":"bom1@x.com"}\n{"email":"bom2@x.com"}\n')
    summary = run_import(sqlite_db, path)
    assert summary.rejects_path is None and _emails(sqlite_db) == {"bom1@x.com", "bom2@x.com"}

    path = tmp_path / "e.csv"
    path.write_bytes(b'\xef\xbb\xbfemail,phoneNumber\nbom3@x.com,\n{"email":"bad"}\n')
    summary = run_import(sqlite_db, path)
    assert list(_rejected(summary)) == [3] and "bom3@x.com" in _emails(sqlite_db)


def test_an_unwritable_rejects_file_stops_the_import_before_it_loads(sqlite_db, tmp_path):
    from reconcile.ingest.source import ImportFileError

    path = write_jsonl(tmp_path / "e.jsonl", [{"email": "a@x.com"}, "{not json"])
    with pytest.raises(ImportFileError, match="no directory"):
        run_import(sqlite_db, path, rejects_path=tmp_path / "missing" / "r.csv")
    assert _position(sqlite_db) == 0 and not _emails(sqlite_db)
    summary = run_import(sqlite_db, path, rejects_path=tmp_path / "r.csv")
    assert summary.totals["loaded"] == 1 and list(_rejected(summary)) == [2]
