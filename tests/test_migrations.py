"""The Alembic migrations build exactly the schema the store layer declares, on both
engines, and downgrade cleanly."""
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from reconcile.store.migrate import alembic_config, current, upgrade
from reconcile.store.schema import metadata


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
    assert current(sqlite_db) == "0005"


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
