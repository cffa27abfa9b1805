"""The statements of an erasure (a tombstone): what a person's data is, and clearing it.

What erasure means is decided in :mod:`reconcile.engine.erasure`; here are the reads
that find a person's contacts and the writes that clear every copy of their values
while keeping every id and link, inside the caller's transaction.

Where a customer's values live, and what each write below does to them:

* ``Contact``: email, phone, name, their blocking keys and the unreadable raw values
  are set to NULL and ``deletedAt`` is set; ``linkedId``/``linkPrecedence`` stay (the
  shape of the graph), and a tombstoned contact is not live, so it never matches;
* ``link_guard.value``: the guard's copy of the value, NULL for the erased contacts;
* ``pending_merge``: items touching the person are superseded and their reviewer notes
  (free text) cleared; reasons and evidence hold references only;
* ``audit_log``: details hold references only (migration 0006); an ``erased`` row per
  contact records the erasure, its cause naming who asked, never what was erased;
* ``label``: review labels hold contact ids only; imported labels holding an erased
  value are deleted (:mod:`reconcile.store.labels`);
* ``import_ref``: the external ids bulk imports gave the erased contacts are deleted
  (another system's id for the person is theirs too).
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, func, insert, or_, select, update

from . import DatabaseBusy, Store
from .contacts import ContactRow, ContactTx
from .schema import audit_log, contact, import_ref, link_guard, pending_merge

#: every column of ``Contact`` that holds a customer's value or something derived from it
PERSONAL_COLUMNS = (
    "email",
    "phoneNumber",
    "name",
    "emailMailbox",
    "emailLocal",
    "phoneNational",
    "phoneTail",
    "nameKey",
    "unreadableEmail",
    "unreadablePhone",
)

_GROUP = func.coalesce(contact.c.linkedId, contact.c.id)


def groups_holding(tx: ContactTx, field: str, value: str) -> set[int]:
    """The groups (by primary id) whose live contacts hold ``value`` in ``field``."""
    column = contact.c[field]
    return set(tx.conn.execute(select(_GROUP).where(contact.c.deletedAt.is_(None), column == value).distinct()).scalars())


def group_of(tx: ContactTx, contact_id: int) -> int | None:
    """The group (primary id) of a contact, live or erased; ``None`` for no such contact."""
    return tx.conn.execute(select(_GROUP).where(contact.c.id == contact_id)).scalar_one_or_none()


def members(tx: ContactTx, primary_id: int) -> list[ContactRow]:
    """Every contact of a group, erased ones too, by id."""
    return list(
        tx.conn.execute(
            select(contact).where(or_(contact.c.id == primary_id, contact.c.linkedId == primary_id)).order_by(contact.c.id)
        )
    )


def tombstone(tx: ContactTx, ids: Sequence[int], *, at: datetime, cause: str) -> list[int]:
    """Clear the personal columns of the given live contacts and mark them deleted; audit
    each (``erased``, no detail). Returns the ids that were live."""
    live = sorted(
        tx.conn.execute(select(contact.c.id).where(contact.c.id.in_(sorted(set(ids))), contact.c.deletedAt.is_(None))).scalars()
    )
    if not live:
        return []
    tx.regroup_holdings(dict.fromkeys(live))  # no longer live: the guards' state forgets their values
    tx.conn.execute(
        update(contact)
        .where(contact.c.id.in_(live))
        .values(deletedAt=at, updatedAt=at, **{column: None for column in PERSONAL_COLUMNS})
    )
    tx.conn.execute(
        update(link_guard).where(link_guard.c.contactId.in_(live)).values(value=None)
    )
    tx.conn.execute(delete(import_ref).where(import_ref.c.contactId.in_(live)))
    tx.conn.execute(
        insert(audit_log),
        [{"at": at, "contactId": i, "action": "erased", "cause": cause, "detail": None} for i in live],
    )
    return live


def _touching(ids: list[int]):
    pm = pending_merge.c
    return or_(pm.leftPrimaryId.in_(ids), pm.rightPrimaryId.in_(ids), pm.contactId.in_(ids), pm.candidateId.in_(ids))


def supersede_reviews(tx: ContactTx, ids: Iterable[int], *, at: datetime, by: str, note: str) -> list[int]:
    """Supersede the open review items that name any of ``ids``, and clear the reviewers'
    notes on every item that does (a note is free text, and may quote the customer).
    Returns the superseded item ids."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    superseded = sorted(
        tx.conn.execute(
            update(pending_merge)
            .where(_touching(wanted), pending_merge.c.status == "pending")
            .values(status="superseded", decidedAt=at, decidedBy=by, note=note)
            .returning(pending_merge.c.id)
        ).scalars()
    )
    tx.conn.execute(
        update(pending_merge)
        .where(_touching(wanted), pending_merge.c.id.not_in(superseded or [0]), pending_merge.c.note.is_not(None))
        .values(note=None)
    )
    return superseded




def purge_free_space(store: Store) -> None:
    """Rewrite the database so cleared values leave no bytes behind in free pages.

    An UPDATE leaves the old bytes in free space (SQLite pages, PostgreSQL dead tuples)
    until they are reused. SQLite: ``VACUUM`` rebuilds the file, then a ``TRUNCATE``
    checkpoint empties the write-ahead log. PostgreSQL: ``VACUUM FULL`` rewrites every
    table and index (it takes an exclusive lock on each table in turn; the WAL and base
    backups age out by the operator's retention policy).
    """
    if store.dialect == "sqlite":
        raw = store.engine.raw_connection()  # outside any transaction (no BEGIN is emitted)
        try:
            raw.driver_connection.execute("VACUUM")
            _truncate_log(raw.driver_connection, store.lock_timeout)
        finally:
            raw.close()
        return
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM FULL")


def _truncate_log(driver, timeout: float) -> None:
    """``PRAGMA wal_checkpoint(TRUNCATE)`` until it ran. A checkpoint already running in
    another connection (a process's background checkpointer, :mod:`.checkpoint`) makes it
    return "busy" at once, without waiting and without emptying the log; it is tried again
    until ``timeout`` seconds have passed, then :class:`DatabaseBusy` says the log still
    holds the old bytes."""
    deadline = time.monotonic() + timeout
    while True:
        busy, _frames, _copied = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            return
        if time.monotonic() >= deadline:
            raise DatabaseBusy(f"the write-ahead log could not be emptied within {timeout:g} s")
        time.sleep(0.05)


__all__ = ["PERSONAL_COLUMNS", "groups_holding", "group_of", "members", "tombstone", "supersede_reviews", "purge_free_space"]
