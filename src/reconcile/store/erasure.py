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
* ``split_proposal``: pending proposals naming one of the person's contacts are
  superseded and the reviewers' notes on every proposal naming one cleared; evidence
  holds ids, levels and weights only;
* ``audit_log``: details hold references only (migration 0006), except the note a
  reviewer gave a detachment (free text), cleared on every detachment whose sides held
  one of the person's contacts; an ``erased`` row per contact records the erasure, its
  cause naming who asked, never what was erased;
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
from .schema import audit_log, contact, import_ref, link_guard, pending_merge, split_proposal

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


def supersede_splits(tx: ContactTx, ids: Iterable[int], *, at: datetime, by: str, note: str) -> list[int]:
    """Supersede the pending split proposals that name any of ``ids`` (splitting or keeping
    a group that lost a contact to erasure asks nothing any more), and clear the reviewers'
    notes on every proposal that does (free text, which may quote the customer). Returns
    the superseded proposal ids.

    A proposal names its sides in JSON lists, which no index serves on both engines, so
    the proposals that could change (pending ones, decided ones with a note) are read and
    matched here: there are as many as suspected over-merges, far fewer than contacts.
    """
    wanted = set(ids)
    if not wanted:
        return []
    sp = split_proposal.c
    rows = tx.conn.execute(
        select(sp.id, sp.status, sp.primaryId, sp.contactId, sp.bridgeContactId, sp.keptContactIds, sp.detachedContactIds).where(
            or_(sp.status == "pending", sp.note.is_not(None))
        )
    ).all()
    touching = [
        r for r in rows if wanted & {r.primaryId, r.contactId, r.bridgeContactId, *r.keptContactIds, *r.detachedContactIds}
    ]
    superseded: list[int] = []
    pending = [r.id for r in touching if r.status == "pending"]
    if pending:
        superseded = sorted(
            tx.conn.execute(
                update(split_proposal)
                .where(sp.id.in_(pending), sp.status == "pending")
                .values(status="superseded", decidedAt=at, decidedBy=by, note=note)
                .returning(sp.id)
            ).scalars()
        )
    noted = [r.id for r in touching if r.id not in superseded]
    if noted:
        tx.conn.execute(update(split_proposal).where(sp.id.in_(noted), sp.note.is_not(None)).values(note=None))
    return superseded


def clear_detach_notes(tx: ContactTx, ids: Iterable[int]) -> None:
    """Clear the reviewer's note (free text, which may quote the customer) in the audit row
    of every detachment whose sides held any of ``ids``.

    A detachment's row names the contact detached (``contactId``) and both sides in its
    detail, so one side's contacts may have no audit row of their own that leads to it.
    Every contact's first audit row is its creation (``reconcile check``), and a
    detachment involving a contact comes after it: the ``detached`` rows from the
    earliest of those on are read (detachments are reviewers' acts, few) and matched here.
    """
    wanted = sorted(set(ids))
    if not wanted:
        return
    first = tx.conn.execute(select(func.min(audit_log.c.id)).where(audit_log.c.contactId.in_(wanted))).scalar()
    rows = tx.conn.execute(
        select(audit_log.c.id, audit_log.c.contactId, audit_log.c.detail).where(
            audit_log.c.id >= (first or 0), audit_log.c.action == "detached"
        )
    ).all()
    for row in rows:
        detail = row.detail if isinstance(row.detail, dict) else {}
        sides = {row.contactId, *detail.get("kept", []), *detail.get("detached", [])}
        if detail.get("note") is not None and sides.intersection(wanted):
            tx.conn.execute(update(audit_log).where(audit_log.c.id == row.id).values(detail={**detail, "note": None}))


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


__all__ = [
    "PERSONAL_COLUMNS",
    "groups_holding",
    "group_of",
    "members",
    "tombstone",
    "supersede_reviews",
    "supersede_splits",
    "clear_detach_notes",
    "purge_free_space",
]
