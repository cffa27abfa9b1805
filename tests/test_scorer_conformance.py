"""The online scorer gives exactly Splink's numbers, for every model in models/.

Thousands of varied pairs are scored twice: once by Splink itself in DuckDB (one
``predict_between`` call over a left and a right table joined on a pair id, with the
model's own TF tables registered) and once by :class:`reconcile.scoring.Scorer`. Every
comparison must land on the same level (gamma) and every match weight must agree
within 1e-9.
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

import jellyfish
import pyarrow as pa
import pytest
from splink import DuckDBAPI, Linker, block_on

from reconcile.config import PROJECT_ROOT
from reconcile.normalize import InvalidInput, normalize_email, normalize_name, normalize_phone
from reconcile.scoring import COLUMNS, Scorer, features
from reconcile.scoring.scorer import tf_path_for
from reconcile.scoring.similarity import jaro_winkler_similarity
from reconcile.training.train import connect, iter_jsonl, register_tf_tables

MODELS = sorted(p for p in (PROJECT_ROOT / "models").glob("*.json") if p.name.count(".") == 1)
SAMPLE = PROJECT_ROOT / "data" / "sample_stream.jsonl"
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _record(email: object, phone: object, name: object) -> dict | None:
    try:
        return features(normalize_email(email), normalize_phone(phone), normalize_name(name))
    except InvalidInput:
        return None


def _typo(rng: random.Random, text: str) -> str:
    chars = list(text)
    op = rng.randrange(4)
    i = rng.randrange(len(chars)) if chars else 0
    if op == 0 and len(chars) > 1:
        del chars[i]
    elif op == 1:
        chars.insert(i, rng.choice(LETTERS))
    elif op == 2 and len(chars) > 1:
        j = min(i + 1, len(chars) - 1)
        chars[i], chars[j] = chars[j], chars[i]
    elif chars:
        chars[i] = rng.choice(LETTERS + "éøü")
    return "".join(chars)


def _near_miss(rng: random.Random, event: dict) -> dict | None:
    """A noisy copy of an event: the kinds of noise the levels exist for."""
    email, phone, name = event.get("email"), event.get("phoneNumber"), event.get("name")
    kind = rng.randrange(9)
    if kind == 0 and email and "@" in email:
        local, _, domain = email.strip().rpartition("@")
        email = f"{_typo(rng, local)}@{domain}"
    elif kind == 1 and email and "@" in email:
        local, _, domain = email.strip().rpartition("@")
        email = f"{local}+shop{rng.randrange(99)}@{domain}"
    elif kind == 2 and email and "@" in email:
        local, _, _ = email.strip().rpartition("@")
        email = f"{'.'.join(local.replace('.', ''))}@googlemail.com"
    elif kind == 3 and name:
        name = _typo(rng, name)
    elif kind == 4 and name:
        name = " ".join(reversed(name.split()))
    elif kind == 5:
        name = None
    elif kind == 6 and phone:
        digits = re.sub(r"\D", "", str(phone))
        phone = digits[-rng.choice([7, 9, 10]):]
    elif kind == 7:
        email = None
    elif kind == 8 and email and "@" in email:
        local, _, domain = email.strip().rpartition("@")
        email = f"{local}@{_typo(rng, domain.split('.')[0])}.com"
    return _record(email, phone, name)


def _boundary_strings(rng: random.Random, thresholds: list[float], wanted: int) -> list[tuple[str, str]]:
    """Pairs whose DuckDB Jaro-Winkler sits on a threshold, or where jellyfish's value
    falls on the other side of one (pitfall 2)."""
    on_threshold: list[tuple[str, str]] = []
    jellyfish_differs: list[tuple[str, str]] = []
    for _ in range(60_000):
        a = "".join(rng.choice(LETTERS[: rng.randint(2, 6)]) for _ in range(rng.randint(3, 12)))
        b = a
        for _ in range(rng.randint(1, 2)):
            b = _typo(rng, b).replace("é", "e").replace("ø", "o").replace("ü", "u")
        if not b:
            continue
        duck = jaro_winkler_similarity(a, b)
        jelly = jellyfish.jaro_winkler_similarity(a, b)
        if any((duck >= t) != (jelly >= t) for t in thresholds):
            jellyfish_differs.append((a, b))
        elif any(abs(duck - t) < 1e-12 for t in thresholds):
            on_threshold.append((a, b))
        if len(jellyfish_differs) >= wanted // 2 and len(on_threshold) >= wanted // 2:
            break
    assert jellyfish_differs and on_threshold
    return on_threshold[: wanted // 2] + jellyfish_differs[: wanted // 2]


def _pairs(model: dict, tf_tables: dict) -> list[tuple[dict, dict]]:
    rng = random.Random(7)
    events = list(iter_jsonl(SAMPLE))
    records = [(e.get("person"), _record(e.get("email"), e.get("phoneNumber"), e.get("name"))) for e in events]
    records = [(p, r) for p, r in records if r is not None]
    pairs: list[tuple[dict, dict]] = []
    by_person: dict = {}
    for person, rec in records:
        by_person.setdefault(person, []).append(rec)
    for recs in by_person.values():  # within-person pairs
        pairs.extend((recs[i], recs[j]) for i in range(len(recs)) for j in range(i + 1, len(recs)))
    pairs = pairs[:2500]
    for _ in range(2000):  # across persons
        pairs.append((rng.choice(records)[1], rng.choice(records)[1]))
    for _ in range(2500):  # near misses
        event = rng.choice(events)
        noisy = _near_miss(rng, event)
        base = _record(event.get("email"), event.get("phoneNumber"), event.get("name"))
        if noisy and base:
            pairs.append((base, noisy) if rng.random() < 0.5 else (noisy, base))
    # values many people share: term-frequency adjustments
    for column, table in tf_tables.items():
        common = sorted(table, key=table.get, reverse=True)[:100]
        for value in common:
            a, b = dict(rng.choice(records)[1]), dict(rng.choice(records)[1])
            a[column] = b[column] = value
            pairs.append((a, b))
    # Jaro-Winkler at its thresholds, on the columns the model compares with it
    thresholds = sorted(
        {float(t) for c in model["comparisons"] for lv in c["comparison_levels"]
         for t in re.findall(r"jaro_winkler_similarity\([^)]*\)\s*>=\s*([0-9.]+)", lv["sql_condition"])}
    )
    for a, b in _boundary_strings(rng, thresholds, 150):
        left, right = rng.choice(records)[1], rng.choice(records)[1]
        pairs.append((_record(f"{a}@example.com", None, a.upper()), _record(f"{b}@example.com", None, b)))
        pairs.append((dict(left, name_key=a), dict(right, name_key=b)))
    return pairs


def _splink_scores(model_path: Path, tf_tables: dict, pairs: list[tuple[dict, dict]]) -> list[dict]:
    """Splink's own predictions for every pair in one predict_between call."""
    schema = pa.schema([("unique_id", pa.int64()), ("pair_id", pa.int64())] + [(c, pa.string()) for c in COLUMNS])

    def table(side: int) -> pa.Table:
        offset = side * len(pairs)
        rows = [{"unique_id": k + offset, "pair_id": k, **pair[side]} for k, pair in enumerate(pairs)]
        return pa.Table.from_pylist(rows, schema=schema)

    con = connect()
    db_api = DuckDBAPI(connection=con)
    left, right = db_api.register(table(0)), db_api.register(table(1))
    linker = Linker(left, str(model_path))
    register_tf_tables(linker, db_api, tf_tables)
    result = linker.inference.predict_between(
        left, right, blocking_rules_to_generate_predictions=[block_on("pair_id")]
    ).as_record_list()
    con.close()
    return sorted(result, key=lambda row: row["pair_id_l"])


def test_there_is_a_model_to_check() -> None:
    assert any(p.name == "default.json" for p in MODELS)


@pytest.mark.parametrize("model_path", MODELS, ids=[p.stem for p in MODELS])
def test_scorer_matches_splink(model_path: Path) -> None:
    model = json.loads(model_path.read_text())
    tf_file = tf_path_for(model_path)
    tf_tables = json.loads(tf_file.read_text()) if tf_file.exists() else {}
    pairs = _pairs(model, tf_tables)
    assert len(pairs) >= 5000
    splink_rows = _splink_scores(model_path, tf_tables, pairs)
    assert [row["pair_id_l"] for row in splink_rows] == list(range(len(pairs)))

    scorer = Scorer.load(model_path)
    names = [c["output_column_name"] for c in model["comparisons"]]
    max_diff = 0.0
    gammas_seen: set[tuple[str, int]] = set()
    for row, (a, b) in zip(splink_rows, pairs):
        result = scorer.score(a, b)
        ours = {e["comparison"]: e["gamma"] for e in result.evidence}
        theirs = {name: row[f"gamma_{name}"] for name in names}
        assert ours == theirs, (a, b)
        diff = abs(result.match_weight - row["match_weight"])
        assert diff <= 1e-9, (a, b, result.match_weight, row["match_weight"])
        assert abs(result.match_probability - row["match_probability"]) <= 1e-9
        max_diff = max(max_diff, diff)
        gammas_seen.update(ours.items())
    # the pairs exercise every level of every comparison
    for comparison in model["comparisons"]:
        levels = comparison["comparison_levels"]
        expected = {-1} if any(lv.get("is_null_level") for lv in levels) else set()
        expected |= set(range(sum(1 for lv in levels if not lv.get("is_null_level"))))
        seen = {g for name, g in gammas_seen if name == comparison["output_column_name"]}
        assert seen == expected, comparison["output_column_name"]
    print(f"{model_path.name}: {len(pairs)} pairs, max |weight diff| {max_diff:.3g}")
