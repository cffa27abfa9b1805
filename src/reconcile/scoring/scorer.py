"""Online scoring with exactly Splink's numbers, in microseconds.

Splink's own per-call APIs generate and run SQL on every call (85-115 ms) and a DuckDB
connection cannot be shared by threads. This scorer reads a saved Splink model JSON,
compiles each comparison level's SQL condition into a Python predicate once, and then
evaluates pairs in-process, reproducing Splink's arithmetic:

* gamma: the first level whose condition is TRUE (SQL three-valued logic: a NULL
  condition is not TRUE), else the ELSE level; the null level has gamma -1;
* level weight: ``log2(max(m, 1e-300) / max(u, 1e-300))``, 0 for the null level;
* term-frequency adjustment on a level with ``tf_adjustment_column``: when the value
  of either side has a term frequency, ``w * (log2(u_exact) - log2(max(tf_l, tf_r,
  tf_minimum_u_value)))``, where ``u_exact`` is the u of the comparison's exact-match
  level on that column; 0 otherwise;
* match weight: ``log2(prior / (1 - prior))`` plus every comparison's weight and TF
  adjustment, summed in Splink's order; probability ``1 / (1 + 2^-weight)``.

Jaro-Winkler and friends come from :mod:`reconcile.scoring.similarity`, which follows
DuckDB's arithmetic bit for bit. Term frequencies come from ``<model>.tf.json`` beside
the model (written at training time, the same tables Splink is given); a record may
also carry its own ``tf_<column>`` value, which wins, as it does in Splink.
Any SQL the compiler does not know raises :class:`UnsupportedModel` at load time.
"""
from __future__ import annotations

import hashlib
import json
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from . import similarity

M_U_CLAMP_MIN = 1e-300  # splink.internals.comparison_level.M_U_CLAMP_MIN

Record = Mapping[str, Any]
#: A compiled expression: (left record, right record, per-pair cache) -> value or None
Expr = Callable[[Record, Record, dict], Any]


class UnsupportedModel(ValueError):
    """The model uses SQL or settings the online scorer cannot reproduce exactly."""


# --- SQL -> Python compilation ------------------------------------------------------

_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    exp.EQ: operator.eq,
    exp.NEQ: operator.ne,
    exp.GT: operator.gt,
    exp.GTE: operator.ge,
    exp.LT: operator.lt,
    exp.LTE: operator.le,
}

#: SQL functions (DuckDB names) with an exact Python twin; NULL in -> NULL out.
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "jaro_winkler_similarity": similarity.jaro_winkler_similarity,
    "jaro_similarity": similarity.jaro_similarity,
    "levenshtein": similarity.levenshtein,
}
_FUNCTION_NODES: dict[type, str] = {
    exp.JarowinklerSimilarity: "jaro_winkler_similarity",
    exp.Levenshtein: "levenshtein",
}


def _side(node: exp.Column, sql: str) -> tuple[bool, str]:
    """(True for the left record, the key) of a ``"<column>_l"`` / ``"<column>_r"`` reference."""
    name = node.name
    if node.table or not (name.endswith("_l") or name.endswith("_r")):
        raise UnsupportedModel(f"column {node.sql()!r} is not a <column>_l / <column>_r reference in: {sql}")
    return name.endswith("_l"), name[:-2]


def _column(node: exp.Column, sql: str) -> Expr:
    left, key = _side(node, sql)
    if left:
        return lambda a, b, c: a.get(key)
    return lambda a, b, c: b.get(key)


def _literal(node: exp.Expression) -> tuple[bool, Any]:
    """(True, value) when ``node`` is a non-NULL string or number literal."""
    if isinstance(node, exp.Literal):
        if node.is_string:
            return True, node.this
        text = node.this
        return True, int(text) if text.lstrip("-").isdigit() else float(text)
    return False, None


def _compare(op: Callable[[Any, Any], bool], node: exp.Expression, sql: str) -> Expr:
    """A comparison; the shapes every Splink level uses (two columns, or a value against a
    constant) get one closure instead of three: the levels run for every candidate."""
    if isinstance(node.this, exp.Column) and isinstance(node.expression, exp.Column):
        x_left, x_key = _side(node.this, sql)
        y_left, y_key = _side(node.expression, sql)

        def columns(a: Record, b: Record, c: dict) -> bool | None:
            x = (a if x_left else b).get(x_key)
            if x is None:
                return None
            y = (a if y_left else b).get(y_key)
            if y is None:
                return None
            return op(x, y)

        return columns
    left = _compile(node.this, sql)
    constant, value = _literal(node.expression)
    if constant and isinstance(node.this, exp.Func):
        fn, args, cache_key = _function(node.this, sql)
        if all(isinstance(arg, exp.Column) for arg in args):
            (x_left, x_key), (y_left, y_key) = (_side(arg, sql) for arg in args)

            def similarity_against(a: Record, b: Record, c: dict) -> bool | None:
                # the similarity of two columns against a constant (every Jaro-Winkler
                # level) in one closure: what call_on_columns then against would do
                if cache_key in c:
                    x = c[cache_key]
                else:
                    x = (a if x_left else b).get(x_key)
                    y = (a if y_left else b).get(y_key)
                    x = c[cache_key] = None if x is None or y is None else fn(x, y)
                return None if x is None else op(x, value)

            return similarity_against
    if constant:

        def against(a: Record, b: Record, c: dict) -> bool | None:
            x = left(a, b, c)
            return None if x is None else op(x, value)

        return against
    right = _compile(node.expression, sql)

    def compare(a: Record, b: Record, c: dict) -> bool | None:
        x = left(a, b, c)
        if x is None:
            return None
        y = right(a, b, c)
        if y is None:
            return None
        return op(x, y)

    return compare


def _function(node: exp.Func, sql: str) -> tuple[Callable[..., Any], list[exp.Expression], str]:
    """A supported two-argument SQL function: its Python twin, its arguments, and the key
    its value is cached under for the pair (one evaluation per pair, shared by levels)."""
    if isinstance(node, exp.Anonymous):
        fname = node.name.lower()
        args = list(node.expressions)
    else:
        fname = _FUNCTION_NODES.get(type(node), "")
        args = [node.this, node.expression] if fname else []
    fn = _FUNCTIONS.get(fname)
    if fn is None or len(args) != 2 or any(arg is None for arg in args):
        raise UnsupportedModel(f"SQL function {node.sql(dialect='duckdb')!r} is not supported in: {sql}")
    return fn, args, node.sql(dialect="duckdb")


def _any_null(columns: list[tuple[bool, str]]) -> Expr:
    """``"x_l" IS NULL OR "y_r" IS NULL ...``, the null level of every Splink comparison:
    one closure instead of one per operand and the ``OR`` (``IS NULL`` is never NULL, so
    the ``OR`` is plain). Evaluated first for every comparison of every pair."""
    if len(columns) == 2 and columns[0][0] and not columns[1][0]:
        left_key, right_key = columns[0][1], columns[1][1]
        return lambda a, b, c: a.get(left_key) is None or b.get(right_key) is None

    def any_null(a: Record, b: Record, c: dict) -> bool:
        return any((a if left else b).get(key) is None for left, key in columns)

    return any_null


def _compile(node: exp.Expression, sql: str) -> Expr:
    """Compile one sqlglot node; values follow SQL semantics with None as NULL."""
    if isinstance(node, exp.Paren):
        return _compile(node.this, sql)
    if isinstance(node, exp.Column):
        return _column(node, sql)
    if isinstance(node, exp.Literal):
        value = _literal(node)[1]
        return lambda a, b, c: value
    if isinstance(node, exp.Boolean):
        flag = bool(node.this)
        return lambda a, b, c: flag
    if isinstance(node, exp.Null):
        return lambda a, b, c: None
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        inner = _compile(node.this, sql)
        return lambda a, b, c: -inner(a, b, c)
    if type(node) in _COMPARE:
        return _compare(_COMPARE[type(node)], node, sql)
    if isinstance(node, exp.Is):
        if not isinstance(node.expression, exp.Null):
            raise UnsupportedModel(f"only IS [NOT] NULL is supported, not {node.sql()!r} in: {sql}")
        if isinstance(node.this, exp.Column):
            left, key = _side(node.this, sql)
            if left:
                return lambda a, b, c: a.get(key) is None
            return lambda a, b, c: b.get(key) is None
        inner = _compile(node.this, sql)
        return lambda a, b, c: inner(a, b, c) is None
    if isinstance(node, exp.Not):
        inner = _compile(node.this, sql)

        def negate(a: Record, b: Record, c: dict) -> bool | None:
            x = inner(a, b, c)
            return None if x is None else not x

        return negate
    if isinstance(node, exp.And):
        parts = [_compile(p, sql) for p in node.flatten()]

        def conj(a: Record, b: Record, c: dict) -> bool | None:
            unknown = False
            for part in parts:
                x = part(a, b, c)
                if x is None:
                    unknown = True
                elif not x:
                    return False
            return None if unknown else True

        return conj
    if isinstance(node, exp.Or):
        operands = list(node.flatten())
        if all(isinstance(p, exp.Is) and isinstance(p.this, exp.Column) and isinstance(p.expression, exp.Null) for p in operands):
            return _any_null([_side(p.this, sql) for p in operands])
        parts = [_compile(p, sql) for p in operands]

        def disj(a: Record, b: Record, c: dict) -> bool | None:
            unknown = False
            for part in parts:
                x = part(a, b, c)
                if x is None:
                    unknown = True
                elif x:
                    return True
            return None if unknown else False

        return disj
    if isinstance(node, exp.Func):
        fn, args, cache_key = _function(node, sql)
        if all(isinstance(arg, exp.Column) for arg in args):
            (x_left, x_key), (y_left, y_key) = (_side(arg, sql) for arg in args)

            def call_on_columns(a: Record, b: Record, c: dict) -> Any:
                if cache_key in c:
                    return c[cache_key]
                x = (a if x_left else b).get(x_key)
                y = (a if y_left else b).get(y_key)
                result = None if x is None or y is None else fn(x, y)
                c[cache_key] = result
                return result

            return call_on_columns
        arg_fns = [_compile(arg, sql) for arg in args]

        def call(a: Record, b: Record, c: dict) -> Any:
            if cache_key in c:
                return c[cache_key]
            values = [f(a, b, c) for f in arg_fns]
            result = None if any(v is None for v in values) else fn(*values)
            c[cache_key] = result
            return result

        return call
    raise UnsupportedModel(f"SQL {node.sql(dialect='duckdb')!r} ({type(node).__name__}) is not supported in: {sql}")


def compile_condition(sql: str, dialect: str = "duckdb") -> Expr:
    """Compile a comparison level's SQL condition into a predicate over two records."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError as err:
        raise UnsupportedModel(f"cannot parse level condition {sql!r}: {err}") from None
    return _compile(tree, sql)


def _exact_match_column(sql: str, dialect: str) -> str | None:
    """The column of a ``"x_l" = "x_r"`` level (how Splink finds u for TF), else None."""
    tree = sqlglot.parse_one(sql.lower(), read=dialect)
    if isinstance(tree, exp.EQ) and isinstance(tree.this, exp.Column) and isinstance(tree.expression, exp.Column):
        left, right = tree.this.name, tree.expression.name
        if left[:-2] == right[:-2] and {left[-2:], right[-2:]} == {"_l", "_r"}:
            return left[:-2]
    return None


# --- the model -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _TfAdjustment:
    column: str
    weight: float
    minimum_u: float
    log2_u_exact: float
    table: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class _Level:
    label: str
    gamma: int
    predicate: Expr | None  # None: the ELSE level
    weight: float
    tf: _TfAdjustment | None


@dataclass(frozen=True, slots=True)
class _Comparison:
    name: str
    levels: tuple[_Level, ...]  # in SQL CASE order, null level(s) included
    has_tf: bool


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """One scored pair: Splink's match weight and probability, and the per-comparison evidence.

    ``chosen`` keeps each comparison's level and TF adjustment; :attr:`evidence` is built
    from it when read, since most scored candidates are only ranked, never explained."""

    match_weight: float
    match_probability: float
    chosen: tuple[tuple[str, _Level, float], ...]

    @property
    def evidence(self) -> list[dict[str, Any]]:
        """Each comparison's name, level label, gamma and weight (TF adjustment included)."""
        return [
            {"comparison": name, "level": level.label, "gamma": level.gamma, "weight": level.weight + tf_weight}
            for name, level, tf_weight in self.chosen
        ]


def _probability(weight: float) -> float:
    if weight >= 0:
        return 1.0 / (1.0 + math.pow(2.0, -weight))
    bf = math.pow(2.0, weight)
    return bf / (1.0 + bf)


def _level_weight(level: Mapping[str, Any], where: str) -> float:
    m = level.get("m_probability")
    u = level.get("u_probability")
    if not isinstance(m, (int, float)) or not isinstance(u, (int, float)):
        raise UnsupportedModel(f"{where}: m or u probability missing (untrained model)")
    return math.log2(max(m, M_U_CLAMP_MIN) / max(u, M_U_CLAMP_MIN))


class Scorer:
    """A compiled model. Immutable after load, so one instance serves many threads."""

    def __init__(self, settings: Mapping[str, Any], tf_tables: Mapping[str, Mapping[str, float]], version: str):
        similarity.check_duckdb_build()
        dialect = settings.get("sql_dialect", "duckdb")
        if dialect != "duckdb":
            raise UnsupportedModel(f"model SQL dialect {dialect!r}: only duckdb models are scored online")
        prior = settings["probability_two_random_records_match"]
        self.version = version
        self.prior_weight = math.log2(prior / (1 - prior))
        self.comparisons = tuple(self._comparison(c, tf_tables, dialect) for c in settings["comparisons"])
        self.columns = tuple(
            sorted({col for cmp in settings["comparisons"] for col in _columns_of(cmp, dialect)})
        )

    @staticmethod
    def _comparison(
        spec: Mapping[str, Any], tf_tables: Mapping[str, Mapping[str, float]], dialect: str
    ) -> _Comparison:
        name = spec["output_column_name"]
        raw_levels = spec["comparison_levels"]
        non_null = [lv for lv in raw_levels if not lv.get("is_null_level")]
        if not non_null or non_null[-1]["sql_condition"].strip().upper() != "ELSE":
            raise UnsupportedModel(f"comparison {name!r}: the last level must be ELSE")
        levels: list[_Level] = []
        gamma = len(non_null)
        for level in raw_levels:
            sql = level["sql_condition"]
            label = level.get("label_for_charts") or sql
            where = f"comparison {name!r} level {label!r}"
            is_else = sql.strip().upper() == "ELSE"
            predicate = None if is_else else compile_condition(sql, dialect)
            if level.get("is_null_level"):
                levels.append(_Level(label, -1, predicate, 0.0, None))
                continue
            # Splink numbers non-null levels from n-1 (the first) down to 0 (ELSE)
            gamma -= 1
            levels.append(
                _Level(label, gamma, predicate, _level_weight(level, where), _tf_spec(level, non_null, tf_tables, where, dialect))
            )
            if is_else:
                break  # levels after ELSE can never be reached
        has_tf = any(lv.get("tf_adjustment_column") for lv in raw_levels)
        return _Comparison(name, tuple(levels), has_tf)

    @classmethod
    def load(cls, path: str | Path) -> "Scorer":
        """Read ``<name>.json`` (Splink's saved model) and ``<name>.tf.json`` beside it."""
        path = Path(path)
        raw = path.read_bytes()
        settings = json.loads(raw)
        tf_path = tf_path_for(path)
        tf_raw = tf_path.read_bytes() if tf_path.exists() else b"{}"
        tf_tables = json.loads(tf_raw)
        digest = hashlib.sha256(raw + b"\0" + tf_raw).hexdigest()[:10]
        return cls(settings, tf_tables, f"{path.stem}-{digest}")

    def _tf_adjustment(self, tf: _TfAdjustment, a: Record, b: Record) -> float:
        key = "tf_" + tf.column
        tf_l = a.get(key)
        if tf_l is None:
            value = a.get(tf.column)
            tf_l = None if value is None else tf.table.get(value)
        tf_r = b.get(key)
        if tf_r is None:
            value = b.get(tf.column)
            tf_r = None if value is None else tf.table.get(value)
        if tf_l is None and tf_r is None:
            return 0.0
        u_value = max(v for v in (tf_l, tf_r, tf.minimum_u) if v is not None)
        return tf.weight * (tf.log2_u_exact - math.log2(u_value))

    def score(self, record_a: Record, record_b: Record) -> ScoreResult:
        """Score one pair of :func:`reconcile.scoring.features.features` records."""
        cache: dict = {}
        total = self.prior_weight
        chosen = []
        for comparison in self.comparisons:
            for level in comparison.levels:
                if level.predicate is None or level.predicate(record_a, record_b, cache):
                    break
            tf_weight = self._tf_adjustment(level.tf, record_a, record_b) if level.tf else 0.0
            # Splink sums mw_<comparison> then mw_tf_<comparison>, comparison by comparison
            total += level.weight
            if comparison.has_tf:
                total += tf_weight
            chosen.append((comparison.name, level, tf_weight))
        return ScoreResult(total, _probability(total), tuple(chosen))

    def score_many(self, record: Record, candidates: Sequence[Record]) -> list[ScoreResult]:
        """Score one record against each candidate (same numbers as :meth:`score`)."""
        return [self.score(record, candidate) for candidate in candidates]


def _tf_spec(
    level: Mapping[str, Any],
    non_null: Sequence[Mapping[str, Any]],
    tf_tables: Mapping[str, Mapping[str, float]],
    where: str,
    dialect: str,
) -> _TfAdjustment | None:
    """The TF adjustment of one level as Splink computes it, or None when it has none."""
    tf_col = level.get("tf_adjustment_column")
    tf_weight = float(level.get("tf_adjustment_weight", 1.0))
    if not tf_col or tf_weight == 0 or level["sql_condition"].strip().upper() == "ELSE":
        return None
    if tf_col not in tf_tables:
        raise UnsupportedModel(f"{where}: no term-frequency table for {tf_col!r} beside the model")
    if level.get("disable_tf_exact_match_detection"):
        u_exact = level.get("u_probability")
    else:
        exact = [
            lv
            for lv in non_null
            if lv["sql_condition"].strip().upper() != "ELSE"
            and _exact_match_column(lv["sql_condition"], dialect) == tf_col.lower()
        ]
        if not exact:
            raise UnsupportedModel(f"{where}: no exact-match level on {tf_col!r} for its TF adjustment")
        u_exact = exact[0].get("u_probability")
    if not isinstance(u_exact, (int, float)):
        raise UnsupportedModel(f"{where}: the u of the exact level for TF is missing")
    return _TfAdjustment(
        column=tf_col,
        weight=tf_weight,
        minimum_u=float(level.get("tf_minimum_u_value", 0.0)),
        log2_u_exact=math.log2(u_exact),
        table=tf_tables[tf_col],
    )


def tf_path_for(model_path: str | Path) -> Path:
    """Where a model's term-frequency tables live: ``models/x.json`` -> ``models/x.tf.json``."""
    path = Path(model_path)
    return path.with_name(path.stem + ".tf.json")


def _columns_of(comparison: Mapping[str, Any], dialect: str) -> set[str]:
    cols: set[str] = set()
    for level in comparison["comparison_levels"]:
        sql = level["sql_condition"]
        if sql.strip().upper() == "ELSE":
            continue
        for column in sqlglot.parse_one(sql, read=dialect).find_all(exp.Column):
            cols.add(column.name[:-2])
    return cols
