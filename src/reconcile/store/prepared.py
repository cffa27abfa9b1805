"""The hot statements, compiled once per dialect and run on the DB-API cursor.

SQLAlchemy's ``Connection.execute`` costs tens of microseconds per statement on top of
the driver (parameter construction, execution context, result metadata, events): on
``/identify``, which runs four to ten short indexed statements, that was a quarter of a
worker's time (bench/README.md, ``web_profile``). A :class:`Prepared` statement is still
a SQLAlchemy Core statement, written and read like every other in the store; it is
compiled once per (dialect, size of each ``IN`` list), its parameters converted with the
column types' own bind processors and its rows with their result processors, and it
runs on the connection's driver inside the transaction SQLAlchemy opened. A driver
error is raised as SQLAlchemy raises it (:class:`sqlalchemy.exc.DBAPIError` and its
subclasses, the connection invalidated on a disconnect), so the store's retries and
the web layer's 503s see no difference.

PostgreSQL's driver (psycopg 3) prepares a statement on the server once it has run a
few times on a connection; a fixed SQL text per statement is what lets it.
"""
from __future__ import annotations

import functools
import operator
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

_POSTCOMPILE = "__[POSTCOMPILE_{}]"


class StoredRow(tuple):
    """A result row: a tuple whose columns are also attributes, like SQLAlchemy's ``Row``
    (``row.id``, ``row[0]``, ``row._mapping``); one subclass per column list."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(zip(self._fields, self))

    def _asdict(self) -> dict[str, Any]:
        return self._mapping


@functools.cache
def _row_class(fields: tuple[str, ...]) -> type[StoredRow]:
    base = namedtuple("_Row", fields, rename=True)  # attribute access at C speed
    return type("StoredRow", (base, StoredRow), {"__slots__": (), "_fields": fields})


@dataclass
class _Plan:
    sql: str
    #: positional drivers: each parameter's name in order; named (pyformat) drivers: None
    order: tuple[str, ...] | None
    #: values of the statement's own constants (literals, LIMITs) by parameter name
    defaults: Mapping[str, Any]
    #: (name, bind processor) of the parameters whose type converts them
    binders: tuple[tuple[str, Callable[[Any], Any]], ...]
    #: the names of ``IN`` lists, expanded to ``name_1 ... name_n`` in ``sql``
    expanded: tuple[str, ...]
    row: type[StoredRow] | None
    #: the returned columns' types
    types: tuple[Any, ...]
    #: (column index, result processor) of the columns whose type converts them, from the
    #: driver's column types at the first execution (PostgreSQL's numeric processors need them)
    readers: tuple[tuple[int, Callable[[Any], Any]], ...] | None = None

    def __post_init__(self) -> None:
        #: the positional parameters in order, from the filled-in values (always a tuple)
        self.take: Callable[[Mapping[str, Any]], tuple] | None = None
        if self.order is not None:
            self.take = _taker(self.order)
        #: whether the caller's parameters go to the driver as they are (after ``take``)
        self.as_given = not (self.defaults or self.binders or self.expanded)
        #: a row of the driver's values, made without checking its length (it is the plan's)
        self.make = functools.partial(tuple.__new__, self.row) if self.row is not None else None


class Prepared:
    """A Core statement run on the DB-API cursor (see the module's docstring).

    ``columns``: for an ``INSERT``, the columns every execution binds (the statement is
    compiled for exactly those). An ``IN`` list parameter (``bindparam(..., expanding=True)``)
    gets one compiled form per list length; an empty list runs through SQLAlchemy.
    """

    def __init__(self, statement: ClauseElement, columns: Sequence[str] | None = None):
        self.statement = statement
        self.columns = list(columns) if columns is not None else None
        self._plans: dict[tuple, _Plan] = {}
        #: by dialect, the one plan of a statement without ``IN`` lists: found without
        #: looking at the parameters
        self._flat: dict[str, _Plan] = {}

    # --- running ------------------------------------------------------------------

    def rows(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[StoredRow]:
        """Run and return every row."""
        params = params or {}
        plan = self._plan_for(conn, params)
        if plan is None:
            return [_from_sqlalchemy(r) for r in conn.execute(self.statement, dict(params))]
        cursor = _execute(conn, plan.sql, plan_params(plan, params))
        try:
            if plan.readers is None:
                plan.readers = _readers(conn, plan, cursor.description)
            fetched = cursor.fetchall()
        finally:
            cursor.close()
        if not plan.readers:
            return list(map(plan.make, fetched))  # type: ignore[arg-type]
        return [_read(plan, r) for r in fetched]

    def one(self, conn: Connection, params: Mapping[str, Any]) -> StoredRow:
        """Run and return the one row it must return."""
        (row,) = self.rows(conn, params)
        return row

    def run(self, conn: Connection, params: Mapping[str, Any]) -> None:
        """Run a statement that returns no rows."""
        plan = self._plan_for(conn, params)
        if plan is None:
            conn.execute(self.statement, dict(params))
            return
        _execute(conn, plan.sql, plan_params(plan, params)).close()

    def run_many(self, conn: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        """Run a statement that returns no rows once per parameter set (``executemany``)."""
        batch = list(rows)
        if not batch:
            return
        plan = self._plan_for(conn, batch[0])
        if plan is None or plan.expanded:
            conn.execute(self.statement, [dict(r) for r in batch])
            return
        _execute(conn, plan.sql, [plan_params(plan, r) for r in batch], many=True).close()

    # --- compiling ----------------------------------------------------------------

    def _plan_for(self, conn: Connection, params: Mapping[str, Any]) -> _Plan | None:
        dialect = conn.dialect.name
        plan = self._flat.get(dialect)
        if plan is not None:
            return plan
        sizes = tuple(
            (name, len(value)) for name, value in params.items() if isinstance(value, (list, tuple))
        )
        if any(n == 0 for _, n in sizes):
            return None
        key = (dialect, sizes)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._compile(conn, dict(sizes))
            if not plan.expanded:
                self._flat[dialect] = plan
        return plan

    def _compile(self, conn: Connection, sizes: dict[str, int]) -> _Plan:
        dialect = conn.dialect
        compiled = self.statement.compile(dialect=dialect, column_keys=self.columns)
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        sql = compiled.string
        expanded = tuple(name for name, bind in binds.items() if bind.expanding)
        unknown = [name for name in binds if _POSTCOMPILE.format(name) in sql and name not in expanded]
        if unknown or set(expanded) - set(sizes):
            raise ValueError(f"cannot prepare parameters {unknown or expanded}: run this statement through SQLAlchemy")
        order: tuple[str, ...] | None = None
        if dialect.positional:
            names = list(compiled.positiontup)
            order = tuple(
                item for name in names for item in (_items(name, sizes[name]) if name in expanded else [name])
            )
            marker = "?"
            for name in expanded:
                sql = sql.replace(_POSTCOMPILE.format(name), ", ".join([marker] * sizes[name]))
        else:
            for name in expanded:
                sql = sql.replace(
                    _POSTCOMPILE.format(name), ", ".join(f"%({item})s" for item in _items(name, sizes[name]))
                )
        defaults = {name: bind.effective_value for name, bind in binds.items() if not bind.required and not bind.expanding}
        binders = []
        for name, bind in binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is None:
                continue
            for item in _items(name, sizes[name]) if name in expanded else [name]:
                binders.append((item, processor))
        columns = _returned_columns(self.statement)
        row = _row_class(tuple(c.key for c in columns)) if columns else None
        types = tuple(c.type.dialect_impl(dialect) for c in columns)
        return _Plan(sql, order, defaults, tuple(binders), expanded, row, types)


def run_script(conn: Connection, sql: str) -> None:
    """Run ``sql``, which takes no parameters and may hold several statements, in one
    round trip on the driver (PostgreSQL's simple query protocol: never prepared)."""
    _execute(conn, sql, None, script=True).close()


def _execute(conn: Connection, sql: str, params: Any, *, many: bool = False, script: bool = False):
    """Run ``sql`` on a fresh cursor of the connection's driver (``executemany`` when
    ``many``; a parameterless ``script`` never prepared) and return the cursor; a driver
    error is raised as SQLAlchemy raises it, the connection invalidated on a disconnect."""
    fairy = conn.connection  # the pooled DB-API connection, inside SQLAlchemy's transaction
    cursor = fairy.driver_connection.cursor()
    try:
        if many:
            cursor.executemany(sql, params)
        elif script:
            cursor.execute(sql, prepare=False)
        else:
            cursor.execute(sql, params)
    except conn.dialect.loaded_dbapi.Error as exc:
        cursor.close()
        invalidated = conn.dialect.is_disconnect(exc, fairy, cursor)
        if invalidated:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            sql, params if params is not None else (), exc, conn.dialect.loaded_dbapi.Error,
            connection_invalidated=invalidated,
        ) from exc
    return cursor


@functools.lru_cache(maxsize=4096)
def _items(name: str, n: int) -> tuple[str, ...]:
    """The parameter names an ``IN`` list of ``n`` values is expanded to."""
    return tuple(f"{name}_{i}" for i in range(1, n + 1))


def _returned_columns(statement) -> list:
    """The columns a statement returns (a SELECT's, an INSERT's ``RETURNING``), or none."""
    returning = getattr(statement, "_returning", None)
    if returning:
        return list(returning)
    return list(getattr(statement, "selected_columns", ()))


def plan_params(plan: _Plan, params: Mapping[str, Any]) -> Any:
    """The driver's parameters: constants filled in, lists expanded, types converted."""
    if plan.as_given:
        values = params
    else:
        values = {**plan.defaults, **params}
        for name in plan.expanded:
            values.update(zip(_items(name, len(values[name])), values.pop(name)))
        for name, processor in plan.binders:
            values[name] = processor(values[name])
    if plan.take is None:
        return values
    return plan.take(values)


def _taker(order: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple]:
    """A function of the values returning those named by ``order``, in order, as a tuple."""
    if len(order) > 1:
        return operator.itemgetter(*order)
    if order:
        (name,) = order
        return lambda values: (values[name],)
    return lambda values: ()


def _readers(conn: Connection, plan: _Plan, description) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    readers = []
    for i, (type_, column) in enumerate(zip(plan.types, description)):
        processor = type_.result_processor(conn.dialect, column[1])
        if processor is not None:
            readers.append((i, processor))
    return tuple(readers)


def _read(plan: _Plan, raw: Sequence[Any]) -> StoredRow:
    values = list(raw)
    for i, processor in plan.readers:  # type: ignore[union-attr]
        values[i] = processor(values[i])
    return plan.make(values)  # type: ignore[misc]


def _from_sqlalchemy(row) -> StoredRow:
    return _row_class(tuple(row._fields))._make(row)
