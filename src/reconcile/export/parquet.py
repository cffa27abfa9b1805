"""Write the golden records as Parquet: a directory with ``persons.parquet`` (one row per
person: primary id, emails, phones, names, external ids, first and last seen, size) and
``contacts.parquet`` (one row per live contact, with its person's primary id).

Contacts are streamed from the store ordered by person, so each person is folded as its
rows go by and both files are written chunk by chunk with pyarrow's ``ParquetWriter``:
memory holds one chunk, not the table. The files are written beside their final names
and renamed at the end, so a reader never sees half a file; like the SQLite database,
they are readable by their owner only. Erased contacts are not exported.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..store import Store
from ..store.engine import create_private_file
from ..store.golden import external_ids_by_person, live_contacts_by_person

_TS = pa.timestamp("us", tz="UTC")
_STRINGS = pa.list_(pa.string())
PERSONS = pa.schema([
    ("primaryId", pa.int64()),
    ("emails", _STRINGS),
    ("phoneNumbers", _STRINGS),
    ("names", _STRINGS),
    ("externalIds", _STRINGS),
    ("firstSeen", _TS),
    ("lastSeen", _TS),
    ("size", pa.int32()),
])
CONTACTS = pa.schema([
    ("id", pa.int64()),
    ("primaryId", pa.int64()),
    ("linkPrecedence", pa.string()),
    ("email", pa.string()),
    ("phoneNumber", pa.string()),
    ("name", pa.string()),
    ("createdAt", _TS),
    ("updatedAt", _TS),
    ("linkMethod", pa.string()),
    ("linkScore", pa.float64()),
    ("linkModel", pa.string()),
])


@dataclass
class _Person:
    """One person folded from its contacts (oldest first), the contract's order of values."""

    primary_id: int
    emails: dict[str, None] = field(default_factory=dict)
    phones: dict[str, None] = field(default_factory=dict)
    names: dict[str, None] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    size: int = 0

    def add(self, row) -> None:
        for values, value in ((self.emails, row.email), (self.phones, row.phoneNumber), (self.names, row.name)):
            if value is not None:
                values[value] = None
        at = _utc(row.createdAt)
        self.first_seen = at if self.first_seen is None else min(self.first_seen, at)
        self.last_seen = at if self.last_seen is None else max(self.last_seen, at)
        self.size += 1


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


@dataclass(frozen=True)
class ExportSummary:
    directory: Path
    persons: int
    contacts: int


class _ExternalIds:
    """Merge-joins the external-id stream (ordered by person) into the persons as they close."""

    def __init__(self, chunks: Iterator[list]):
        self._rows = (row for chunk in chunks for row in chunk)
        self._next = next(self._rows, None)

    def of(self, primary_id: int) -> list[str]:
        found: list[str] = []
        while self._next is not None and self._next.primaryId <= primary_id:
            if self._next.primaryId == primary_id and self._next.externalId not in found:
                found.append(self._next.externalId)
            self._next = next(self._rows, None)
        return found


def export_parquet(store: Store, directory: str | Path) -> ExportSummary:
    """Write ``persons.parquet`` and ``contacts.parquet`` into ``directory`` (created)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    targets = {name: directory / f"{name}.parquet" for name in ("persons", "contacts")}
    partial = {name: path.with_name(f".{path.name}.partial") for name, path in targets.items()}
    external = _ExternalIds(external_ids_by_person(store))
    for path in partial.values():  # customers' values: readable by the owner only, like the database
        path.unlink(missing_ok=True)
        create_private_file(path)
    try:
        persons_n, contacts_n = _write(store, external, partial)
    except BaseException:
        # a half-written file holds customers' values nobody will read or erase: remove it
        for path in partial.values():
            path.unlink(missing_ok=True)
        raise
    for name, path in targets.items():
        os.replace(partial[name], path)
    return ExportSummary(directory, persons_n, contacts_n)


def _write(store: Store, external: _ExternalIds, partial: dict[str, Path]) -> tuple[int, int]:
    """Both files' rows into the ``partial`` paths, one person's contacts at a time; the
    persons and contacts written."""
    persons_n = contacts_n = 0
    person: _Person | None = None
    with pq.ParquetWriter(partial["persons"], PERSONS) as persons_out, pq.ParquetWriter(partial["contacts"], CONTACTS) as contacts_out:
        for chunk in live_contacts_by_person(store):
            closed: list[_Person] = []
            for row in chunk:
                if person is None or row.primaryId != person.primary_id:
                    if person is not None:
                        closed.append(person)
                    person = _Person(row.primaryId)
                person.add(row)
            contacts_out.write_table(pa.Table.from_pylist([_contact(row) for row in chunk], CONTACTS))
            contacts_n += len(chunk)
            if closed:
                persons_out.write_table(_persons_table(closed, external))
                persons_n += len(closed)
        if person is not None:
            persons_out.write_table(_persons_table([person], external))
            persons_n += 1
    return persons_n, contacts_n


def _contact(row) -> dict:
    return {
        "id": row.id, "primaryId": row.primaryId, "linkPrecedence": row.linkPrecedence, "email": row.email,
        "phoneNumber": row.phoneNumber, "name": row.name, "createdAt": _utc(row.createdAt),
        "updatedAt": _utc(row.updatedAt), "linkMethod": row.linkMethod, "linkScore": row.linkScore,
        "linkModel": row.linkModel,
    }


def _persons_table(persons: list[_Person], external: _ExternalIds) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "primaryId": p.primary_id, "emails": list(p.emails), "phoneNumbers": list(p.phones),
                "names": list(p.names), "externalIds": external.of(p.primary_id), "firstSeen": p.first_seen,
                "lastSeen": p.last_seen, "size": p.size,
            }
            for p in persons
        ],
        PERSONS,
    )
