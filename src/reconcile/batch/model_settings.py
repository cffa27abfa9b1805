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
"""
from __future__ import annotations

import copy
import json
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
    document: dict[str, Any], dialect: str, *, evidence: bool = False, jaro_winkler: str | None = None
) -> dict[str, Any] | SettingsCreator:
    """Splink settings of ``document`` for ``dialect``. With ``evidence``, every scored
    pair keeps each comparison's level and weight (the report's evidence; Splink keeps the
    ``gamma_`` columns only with the matching columns); without, only ids and weights,
    which is what scoring every blocked pair of a large table can afford. ``jaro_winkler``
    names the engine's function computing DuckDB's Jaro-Winkler (Splink's Spark jar rounds
    differently, so the Spark adapter registers DuckDB's arithmetic under its own name)."""
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
