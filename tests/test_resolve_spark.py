"""The same re-resolution on Spark (``local[2]``) as on DuckDB: the model's settings are
rebuilt for Spark's dialect from the same document, and the proposals agree. Needs
``pip install 'reconcile[spark]'`` and Java 17; under CI a missing Spark fails the test
instead of skipping it."""
from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

from reconcile.batch.flow import resolve
from reconcile.batch.model_settings import level_labels, load_document, settings_for
from reconcile.config import DEFAULT_MODEL, Settings
from reconcile.store import Store
from reconcile.store.migrate import upgrade
from test_resolve import build_planted


def _require_spark() -> None:
    missing = [what for what, ok in (("pyspark", importlib.util.find_spec("pyspark")), ("java", shutil.which("java"))) if not ok]
    if missing:
        message = f"Spark needs {' and '.join(missing)}: pip install 'reconcile[spark]' and Java 17"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _proposals(result) -> tuple:
    merges = sorted((m.primary_ids, m.contact_id, m.candidate_id, m.link) for m in result.diff.merges)
    splits = sorted((s.primary_id, s.contact_id, s.bridge_contact_id, s.detached_ids, s.refused_by) for s in result.diff.splits)
    levels = sorted((k, tuple(c["level"] for c in p.comparisons)) for k, p in result.pairs.items())
    return merges, splits, levels, result.diff.unchanged


def test_spark_and_duckdb_give_the_same_proposals(tmp_path):
    _require_spark()
    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade(url)
    build_planted(url)
    store = Store(url)
    try:
        settings = Settings(database_url=url)
        on_duckdb = resolve(store, settings, engine="duckdb")
        on_spark = resolve(store, settings, engine="spark", snapshot_dir=tmp_path / "snapshot")
    finally:
        store.dispose()
    assert _proposals(on_spark) == _proposals(on_duckdb)
    assert on_duckdb.diff.merges and on_duckdb.diff.splits
    for key, pair in on_duckdb.pairs.items():
        assert on_spark.pairs[key].weight == pytest.approx(pair.weight, abs=1e-6)


def test_the_spark_settings_carry_the_documents_parameters():
    document = load_document(DEFAULT_MODEL)
    rebuilt = settings_for(document, "spark", jaro_winkler="duckdb_jaro_winkler").get_settings("spark").as_dict()
    assert "duckdb_jaro_winkler(`email_local_l`, `email_local_r`)" in rebuilt["comparisons"][0]["comparison_levels"][3]["sql_condition"].lower()
    assert '"' not in " ".join(lv["sql_condition"] for c in rebuilt["comparisons"] for lv in c["comparison_levels"])
    for mine, theirs in zip(document["comparisons"], rebuilt["comparisons"]):
        for a, b in zip(mine["comparison_levels"], theirs["comparison_levels"]):
            assert (a.get("m_probability"), a.get("u_probability")) == (b.get("m_probability"), b.get("u_probability"))
            assert a.get("tf_adjustment_column") == b.get("tf_adjustment_column")
    assert rebuilt["probability_two_random_records_match"] == document["probability_two_random_records_match"]
    assert level_labels(document)["phone"][3] == "Exact match on phone"
