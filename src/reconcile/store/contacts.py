"""Every SQL statement that reads or changes the contact graph, inside one transaction.

A :class:`ContactTx` is handed out by :meth:`reconcile.store.Store.write` or
:meth:`~reconcile.store.Store.read`; the linking engine calls its methods and never
sees SQL. Every change of ``linkedId``/``linkPrecedence`` goes through here, so every
change is written to the audit log with its cause.
"""
from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Connection, Row, and_, bindparam, case, delete, exists, func, insert, literal, literal_column, or_, select, text,
    union, union_all, update,
)
from sqlalchemy.dialects import postgresql, sqlite

from ..normalize import Identity
from .prepared import Prepared
from .schema import audit_log, contact, identifier_group, link_guard, pending_merge

ContactRow = Row[Any]

#: groups the read path looks at: two tell it that the request spans several
FAST_PATH_GROUPS = 2

_LIVE = contact.c.deletedAt.is_(None)

# The hot statements, built once: building a statement and its cache key on every call
# cost more CPU than running it. Parameters are bound at execution.
_IDS = bindparam("ids", expanding=True)
# The email's holders first, then by id: the order SQLite's index union reads them in,
# made explicit so both engines hand the guards the same sequence.
_MATCH_ORDER = (case((contact.c.email == bindparam("email"), 0), else_=1), contact.c.id)
_FIND_BY = {
    (True, False): Prepared(select(contact).where(_LIVE, contact.c.email == bindparam("email")).order_by(*_MATCH_ORDER)),
    (False, True): Prepared(
        select(contact).where(_LIVE, contact.c.phoneNumber == bindparam("phone")).order_by(*_MATCH_ORDER)
    ),
    (True, True): Prepared(
        select(contact).where(
            _LIVE, or_(contact.c.email == bindparam("email"), contact.c.phoneNumber == bindparam("phone"))
        ).order_by(*_MATCH_ORDER)
    ),
}
_BY_IDS = Prepared(select(contact).where(contact.c.id.in_(_IDS)).order_by(contact.c.id))
_BY_IDS_FOR_UPDATE = Prepared(select(contact).where(contact.c.id.in_(_IDS)).order_by(contact.c.id).with_for_update())
_IN_GROUPS = or_(contact.c.id.in_(_IDS), contact.c.linkedId.in_(_IDS))
_GROUP_MEMBERS = Prepared(select(contact).where(_LIVE, _IN_GROUPS).order_by(contact.c.createdAt, contact.c.id))
_GROUP_KEY = func.coalesce(contact.c.linkedId, contact.c.id)


def _groups_holding(condition):
    # a UNION of two index look-ups: PostgreSQL plans ``id IN (...) OR linkedId IN (...)``
    # as a scan of the whole table. At most two groups: the read path answers only when
    # one group holds everything, and a shared value's hundreds of groups are not read.
    holders = select(_GROUP_KEY).where(_LIVE, condition).distinct().limit(FAST_PATH_GROUPS).scalar_subquery()
    members = union_all(  # disjoint: the primaries, then their secondaries
        select(contact).where(_LIVE, contact.c.id.in_(holders)),
        select(contact).where(_LIVE, contact.c.linkedId.in_(holders)),
    ).subquery()
    return Prepared(select(members).order_by(members.c.createdAt, members.c.id))


_GROUPS_HOLDING = {
    (True, False): _groups_holding(contact.c.email == bindparam("email")),
    (False, True): _groups_holding(contact.c.phoneNumber == bindparam("phone")),
    (True, True): _groups_holding(
        or_(contact.c.email == bindparam("email"), contact.c.phoneNumber == bindparam("phone"))
    ),
}
# a merge: the rows that move (the losers and their secondaries), then the move itself
_MOVED = Prepared(
    select(
        contact.c.id, contact.c.linkedId, contact.c.linkPrecedence, contact.c.email, contact.c.phoneNumber, contact.c.deletedAt
    ).where(_IN_GROUPS)
)
_MOVE = Prepared(
    update(contact)
    .where(_IN_GROUPS)
    .values(
        linkedId=bindparam("winner"),
        linkPrecedence="secondary",
        updatedAt=bindparam("now", type_=contact.c.updatedAt.type),
        linkMethod=bindparam("method"),
        linkScore=bindparam("score", type_=contact.c.linkScore.type),
        linkModel=bindparam("model"),
    )
)
_GROUP_SIZES = Prepared(select(_GROUP_KEY, func.count()).where(_LIVE, _IN_GROUPS).group_by(_GROUP_KEY))
#: the columns a created contact binds (``id`` comes from the database)
_INSERTED = (
    "email", "phoneNumber", "name", "linkedId", "linkPrecedence", "createdAt", "updatedAt", "linkMethod", "linkScore",
    "linkModel", "emailMailbox", "emailLocal", "phoneNational", "phoneTail", "nameKey", "unreadableEmail",
    "unreadablePhone",
)
_INSERT_CONTACT = Prepared(insert(contact).returning(*contact.c), columns=_INSERTED)
_AUDITED = ("at", "contactId", "action", "oldLinkedId", "newLinkedId", "oldPrecedence", "newPrecedence", "cause", "detail")
_INSERT_AUDIT = Prepared(insert(audit_log), columns=_AUDITED)


def _create_in_one_statement():
    """PostgreSQL: insert a contact, count its values in ``identifier_group`` and audit its
    creation in one statement (data-modifying CTEs), one round trip instead of three.
    Binds the contact's columns, plus the audit row's ``at``, ``cause`` and ``detail``."""
    created = insert(contact).values({c: bindparam(c) for c in _INSERTED}).returning(*contact.c).cte("created")
    group = func.coalesce(created.c.linkedId, created.c.id)
    held = union_all(
        select(literal("email"), created.c.email, group, literal(1)).where(created.c.email.is_not(None)),
        select(literal("phoneNumber"), created.c.phoneNumber, group, literal(1)).where(
            created.c.phoneNumber.is_not(None)
        ),
    )
    holdings = postgresql.insert(identifier_group).from_select(["field", "value", "groupId", "holders"], held)
    holdings = holdings.on_conflict_do_update(
        index_elements=[identifier_group.c.field, identifier_group.c.value, identifier_group.c.groupId],
        set_={"holders": identifier_group.c.holders + holdings.excluded.holders},
    ).cte("holdings")
    audit = insert(audit_log).from_select(
        ["at", "contactId", "action", "newLinkedId", "newPrecedence", "cause", "detail"],
        select(
            bindparam("at", type_=audit_log.c.at.type),
            created.c.id,
            literal("created"),
            created.c.linkedId,
            created.c.linkPrecedence,
            bindparam("cause", type_=audit_log.c.cause.type),
            bindparam("detail", type_=audit_log.c.detail.type),
        ),
    ).cte("audit")
    return Prepared(select(created).add_cte(holdings, audit))


_CREATE_PG = _create_in_one_statement()

#: ``SET LOCAL lock_timeout`` as a function, so its value is a parameter of one prepared statement
_LOCK_TIMEOUT_UNTIL_COMMIT = Prepared(select(func.set_config("lock_timeout", bindparam("setting"), True)))

#: what a review item closed by another change of its groups says, and its status
RESOLVED = "resolved"
RESOLVED_MERGED = "resolved elsewhere: the two groups were merged by other means"
RESOLVED_SPLIT = "resolved elsewhere: a group was split, the scored pair no longer joins these two groups"
_PM = pending_merge.c
# The items naming a moved contact, in two steps: their ids, a UNION of four index
# look-ups (one per column that can name it); then those items by id. Written as one
# statement (an OR, or a join on the UNION), SQLite read every pending item through the
# status index on every merge: a bulk import slowed down as its queue grew.
_TOUCHING = Prepared(union(*(select(_PM.id).where(column.in_(_IDS)) for column in (
    _PM.leftPrimaryId, _PM.rightPrimaryId, _PM.contactId, _PM.candidateId
))))
_TOUCHED = (
    select(_PM.id, _PM.leftPrimaryId, _PM.rightPrimaryId, _PM.contactId, _PM.candidateId)
    .where(
        _PM.id.in_(_IDS),
        _PM.status == "pending",
        # an audited automatic link asks about two groups made one on purpose
        or_(_PM.audit.is_(None), _PM.audit != "link"),
    )
    .order_by(_PM.id)
)
_TOUCHED_REVIEWS = {"sqlite": Prepared(_TOUCHED), "postgresql": Prepared(_TOUCHED.with_for_update(skip_locked=True))}



def _holding_groups_stmt():
    """The first ``limit`` groups (by primary id) holding the email or the phone, each
    with how many groups hold that value: one range read of the primary key per value."""
    ig = identifier_group.c
    ranked = (
        select(
            ig.field,
            ig.groupId,
            func.row_number().over(partition_by=ig.field, order_by=ig.groupId).label("rank"),
            func.count().over(partition_by=ig.field).label("total"),
        )
        .where(
            or_(
                and_(ig.field == "email", ig.value == bindparam("email")),
                and_(ig.field == "phoneNumber", ig.value == bindparam("phone")),
            )
        )
        .subquery()
    )
    return Prepared(select(ranked.c.field, ranked.c.groupId, ranked.c.total).where(ranked.c.rank <= bindparam("limit")))


_HOLDING_GROUPS = _holding_groups_stmt()
_HOLDING_KEY = and_(
    identifier_group.c.field == bindparam("b_field"),
    identifier_group.c.value == bindparam("b_value"),
    identifier_group.c.groupId == bindparam("b_group"),
)
_RELEASE_LAST = Prepared(delete(identifier_group).where(_HOLDING_KEY, identifier_group.c.holders <= bindparam("n")))
_RELEASE = Prepared(
    update(identifier_group)
    .where(_HOLDING_KEY, identifier_group.c.holders > bindparam("n"))
    .values(holders=identifier_group.c.holders - bindparam("n"))
)


#: How :data:`_SHIFT_PG` and :data:`_MERGE_PG` apply a CTE ``s`` of (field, value, grp, n)
#: changes to ``identifier_group``, written once: the rows whose last holders leave are
#: deleted, other negative changes counted down ...
_SHIFT_STEPS = """
        gone AS (
            DELETE FROM identifier_group ig USING s
            WHERE s.n < 0 AND ig.field = s.field AND ig.value = s.value AND ig."groupId" = s.grp
              AND ig.holders <= -s.n
        ), fewer AS (
            UPDATE identifier_group ig SET holders = ig.holders + s.n FROM s
            WHERE s.n < 0 AND ig.field = s.field AND ig.value = s.value AND ig."groupId" = s.grp
              AND ig.holders > -s.n
        )"""
#: ... and the positive ones upserted (a statement of its own, or the last CTE of a merge)
_SHIFT_ADD = """
        INSERT INTO identifier_group (field, value, "groupId", holders)
        SELECT field, value, grp, n FROM s WHERE n > 0
        ON CONFLICT (field, value, "groupId") DO UPDATE SET holders = identifier_group.holders + excluded.holders"""
#: PostgreSQL: the whole of a :meth:`ContactTx._shift_holdings` in one statement, one round
#: trip instead of three batches. Each (field, value, group) comes once with its change
#: ``n``: the rows of the negative ones are deleted (the last holders leave) or counted
#: down, the positive ones upserted; the three touch different rows, and every row is of
#: a group whose primary the transaction holds locked, so no order among them matters.
_SHIFT_PG = Prepared(
    text(
        """
        WITH s AS (
            SELECT * FROM unnest(
                CAST(:fields AS varchar[]), CAST(:vals AS varchar[]), CAST(:grps AS integer[]), CAST(:ns AS integer[])
            ) AS s(field, value, grp, n)
        ),"""
        + _SHIFT_STEPS
        + _SHIFT_ADD
    )
)


#: PostgreSQL: a whole merge (:meth:`ContactTx.merge_groups`) in one statement: the rows
#: of the losing groups re-pointed at ``winner``, each audited with its old link, and
#: their values' ``identifier_group`` counts moved from their old groups to the winner's
#: (the old groups' rows and the winner's are different rows, as in :data:`_SHIFT_PG`).
#: Returns the moved rows as they were. One round trip where the same steps took five.
_MERGE_PG = Prepared(
    text(
        """
        WITH old AS (
            SELECT id, "linkedId", "linkPrecedence", email, "phoneNumber", "deletedAt" FROM "Contact"
            WHERE id = ANY(CAST(:ids AS integer[])) OR "linkedId" = ANY(CAST(:ids AS integer[]))
        ), moved AS (
            UPDATE "Contact" c
            SET "linkedId" = CAST(:winner AS integer), "linkPrecedence" = 'secondary',
                "updatedAt" = CAST(:now AS timestamptz), "linkMethod" = CAST(:method AS varchar),
                "linkScore" = CAST(:score AS double precision), "linkModel" = CAST(:model AS varchar)
            FROM old WHERE c.id = old.id
            RETURNING old.id, old."linkedId", old."linkPrecedence", old.email, old."phoneNumber", old."deletedAt"
        ), audit AS (
            INSERT INTO audit_log
                (at, "contactId", action, "oldLinkedId", "newLinkedId", "oldPrecedence", "newPrecedence", cause, detail)
            SELECT CAST(:now AS timestamptz), id,
                   CASE WHEN "linkPrecedence" = 'primary' THEN 'demoted' ELSE 'relinked' END,
                   "linkedId", CAST(:winner AS integer), "linkPrecedence", 'secondary', CAST(:cause AS varchar),
                   CAST(:detail AS json)
            FROM moved ORDER BY id
        ), held AS (
            SELECT v.field, v.value, coalesce(m."linkedId", m.id) AS grp
            FROM moved m CROSS JOIN LATERAL (VALUES ('email', m.email), ('phoneNumber', m."phoneNumber")) AS v(field, value)
            WHERE m."deletedAt" IS NULL AND v.value IS NOT NULL
        ), s AS (
            SELECT field, value, grp, -count(*) AS n FROM held GROUP BY field, value, grp
            UNION ALL
            SELECT field, value, CAST(:winner AS integer), count(*) FROM held GROUP BY field, value
        ),"""
        + _SHIFT_STEPS
        + ", added AS ("
        + _SHIFT_ADD
        + """
        )
        SELECT id, "linkedId", "linkPrecedence", email, "phoneNumber", "deletedAt" FROM moved ORDER BY id
        """
    )
    .bindparams(
        bindparam("now", type_=audit_log.c.at.type),
        bindparam("score", type_=contact.c.linkScore.type),
        bindparam("detail", type_=audit_log.c.detail.type),
    )
    .columns(
        contact.c.id, contact.c.linkedId, contact.c.linkPrecedence, contact.c.email, contact.c.phoneNumber,
        contact.c.deletedAt,
    )
)


@functools.cache
def _add_holdings_stmt(dialect: str):
    """Upsert ``holders += n`` for (field, value, group); the dialects spell it alike."""
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(identifier_group)
    return Prepared(
        stmt.on_conflict_do_update(
            index_elements=[identifier_group.c.field, identifier_group.c.value, identifier_group.c.groupId],
            set_={"holders": identifier_group.c.holders + stmt.excluded.holders},
        ),
        columns=("field", "value", "groupId", "holders"),
    )


@functools.cache
def _guarded_values_stmt(n: int, guards: frozenset[str]):
    """Which of ``n`` pairs (bound as ``f0, v0, f1, ...``) have a ``link_guard`` row of one
    of ``guards``: one index probe each, reading the value's rows until one qualifies."""
    # inlined (the prepared statement binds only values): guard names are the engine's words
    if not all(name.replace("-", "").isalpha() for name in guards):
        raise ValueError(f"not a guard name: {sorted(guards)}")
    kinds = [literal_column(f"'{name}'") for name in sorted(guards)]
    probes = [
        select(literal(i)).where(
            exists().where(
                link_guard.c.field == bindparam(f"f{i}"),
                link_guard.c.value == bindparam(f"v{i}"),
                link_guard.c.guard.in_(kinds),
            )
        )
        for i in range(n)
    ]
    return Prepared(probes[0] if n == 1 else union_all(*probes))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """A stored timestamp with its zone: SQLite hands every one back naive, and every
    one was written in UTC (:func:`utcnow`)."""
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


def _holdings(row: Any, group: int) -> list[tuple[str, str, int]]:
    """The (field, value, group) entries a live contact contributes to ``identifier_group``."""
    if row.deletedAt is not None:
        return []
    return [(f, v, group) for f, v in (("email", row.email), ("phoneNumber", row.phoneNumber)) if v is not None]


def settled_reason(group: dict[int, int], item: Any) -> str | None:
    """Why a review item no longer asks anything (its groups merged, or split so that the
    scored pair no longer joins them), or ``None``; ``group`` maps contact ids to their
    current primaries."""
    left, right = group[item.leftPrimaryId], group[item.rightPrimaryId]
    if left == right:
        return RESOLVED_MERGED
    if item.contactId is not None and item.candidateId is not None:
        if {group.get(item.contactId), group.get(item.candidateId)} != {left, right}:
            return RESOLVED_SPLIT
    return None


class StaleGroup(Exception):
    """A group changed between reading and locking it; the transaction is retried."""


class ContactTx:
    """One open transaction on the contact graph."""

    def __init__(self, conn: Connection, dialect: str):
        self.conn = conn
        self.dialect = dialect
        #: createdAt of the primaries this transaction has locked (see :meth:`_not_before`)
        self._locked_at: dict[int, datetime] = {}
        #: when the contacts this transaction creates or re-links are stamped: the wall
        #: clock, or a historical event's time for a bulk import (``Reconciler.identify_many``)
        self.clock: Callable[[], datetime] = utcnow

    # --- reads ---------------------------------------------------------------------

    def find_matching(
        self,
        email: str | None,
        phone: str | None,
        widely_held: frozenset[str] = frozenset(),
        held_groups: Iterable[int] = (),
    ) -> list[ContactRow]:
        """Live contacts sharing the normalised email or phone (NULL never matches), the
        email's holders first, then by id.

        A field in ``widely_held`` (a placeholder, or a value held by more groups than the
        guards let link) is not read across the table: only its holders inside the groups
        the other value reaches and inside ``held_groups`` are, so the rows read are
        bounded by those groups' sizes.
        """
        read_email = None if "email" in widely_held else email
        read_phone = None if "phoneNumber" in widely_held else phone
        rows: list[ContactRow] = []
        if read_email is not None or read_phone is not None:
            stmt = _FIND_BY[read_email is not None, read_phone is not None]
            rows = stmt.rows(self.conn, {"email": email, "phone": read_phone})
        wide = [(f, v) for f, v in (("email", email), ("phoneNumber", phone)) if f in widely_held and v is not None]
        groups = {r.linkedId or r.id for r in rows} | set(held_groups)
        if not wide or not groups:
            return rows
        seen = {r.id for r in rows}
        extra = [
            m for m in self.group_members(groups)
            if m.id not in seen and any(getattr(m, f) == v for f, v in wide)
        ]
        return sorted(rows + extra, key=lambda r: (email is None or r.email != email, r.id))

    def holding_groups(self, values: dict[str, str], limit: int) -> dict[str, tuple[list[int], int]]:
        """For each (field, value): the first ``limit`` groups holding it (by primary id)
        and how many do, from the state kept as contacts are written, not from the
        holders themselves. A value nobody holds is absent."""
        params = {"email": values.get("email"), "phone": values.get("phoneNumber"), "limit": limit}
        held: dict[str, tuple[list[int], int]] = {}
        for field, group, total in _HOLDING_GROUPS.rows(self.conn, params):
            held.setdefault(field, ([], total))[0].append(group)
        return held

    def groups_holding(self, email: str | None, phone: str | None) -> list[ContactRow]:
        """Every live member of the groups holding the email or phone, oldest first, when
        at most one group does; when several do, the members of two of them (enough to
        tell the read path the request spans groups, however many hold a shared value).

        One statement, so one consistent snapshot: the read path answers from it alone.
        """
        if email is None and phone is None:
            return []
        stmt = _GROUPS_HOLDING[email is not None, phone is not None]
        return stmt.rows(self.conn, {"email": email, "phone": phone})

    def contacts(self, ids: Iterable[int]) -> list[ContactRow]:
        return _BY_IDS.rows(self.conn, {"ids": sorted(set(ids))})

    def lock_primaries(self, ids: Iterable[int]) -> list[ContactRow]:
        """Lock the primaries' rows in id order and check they are still live primaries.

        On PostgreSQL this is ``SELECT ... FOR UPDATE``: any other writer that would
        add to, merge, split or demote one of these groups waits for us. SQLite already
        holds the database write lock. Raises :class:`StaleGroup` when a primary was
        demoted (or erased) since it was read, so the caller retries on fresh data.
        """
        wanted = sorted(set(ids))
        stmt = _BY_IDS_FOR_UPDATE if self.dialect == "postgresql" else _BY_IDS
        rows = stmt.rows(self.conn, {"ids": wanted})
        if len(rows) != len(wanted) or any(
            r.linkPrecedence != "primary" or r.deletedAt is not None for r in rows
        ):
            raise StaleGroup(f"groups {wanted} changed while being read")
        self._locked_at.update((r.id, r.createdAt) for r in rows)
        return rows

    def lock_groups(
        self, ids: Iterable[int], members: Iterable[ContactRow]
    ) -> tuple[list[ContactRow], list[ContactRow]]:
        """:meth:`lock_primaries`, then the groups' live members read under the locks,
        oldest first (:meth:`group_members`).

        ``members`` are rows read before the lock as belonging to these groups (the
        request's matches). An undone merge splits a group whose primary stays primary,
        so on PostgreSQL each of them must still be among the members read under the
        lock, live and in the same group; if not, :class:`StaleGroup`. (SQLite's writer
        read them under the database write lock already.) The members read serve both
        the check and the caller: one statement fewer than reading the matches again.
        """
        wanted = sorted(set(ids))
        primaries = self.lock_primaries(wanted)
        current = self.group_members(wanted)
        if self.dialect == "postgresql":
            locked = set(wanted)
            group = {m.id: m.linkedId or m.id for m in current}
            moved = sorted(m.id for m in members if (m.linkedId or m.id) in locked and group.get(m.id) != (m.linkedId or m.id))
            if moved:
                raise StaleGroup(f"contacts {moved} moved between groups while being read")
        return primaries, current

    def bound_lock_waits(self, milliseconds: int) -> None:
        """From here to commit, give up a row lock after ``milliseconds`` (PostgreSQL).

        For locks taken out of the usual order (a candidate's group, found by scoring):
        a crosswise wait then fails fast with 55P03 and the transaction is retried,
        instead of stalling until the deadlock detector runs.
        """
        if self.dialect == "postgresql":
            _LOCK_TIMEOUT_UNTIL_COMMIT.rows(self.conn, {"setting": f"{int(milliseconds)}ms"})

    def group_members(self, primary_ids: Sequence[int]) -> list[ContactRow]:
        """The live contacts of the given groups, oldest first (``createdAt``, then ``id``)."""
        return _GROUP_MEMBERS.rows(self.conn, {"ids": sorted(set(primary_ids))})

    def group_sizes(self, primary_ids: Iterable[int]) -> dict[int, int]:
        """Live contacts per group, keyed by primary id."""
        rows = _GROUP_SIZES.rows(self.conn, {"ids": sorted(set(primary_ids))})
        return {primary: count for primary, count in rows}

    def guarded_values(self, pairs: Iterable[tuple[str, str]], guards: frozenset[str]) -> set[tuple[str, str]]:
        """Which (field, value) pairs one of ``guards`` has already kept from linking groups."""
        wanted = [(f, v) for f, v in pairs if v is not None]
        if not wanted:
            return set()
        params = {f"{kind}{i}": x for i, pair in enumerate(wanted) for kind, x in zip("fv", pair)}
        return {wanted[i] for (i,) in _guarded_values_stmt(len(wanted), guards).rows(self.conn, params)}

    # --- writes --------------------------------------------------------------------

    def insert_contact(
        self,
        identity: Identity,
        *,
        linked_id: int | None,
        method: str,
        cause: str,
        score: float | None = None,
        model: str | None = None,
        detail: dict | None = None,
    ) -> ContactRow:
        """Insert a contact (primary when ``linked_id`` is None) and audit its creation."""
        now = self.clock()
        values = {
            "email": identity.email,
            "phoneNumber": identity.phone,
            "name": identity.name,
            "linkedId": linked_id,
            "linkPrecedence": "primary" if linked_id is None else "secondary",
            "createdAt": now if linked_id is None else self._not_before(now, linked_id),
            "updatedAt": now,
            "linkMethod": method,
            "linkScore": score,
            "linkModel": model,
            **identity.keys,
            **identity.unreadable_columns,
        }
        if self.dialect == "postgresql":
            return _CREATE_PG.one(self.conn, {**values, "at": now, "cause": cause, "detail": detail})
        row = _INSERT_CONTACT.one(self.conn, values)
        self._shift_holdings(Counter(dict.fromkeys(_holdings(row, linked_id or row.id), 1)))
        self._audit(
            now,
            row.id,
            "created",
            cause,
            new_linked=linked_id,
            new_precedence=row.linkPrecedence,
            detail=detail,
        )
        return row

    def _not_before(self, now: datetime, primary_id: int) -> datetime:
        """``now``, or the primary's ``createdAt`` when that is later.

        Each row is stamped by the clock of the worker that inserts it; on another host,
        or after a clock step, that clock can be behind the one that stamped the primary.
        A secondary must still sort after its primary by (``createdAt``, ``id``): on a tie
        its id decides, and it is larger, as the primary was committed before we locked it.
        """
        primary_at = self._locked_at.get(primary_id)
        if primary_at is None:
            primary_at = self.conn.execute(select(contact.c.createdAt).where(contact.c.id == primary_id)).scalar_one()
        if primary_at.tzinfo is None:  # SQLite hands back naive UTC
            primary_at = primary_at.replace(tzinfo=timezone.utc)
        return max(now, primary_at)

    def merge_groups(
        self,
        winner: ContactRow,
        losers: Sequence[ContactRow],
        *,
        method: str,
        cause: str,
        score: float | None = None,
        model: str | None = None,
        detail: dict | None = None,
        keep_open: Collection[int] = (),
    ) -> list[int]:
        """Re-point each loser primary and all its secondaries straight at ``winner``.

        Callers hold the locks of every primary involved (see :meth:`lock_primaries`).
        Returns the ids whose link changed, every one of them audited. Review items the
        merge settles close themselves (:meth:`close_settled_reviews`), except
        ``keep_open`` (a review case deciding them itself).
        """
        now = self.clock()
        changed: list[int] = []
        loser_ids = sorted(r.id for r in losers)
        if not loser_ids:
            return changed
        if self.dialect == "postgresql":
            moved = _MERGE_PG.rows(
                self.conn,
                {"ids": loser_ids, "winner": winner.id, "now": now, "method": method, "score": score, "model": model,
                 "cause": cause, "detail": detail},
            )
            changed.extend(row.id for row in moved)
            self.close_settled_reviews(changed, cause=cause, at=now, keep_open=keep_open)
            return changed
        moved = _MOVED.rows(self.conn, {"ids": loser_ids})
        shift: Counter = Counter()
        for row in moved:
            for field, value, group in _holdings(row, row.linkedId or row.id):
                shift[field, value, group] -= 1
                shift[field, value, winner.id] += 1
        self._shift_holdings(shift)
        _MOVE.run(
            self.conn,
            {"ids": loser_ids, "winner": winner.id, "now": now, "method": method, "score": score, "model": model},
        )
        self._audit_many(
            [
                self._audit_values(
                    now,
                    row.id,
                    "demoted" if row.linkPrecedence == "primary" else "relinked",
                    cause,
                    old_linked=row.linkedId,
                    new_linked=winner.id,
                    old_precedence=row.linkPrecedence,
                    new_precedence="secondary",
                    detail=detail,
                )
                for row in moved
            ]
        )
        changed.extend(row.id for row in moved)
        self.close_settled_reviews(changed, cause=cause, at=now, keep_open=keep_open)
        return changed

    def revert_moves(
        self,
        moves: Sequence[Row[Any]],
        provenance: dict[int, tuple[str, float | None, str | None]],
        *,
        cause: str,
        detail: dict,
        at: datetime,
    ) -> None:
        """Put each contact an audited link change moved back where that change found it.

        ``moves`` are ``audit_log`` rows; ``provenance`` gives each contact's method,
        score and model to restore. Each reversal is audited with ``detail`` plus the
        audit id it ``undoes``. Callers hold the lock of the group being split.
        """
        self.regroup_holdings({m.contactId: m.oldLinkedId or m.contactId for m in moves})  # the last move decides
        for move in moves:
            method, score, model = provenance[move.contactId]
            self.conn.execute(
                update(contact)
                .where(contact.c.id == move.contactId)
                .values(
                    linkedId=move.oldLinkedId,
                    linkPrecedence=move.oldPrecedence,
                    updatedAt=at,
                    linkMethod=method,
                    linkScore=score,
                    linkModel=model,
                )
            )
        self._audit_many(
            [
                self._audit_values(
                    at,
                    m.contactId,
                    "promoted" if m.oldPrecedence == "primary" else "relinked",
                    cause,
                    old_linked=m.newLinkedId,
                    new_linked=m.oldLinkedId,
                    old_precedence=m.newPrecedence,
                    new_precedence=m.oldPrecedence,
                    detail={**detail, "undoes": m.id},
                )
                for m in moves
            ]
        )
        self.close_settled_reviews([m.contactId for m in moves], cause=cause, at=at)

    def close_settled_reviews(
        self, moved_ids: Iterable[int], *, cause: str, at: datetime, keep_open: Collection[int] = ()
    ) -> list[int]:
        """Close the pending review items that a change of groups has settled: their two
        groups are one now (merged), or the pair that was scored no longer joins them
        (split). Status ``resolved`` ("resolved elsewhere"), no label, no cannot-link;
        ``decidedBy`` names the change's cause. Returns the closed ids.

        Every write that moves contacts between groups calls it with the moved ids, in
        the same transaction, so the queue never shows an item the graph has answered.
        An item a concurrent decision holds (PostgreSQL row lock) is skipped: that
        decision re-checks it under the groups' locks and closes it the same way.
        """
        ids = sorted(set(moved_ids))
        if not ids:
            return []
        touching = sorted({i for (i,) in _TOUCHING.rows(self.conn, {"ids": ids})} - set(keep_open))
        if not touching:
            return []
        items = _TOUCHED_REVIEWS[self.dialect].rows(self.conn, {"ids": touching})
        if not items:
            return []
        wanted = {i for r in items for i in (r.leftPrimaryId, r.rightPrimaryId, r.contactId, r.candidateId) if i is not None}
        group = {c.id: c.linkedId or c.id for c in self.contacts(wanted)}
        closing: dict[str, list[int]] = {RESOLVED_MERGED: [], RESOLVED_SPLIT: []}
        for r in items:
            why = settled_reason(group, r)
            if why is not None:
                closing[why].append(r.id)
        closed: list[int] = []
        for note, item_ids in closing.items():
            if item_ids:
                self.conn.execute(
                    update(pending_merge)
                    .where(_PM.id.in_(item_ids), _PM.status == "pending")
                    .values(status=RESOLVED, decidedAt=at, decidedBy=cause[:64], note=note)
                )
                closed += item_ids
        return sorted(closed)

    def reopen_resolved(self, closed_by: str) -> list[int]:
        """Reopen the items a change closed as resolved (``decidedBy`` = its cause) that
        ask their question again now that the change was undone (their groups are apart,
        their scored pair joins them). Returns the reopened ids."""
        items = self.conn.execute(
            select(_PM.id, _PM.leftPrimaryId, _PM.rightPrimaryId, _PM.contactId, _PM.candidateId).where(
                _PM.status == RESOLVED, _PM.decidedBy == closed_by[:64]
            )
        ).all()
        if not items:
            return []
        wanted = {i for r in items for i in (r.leftPrimaryId, r.rightPrimaryId, r.contactId, r.candidateId) if i is not None}
        found = {c.id: c for c in self.contacts(wanted)}
        if any(c.deletedAt is not None for c in found.values()):
            found = {i: c for i, c in found.items() if c.deletedAt is None}
        group = {i: c.linkedId or c.id for i, c in found.items()}
        reopened = [
            r.id for r in items
            if all(i in group for i in (r.leftPrimaryId, r.rightPrimaryId, r.contactId, r.candidateId) if i is not None)
            and settled_reason(group, r) is None
        ]
        if reopened:
            self.conn.execute(
                update(pending_merge).where(_PM.id.in_(reopened)).values(status="pending", decidedAt=None, decidedBy=None, note=None)
            )
        return reopened

    def regroup_holdings(self, destinations: dict[int, int | None]) -> None:
        """Before contacts move to other groups (by primary id), or stop being live
        (``None``: erased), shift what ``identifier_group`` says their values' groups are.
        Every write that re-points or erases a contact outside :meth:`merge_groups` calls it."""
        shift: Counter = Counter()
        for row in self.contacts(destinations):
            group = destinations[row.id]
            for field, value, old in _holdings(row, row.linkedId or row.id):
                shift[field, value, old] -= 1
                if group is not None:
                    shift[field, value, group] += 1
        self._shift_holdings(shift)

    def _shift_holdings(self, shift: Counter) -> None:
        """Apply changes to how many live holders each (field, value, group) has.

        Every write that adds a live contact to a group, moves one between groups or
        takes one out calls this in its own transaction, so ``identifier_group`` always
        says what the contacts say (``reconcile check`` recomputes it). The rows of a
        group change only under its primary's lock (or the SQLite write lock).
        """
        changes = sorted((key, n) for key, n in shift.items() if n)
        if self.dialect == "postgresql":
            if changes:
                fields, values, groups = zip(*(key for key, _ in changes))
                _SHIFT_PG.run(
                    self.conn,
                    {"fields": list(fields), "vals": list(values), "grps": list(groups), "ns": [n for _, n in changes]},
                )
            return
        released = [
            {"b_field": f, "b_value": v, "b_group": g, "n": -n} for (f, v, g), n in sorted(shift.items()) if n < 0
        ]
        if released:  # a row whose last holder leaves goes; the others count down
            _RELEASE_LAST.run_many(self.conn, released)
            _RELEASE.run_many(self.conn, released)
        added = [
            {"field": f, "value": v, "groupId": g, "holders": n} for (f, v, g), n in sorted(shift.items()) if n > 0
        ]
        if added:
            _add_holdings_stmt(self.dialect).run_many(self.conn, added)

    def _audit(self, at: datetime, contact_id: int, action: str, cause: str, **fields: Any) -> None:
        self._audit_many([self._audit_values(at, contact_id, action, cause, **fields)])

    def _audit_many(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            _INSERT_AUDIT.run_many(self.conn, rows)

    @staticmethod
    def _audit_values(
        at: datetime,
        contact_id: int,
        action: str,
        cause: str,
        *,
        old_linked: int | None = None,
        new_linked: int | None = None,
        old_precedence: str | None = None,
        new_precedence: str | None = None,
        detail: dict | None = None,
    ) -> dict[str, Any]:
        return {
            "at": at,
            "contactId": contact_id,
            "action": action,
            "oldLinkedId": old_linked,
            "newLinkedId": new_linked,
            "oldPrecedence": old_precedence,
            "newPrecedence": new_precedence,
            "cause": cause,
            "detail": detail,
        }


__all__ = ["ContactTx", "ContactRow", "StaleGroup", "utcnow", "settled_reason", "RESOLVED", "RESOLVED_MERGED", "RESOLVED_SPLIT"]
