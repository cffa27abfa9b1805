"""A snapshot of the live ``Contact`` table as Parquet: the one input both engines read.

Each live contact becomes one row of the model's columns (:data:`reconcile.scoring.features.COLUMNS`)
plus ``unique_id`` (the contact id) and ``group_id`` (its live group's primary). The
blocking keys are the ones the store already keeps beside each contact, so no phone is
parsed again; only the name columns the store does not keep are derived (cached by
name). A value that can never link (a placeholder, a role mailbox: see
:meth:`reconcile.engine.guards.Guards.unlinkable`) is no evidence, online or here: its
columns are left empty, so the model neither blocks on it nor weighs it.

Beside them, one column per batch blocking key (:func:`reconcile.batch.model_settings.blocking_keys`):
the key's value where it can pair this contact (held by 2 to ``cap`` contacts, and for
a combination of keys only where one of its parts is held by more than ``cap``: below
that the parts pair on their own), else empty. Counting needs the whole table, so it
happens here, once, and both engines block on the same columns.

Parquet because DuckDB reads it in place and Spark reads it from any shared filesystem
or object store: on a cluster, ``--snapshot-dir`` must be a path every executor sees.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..engine.guards import Guards
from ..scoring.features import COLUMNS, name_features
from ..store import Store
from ..store.resolution import live_contact_batches
from .model_settings import BlockingKey

SNAPSHOT_FILE = "contacts.parquet"
_NULL = pa.scalar(None, pa.string())
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


def write_snapshot(store: Store, guards: Guards, directory: Path, blocking: Sequence[BlockingKey] = (), cap: int = 0) -> Snapshot:
    """Export the live contacts to ``directory``/contacts.parquet, in id order, with a
    blocking column for each of ``blocking`` under the cut-off ``cap``."""
    directory.mkdir(parents=True, exist_ok=True)
    snapshot = Snapshot(directory / SNAPSHOT_FILE)
    tables = []
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
        tables.append(pa.table(dict(zip(SCHEMA.names, columns)), schema=SCHEMA))
        snapshot.ids += ids
        snapshot.groups += groups
        snapshot.created += created
        snapshot.emails += emails
        snapshot.phones += phones
        snapshot.name_keys += keys
    table = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
    for key, column in blocking_columns(table, list(blocking), cap).items():
        table = table.append_column(key.column, column)
    pq.write_table(table, snapshot.path)
    return snapshot


def blocking_columns(table: pa.Table, keys: list[BlockingKey], cap: int) -> dict[BlockingKey, pa.ChunkedArray]:
    """Each key's blocking column of ``table`` (see the module's docstring)."""
    frequent: dict[str, pa.ChunkedArray] = {}
    out = {}
    for key in keys:
        if len(key.columns) == 1:
            value = table[key.columns[0]]
        else:  # only where a part is frequent: elsewhere the parts pair on their own
            joined = pc.binary_join_element_wise(*(table[c] for c in key.columns), "\x1f")
            some = _any(frequent.get(c) for c in key.columns)
            value = pa.nulls(len(table), pa.string()) if some is None else pc.if_else(some, joined, _NULL)
        held = _held_by(value)
        if len(key.columns) == 1:
            frequent[key.columns[0]] = pc.fill_null(pc.greater(held, cap), False)
        pairs = pc.fill_null(pc.and_(pc.greater_equal(held, 2), pc.less_equal(held, cap)), False)
        out[key] = pc.if_else(pairs, value, _NULL)
    return out


def _held_by(value: pa.ChunkedArray) -> pa.ChunkedArray:
    """How many rows hold each row's value (null where the value is null)."""
    counts = pc.value_counts(value)
    return pc.take(counts.field("counts"), pc.index_in(value, value_set=counts.field("values")))


def _any(masks) -> pa.ChunkedArray | None:
    """True where any of the known masks is (None when none is known: a column that is
    not a key of its own, like the mail provider, is never frequent on its own)."""
    present = [m for m in masks if m is not None]
    if not present:
        return None
    combined = present[0]
    for mask in present[1:]:
        combined = pc.or_(combined, mask)
    return combined
