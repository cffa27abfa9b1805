"""The statements of a bulk import (``reconcile import``): its run, what it rejected, and
the external ids it was given.

A run is keyed by the SHA-256 of its file. Its ``position`` (how many events of the load
order are committed) and its totals move in the same transaction as each batch of events
(:func:`advance`), so after a crash, a kill or Ctrl-C the next run of the same file skips
exactly what was committed: nothing twice, nothing lost.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update

from . import Store
from .contacts import ContactTx, as_utc, utcnow
from .schema import IMPORT_COUNTERS, import_ref, import_reject, import_run


@dataclass(frozen=True)
class ImportRun:
    """One import of one file, as committed."""

    id: int
    fingerprint: str
    source: str
    records: int
    to_load: int
    position: int
    totals: dict[str, int]
    started_at: datetime
    finished_at: datetime | None


def _run(row) -> ImportRun:
    return ImportRun(
        id=row.id,
        fingerprint=row.fingerprint,
        source=row.source,
        records=row.records,
        to_load=row.toLoad,
        position=row.position,
        totals={name: getattr(row, name) for name in IMPORT_COUNTERS},
        started_at=as_utc(row.startedAt),
        finished_at=as_utc(row.finishedAt),
    )


def find_run(store: Store, fingerprint: str) -> ImportRun | None:
    """The import of the file with this SHA-256, if one was started."""
    with store.engine.connect() as conn:
        row = conn.execute(select(import_run).where(import_run.c.fingerprint == fingerprint)).first()
    return _run(row) if row is not None else None


def start_run(
    store: Store,
    *,
    fingerprint: str,
    source: str,
    file_format: str,
    records: int,
    to_load: int,
    rejects: Iterable[tuple[int, str]],
    started_at: datetime,
) -> ImportRun:
    """Record a new run with the rows already refused when the file was read, in one
    transaction; a run of the same file started meanwhile wins and is returned."""
    refused = [{"line": line, "reason": reason[:300]} for line, reason in rejects]

    def work(tx: ContactTx) -> ImportRun:
        existing = tx.conn.execute(select(import_run).where(import_run.c.fingerprint == fingerprint)).first()
        if existing is not None:
            return _run(existing)
        run_id = tx.conn.execute(
            insert(import_run)
            .values(
                fingerprint=fingerprint, source=source[:500], format=file_format, records=records, toLoad=to_load,
                position=0, startedAt=started_at, updatedAt=started_at,
                **{name: 0 for name in IMPORT_COUNTERS} | {"rejected": len(refused)},
            )
            .returning(import_run.c.id)
        ).scalar_one()
        if refused:
            tx.conn.execute(insert(import_reject), [{"runId": run_id, **r} for r in refused])
        return _run(tx.conn.execute(select(import_run).where(import_run.c.id == run_id)).one())

    return store.write(work)


class ImportConflict(Exception):
    """Another process moved the run meanwhile: two imports of one file at once."""


def advance(
    tx: ContactTx,
    run_id: int,
    *,
    start: int,
    position: int,
    totals: Mapping[str, int],
    rejects: Iterable[tuple[int, str]] = (),
    refs: Iterable[tuple[int, str, int]] = (),
    finished: bool = False,
) -> None:
    """Inside the transaction that wrote a batch's events: move the run from ``start`` to
    ``position``, add ``totals`` to its counters, record the batch's rejected rows and
    external ids (``(line, externalId, contactId)``). Committed together with the events,
    or not at all. Raises :class:`ImportConflict` (so the batch rolls back) when the run is
    no longer at ``start``: another import of the same file loaded these events first."""
    now = utcnow()
    counters = {name: getattr(import_run.c, name) + totals.get(name, 0) for name in IMPORT_COUNTERS}
    moved = tx.conn.execute(
        update(import_run)
        .where(import_run.c.id == run_id, import_run.c.position == start, import_run.c.finishedAt.is_(None))
        .values(position=position, updatedAt=now, finishedAt=now if finished else None, **counters)
    ).rowcount
    if moved != 1:
        raise ImportConflict(f"import run {run_id} moved past event {start} meanwhile: another import of this file is running")
    refused = [{"runId": run_id, "line": line, "reason": reason[:300]} for line, reason in rejects]
    if refused:
        tx.conn.execute(insert(import_reject), refused)
    given = [{"runId": run_id, "line": line, "externalId": ext, "contactId": cid} for line, ext, cid in refs]
    if given:
        tx.conn.execute(insert(import_ref), given)


def rejects_of(store: Store, run_id: int) -> list[tuple[int, str]]:
    """Every row the run refused so far, as (line, reason), by line."""
    with store.engine.connect() as conn:
        return [
            (line, reason)
            for line, reason in conn.execute(
                select(import_reject.c.line, import_reject.c.reason)
                .where(import_reject.c.runId == run_id)
                .order_by(import_reject.c.line)
            )
        ]


def run_by_id(store: Store, run_id: int) -> ImportRun:
    with store.engine.connect() as conn:
        return _run(conn.execute(select(import_run).where(import_run.c.id == run_id)).one())


def external_ids(store: Store) -> list[tuple[str, int]]:
    """Every loaded row's ``externalId`` and the contact it created or was answered with,
    in load order (run, then line): what a benchmark scores the groups against when the
    file's external ids name the real person."""
    with store.engine.connect() as conn:
        return [
            (row.externalId, row.contactId)
            for row in conn.execute(
                select(import_ref.c.externalId, import_ref.c.contactId).order_by(import_ref.c.runId, import_ref.c.line)
            )
        ]


__all__ = ["ImportConflict", "ImportRun", "find_run", "start_run", "advance", "rejects_of", "run_by_id", "external_ids"]
