"""Migration 0014 made ``ix_contact_linked``, ``ix_contact_name_key_id`` (rows with a ``NULL``
key left out) and ``ix_audit_cause`` (creations left out) partial, so a created primary
without a name writes three index entries fewer. A partial index serves only the queries
whose condition implies its own: every read through one must still be planned on it,
never as a scan of the table."""
from __future__ import annotations

import re
import sqlite3

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite

from reconcile.store import contacts, detach, reviews
from reconcile.store.contacts import ContactTx
from reconcile.store.candidates import _candidates_stmt, _candidates_stmt_pg
from reconcile.store.migrate import upgrade

from conftest import sqlite_url

#: the reads of a group's rows by ``linkedId`` (``id IN (...) OR "linkedId" IN (...)``, and
#: the read path's union of primaries and their secondaries)
_BY_LINKED = {
    "group members": contacts._GROUP_MEMBERS.statement,
    "group sizes": contacts._GROUP_SIZES.statement,
    "rows a merge moves": contacts._MOVED.statement,
    "groups holding a value": contacts._GROUPS_HOLDING[(True, True)].statement,
}

#: the reads of what a confirmation or a detachment changed, by its cause
_BY_CAUSE = {"confirmation": reviews.link_changes, "detachment": detach.link_changes}


def _sqlite_plan(path: str, statement) -> list[str]:
    """SQLite's plan of ``statement`` as the store runs it: bound parameters, not literals
    (a literal ``NULL`` would let SQLite prove more than a parameter does)."""
    compiled = statement.compile(dialect=sqlite.dialect(), compile_kwargs={"render_postcompile": True})
    sql = str(compiled)
    with sqlite3.connect(path) as db:
        return [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", [1] * sql.count("?"))]


def _with_ids(statement):
    return statement.params(ids=[3, 5, 8]) if "ids" in statement.compile().params else statement


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
def test_the_three_indexes_leave_out_rows_no_read_asks_for(db_url):
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                found = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'index'")).all()
            else:
                found = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('Contact', 'audit_log')")).all()
    finally:
        engine.dispose()
    where = {name: sql.partition(" WHERE ")[2].replace("(", "").replace(")", "") for name, sql in found if sql}
    assert where["ix_contact_linked"] == '"linkedId" IS NOT NULL'
    assert where["ix_contact_name_key_id"] == '"nameKey" IS NOT NULL'
    assert where["ix_audit_cause"].replace("::text", "").replace("::character varying", "") == "action <> 'created'"
    # the others hold every row (a NULL email or phone is rare, and was not measured)
    assert where["ix_contact_email"] == where["ix_contact_mailbox_id"] == ""


@pytest.mark.parametrize("name", sorted(_BY_LINKED))
def test_reads_by_linked_id_stay_on_the_partial_index(tmp_path, name):
    upgrade(sqlite_url(tmp_path))
    plan = _sqlite_plan(str(tmp_path / "reconcile.db"), _with_ids(_BY_LINKED[name]))
    assert any("USING INDEX ix_contact_linked (linkedId=?)" in step for step in plan), plan
    assert not any(step.startswith("SCAN Contact") for step in plan), plan


def test_the_candidate_read_by_name_key_stays_on_the_partial_index(tmp_path):
    upgrade(sqlite_url(tmp_path))
    plan = _sqlite_plan(str(tmp_path / "reconcile.db"), _candidates_stmt(("emailMailbox", "nameKey")).statement)
    assert any("USING INDEX ix_contact_name_key_id (nameKey=?)" in step for step in plan), plan
    assert not any(step.startswith("SCAN Contact") for step in plan), plan


def _pg_sql(statement) -> str:
    return str(statement.compile(dialect=postgresql.dialect(), compile_kwargs={"render_postcompile": True}))


def _pg_generic_plan(conn, name: str, sql: str, params: dict) -> str:
    """PostgreSQL's generic plan of ``sql`` (psycopg's ``%(name)s`` parameters): ``PREPARE``,
    then ``EXPLAIN EXECUTE`` with ``plan_cache_mode = force_generic_plan``, the plan a
    statement prepared by psycopg may settle on, made without looking at the parameters."""
    order: list[str] = []

    def number(match: re.Match) -> str:
        order.append(match.group(1))
        return f"${len(order)}"

    sql = re.sub(r"%\((\w+)\)s", number, sql)
    conn.exec_driver_sql(f"PREPARE {name} AS {sql}")
    values = ", ".join(repr(params[key]) for key in order)
    return "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN EXECUTE {name}({values})"))


def _link_changes_sql(url: str, link_changes) -> str:
    """The statement ``link_changes`` runs, as the driver receives it."""
    engine = create_engine(url)
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    try:
        with engine.connect() as conn:
            assert link_changes(ContactTx(conn, engine.dialect.name), "review:1:ann") == []
    finally:
        engine.dispose()
    (sql,) = seen
    return sql


@pytest.mark.parametrize("name", sorted(_BY_CAUSE))
def test_reads_of_what_a_cause_changed_stay_on_the_partial_index(tmp_path, name):
    url = sqlite_url(tmp_path)
    upgrade(url)
    sql = _link_changes_sql(url, _BY_CAUSE[name])
    with sqlite3.connect(tmp_path / "reconcile.db") as db:
        plan = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", ["review:1:ann"])]
    assert any("USING INDEX ix_audit_cause (cause=?)" in step for step in plan), plan
    assert not any(step.startswith("SCAN audit_log") for step in plan), plan


def test_postgresql_plans_them_on_the_partial_indexes_with_generic_plans(pg_url):
    """psycopg prepares a statement it runs often; a generic plan cannot look at the
    parameters, so the index's condition must follow from the query's shape alone.
    Sequential scans are priced out, so a plan that cannot use the index shows one."""
    by_cause = {name: _link_changes_sql(pg_url, fn) for name, fn in _BY_CAUSE.items()}
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            conn.exec_driver_sql("SET enable_seqscan = off")
            candidates = _pg_generic_plan(
                conn, "by_name_key", _pg_sql(_candidates_stmt_pg(("nameKey",)).statement),
                {"v_nameKey": "ann lee", "exclude": 1, "per_key": 10},
            )
            members = _pg_generic_plan(
                conn, "by_linked", _pg_sql(_with_ids(_BY_LINKED["group members"])), {"ids_1": 3, "ids_2": 5, "ids_3": 8}
            )
            changes = {
                name: _pg_generic_plan(conn, f"changes_{name}", sql, {"cause_1": "review:1:ann"})
                for name, sql in by_cause.items()
            }
    finally:
        engine.dispose()
    assert "ix_contact_name_key_id" in candidates and "Seq Scan" not in candidates, candidates
    assert "ix_contact_linked" in members and "Seq Scan" not in members, members
    for plan in changes.values():
        assert "ix_audit_cause" in plan and "Seq Scan" not in plan, plan
