"""A transaction that answers many requests in a row (a bulk import), for the cost of
fewer statements and the same answers.

:class:`BatchContactTx` is a :class:`ContactTx` that knows, for the identifiers of the
whole batch, which ones some live contact holds: one read of ``identifier_group`` when
the batch starts (under the batch's locks, so nobody else can add or take such a value
until it commits), then kept up to date as the batch inserts contacts. A request whose
email and phone nobody holds has no match, no holder group and nothing to look up, so
the three reads that would each come back empty are not sent. On SQLite the batch's
audit rows are kept and written in one ``executemany`` at its end (:meth:`flush`), in
the order they were made, so they get the ids they would get one by one: nothing a
request reads is in the audit log. Everything else is :class:`ContactTx` unchanged, so
every decision (and every row written, in the same order) is the one a request alone
would get.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, and_, bindparam, or_, select

from ..normalize import Identity
from .contacts import ContactRow, ContactTx
from .schema import identifier_group

#: SQLite page cache of a batch connection (KiB, as PRAGMA cache_size takes it negated):
#: a million contacts' indexes stay in memory instead of being re-read page by page
SQLITE_CACHE_KIB = 256 * 1024

_ig = identifier_group.c
_HELD = (
    select(_ig.field, _ig.value)
    .where(
        or_(
            and_(_ig.field == "email", _ig.value.in_(bindparam("emails", expanding=True))),
            and_(_ig.field == "phoneNumber", _ig.value.in_(bindparam("phones", expanding=True))),
        )
    )
    .distinct()
)


class BatchContactTx(ContactTx):
    """A write transaction for many requests; see the module's docstring."""

    def __init__(self, conn: Connection, dialect: str):
        super().__init__(conn, dialect)
        self._held: set[tuple[str, str]] | None = None
        #: audit rows not yet written (SQLite; PostgreSQL writes a creation's audit row in
        #: the insert's own statement, so its rows keep their place by being written at once)
        self._audits: list[dict[str, Any]] | None = None
        if dialect == "sqlite":
            conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            self._audits = []

    def expect(self, identities: Iterable[Identity]) -> None:
        """Read which of these requests' values live contacts hold (call it first)."""
        identities = list(identities)
        emails = sorted({i.email for i in identities if i.email is not None})
        phones = sorted({i.phone for i in identities if i.phone is not None})
        self._held = {(f, v) for f, v in self.conn.execute(_HELD, {"emails": emails, "phones": phones})}

    def _nobody_holds(self, email: str | None, phone: str | None) -> bool:
        held = self._held
        if held is None:
            return False
        return (email is None or ("email", email) not in held) and (phone is None or ("phoneNumber", phone) not in held)

    def groups_holding(self, email: str | None, phone: str | None) -> list[ContactRow]:
        if self._nobody_holds(email, phone):
            return []
        return super().groups_holding(email, phone)

    def holding_groups(self, values: dict[str, str], limit: int) -> dict[str, tuple[list[int], int]]:
        if self._nobody_holds(values.get("email"), values.get("phoneNumber")):
            return {}
        return super().holding_groups(values, limit)

    def find_matching(
        self,
        email: str | None,
        phone: str | None,
        widely_held: frozenset[str] = frozenset(),
        held_groups: Iterable[int] = (),
    ) -> list[ContactRow]:
        # no live holder of either value: no match, and no member of any group holds one
        if self._nobody_holds(email, phone):
            return []
        return super().find_matching(email, phone, widely_held, held_groups)

    def _audit_many(self, rows: list[dict[str, Any]]) -> None:
        if self._audits is None:
            super()._audit_many(rows)
        else:
            self._audits.extend(rows)

    def flush(self) -> None:
        """Write the audit rows kept so far (call it before the transaction commits)."""
        if self._audits:
            super()._audit_many(self._audits)
            self._audits = []

    def insert_contact(self, identity: Identity, **kwargs: Any) -> ContactRow:
        row = super().insert_contact(identity, **kwargs)
        if self._held is not None and row.deletedAt is None:
            self._held.update((f, v) for f, v in (("email", row.email), ("phoneNumber", row.phoneNumber)) if v is not None)
        return row


__all__ = ["BatchContactTx", "SQLITE_CACHE_KIB"]
