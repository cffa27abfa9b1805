"""Unit tests of the online scorer, its Jaro-Winkler and the training recipe."""
from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from reconcile.config import PROJECT_ROOT
from reconcile.scoring import Scorer, UnsupportedModel, features
from reconcile.scoring.scorer import tf_path_for
from reconcile.scoring.similarity import jaro_winkler_similarity, levenshtein
from reconcile.training.train import read_stream, train

DEFAULT = PROJECT_ROOT / "models" / "default.json"


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer.load(DEFAULT)


def _gamma(result, comparison: str) -> int:
    return next(e["gamma"] for e in result.evidence if e["comparison"] == comparison)


def test_exact_email_alone_is_a_confident_match(scorer: Scorer) -> None:
    a = features("maria.lopez@example.com", None, None)
    b = features("maria.lopez@example.com", "+14155550100", None)
    assert scorer.score(a, b).match_probability > 0.99


def test_missing_name_neither_helps_nor_hurts(scorer: Scorer) -> None:
    a = features("maria.lopez@example.com", "+14155550100", "Maria Lopez")
    b = features("maria.lopez@example.com", "+14155550100", None)
    no_names = scorer.score(features("maria.lopez@example.com", "+14155550100", None), b)
    one_name = scorer.score(a, b)
    assert one_name.match_weight == no_names.match_weight
    name = next(e for e in one_name.evidence if e["comparison"] == "name")
    assert name["gamma"] == -1 and name["weight"] == 0.0


def test_plus_alias_and_gmail_dots_are_the_same_mailbox(scorer: Scorer) -> None:
    a = features("john.smith@gmail.com", None, "John Smith")
    b = features("johnsmith+shop@googlemail.com", None, "John Smith")
    result = scorer.score(a, b)
    top = max(lv.gamma for lv in scorer.comparisons[0].levels)
    assert _gamma(result, "email") == top - 1  # the level after exact email
    assert result.match_probability > 0.99


def test_name_order_swap_is_an_exact_name(scorer: Scorer) -> None:
    result = scorer.score(features(None, "+14155550100", "Smith John"), features(None, "+14155550100", "john SMITH"))
    assert _gamma(result, "name") == max(lv.gamma for lv in scorer.comparisons[2].levels)  # the exact level


def test_different_people_score_low(scorer: Scorer) -> None:
    a = features("alice@example.com", "+14155550100", "Alice Martin")
    b = features("bob.jones@other.org", "+442071838750", "Bob Jones")
    assert scorer.score(a, b).match_probability < 0.001


def test_shared_value_weighs_less_than_a_personal_one(scorer: Scorer) -> None:
    tf = json.loads(tf_path_for(DEFAULT).read_text())["phone"]
    shared = max(tf, key=tf.get)
    personal = scorer.score(features(None, "+14155550123", None), features(None, "+14155550123", None))
    common = scorer.score(features(None, shared, None), features(None, shared, None))
    assert common.match_weight < personal.match_weight - 5


def test_record_tf_value_overrides_the_table(scorer: Scorer) -> None:
    a = features(None, "+14155550123", None)
    base = scorer.score(a, a).match_weight
    assert scorer.score(dict(a, tf_phone=0.01), a).match_weight < base


def test_score_many_equals_score_and_threads_agree(scorer: Scorer) -> None:
    rng = random.Random(3)
    people = [features(f"user{i}@example.com", f"+1415555{i:04d}", f"Name{i % 7} Family{i % 5}") for i in range(200)]
    record = people[0]
    expected = [scorer.score(record, c).match_weight for c in people]
    assert [r.match_weight for r in scorer.score_many(record, people)] == expected
    failures: list[str] = []

    def worker() -> None:
        order = list(range(len(people)))
        rng_local = random.Random(rng.random())
        rng_local.shuffle(order)
        for i in order:
            if scorer.score(record, people[i]).match_weight != expected[i]:
                failures.append(str(i))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_version_names_the_model_and_its_content(scorer: Scorer) -> None:
    assert scorer.version.startswith("default-") and len(scorer.version) > len("default-")
    assert Scorer.load(DEFAULT).version == scorer.version


def _model_with(tmp_path: Path, edit) -> Path:
    model = json.loads(DEFAULT.read_text())
    edit(model)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(model))
    tf_path_for(path).write_text(tf_path_for(DEFAULT).read_text())
    return path


@pytest.mark.parametrize(
    "sql",
    ['lower("email_l") = lower("email_r")', 'substr("email_l", 1, 3) = substr("email_r", 1, 3)', '"email" = "x"'],
)
def test_unsupported_sql_fails_at_load(tmp_path: Path, sql: str) -> None:
    def edit(model: dict) -> None:
        model["comparisons"][0]["comparison_levels"][3]["sql_condition"] = sql

    with pytest.raises(UnsupportedModel):
        Scorer.load(_model_with(tmp_path, edit))


def test_untrained_level_fails_at_load(tmp_path: Path) -> None:
    def edit(model: dict) -> None:
        del model["comparisons"][1]["comparison_levels"][2]["m_probability"]

    with pytest.raises(UnsupportedModel, match="untrained"):
        Scorer.load(_model_with(tmp_path, edit))


def test_jaro_winkler_is_duckdbs_bit_for_bit() -> None:
    rng = random.Random(11)
    alphabet = "abcdeéø .-"
    pairs = []
    for _ in range(3000):
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20))) if rng.random() < 0.3 else a[::-1][:15] + "x"
        pairs.append((a, b))
    pairs += [("bbaac", "beba"), ("ababdcdafccc", "aabdcafccc")]
    con = duckdb.connect()
    strings = pa.table({"a": [p[0] for p in pairs], "b": [p[1] for p in pairs]})
    expected = con.sql("SELECT jaro_winkler_similarity(a, b), levenshtein(a, b) FROM strings").fetchall()
    for (a, b), (jw, lev) in zip(pairs, expected):
        assert jaro_winkler_similarity(a, b) == jw, (a, b)
        assert levenshtein(a, b) == lev, (a, b)
    assert jaro_winkler_similarity("ababdcdafccc", "aabdcafccc") == 0.92  # jellyfish: 0.9199999999999999


def test_training_on_the_sample_writes_a_loadable_complete_model(tmp_path: Path) -> None:
    from splink import DuckDBAPI, Linker

    rows, _ = read_stream(PROJECT_ROOT / "data" / "sample_stream.jsonl")
    metrics = train(rows, "sample", tmp_path, "sample")
    model = json.loads((tmp_path / "sample.json").read_text())
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if not level.get("is_null_level"):
                assert "m_probability" in level and "u_probability" in level  # no Splink defaults
    assert metrics["heldout"]["thresholds"]
    Scorer.load(tmp_path / "sample.json")
    con = duckdb.connect()
    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register(pa.table({"unique_id": [1], **{c: [None] for c in features(None, None, None)}}))
    Linker(sdf, str(tmp_path / "sample.json"))  # Splink's own loader accepts it
