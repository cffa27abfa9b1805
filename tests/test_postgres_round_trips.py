"""What the PostgreSQL store does in fewer round trips must mean the same thing: a write
transaction begun with its advisory locks is READ COMMITTED and holds them to its end, a
merge in one statement leaves the same audit rows and ``identifier_group`` counts as the
step-by-step merge SQLite runs, and reads never cost a connection its prepared statements."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text

from conftest import assert_sound
from reconcile.config import Settings
from reconcile.engine.reconciler import Reconciler
from reconcile.normalize import parse_identity
from reconcile.store import Store
from reconcile.store import models as registry
from reconcile.store.schema import audit_log, identifier_group

pytestmark = pytest.mark.postgres


def test_a_write_transaction_is_read_committed_and_holds_its_advisory_locks_until_it_ends(pg_url):
    store = Store(pg_url)
    try:

        def inside(tx):
            isolation = tx.conn.execute(text("SELECT current_setting('transaction_isolation')")).scalar_one()
            held = tx.conn.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
            ).scalar_one()
            return isolation, held

        assert store.write(inside, lock_keys=["email:a@example.com", "phone:+15550100"]) == ("read committed", 2)
        assert store.write(inside) == ("read committed", 0)
        with store.reading() as conn:
            assert conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            ).scalar_one() == 0
    finally:
        store.dispose()


def test_a_failed_write_transaction_leaves_nothing_and_the_next_one_works(pg_url):
    store = Store(pg_url)
    reconciler = Reconciler(store, Settings(database_url=pg_url, probabilistic=False))
    try:

        def fails(tx):
            tx.insert_contact(parse_identity({"email": "gone@example.com"}, "US"), linked_id=None, method="new", cause="t")
            raise RuntimeError("after the insert")

        with pytest.raises(RuntimeError):
            store.write(fails, lock_keys=["email:gone@example.com"])
        assert store.counts() == {"contacts": 0, "audit_log": 0}
        reconciler.identify(parse_identity({"email": "kept@example.com"}, "US"))
        assert store.counts() == {"contacts": 1, "audit_log": 1}
        assert_sound(store)
    finally:
        store.dispose()


MERGING = [  # two groups, then a request that joins them, then one that joins a third
    {"email": "ann@example.com", "phoneNumber": "+1 415 555 0101"},
    {"email": "ann.work@example.com", "phoneNumber": "+1 415 555 0101"},
    {"email": "bob@example.com", "phoneNumber": "+1 415 555 0202"},
    {"email": "bob@example.com", "phoneNumber": "+1 415 555 0101"},
    {"email": "cy@example.com"},
    {"email": "cy@example.com", "phoneNumber": "+1 415 555 0202"},
]


def _replay(url: str) -> tuple[list, list]:
    store = Store(url)
    reconciler = Reconciler(store, Settings(database_url=url, probabilistic=False))
    try:
        for body in MERGING:
            reconciler.identify(parse_identity(body, "US"))
        assert_sound(store)
        with store.reading() as conn:
            audits = conn.execute(
                select(
                    audit_log.c.contactId, audit_log.c.action, audit_log.c.oldLinkedId, audit_log.c.newLinkedId,
                    audit_log.c.oldPrecedence, audit_log.c.newPrecedence, audit_log.c.detail,
                ).order_by(audit_log.c.id)
            ).all()
            holdings = conn.execute(select(identifier_group).order_by(*identifier_group.primary_key.columns)).all()
        return [tuple(r) for r in audits], [tuple(r) for r in holdings]
    finally:
        store.dispose()


def test_a_merge_in_one_statement_audits_and_counts_exactly_as_the_step_by_step_merge(pg_url, sqlite_db):
    pg_audits, pg_holdings = _replay(pg_url)
    sqlite_audits, sqlite_holdings = _replay(sqlite_db)
    assert [a[1] for a in pg_audits].count("demoted") == 2
    assert pg_audits == sqlite_audits
    assert pg_holdings == sqlite_holdings


def test_reads_registry_polls_and_health_probes_keep_the_connections_prepared_statements(pg_url):
    # one pooled connection, so every call below runs on the one that prepared the statements
    store = Store(pg_url, pool_size=1)
    reconciler = Reconciler(store, Settings(database_url=pg_url, probabilistic=False))
    try:
        for i in range(8):  # psycopg prepares a statement on its fifth execution
            reconciler.identify(parse_identity({"email": f"p{i}@example.com"}, "US"))
            reconciler.identify(parse_identity({"email": f"p{i}@example.com"}, "US"))

        def prepared() -> int:
            with store.reading() as conn:
                return conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()

        before = prepared()
        assert before > 0
        registry.active_key(store)
        registry.active_model(store)
        store.ping()
        assert store.writable(0.5)
        assert prepared() == before
    finally:
        store.dispose()
