"""Retraining from reviewers' decisions: labels as pairs, the CSV format, the
deterministic split, threshold choice, and `reconcile train --from-labels` end to end on
the sample stream replayed through the engine and reviewed from its truth."""
from __future__ import annotations

import json
import random
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconcile.cli import main as cli
from reconcile.config import PROJECT_ROOT, Settings
from reconcile.normalize import InvalidInput
from reconcile.scoring import charts
from reconcile.scoring.labels import (
    LabelFileError,
    LabelPair,
    Side,
    insert_labels,
    is_heldout,
    load_labels,
    normalise_side,
    read_csv,
    split,
    write_csv,
)
from reconcile.scoring.retrain import (
    MIN_CONFIRMED,
    choose_thresholds,
    decision_metrics,
    score_pairs,
    train_from_labels,
)
from reconcile.scoring.scorer import Scorer
from reconcile.scoring.simulate import play_reviewer, replay_tracking
from reconcile.store import Store
from reconcile.store.migrate import upgrade
from reconcile.store.models import get_model, list_models
from reconcile.synth import read_stream

SAMPLE = PROJECT_ROOT / "data" / "sample_stream.jsonl"
HEADER = "left_email,left_phoneNumber,left_name,right_email,right_phoneNumber,right_name,outcome"


def pair(i: int, outcome: str = "match") -> LabelPair:
    return LabelPair(
        Side(f"a{i}@example.com", f"+1202555{i % 10000:04d}", f"Ann {i}"),
        Side(f"b{i}@example.org", None, "Bo Lee"),
        outcome,
        "review",
        "score",
    )


# --- split -------------------------------------------------------------------------------


def test_split_is_deterministic_order_free_and_about_a_quarter():
    pairs = [pair(i, "match" if i % 3 else "non-match") for i in range(4000)]
    training, heldout = split(pairs)
    assert len(training) + len(heldout) == len(pairs)
    assert 0.22 < len(heldout) / len(pairs) < 0.28
    # same answer on another run, in another order, with the sides swapped
    again = {p.split_key() for p in split(list(reversed(pairs)))[1]}
    assert again == {p.split_key() for p in heldout}
    for p in pairs[:200]:
        swapped = LabelPair(p.right, p.left, p.outcome, p.source, p.kind)
        assert is_heldout(swapped) == is_heldout(p)
    # new labels never move old ones
    more = split(pairs + [pair(i) for i in range(4000, 6000)])[1]
    assert {p.split_key() for p in more} >= {p.split_key() for p in heldout}


# --- CSV ---------------------------------------------------------------------------------


def test_csv_round_trip_normalises_values(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text(
        HEADER + ",source\n"
        " Ann.Lee@Example.COM ,(202) 555-0101,  Ann   Lee ,ann.lee+shop@example.com,,Ann Lee,match,mine\n"
        ",+44 20 7946 0000,Bo,bo@example.org,+442079460000,,NON-MATCH,\n"
        "\n",
        encoding="utf-8",
    )
    pairs = read_csv(src)
    assert [p.outcome for p in pairs] == ["match", "non-match"]
    assert pairs[0].left == Side("ann.lee@example.com", "+12025550101", "Ann Lee")
    assert pairs[0].right == Side("ann.lee+shop@example.com", None, "Ann Lee")
    assert pairs[1].left == Side(None, "+442079460000", "Bo")
    assert all(p.source == "import" for p in pairs)
    out = tmp_path / "out.csv"
    assert write_csv(pairs, out) == 2
    assert read_csv(out) == pairs
    assert out.read_text().splitlines()[0] == HEADER + ",source"


def test_csv_errors_name_every_bad_line(tmp_path):
    src = tmp_path / "bad.csv"
    src.write_text(
        HEADER + "\n"
        "a@example.com,,,b@example.com,,,match\n"  # line 2: fine
        "a@example.com,,,b@example.com,,,maybe\n"  # line 3: outcome
        "not-an-email,,,b@example.com,,,match\n"  # line 4: email
        ",,Ann,b@example.com,,,non-match\n"  # line 5: no email or phone
        "a@example.com,abc,,b@example.com,,,match\n"  # line 6: phone
        "a@example.com,,,b@example.com,,match\n",  # line 7: a cell short
        encoding="utf-8",
    )
    with pytest.raises(LabelFileError) as err:
        read_csv(src)
    errors = err.value.errors
    assert [e.split(":")[0] for e in errors] == ["line 3", "line 4", "line 5", "line 6", "line 7"]
    assert "outcome 'maybe'" in errors[0]
    assert "left_email" in errors[1] and "left_record" in errors[2] and "left_phoneNumber" in errors[3]
    assert "6 cells, expected 7" in errors[4]

    missing = tmp_path / "missing.csv"
    missing.write_text("left_email,right_email,outcome\n", encoding="utf-8")
    with pytest.raises(LabelFileError, match="line 1: missing column"):
        read_csv(missing)
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(LabelFileError, match="empty"):
        read_csv(empty)
    with pytest.raises(InvalidInput):
        normalise_side(None, None, "Ann")


# --- thresholds --------------------------------------------------------------------------


def _precision_at(scores, truth, t):
    picked = [m for s, m in zip(scores, truth) if s >= t]
    return sum(picked) / len(picked) if picked else 1.0


@pytest.mark.parametrize("seed", range(5))
def test_thresholds_meet_the_target_precision_at_every_higher_cut(seed):
    rng = random.Random(seed)
    truth = [rng.random() < 0.3 for _ in range(300)]
    scores = [min(1.0, max(0.0, rng.gauss(0.9 if m else 0.5, 0.15))) for m in truth]
    chosen = choose_thresholds(scores, truth, target_precision=0.95)
    upper, lower = chosen["upper"], chosen["lower"]
    assert lower <= upper
    for t in sorted(set(scores)):
        if t >= upper:
            assert _precision_at(scores, truth, t) >= 0.95
    # upper is the lowest such cut: the next lower distinct score fails somewhere above it
    below = [s for s in set(scores) if s < upper]
    if below:
        t = max(below)
        assert _precision_at(scores, truth, t) < 0.95
    # lower keeps at least 99% of the matches
    kept = sum(1 for s, m in zip(scores, truth) if m and s >= lower)
    assert kept >= 0.99 * sum(truth)
    assert chosen["precision"] >= 0.95
    assert chosen["false_match_rate"] == pytest.approx(
        sum(1 for s, m in zip(scores, truth) if s >= upper and not m) / truth.count(False)
    )


def test_thresholds_when_no_cut_is_precise_enough():
    chosen = choose_thresholds([0.99, 0.9, 0.8], [False, True, True], target_precision=0.99)
    assert chosen["upper"] > 0.99 and chosen["linked"] == 0  # above the top rejected pair: links nothing
    assert decision_metrics([0.5], [True], 0.9, 0.4)["review"] == 1


def test_charts_are_self_contained_svg():
    curve = [{"precision": 1.0, "recall": 0.2}, {"precision": 0.8, "recall": 0.9}]
    svg = charts.pr_curve_svg({"new": curve, "old": []}, {"new": {"precision": 1.0, "recall": 0.2}}, title="a <b>")
    assert svg.startswith("<svg") and "a &lt;b&gt;" in svg and "<script" not in svg and "http" not in svg.replace(
        "http://www.w3.org/2000/svg", ""
    )
    model = json.loads((PROJECT_ROOT / "models" / "default.json").read_text())
    weights = charts.match_weights_svg(model)
    assert weights.count("<rect") > 15 and "prior" in weights and "<script" not in weights


# --- the real flow: replay, review, train -------------------------------------------------


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory):
    """The sample stream replayed with the shipped model; every pending merge decided
    from the truth by the scripted reviewer through store/review.py."""
    tmp = tmp_path_factory.mktemp("reviewed")
    url = f"sqlite:///{tmp / 'reviewed.db'}"
    upgrade(url)
    metrics, person_of, _ = replay_tracking(SAMPLE, Settings(database_url=url))
    store = Store(url)
    decided = play_reviewer(store, person_of)
    store.dispose()
    assert metrics["pending_merges"] > 0 and decided["confirmed"] + decided["rejected"] > 0
    return tmp / "reviewed.db", decided


def _copy_db(reviewed, tmp_path) -> tuple[str, Store]:
    path = tmp_path / "db.sqlite"
    shutil.copy(reviewed[0], path)
    url = f"sqlite:///{path}"
    return url, Store(url)


def _truth_labels(limit_persons: int = 60) -> list[LabelPair]:
    """Labels a team could bring: pairs of a person's different records (matches), and
    pairs of different persons sharing a surname or trailing digits (non-matches)."""
    records: dict[object, list[Side]] = defaultdict(list)
    for event in read_stream(SAMPLE):
        try:
            side = normalise_side(event.get("email"), event.get("phoneNumber"), event.get("name"))
        except InvalidInput:
            continue
        if side not in records[event["person"]]:
            records[event["person"]].append(side)
    out = []
    multi = [sides for sides in records.values() if len(sides) > 1][:limit_persons]
    for sides in multi:
        out.append(LabelPair(sides[0], sides[1], "match", "import", "import"))
    persons = list(records.values())
    for a, b in zip(persons[::2], persons[1::2]):
        out.append(LabelPair(a[0], b[0], "non-match", "import", "import"))
    return out


def test_labels_are_the_scored_pairs_and_export_import_round_trips(reviewed, tmp_path):
    url, store = _copy_db(reviewed, tmp_path)
    try:
        pairs, skipped = load_labels(store)
        assert not skipped and len(pairs) == reviewed[1]["confirmed"] + reviewed[1]["rejected"]
        assert {p.kind for p in pairs} <= {"score", "guard"} and {p.source for p in pairs} == {"review"}
        assert sum(p.is_match for p in pairs) == reviewed[1]["confirmed"]
    finally:
        store.dispose()
    runner = CliRunner()
    out = tmp_path / "labels.csv"
    result = runner.invoke(cli, ["labels", "export", str(out)], env={"RECONCILE_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(fresh)
    result = runner.invoke(cli, ["labels", "import", str(out)], env={"RECONCILE_DATABASE_URL": fresh})
    assert result.exit_code == 0 and f"{len(pairs)} label(s) imported" in result.output
    result = runner.invoke(cli, ["labels", "import", str(out)], env={"RECONCILE_DATABASE_URL": fresh})
    assert "0 label(s) imported" in result.output  # idempotent
    store = Store(fresh)
    try:
        again, _ = load_labels(store)
    finally:
        store.dispose()
    assert [(p.left, p.right, p.outcome) for p in again] == [(p.left, p.right, p.outcome) for p in pairs]
    assert {p.source for p in again} == {"import"}
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "\nx,,,y@example.com,,,match\n", encoding="utf-8")
    result = runner.invoke(cli, ["labels", "import", str(bad)], env={"RECONCILE_DATABASE_URL": fresh})
    assert result.exit_code == 1 and "line 2" in result.output


def test_too_few_confirmed_falls_back_to_em_and_says_so(reviewed, tmp_path):
    url, store = _copy_db(reviewed, tmp_path)
    try:
        result = train_from_labels(store, Settings(database_url=url), tmp_path / "models", "few", register=False)
    finally:
        store.dispose()
    if reviewed[1]["confirmed"] < MIN_CONFIRMED:
        assert any("too few to estimate m from labels" in n and "EM" in n for n in result.notes)
        assert result.summary["parameters"]["m_from_labels"] is False
    assert Scorer.load(result.directory / "model.json")
    assert not result.registered


def test_train_from_labels_writes_a_complete_loadable_version(reviewed, tmp_path):
    url, store = _copy_db(reviewed, tmp_path)
    try:
        insert_labels(store, _truth_labels())
        settings = Settings(database_url=url)
        runner = CliRunner()
        result = runner.invoke(
            cli,
            ["train", "--from-labels", "--models-dir", str(tmp_path / "models"), "--version", "v-test", "--target-precision", "0.98"],
            env={"RECONCILE_DATABASE_URL": url},
        )
        assert result.exit_code == 0, result.output
        assert "registered v-test (not active" in result.output
        directory = tmp_path / "models" / "v-test"
        expected = {"model.json", "model.tf.json", "thresholds.json", "summary.json", "evaluation.json", "pr_curve.svg", "match_weights.svg"}
        assert expected <= {p.name for p in directory.iterdir()}
        summary = json.loads((directory / "summary.json").read_text())
        assert summary["parameters"]["m_from_labels"] and summary["parameters"]["m_from_em"]
        assert summary["labels"]["training"]["confirmed"] >= MIN_CONFIRMED
        assert summary["labels"]["training"]["pairs"] + summary["labels"]["heldout"]["pairs"] == summary["labels"]["total"]

        # the model loads in the online scorer and in Splink
        scorer = Scorer.load(directory / "model.json")
        from splink import DuckDBAPI, Linker

        from reconcile.scoring.train import connect, feature_table, read_database

        rows, _ = read_database(url)
        Linker(DuckDBAPI(connection=connect()).register(feature_table(rows[:50])), str(directory / "model.json"))

        # the thresholds meet the target on the training labels they were chosen on
        thresholds = json.loads((directory / "thresholds.json").read_text())
        pairs, _ = load_labels(store)
        training = [p for p in split(pairs)[0] if p.kind != "guard"]
        scores = score_pairs(scorer, training)
        truth = [p.is_match for p in training]
        assert 0 <= thresholds["lower"] <= thresholds["upper"] <= 1
        for t in set(scores):
            if t >= thresholds["upper"]:
                assert _precision_at(scores, truth, t) >= 0.98
        assert thresholds["false_match_rate"] <= 1 - 0.98 or thresholds["linked"] == 0

        # held-out evaluation of both models, registered (inactive) with it
        evaluation = json.loads((directory / "evaluation.json").read_text())
        assert set(evaluation) >= {"candidate", "active", "heldout_labels"}
        for block in (evaluation["candidate"], evaluation["active"]):
            assert {"precision", "recall", "f1", "pr_curve", "pending_merges", "upper", "lower"} <= set(block)
        assert evaluation["active"]["version"] == "default"
        record = get_model(store, "v-test")
        assert not record.active and record.upper_threshold == thresholds["upper"]
        assert set(record.metrics) >= {"candidate", "active"}
        assert Path(record.path).name == "model.json"
        assert [m.version for m in list_models(store) if m.active] != ["v-test"]
        svg = (directory / "pr_curve.svg").read_text()
        assert "candidate (v-test)" in svg and "active (default)" in svg
        _ = settings
    finally:
        store.dispose()
