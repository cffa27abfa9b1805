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
from ..normalize import email_parts
from ..scoring.features import COLUMNS, name_features
from ..store import Store
from ..store.batch import live_contact_batches

SNAPSHOT_FILE = "contacts.parquet"
SCHEMA = pa.schema(
    [pa.field("unique_id", pa.int64()), pa.field("group_id", pa.int64())] + [pa.field(c, pa.string()) for c in COLUMNS]
)


@dataclass
class Member:
    """What the clustering and the diff need about one live contact."""

    id: int
    group: int
    created: object
    email: str | None  # None when it cannot link
    phone: str | None
    name_key: str | None


@dataclass
class Snapshot:
    path: Path
    members: list[Member] = field(default_factory=list)


def write_snapshot(store: Store, guards: Guards, directory: Path) -> Snapshot:
    """Export the live contacts to ``directory``/contacts.parquet, in id order."""
    directory.mkdir(parents=True, exist_ok=True)
    snapshot = Snapshot(directory / SNAPSHOT_FILE)
    with pq.ParquetWriter(snapshot.path, SCHEMA) as writer:
        for batch in live_contact_batches(store):
            columns: dict[str, list] = {name: [] for name in SCHEMA.names}
            for cid, group, created, email, phone, name, mailbox, local, national, tail, key in batch:
                if email is not None and guards.unlinkable("email", email):
                    email = mailbox = local = None
                if phone is not None and guards.unlinkable("phoneNumber", phone):
                    phone = national = tail = None
                first, last, nick, nick2 = name_features(name)
                row = (
                    cid, group, email, mailbox, local, email_parts(mailbox)[1] if mailbox else None,
                    phone, national, tail, key, first, last, nick, nick2,
                )
                for name_, value in zip(SCHEMA.names, row):
                    columns[name_].append(value)
                snapshot.members.append(Member(cid, group, created, email, phone, key))
            writer.write_table(pa.table(columns, schema=SCHEMA))
    return snapshot
