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
from reconcile.review.labels import (
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
from reconcile.scoring.scorer import Scorer
from reconcile.store import Store
from reconcile.store.migrate import upgrade
from reconcile.store.models import get_model, list_models
from reconcile.synth.generator import read_stream
from reconcile.synth.review_simulation import play_reviewer, replay_tracking
from reconcile.training import charts, warm_start, weighted
from reconcile.training.label_metrics import (
    decision_metrics,
    ranking_metrics,
    score_pairs,
)
from reconcile.training.retrain import MIN_CONFIRMED, train_from_labels
from reconcile.training.review_load import (
    ArrivalPairs,
    candidate_pairs,
    clusters_of,
    live_rows,
    load_floor,
    review_load,
)
from reconcile.training.thresholds import choose_thresholds, wilson_lower
from reconcile.training.train import Row

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
    latin = tmp_path / "latin1.csv"  # an export from a spreadsheet in another encoding
    latin.write_bytes((HEADER + "\n").encode() + "a@example.com,,Zoë,b@example.com,,,match\n".encode("latin-1"))
    with pytest.raises(LabelFileError, match="not UTF-8 text"):
        read_csv(latin)
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
    from the truth by the scripted reviewer through review/queue.py. The audit sample at
    the former rates (a fifth of links): the default rates are a budget for a live
    stream and draw almost nothing from 500 events, and these tests need decided pairs
    above and below the thresholds."""
    tmp = tmp_path_factory.mktemp("reviewed")
    url = f"sqlite:///{tmp / 'reviewed.db'}"
    upgrade(url)
    settings = Settings(database_url=url, audit_link_rate=0.2, audit_near_rate=0.03, audit_held_rate=0.05)
    metrics, person_of, _ = replay_tracking(SAMPLE, settings)
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
        result = train_from_labels(
            store, Settings(database_url=url), tmp_path / "models", "few", m_source="labels+em", register=False
        )
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
        assert summary["parameters"]["method"].startswith("weighted")
        assert summary["parameters"]["pseudo_pairs"] == weighted.DEFAULT_PSEUDO_PAIRS
        assert summary["labels"]["training"]["confirmed"] >= MIN_CONFIRMED
        assert summary["labels"]["training"]["pairs"] + summary["labels"]["heldout"]["pairs"] == summary["labels"]["total"]

        # the model loads in the online scorer and in Splink
        scorer = Scorer.load(directory / "model.json")
        from splink import DuckDBAPI, Linker

        from reconcile.training.train import connect, feature_table, read_database

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
            assert 0 <= block["average_precision"] <= 1 and 0 <= block["roc_auc"] <= 1
        assert evaluation["active"]["version"] == "default"
        # the review budget applied to the lower threshold is reported
        budget = evaluation["review_budget"]
        assert budget == summary["thresholds"]["review_load"] and budget["budget"] is not None
        assert budget["within_budget"] == (budget["candidate"] <= budget["budget"])
        assert thresholds["lower"] >= thresholds["natural_lower"] and thresholds["upper"] >= thresholds["natural_upper"]
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


# --- warm start, person proxy, threshold-free measures, confidence bound, review load -----


DEFAULT_MODEL = PROJECT_ROOT / "models" / "default.json"


def test_warm_start_with_no_labels_is_the_active_model_exactly():
    active = json.loads(DEFAULT_MODEL.read_text())
    m = warm_start.level_m(active)
    fitted = warm_start.fit(m, [], [], warm_start.DEFAULT_STRENGTH)
    assert fitted.prior_shift == 0 and all(a == 0 for aj in fitted.shifts for a in aj)
    assert warm_start.apply(active, fitted) == active


def test_warm_start_moves_only_what_the_labels_show():
    active = json.loads(DEFAULT_MODEL.read_text())
    scorer = Scorer.load(DEFAULT_MODEL)
    m = warm_start.level_m(active)
    a = {"email": "ann.lee@example.com", "phone": None, "name": "Ann Lee"}
    b = {"email": "ann.lee@example.org", "phone": None, "name": "Ann Lee"}
    from reconcile.scoring.features import features

    fa, fb = features(a["email"], None, a["name"]), features(b["email"], None, b["name"])
    item = warm_start.pair_levels(scorer, fa, fb)
    assert item.weight == pytest.approx(scorer.score(fa, fb).match_weight)
    assert item.levels[1] is None  # no phone on either side: the null level
    # the active model calls this pair a likely match; labels say it never is
    fitted = warm_start.fit(m, [item] * 40, [False] * 40, 1.0)
    model = warm_start.apply(active, fitted)
    new_scorer = Scorer(model, json.loads((PROJECT_ROOT / "models" / "default.tf.json").read_text()), "t")
    assert new_scorer.score(fa, fb).match_weight < item.weight - 1
    # phone levels saw no evidence (null on the labelled pair): their m is unchanged
    phone = [lv["m_probability"] for lv in model["comparisons"][1]["comparison_levels"] if not lv.get("is_null_level")]
    assert phone == pytest.approx(m[1])
    for comparison in model["comparisons"]:  # m still sums to 1 per comparison
        total = sum(lv["m_probability"] for lv in comparison["comparison_levels"] if not lv.get("is_null_level"))
        assert total == pytest.approx(1.0)


def test_strength_is_cross_validated_and_deterministic():
    active = json.loads(DEFAULT_MODEL.read_text())
    m = warm_start.level_m(active)
    rng = random.Random(3)
    items, truth, keys = [], [], []
    for i in range(200):
        match = rng.random() < 0.3
        level = 0 if match and rng.random() < 0.8 else len(m[0]) - 1
        items.append(warm_start.PairLevels(rng.gauss(0, 2), (level, None, None)))
        truth.append(match)
        keys.append(f"k{i}")
    first = warm_start.choose_strength(m, items, truth, keys)
    assert first == warm_start.choose_strength(m, items, truth, keys)
    assert first[0] in warm_start.STRENGTHS and set(first[1]["per_strength"]) == {str(s) for s in warm_start.STRENGTHS}
    few = warm_start.choose_strength(m, items[:10], truth[:10], keys[:10])
    assert few[0] == warm_start.DEFAULT_STRENGTH


def test_live_groups_are_the_person_proxy(reviewed):
    url = f"sqlite:///{reviewed[0]}"
    rows, _ = live_rows(url)
    store = Store(url)
    try:
        from sqlalchemy import func, select

        from reconcile.store.schema import contact

        with store.read() as tx:
            groups = {
                f"group{g}"
                for (g,) in tx.conn.execute(
                    select(func.coalesce(contact.c.linkedId, contact.c.id)).where(contact.c.deletedAt.is_(None))
                )
            }
    finally:
        store.dispose()
    live = clusters_of(rows, "live")
    assert set(live) <= groups and len(set(live)) > 0
    assert all(c == r.person for c, r in zip(live, rows))
    exact = clusters_of(rows, "exact")
    assert len(exact) == len(rows) and all(c.startswith("proxy") for c in exact)
    with pytest.raises(ValueError):
        clusters_of(rows, "truth")
    # the review-load pairs never pair a record with one of its own exact group
    arrivals = candidate_pairs(rows, per_key=5)
    assert arrivals.pairs and len(arrivals.pairs) == len(arrivals.arrival) == len(arrivals.group) == len(arrivals.held)


def test_load_pairs_are_those_the_engine_would_have_scored_on_arrival():
    rows = [
        Row("ann@x.com", "+12025550101", "ann lee", "g1"),
        Row("ann@x.com", "+12025550199", "ann lee", "g1"),  # exact group of the first: never scored
        Row("ann.lee@y.com", "+12025550155", "ann lee", "g1"),  # model-linked: still scored
        Row("bob@z.com", "+12025550101", "bob lee", "g2"),  # a shared phone across live groups: held
    ]
    arrivals = candidate_pairs(rows, per_key=5)
    pairs = set(zip(arrivals.group, arrivals.arrival, arrivals.held))
    first = arrivals.group[arrivals.arrival.index(2)]
    assert (first, 2, False) in pairs  # the model-linked record against the exact group before it
    assert all(arrival != 1 for arrival in arrivals.arrival)  # its only partner is in its exact group
    assert any(arrival == 3 and held for _, arrival, held in pairs)


def _arrivals(probabilities: list[float]) -> ArrivalPairs:
    """One scored pair per arriving record, none held."""
    n = len(probabilities)
    return ArrivalPairs(records=n, pairs=[({}, {})] * n, arrival=list(range(n)), group=[-1] * n, held=[False] * n)


def test_ranking_metrics_are_threshold_free():
    assert ranking_metrics([3, 2, 1, 0], [True, True, False, False]) == {"average_precision": 1.0, "roc_auc": 1.0}
    assert ranking_metrics([0, 1, 2, 3], [True, True, False, False])["roc_auc"] == 0.0
    assert ranking_metrics([1, 1, 1, 1], [True, False, True, False]) == {"average_precision": 0.5, "roc_auc": 0.5}
    assert ranking_metrics([1, 2], [True, True]) == {"average_precision": None, "roc_auc": None}


def test_upper_needs_a_confident_cut_else_keeps_the_active_one():
    assert wilson_lower(10, 10, 0) == 1.0 and wilson_lower(10, 10, 1.645) < 0.8 < wilson_lower(400, 400, 1.645)
    scores = [0.99] * 10 + [0.5] * 10
    truth = [True] * 10 + [False] * 10
    plain = choose_thresholds(scores, truth, 0.99)
    assert plain["upper"] == 0.99  # 10 of 10: the point estimate is enough
    confident = choose_thresholds(scores, truth, 0.99, z=1.645, fallback_upper=0.999)
    assert confident["upper"] == 0.999 and "active model's upper" in confident["basis"]["upper"]
    many = choose_thresholds([0.95] * 400 + [0.5] * 10, [True] * 400 + [False] * 10, 0.99, z=1.645, fallback_upper=0.999)
    assert many["upper"] == 0.95
    # the active upper is kept only when the labels do not contradict it
    contradicted = choose_thresholds([0.9995, 0.5], [False, True], 0.99, z=1.645, fallback_upper=0.999)
    assert contradicted["upper"] > 0.9995 and contradicted["linked"] == 0


def test_lower_keeps_the_review_load_within_the_active_budget():
    probabilities = [i / 100 for i in range(100)]
    arrivals = _arrivals(probabilities)
    floor = load_floor(arrivals, probabilities, budget=10)
    lower = floor(0.9)
    assert review_load(arrivals, probabilities, 0.9, lower) <= 10
    assert review_load(arrivals, probabilities, 0.9, lower - 0.011) > 10
    assert load_floor(arrivals, probabilities, budget=1000)(0.9) == 0.0


def test_a_candidate_whose_natural_lower_opens_too_many_items_gets_a_raised_lower():
    load = [i / 100 for i in range(100)]
    arrivals = _arrivals(load)
    budget = review_load(arrivals, load, 0.9, 0.8)  # the active model's band: 10 items
    scores, truth = [0.95, 0.5, 0.2, 0.1], [True, False, True, False]
    chosen = choose_thresholds(scores, truth, 0.9, lower_floor=load_floor(arrivals, load, budget))
    assert chosen["upper"] == 0.95 and chosen["natural_lower"] == 0.2  # what the labels alone ask for: 75 items
    assert chosen["lower"] > 0.8 and review_load(arrivals, load, chosen["upper"], chosen["lower"]) <= budget
    assert chosen["basis"]["lower"].startswith("raised from 0.2")
    unbounded = choose_thresholds(scores, truth, 0.9)
    assert unbounded["lower"] == unbounded["natural_lower"] == 0.2


def test_when_guard_held_pairs_alone_exceed_the_budget_upper_rises_with_lower():
    # ten held pairs (a guard keeps them apart: items at any score >= lower), scored 0.50-0.59
    held = [0.5 + i / 100 for i in range(10)]
    arrivals = ArrivalPairs(records=10, pairs=[({}, {})] * 10, arrival=list(range(10)), group=[-1] * 10, held=[True] * 10)
    scores, truth = [0.45, 0.3, 0.1], [True, True, False]
    chosen = choose_thresholds(scores, truth, 0.9, lower_floor=load_floor(arrivals, held, budget=4))
    assert chosen["natural_upper"] == 0.3 and chosen["natural_lower"] == 0.3
    assert chosen["upper"] == chosen["lower"] > 0.55  # only 0.56-0.59 still open items
    assert review_load(arrivals, held, chosen["upper"], chosen["lower"]) == 4
    assert "raised from 0.3 with the lower threshold" in chosen["basis"]["upper"]


def test_held_pairs_count_above_the_upper_and_groups_count_once():
    arrivals = ArrivalPairs(
        records=2, pairs=[({}, {})] * 4, arrival=[0, 0, 1, 1], group=[7, 7, 8, 9], held=[False, False, True, False]
    )
    probabilities = [0.5, 0.95, 0.99, 0.5]
    # record 0: its group's best pair (0.95) links; record 1: a held pair above upper and a band pair
    assert review_load(arrivals, probabilities, 0.9, 0.4) == 2
    assert review_load(arrivals, probabilities, 0.9, 0.6) == 1


