"""Candidate retrieval for the probabilistic stage: index look-ups on blocking keys."""
from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Integer, bindparam, func, select, union_all

from .contacts import ContactRow, ContactTx
from .prepared import Prepared
from .schema import contact

#: blocking-key columns, strongest first
BLOCKING_KEYS = ("emailMailbox", "phoneNational", "emailLocal", "phoneTail", "nameKey")


@lru_cache(maxsize=len(BLOCKING_KEYS) ** 2 * 2)
def _candidates_stmt(columns: tuple[str, ...]):
    """One round trip for every present key: a UNION ALL of per-key index look-ups,
    each capped by ``:per_key`` so a common key cannot make one request expensive."""
    group = func.coalesce(contact.c.linkedId, contact.c.id)
    parts = [
        select(contact)
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


def fetch_candidates(
    tx: ContactTx, keys: dict[str, str], exclude_primary: int, per_key: int
) -> list[ContactRow]:
    """Live contacts outside group ``exclude_primary`` sharing any blocking key (newest
    first per key, at most ``per_key`` per key), each contact once."""
    columns = tuple(c for c in BLOCKING_KEYS if keys.get(c))
    if not columns:
        return []
    params = {f"v_{c}": keys[c] for c in columns}
    rows = _candidates_stmt(columns).rows(tx.conn, {**params, "exclude": exclude_primary, "per_key": per_key})
    found: dict[int, ContactRow] = {}
    for row in rows:
        found.setdefault(row.id, row)
    return list(found.values())
