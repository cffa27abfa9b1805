"""Candidate retrieval for the probabilistic stage: index look-ups on blocking keys, and
for a bulk import the name key's candidates kept in memory (:class:`ResidentNameKeys`)."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Integer, bindparam, func, select, text, union_all

from .contacts import ContactRow, ContactTx
from .prepared import Prepared, StoredRow, row_class
from .schema import contact

#: blocking-key columns, strongest first
BLOCKING_KEYS = ("emailMailbox", "phoneNational", "emailLocal", "phoneTail", "nameKey")

#: What the stage reads of a candidate: its id, its group, and the values and stored keys
#: the model compares. Not the whole row: the timestamps alone cost three date parses a
#: candidate on SQLite, and a new contact has about ten candidates at 100k contacts.
CANDIDATE_COLUMNS = (
    "id", "linkedId", "email", "phoneNumber", "name",
    "emailMailbox", "emailLocal", "phoneNational", "phoneTail", "nameKey",
)


_CandidateRow = row_class(CANDIDATE_COLUMNS)

#: the newest ``:depth`` live holders of a name key, newest first (a resident list's fill)
_NAME_KEY_HOLDERS = Prepared(
    select(*(contact.c[name] for name in CANDIDATE_COLUMNS))
    .where(contact.c.nameKey == bindparam("key"), contact.c.deletedAt.is_(None))
    .order_by(contact.c.id.desc())
    .limit(bindparam("depth", type_=Integer))
)

#: rows a resident list keeps beyond ``per_key``: the look-up skips the new contact's own
#: group, whose members often share its name key (the new contact itself always does)
RESIDENT_SLACK = 16


class ResidentNameKeys:
    """The name key's candidates of a bulk import, kept in memory across its batches.

    Why: at 300k contacts the name key's part of the candidate query (the commonest key,
    up to ``per_key`` rows of the 20 newest holders) took 78 µs of the query's 170 µs per
    created contact, nearly all of it reading and converting the same rows again for each
    new holder of a common name. Here each name key's newest ``per_key + RESIDENT_SLACK``
    live holders are read once, then kept up to date with the import's own writes: a
    contact it inserts is appended to its key's list, a merge re-points the moved rows'
    ``linkedId``. A look-up then answers exactly what the SQL would (the newest ``per_key``
    holders outside the excluded group, newest first) or, when the list is too short to
    know (more than ``RESIDENT_SLACK`` of them in the excluded group), says so and the
    query runs as before. What the engine derives from a held row's values (the compared
    features, 3.3 µs a candidate) it may keep beside the row (:attr:`derived`,
    :meth:`keep`): a row's values do not change while the lists are valid.

    Valid only while nothing else changes the contact table: :meth:`begin`, at the start
    of each batch transaction (SQLite, after ``BEGIN IMMEDIATE``, so no one can commit
    until it ends), drops every list when another connection committed since the last
    batch (``PRAGMA data_version``), when the batch runs on another connection than the
    last (the number is per connection), or when the last batch did not commit
    (:meth:`committed` was not called: the lists may hold its rolled-back rows). Every
    write of the import's own connection to ``Contact`` must go through the transactions
    it is attached to (:class:`reconcile.store.batch.BatchContactTx`), which tell it.
    """

    def __init__(self, per_key: int):
        self.depth = per_key + RESIDENT_SLACK
        #: name key -> [its newest live holders, oldest first; whether that is all of them]
        self._lists: dict[str, list] = {}
        #: contact id -> its name key, for every row held
        self._key_of: dict[int, str] = {}
        #: contact id -> what the engine derived from that held row's values
        self.derived: dict[int, Any] = {}
        self._conn: object | None = None
        self._version: int | None = None
        self._open = False

    def begin(self, conn: Connection) -> None:
        """Start a batch transaction on ``conn`` (SQLite, write lock held)."""
        raw = conn.connection.dbapi_connection
        version = conn.exec_driver_sql("PRAGMA data_version").scalar_one()
        if self._open or raw is not self._conn or version != self._version:
            self._lists.clear()
            self._key_of.clear()
            self.derived.clear()
        self._conn, self._version, self._open = raw, version, True

    def committed(self) -> None:
        """The batch transaction begun last committed: its writes are the database's."""
        self._open = False

    def holders(self, conn: Connection, key: str, exclude_primary: int, per_key: int) -> list[StoredRow] | None:
        """What the candidate query's name-key part returns (the newest ``per_key`` live
        holders of ``key`` outside group ``exclude_primary``, newest first), or None when
        the list held cannot tell."""
        entry = self._lists.get(key)
        if entry is None:
            newest = _NAME_KEY_HOLDERS.rows(conn, {"key": key, "depth": self.depth})
            entry = self._lists[key] = [newest[::-1], len(newest) < self.depth]
            for row in newest:
                self._key_of[row.id] = key
        rows, complete = entry
        found = []
        for row in reversed(rows):
            if (row.id if row.linkedId is None else row.linkedId) != exclude_primary:
                found.append(row)
                if len(found) == per_key:
                    return found
        return found if complete else None

    def inserted(self, row: ContactRow) -> None:
        """A contact the batch inserted (the newest id so far)."""
        entry = self._lists.get(row.nameKey) if row.nameKey else None
        if entry is None or row.deletedAt is not None:
            return
        rows = entry[0]
        rows.append(_CandidateRow(*(getattr(row, name) for name in CANDIDATE_COLUMNS)))
        self._key_of[row.id] = row.nameKey
        if len(rows) > self.depth:
            dropped = rows.pop(0).id
            del self._key_of[dropped]
            self.derived.pop(dropped, None)
            entry[1] = False

    def keep(self, row_id: int, value: Any) -> None:
        """Keep ``value``, derived from contact ``row_id``'s values, while that row is held."""
        if row_id in self._key_of:
            self.derived[row_id] = value

    def moved(self, ids: list[int], winner: int) -> None:
        """A merge re-pointed ``ids`` at primary ``winner``."""
        for moved_id in ids:
            key = self._key_of.get(moved_id)
            if key is None:
                continue
            rows = self._lists[key][0]
            for i, row in enumerate(rows):
                if row.id == moved_id:
                    rows[i] = row._replace(linkedId=winner)
                    break


@lru_cache(maxsize=len(BLOCKING_KEYS) ** 2 * 2)
def _candidates_stmt(columns: tuple[str, ...]):
    """One round trip for every present key: a UNION ALL of per-key index look-ups,
    each capped by ``:per_key`` so a common key cannot make one request expensive."""
    group = func.coalesce(contact.c.linkedId, contact.c.id)
    parts = [
        select(*(contact.c[name] for name in CANDIDATE_COLUMNS))
        .where(
            contact.c[column] == bindparam(f"v_{column}"),
            contact.c.deletedAt.is_(None),
            group != bindparam("exclude"),
        )
        .order_by(contact.c.id.desc())
        .limit(bindparam("per_key", type_=Integer))
        .subquery()
        .select()
        for column in columns
    ]
    return Prepared(parts[0] if len(parts) == 1 else union_all(*parts))


@lru_cache(maxsize=len(BLOCKING_KEYS) ** 2 * 2)
def _candidates_stmt_pg(columns: tuple[str, ...]):
    """PostgreSQL: :func:`_candidates_stmt` spelled short (the table aliased ``c``, each
    look-up a parenthesised member of the ``UNION ALL`` instead of a wrapped subquery):
    the same plan, rows and order, in under 2,700 characters where the Core form of four
    or five keys took 5,500-6,900. psycopg parses the text of every execution of a
    statement over 4,096 characters again (it caches shorter ones), and a new contact
    usually has four or five keys."""
    selected = ", ".join(f'c."{name}"' for name in CANDIDATE_COLUMNS)
    parts = [
        f'(SELECT {selected} FROM "Contact" c WHERE c."{column}" = :v_{column} AND c."deletedAt" IS NULL'
        ' AND coalesce(c."linkedId", c.id) != CAST(:exclude AS integer)'
        " ORDER BY c.id DESC LIMIT CAST(:per_key AS integer))"
        for column in columns
    ]
    return Prepared(text(" UNION ALL ".join(parts)).columns(*(contact.c[name] for name in CANDIDATE_COLUMNS)))


def fetch_candidates(
    tx: ContactTx, keys: dict[str, str], exclude_primary: int, per_key: int
) -> list[ContactRow]:
    """Live contacts outside group ``exclude_primary`` sharing any blocking key (newest
    first per key, at most ``per_key`` per key), each contact once, with the columns in
    :data:`CANDIDATE_COLUMNS` only. A transaction with a ``resident`` name-key list
    (:class:`ResidentNameKeys`) takes the name key's part from it, in the same place
    (the last key) and order."""
    columns = tuple(c for c in BLOCKING_KEYS if keys.get(c))
    if not columns:
        return []
    named: list[StoredRow] | None = None
    resident: ResidentNameKeys | None = getattr(tx, "resident", None)
    if resident is not None and "nameKey" in columns:
        named = resident.holders(tx.conn, keys["nameKey"], exclude_primary, per_key)
        if named is not None:
            columns = columns[:-1]  # the name key is the last of BLOCKING_KEYS
    rows = _key_rows(tx, columns, keys, exclude_primary, per_key) if columns else []
    found: dict[int, ContactRow] = {}
    for row in rows:
        found.setdefault(row.id, row)
    for row in named or ():
        found.setdefault(row.id, row)
    return list(found.values())


def _key_rows(
    tx: ContactTx, columns: tuple[str, ...], keys: dict[str, str], exclude_primary: int, per_key: int
) -> list[ContactRow]:
    params = {f"v_{c}": keys[c] for c in columns}
    stmt = _candidates_stmt_pg(columns) if tx.dialect == "postgresql" else _candidates_stmt(columns)
    return stmt.rows(tx.conn, {**params, "exclude": exclude_primary, "per_key": per_key})
