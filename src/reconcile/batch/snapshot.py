"""A snapshot of the live ``Contact`` table as Parquet: the one input both engines read.

Each live contact becomes one row of the model's columns (:data:`reconcile.scoring.features.COLUMNS`)
plus ``unique_id`` (the contact id) and ``group_id`` (its live group's primary). The
blocking keys are the ones the store already keeps beside each contact, so no phone is
parsed again; only the name columns the store does not keep are derived (cached by
name). A value that can never link (a placeholder, a role mailbox: see
:meth:`reconcile.engine.guards.Guards.unlinkable`) is no evidence, online or here: its
columns are left empty, so the model neither blocks on it nor weighs it.

Parquet because DuckDB reads it in place and Spark reads it from any shared filesystem
or object store: on a cluster, ``--snapshot-dir`` must be a path every executor sees.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..engine.guards import Guards
from ..scoring.features import COLUMNS, name_features
from ..store import Store
from ..store.resolution import live_contact_batches

SNAPSHOT_FILE = "contacts.parquet"
SCHEMA = pa.schema(
    [pa.field("unique_id", pa.int64()), pa.field("group_id", pa.int64())] + [pa.field(c, pa.string()) for c in COLUMNS]
)


@dataclass
class Snapshot:
    """The Parquet file, and what clustering and the diff need about each live contact,
    as parallel columns in id order (a million small objects would cost more than the rows)."""

    path: Path
    ids: list[int] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    created: list = field(default_factory=list)
    emails: list[str | None] = field(default_factory=list)  # None also when it cannot link
    phones: list[str | None] = field(default_factory=list)
    name_keys: list[str | None] = field(default_factory=list)


def write_snapshot(store: Store, guards: Guards, directory: Path) -> Snapshot:
    """Export the live contacts to ``directory``/contacts.parquet, in id order."""
    directory.mkdir(parents=True, exist_ok=True)
    snapshot = Snapshot(directory / SNAPSHOT_FILE)
    with pq.ParquetWriter(snapshot.path, SCHEMA) as writer:
        for batch in live_contact_batches(store):
            ids, groups, created, emails, phones, names, mailbox, local, national, tail, keys = map(list, zip(*batch))
            for n, email in enumerate(emails):
                if email is not None and guards.unlinkable("email", email):
                    emails[n] = mailbox[n] = local[n] = None
            for n, phone in enumerate(phones):
                if phone is not None and guards.unlinkable("phoneNumber", phone):
                    phones[n] = national[n] = tail[n] = None
            first, last, nick, nick2 = map(list, zip(*map(name_features, names)))
            domain = [m.rpartition("@")[2] if m else None for m in mailbox]
            columns = [ids, groups, emails, mailbox, local, domain, phones, national, tail, keys, first, last, nick, nick2]
            writer.write_table(pa.table(dict(zip(SCHEMA.names, columns)), schema=SCHEMA))
            snapshot.ids += ids
            snapshot.groups += groups
            snapshot.created += created
            snapshot.emails += emails
            snapshot.phones += phones
            snapshot.name_keys += keys
    return snapshot
