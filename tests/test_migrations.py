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
    assert current(sqlite_db) == "0004"
