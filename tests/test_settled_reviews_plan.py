"""Closing the review items a merge settles reads only the items that name the moved
contacts, through the indexes on the four columns that can name one; never the whole
queue (which grows with every pending item: a bulk import's merges slowed down with it)."""
from __future__ import annotations

import sqlite3

from sqlalchemy.dialects import sqlite

from reconcile.store.contacts import _TOUCHED_REVIEWS, _TOUCHING
from reconcile.store.migrate import upgrade

from conftest import sqlite_url


def _plan(path: str, statement) -> list[str]:
    sql = str(statement.params(ids=[3, 5, 8]).compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with sqlite3.connect(path) as db:
        return [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")]


def test_settled_reviews_are_found_by_index_not_by_reading_the_queue(tmp_path):
    upgrade(sqlite_url(tmp_path))
    path = str(tmp_path / "reconcile.db")
    touching = _plan(path, _TOUCHING.statement)
    for index in ("sqlite_autoindex_pending_merge_1", "ix_pending_right", "ix_pending_contact", "ix_pending_candidate"):
        assert any(f"COVERING INDEX {index} " in step for step in touching), touching
    touched = _plan(path, _TOUCHED_REVIEWS["sqlite"].statement)
    assert touched and all("PRIMARY KEY" in step or "ORDER BY" in step for step in touched), touched
    assert not any("ix_pending_status" in step or step.startswith("SCAN") for step in touching + touched)
