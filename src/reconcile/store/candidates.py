"""Candidate retrieval for the probabilistic stage: index look-ups on blocking keys."""
from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Integer, bindparam, func, select, text, union_all

from .contacts import ContactRow, ContactTx
from .prepared import Prepared
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
    :data:`CANDIDATE_COLUMNS` only."""
    columns = tuple(c for c in BLOCKING_KEYS if keys.get(c))
    if not columns:
        return []
    params = {f"v_{c}": keys[c] for c in columns}
    stmt = _candidates_stmt_pg(columns) if tx.dialect == "postgresql" else _candidates_stmt(columns)
    rows = stmt.rows(tx.conn, {**params, "exclude": exclude_primary, "per_key": per_key})
    found: dict[int, ContactRow] = {}
    for row in rows:
        found.setdefault(row.id, row)
    return list(found.values())
