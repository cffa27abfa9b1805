"""The reads behind ``reconcile export`` (golden records): every live contact, grouped by
person, and the external ids imports attached to them, each streamed in one ordered pass
so a million contacts never sit in memory at once.

Only live contacts are read: an erased person's contacts are tombstones (values cleared)
and are not part of any golden record.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select

from . import Store
from .schema import contact, import_ref

_PERSON = func.coalesce(contact.c.linkedId, contact.c.id).label("primaryId")
_LIVE_BY_PERSON = (
    select(
        _PERSON,
        contact.c.id,
        contact.c.linkPrecedence,
        contact.c.email,
        contact.c.phoneNumber,
        contact.c.name,
        contact.c.createdAt,
        contact.c.updatedAt,
        contact.c.linkMethod,
        contact.c.linkScore,
        contact.c.linkModel,
    )
    .where(contact.c.deletedAt.is_(None))
    # a group's primary is its oldest contact (createdAt, id): it comes first
    .order_by(_PERSON, contact.c.createdAt, contact.c.id)
)
_EXTERNAL_IDS_BY_PERSON = (
    select(_PERSON, import_ref.c.externalId)
    .join(contact, contact.c.id == import_ref.c.contactId)
    .where(contact.c.deletedAt.is_(None))
    .order_by(_PERSON, import_ref.c.runId, import_ref.c.line)
)
CHUNK = 20_000


def _stream(store: Store, statement) -> Iterator[list[Any]]:
    with store.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(statement)
        for part in result.partitions(CHUNK):
            yield part


def live_contacts_by_person(store: Store) -> Iterator[list[Any]]:
    """Chunks of live contacts ordered by person (primary id), oldest first within one."""
    return _stream(store, _LIVE_BY_PERSON)


def external_ids_by_person(store: Store) -> Iterator[list[Any]]:
    """Chunks of (primaryId, externalId) of live contacts, ordered by person, then import order."""
    return _stream(store, _EXTERNAL_IDS_BY_PERSON)


__all__ = ["live_contacts_by_person", "external_ids_by_person"]
