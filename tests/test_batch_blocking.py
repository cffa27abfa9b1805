"""The batch blocks with a frequent-value cut-off: a key value held by more contacts than
the cap pairs nobody on its own, its holders meet only through a rarer combination with
another identifier's key, and every pair sharing a value at or under the cap is still
blocked. The pairs blocked stay within ``contacts x cap`` per key whatever the data."""
from __future__ import annotations

from itertools import combinations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from reconcile.batch.model_settings import (
    BlockingKey,
    blocking_keys,
    load_document,
    other_rules,
    settings_for,
)
from reconcile.batch.snapshot import SCHEMA, blocking_columns
from reconcile.config import DEFAULT_MODEL, Settings

KEYS = [BlockingKey(("phone_tail",)), BlockingKey(("name_key",)), BlockingKey(("phone_tail", "name_key")), BlockingKey(("name_key", "email_domain"))]


def _table(rows: list[dict]) -> pa.Table:
    columns = {name: [r.get(name) for r in rows] for name in SCHEMA.names} | {"unique_id": list(range(len(rows)))}
    return pa.table(columns, schema=SCHEMA)


def _blocked(table: pa.Table, keys: list[BlockingKey], cap: int) -> set[tuple[int, int]]:
    pairs = set()
    for column in blocking_columns(table, keys, cap).values():
        holders: dict[str, list[int]] = {}
        for n, value in enumerate(column.to_pylist()):
            if value is not None:
                holders.setdefault(value, []).append(n)
        for held in holders.values():
            pairs.update(combinations(held, 2))
    return pairs


def test_the_keys_come_from_the_documents_rules_and_pair_across_identifiers():
    keys = blocking_keys(load_document(DEFAULT_MODEL))
    columns = [k.columns for k in keys]
    assert columns[:5] == [("email_mailbox",), ("email_local",), ("phone_national",), ("phone_tail",), ("name_key",)]
    assert ("phone_tail", "name_key") in columns and ("name_key", "email_domain") in columns
    assert ("email_mailbox", "email_local") not in columns and ("phone_national", "phone_tail") not in columns
    assert other_rules(load_document(DEFAULT_MODEL)) == []


def test_a_custom_rule_is_kept_as_written():
    document = load_document(DEFAULT_MODEL)
    custom = 'l."name_first" = r."name_first" and l."email_domain" = r."email_domain"'
    document["blocking_rules_to_generate_predictions"] = [{"blocking_rule": custom, "sql_dialect": "duckdb"}]
    assert blocking_keys(document) == [] and other_rules(document) == [custom]
    rules = settings_for(document, "duckdb", keys=blocking_keys(document))["blocking_rules_to_generate_predictions"]
    assert [r["blocking_rule"] for r in rules] == [custom]


def test_the_spark_settings_block_on_the_same_columns():
    document = load_document(DEFAULT_MODEL)
    keys = blocking_keys(document)
    spark = settings_for(document, "spark", keys=keys).get_settings("spark").as_dict()
    assert [r["blocking_rule"] for r in spark["blocking_rules_to_generate_predictions"]] == [
        f"l.`{k.column}` = r.`{k.column}`" for k in keys
    ]


def test_a_common_name_pairs_only_with_a_second_key():
    rows = [{"name_key": "john smith", "phone_tail": f"{n:07d}", "email_domain": "gmail.com" if n < 3 else f"d{n}.com"} for n in range(6)]
    rows.append({"name_key": "john smith", "phone_tail": "0000005"})  # shares name and tail with row 5
    rows.append({"name_key": "ann lee", "phone_tail": "7777777"})
    rows.append({"name_key": "ann lee"})
    blocked = _blocked(_table(rows), KEYS, cap=4)
    # seven john smiths: the name alone pairs none; name + provider pairs the three at gmail, name + tail rows 5 and 6
    assert blocked == {(0, 1), (0, 2), (1, 2), (5, 6), (7, 8)}


@settings(max_examples=120, deadline=None)
@given(
    rows=st.lists(
        st.fixed_dictionaries({
            "name_key": st.sampled_from(["john smith", "mary jones", "ann lee", None]),
            "phone_tail": st.sampled_from(["1111111", "2222222", "3333333", None]),
            "email_domain": st.sampled_from(["gmail.com", "yahoo.com", None]),
        }),
        max_size=30,
    ),
    cap=st.integers(1, 8),
)
def test_blocking_finds_every_pair_on_a_value_under_the_cap_and_stays_bounded(rows, cap):
    table = _table(rows)
    blocked = _blocked(table, KEYS, cap)
    for column in ("name_key", "phone_tail"):
        values = [r[column] for r in rows]
        for i, j in combinations(range(len(rows)), 2):
            if values[i] is not None and values[i] == values[j] and values.count(values[i]) <= cap:
                assert (i, j) in blocked
    # every blocked pair shares a key's values, and no key pairs more than cap - 1 others per contact
    for i, j in blocked:
        assert any(all(rows[i][c] is not None and rows[i][c] == rows[j][c] for c in k.columns) for k in KEYS)
    for column in blocking_columns(table, KEYS, cap).values():
        values = [v for v in column.to_pylist() if v is not None]
        assert all(values.count(v) <= cap for v in values)


def test_the_cut_off_is_a_setting(monkeypatch):
    monkeypatch.setenv("RECONCILE_BATCH_BLOCK_CAP", "7")
    assert Settings.from_env().batch_block_cap == 7
    assert Settings().batch_block_cap == 100


def test_the_local_spark_driver_memory_is_a_setting(monkeypatch):
    monkeypatch.setenv("RECONCILE_SPARK_DRIVER_MEMORY", "3g")
    assert Settings.from_env().spark_driver_memory == "3g"
    monkeypatch.setenv("RECONCILE_SPARK_DRIVER_MEMORY", " ")  # blank: the default, not an empty value for Spark
    assert Settings.from_env().spark_driver_memory == Settings().spark_driver_memory == "2g"
