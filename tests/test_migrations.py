"""The Alembic migrations build exactly the schema the store layer declares, on both
engines, and downgrade cleanly."""
from datetime import datetime, timezone

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, select

from reconcile.store import Store
from reconcile.store.invariants import check
from reconcile.store.migrate import alembic_config, current, upgrade
from reconcile.store.schema import contact, identifier_group, metadata


def test_migrated_database_matches_the_declared_schema(db_url):
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()


def test_downgrade_to_nothing_and_back(sqlite_db):
    command.downgrade(alembic_config(sqlite_db), "base")
    engine = create_engine(sqlite_db)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    upgrade(sqlite_db)
    assert current(sqlite_db) == "0014"


def test_unreadable_value_columns_come_and_go_with_migration_0005(db_url):
    """0005 only adds two nullable columns to Contact; its downgrade drops exactly them."""
    command.downgrade(alembic_config(db_url), "0004")
    engine = create_engine(db_url)
    try:
        columns = {c["name"] for c in inspect(engine).get_columns("Contact")}
        assert not columns & {"unreadableEmail", "unreadablePhone"}
        assert {"email", "phoneNumber", "linkModel"} <= columns
        engine.dispose()
        upgrade(db_url)
        added = {c["name"]: c for c in inspect(engine).get_columns("Contact")}
        assert added["unreadableEmail"]["nullable"] and added["unreadablePhone"]["nullable"]
    finally:
        engine.dispose()


def test_migration_0006_replaces_copied_values_by_references_and_its_downgrade_restores_them(db_url):
    """Rows written before 0006 quoted values and names; 0006 leaves references to the
    contacts in their place (labels keep ids only), and the downgrade renders them back."""
    import json
    from datetime import datetime, timezone

    from sqlalchemy import insert, select

    from reconcile.store.schema import audit_log, contact, label, link_guard, pending_merge

    command.downgrade(alembic_config(db_url), "0005")
    engine = create_engine(db_url)
    now = datetime.now(timezone.utc)
    person = {"linkPrecedence": "primary", "createdAt": now, "updatedAt": now, "linkMethod": "new"}
    try:
        with engine.begin() as conn:
            conn.execute(insert(contact), [
                {"id": 1, "email": "al@x.com", "phoneNumber": "+14155550101", "name": "Al King", **person},
                {"id": 2, "email": "alex@y.com", "phoneNumber": "+14155550101", "name": "Alex King", **person},
            ])
            reason = "phoneNumber '+14155550101' is held by Al King, not compatible with 'Alex King' (4 names in all)"
            conn.execute(insert(audit_log), [
                {"at": now, "contactId": 2, "action": "created", "cause": "identify:r",
                 "detail": {"guards": [{"primaryContactId": 1, "guard": "shared-identifier", "reason": reason}]}},
            ])
            conn.execute(insert(pending_merge).values(
                id=1, leftPrimaryId=1, rightPrimaryId=2, contactId=2, candidateId=1, reason="guard",
                guard="shared-identifier", status="pending", openedAt=now,
                evidence={"guard": "shared-identifier", "reason": reason, "values": [["phoneNumber", "+14155550101"]]},
            ))
            conn.execute(insert(link_guard).values(
                contactId=2, field="phoneNumber", value="+14155550101", guard="shared-identifier",
                reason=reason, pendingMergeId=1, createdAt=now,
            ))
            conn.execute(insert(label).values(
                pendingMergeId=1, leftContactId=1, rightContactId=2, outcome="non-match", source="review",
                leftRecords=[{"id": 1, "email": "al@x.com", "phoneNumber": "+14155550101", "name": "Al King"}],
                rightRecords=[{"id": 2, "email": "alex@y.com", "phoneNumber": "+14155550101", "name": "Alex King"}],
                decidedAt=now,
            ))
        upgrade(db_url)

        def stored() -> str:
            with engine.connect() as conn:
                # link_guard.value stays: the guard's index key, as the contact holds it (erasure clears it)
                texts = [audit_log.c.detail, pending_merge.c.evidence, link_guard.c.reason, label.c.leftRecords, label.c.rightRecords]
                return json.dumps([list(r) for r in conn.execute(select(*texts).select_from(
                    audit_log.join(pending_merge, pending_merge.c.id == 1).join(link_guard, link_guard.c.id >= 1).join(label, label.c.id >= 1)
                )).all()], default=str)

        migrated = stored()
        for copied in ("+14155550101", "King", "al@x.com"):
            assert copied not in migrated
        expected = "phoneNumber '{2.phoneNumber}' is held by other names, not compatible with the request's name (4 names in all)"
        with engine.connect() as conn:
            assert conn.execute(select(link_guard.c.reason)).scalar_one() == expected
            evidence = conn.execute(select(pending_merge.c.evidence)).scalar_one()
            assert evidence["values"] == [["phoneNumber", "{1.phoneNumber}"]]
            assert conn.execute(select(label.c.leftRecords)).scalar_one() == [{"id": 1}]

        command.downgrade(alembic_config(db_url), "0005")
        with engine.connect() as conn:
            assert "'+14155550101'" in conn.execute(select(link_guard.c.reason)).scalar_one()
            assert conn.execute(select(label.c.rightRecords)).scalar_one()[0]["name"] == "Alex King"
        upgrade(db_url)
    finally:
        engine.dispose()


def test_migration_0008_backfills_identifier_groups_from_the_live_contacts(db_url):
    """Contacts written before 0008 get their identifier_group rows; erased ones do not."""
    command.downgrade(alembic_config(db_url), "0007")
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            now = datetime.now(timezone.utc)
            for id_, email, phone, linked, deleted in (
                (1, "ann@home.io", "0", None, None),
                (2, "bob@home.io", "0", 1, None),
                (3, "cy@home.io", "0", None, None),
                (4, "gone@home.io", "0", None, now),
            ):
                conn.execute(insert(contact).values(
                    id=id_, email=email, phoneNumber=phone, linkedId=linked, deletedAt=deleted,
                    linkPrecedence="secondary" if linked else "primary", createdAt=now, updatedAt=now, linkMethod="new",
                ))
        upgrade(db_url)
        with engine.connect() as conn:
            held = set(conn.execute(select(identifier_group)).all())
        assert held == {
            ("email", "ann@home.io", 1, 1), ("email", "bob@home.io", 1, 1), ("email", "cy@home.io", 3, 1),
            ("phoneNumber", "0", 1, 2), ("phoneNumber", "0", 3, 1),
        }
        store = Store(db_url)
        # the rows were written behind the store's back (no audit, no guard record), but
        # the state agrees with them
        assert "identifier-groups" not in {v.check for v in check(store)}
        store.dispose()
    finally:
        engine.dispose()
