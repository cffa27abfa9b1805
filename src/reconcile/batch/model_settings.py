"""The active model's Splink settings for the engine at hand, rebuilt from one model
document.

A model document (``models/*.json``, what the online scorer and training read) is
Splink settings in DuckDB's SQL dialect. DuckDB runs it as it is. Spark cannot: its SQL
reads DuckDB's double-quoted identifiers as string literals, and calls Jaro-Winkler by
another name (``jaro_winkler``, registered from Splink's bundled jar). So for any other
dialect every comparison level and blocking rule is rebuilt with Splink's own creators
(``CustomLevel``, ``ElseLevel``, ``CustomRule``) from the document's SQL, translated by
sqlglot, and the trained parameters (m, u, term-frequency settings, the prior) are
copied across unchanged: the same model, in the engine's words.

The document's blocking rules are the online engine's keys; over a whole table the batch
blocks on them with a frequent-value cut-off (:func:`blocking_keys`), so the number of
pairs it scores stays bounded whatever the data holds.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl
import sqlglot
from splink import SettingsCreator
from splink.blocking_rule_library import CustomRule
from splink.internals.dialects import SplinkDialect
from sqlglot import expressions as exp

#: the model document's own dialect
DOCUMENT_DIALECT = "duckdb"
#: level attributes that carry the trained model, copied to the rebuilt level
_PARAMETERS = (
    "m_probability",
    "u_probability",
    "fix_m_probability",
    "fix_u_probability",
    "tf_adjustment_column",
    "tf_adjustment_weight",
    "tf_minimum_u_value",
)


#: the second key a frequent value blocks with, beside the document's own keys: contacts
#: sharing a common name (or a common phone tail) and a mail provider
SECOND_KEYS = ("email_domain",)


@dataclass(frozen=True)
class BlockingKey:
    """A batch blocking key: contacts pair when they hold the same values of all of
    ``columns`` and no more than the cut-off of contacts hold that combination (the
    snapshot's ``column`` is the combination where it blocks, else empty)."""

    columns: tuple[str, ...]

    @property
    def column(self) -> str:
        return "block__" + "__".join(self.columns)

    @property
    def rule(self) -> str:
        return f'l."{self.column}" = r."{self.column}"'


def blocking_keys(document: dict[str, Any]) -> list[BlockingKey]:
    """The batch's keys from the document's blocking rules: each single-column equality
    rule on its own, then every pair of them from two different identifiers, then each
    with a :data:`SECOND_KEYS` column of another identifier. Under a cut-off a frequent
    value (8,134 distinct full names over ~700k named contacts on the bench seed) does not
    pair all its holders (133M pairs at 1M contacts), but its holders still meet through a
    rarer combination (name and phone tail, name and mail provider): Splink's advice for
    rules that yield too many comparisons, applied per value instead of per rule. Two keys
    of one identifier add nothing (a mailbox holds its local part, a national number its
    tail); the model's columns are named after their identifier (``email_…``,
    ``phone_…``, ``name_…``)."""
    singles = [column for column in map(_equality_column, document["blocking_rules_to_generate_predictions"]) if column]
    pairs = [(a, b) for a, b in combinations(singles, 2) if _identifier(a) != _identifier(b)]
    pairs += [(c, second) for c in singles for second in SECOND_KEYS if _identifier(c) != _identifier(second)]
    return [BlockingKey((c,)) for c in singles] + [BlockingKey(p) for p in pairs]


def _identifier(column: str) -> str:
    return column.split("_", 1)[0]


def other_rules(document: dict[str, Any]) -> list[str]:
    """The document's blocking rules that are not a single-column equality: the batch
    keeps them as written (no cut-off applies to an arbitrary condition)."""
    return [r["blocking_rule"] for r in document["blocking_rules_to_generate_predictions"] if not _equality_column(r)]


def _equality_column(rule: dict[str, Any]) -> str | None:
    """``x`` when the rule is ``l.x = r.x`` (in the document's dialect), else None."""
    tree = sqlglot.parse_one(rule["blocking_rule"], read=DOCUMENT_DIALECT)
    if not isinstance(tree, exp.EQ) or not all(isinstance(side, exp.Column) for side in (tree.this, tree.expression)):
        return None
    left, right = tree.this, tree.expression
    if {left.table, right.table} != {"l", "r"} or left.name != right.name:
        return None
    return left.name


def load_document(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def level_labels(document: dict[str, Any]) -> dict[str, dict[int, str]]:
    """comparison -> gamma value -> the level's label, as Splink numbers levels (the null
    level -1, then the others from the most similar, n-1, down to the else level, 0)."""
    labels: dict[str, dict[int, str]] = {}
    for comparison in document["comparisons"]:
        levels = comparison["comparison_levels"]
        counted = [lv for lv in levels if not lv.get("is_null_level")]
        by_gamma = {len(counted) - 1 - i: lv.get("label_for_charts", lv["sql_condition"]) for i, lv in enumerate(counted)}
        by_gamma[-1] = "null"
        labels[comparison["output_column_name"]] = by_gamma
    return labels


def translate(sql: str, dialect: str, jaro_winkler: str | None = None) -> str:
    """A DuckDB condition of the document in ``dialect``'s SQL, Jaro-Winkler called
    ``jaro_winkler`` (default: the dialect's own function, per Splink)."""
    target = SplinkDialect.from_string(dialect)
    name = jaro_winkler or target.jaro_winkler_function_name
    tree = sqlglot.parse_one(sql, read=DOCUMENT_DIALECT)

    def rename(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.JarowinklerSimilarity):
            return exp.Anonymous(this=name, expressions=[node.this, node.expression])
        if isinstance(node, exp.Anonymous) and node.name.lower() == "jaro_winkler_similarity":
            return exp.Anonymous(this=name, expressions=node.expressions)
        return node

    return tree.transform(rename).sql(dialect=target.sqlglot_dialect)


def settings_for(
    document: dict[str, Any],
    dialect: str,
    *,
    evidence: bool = False,
    jaro_winkler: str | None = None,
    keys: list[BlockingKey] | None = None,
) -> dict[str, Any] | SettingsCreator:
    """Splink settings of ``document`` for ``dialect``. With ``evidence``, every scored
    pair keeps each comparison's level and weight (the report's evidence; Splink keeps the
    ``gamma_`` columns only with the matching columns); without, only ids and weights,
    which is what scoring every blocked pair of a large table can afford. ``jaro_winkler``
    names the engine's function computing DuckDB's Jaro-Winkler (Splink's Spark jar rounds
    differently, so the Spark adapter registers DuckDB's arithmetic under its own name).
    With ``keys``, the pairs are blocked on those snapshot columns (and the document's
    other rules) instead of the document's rules."""
    if keys is not None:
        rules = [k.rule for k in keys] + other_rules(document)
        document = {**document, "blocking_rules_to_generate_predictions": [{"blocking_rule": r, "sql_dialect": DOCUMENT_DIALECT} for r in rules]}
    if dialect == DOCUMENT_DIALECT:
        settings = copy.deepcopy(document)
        settings["additional_columns_to_retain"] = []
        settings["retain_intermediate_calculation_columns"] = evidence
        settings["retain_matching_columns"] = evidence
        return settings
    return SettingsCreator(
        link_type=document["link_type"],
        unique_id_column_name=document["unique_id_column_name"],
        probability_two_random_records_match=document["probability_two_random_records_match"],
        comparisons=[_comparison(c, dialect, jaro_winkler) for c in document["comparisons"]],
        blocking_rules_to_generate_predictions=[
            CustomRule(translate(rule["blocking_rule"], dialect, jaro_winkler), sql_dialect=dialect)
            for rule in document["blocking_rules_to_generate_predictions"]
        ],
        retain_matching_columns=evidence,
        retain_intermediate_calculation_columns=evidence,
    )


def _comparison(comparison: dict[str, Any], dialect: str, jaro_winkler: str | None) -> cl.CustomComparison:
    levels = []
    for level in comparison["comparison_levels"]:
        parameters = {k: level[k] for k in _PARAMETERS if k in level}
        label = level.get("label_for_charts")
        if level["sql_condition"].strip().upper() == "ELSE":
            creator = cll.ElseLevel()
        else:
            creator = cll.CustomLevel(translate(level["sql_condition"], dialect, jaro_winkler), label_for_charts=label)
        if level.get("is_null_level"):
            parameters["is_null_level"] = True
        levels.append(creator.configure(**parameters))
    return cl.CustomComparison(
        output_column_name=comparison["output_column_name"],
        comparison_levels=levels,
        comparison_description=comparison.get("comparison_description", comparison["output_column_name"]),
    )
