"""What the offline tools read out of the store in bulk: the live contacts training
learns from, and the grouping a replay or the scripted reviewer ends with.

None of these runs on a request's path. The functions given a database URL open a
short-lived engine of their own and dispose of it, so a training run holds no pool
open on the service's database.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, create_engine, func, inspect, select, text

from . import Store
from .engine import make_engine
from .schema import contact, pending_merge

_LIVE_CONTACTS = text('SELECT email, "phoneNumber", name FROM "Contact" WHERE "deletedAt" IS NULL')
_LIVE_CONTACTS_WITH_GROUP = text(
    'SELECT email, "phoneNumber", name, COALESCE("linkedId", id) FROM "Contact" WHERE "deletedAt" IS NULL ORDER BY id'
)


@contextmanager
def _connection(url: str) -> Iterator[Connection]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def live_contacts(url: str) -> list[tuple]:
    """(email, phoneNumber, name) of every live contact, as stored."""
    with _connection(url) as conn:
        return [tuple(r) for r in conn.execute(_LIVE_CONTACTS)]


def live_contacts_with_group(url: str) -> list[tuple]:
    """(email, phoneNumber, name, primary id) of every live contact, as stored, in the
    order the contacts were created (id order): the review-load estimate replays them
    as they arrived."""
    with _connection(url) as conn:
        return [tuple(r) for r in conn.execute(_LIVE_CONTACTS_WITH_GROUP)]


def contact_count(url: str) -> int:
    """How many contacts (erased ones included) the database holds; 0 when it has no
    contact table yet."""
    engine = make_engine(url)
    try:
        if not inspect(engine).has_table(contact.name):
            return 0
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(contact)).scalar_one()
    finally:
        engine.dispose()


def primary_of_each_contact(store: Store) -> dict[int, int]:
    """Contact id -> the id of its group's primary, for every contact."""
    with store.engine.connect() as conn:
        return dict(conn.execute(select(contact.c.id, func.coalesce(contact.c.linkedId, contact.c.id))).all())


def primary_of_contact(store: Store, contact_id: int) -> int | None:
    """The id of the primary of ``contact_id``'s group; None for an unknown contact."""
    with store.read() as tx:
        return tx.conn.execute(
            select(func.coalesce(contact.c.linkedId, contact.c.id)).where(contact.c.id == contact_id)
        ).scalar()


def pending_merge_count(store: Store) -> int | None:
    """How many merges were ever proposed (any status); None when the database has no
    ``pending_merge`` table."""
    with store.engine.connect() as conn:
        if not inspect(conn).has_table(pending_merge.name):
            return None
        return conn.execute(select(func.count()).select_from(pending_merge)).scalar_one()


__all__ = [
    "live_contacts",
    "live_contacts_with_group",
    "contact_count",
    "primary_of_each_contact",
    "primary_of_contact",
    "pending_merge_count",
]
