"""m per comparison level, from the confirmed labels (Splink's pairwise-label
estimation), from EM over the contact table, or a weighted mix of both (see the
recipe in :mod:`reconcile.training.retrain`)."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Iterator

import pyarrow as pa

from ..review.labels import LabelPair
from ..scoring import model_spec
from ..scoring.scorer import compile_condition
from . import train as base_train

EM_PSEUDO_PAIRS = 50


def _levels(settings: dict) -> Iterator[tuple[int, int, dict]]:
    for ci, comparison in enumerate(settings["comparisons"]):
        for li, level in enumerate(comparison["comparison_levels"]):
            if not level.get("is_null_level"):
                yield ci, li, level


def m_from_labels(
    con: Any, settings: dict, tf_tables: dict, confirmed: Sequence[LabelPair]
) -> tuple[dict[tuple[int, int], float], list[int]]:
    """Splink's ``estimate_m_from_pairwise_labels`` over the confirmed pairs' records;
    also, per comparison, how many pairs had it non-null."""
    from splink import DuckDBAPI, Linker

    records = []
    for p in confirmed:
        for side in (p.left, p.right):
            records.append({"unique_id": len(records), "person": None, **side.features()})
    schema = pa.schema([("unique_id", pa.int64()), ("person", pa.string())] + [(c, pa.string()) for c in base_train.COLUMNS])
    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register(pa.Table.from_pylist(records, schema=schema))
    linker = Linker(sdf, settings, log_level=logging.WARNING)
    base_train.register_tf_tables(linker, db_api, tf_tables)
    pairs_table = pa.table(
        {
            "unique_id_l": pa.array(range(0, len(records), 2), pa.int64()),
            "unique_id_r": pa.array(range(1, len(records), 2), pa.int64()),
        }
    )
    labels_sdf = db_api.register(pairs_table)
    linker.training.estimate_m_from_pairwise_labels(labels_sdf)
    trained = linker._settings_obj.as_dict()
    m = {(ci, li): level["m_probability"] for ci, li, level in _levels(trained) if "m_probability" in level}
    non_null = []
    for comparison in settings["comparisons"]:
        nulls = [compile_condition(lv["sql_condition"]) for lv in comparison["comparison_levels"] if lv.get("is_null_level")]
        count = 0
        for k in range(0, len(records), 2):
            a, b = records[k], records[k + 1]
            if not any(cond(a, b, {}) for cond in nulls):
                count += 1
        non_null.append(count)
    return m, non_null


def m_from_em(con: Any, settings: dict, rows: list, tf_tables: dict) -> dict[tuple[int, int], float]:
    """EM (u fixed) over the contact table, as :func:`reconcile.training.train.train` does."""
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register(base_train.feature_table(rows))
    linker = Linker(sdf, settings, log_level=logging.WARNING)
    base_train.register_tf_tables(linker, db_api, tf_tables)
    for rule in model_spec.em_blocking_rules():
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    trained = linker._settings_obj.as_dict()
    return {(ci, li): level["m_probability"] for ci, li, level in _levels(trained) if "m_probability" in level}


def combine_m(
    settings: dict,
    m_em: dict[tuple[int, int], float] | None,
    m_labels: dict[tuple[int, int], float] | None,
    non_null: Sequence[int] | None,
    pseudo_pairs: float = EM_PSEUDO_PAIRS,
) -> dict[str, Any]:
    """Write each level's m into ``settings`` (see the module doc); returns per-level sources."""
    detail = []
    for ci, comparison in enumerate(settings["comparisons"]):
        levels = [(li, lv) for li, lv in enumerate(comparison["comparison_levels"]) if not lv.get("is_null_level")]
        n = non_null[ci] if (m_labels is not None and non_null is not None) else 0
        values = {}
        for li, _ in levels:
            em = m_em.get((ci, li)) if m_em is not None else None
            lab = m_labels.get((ci, li), 0.0) if m_labels is not None else None
            if m_em is None:
                values[li] = lab if lab else None
            elif m_labels is None or n == 0:
                values[li] = em
            else:
                values[li] = (n * lab + pseudo_pairs * (em or 0.0)) / (n + pseudo_pairs)
        total = sum(v for v in values.values() if v)
        for li, level in levels:
            v = values[li]
            if v:
                level["m_probability"] = v / total if total else v
            level["fix_m_probability"] = False
            detail.append(
                {
                    "comparison": comparison["output_column_name"],
                    "level": level.get("label_for_charts"),
                    "m_em": m_em.get((ci, li)) if m_em is not None else None,
                    "m_labels": m_labels.get((ci, li), 0.0) if m_labels is not None else None,
                    "labelled_pairs": n,
                    "m": level.get("m_probability"),
                }
            )
    return {"levels": detail, "em_pseudo_pairs": pseudo_pairs}

