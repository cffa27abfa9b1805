"""Training and activation that cannot fool their user: an evaluation over too few (or
no) held-out pairs is not measurable and the gate refuses it; training never writes
over a model or a tracked data file; importing a decision twice keeps one label; long
commands show progress and pass on only library messages worth acting on; and
``train --from-contacts`` fits a loadable, scoring model to a replayed database."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from reconcile.cli import main as cli
from reconcile.config import PROJECT_ROOT, Settings
from reconcile.review.labels import LabelPair, Side, insert_labels, load_labels, write_csv
from reconcile.scoring.features import features
from reconcile.scoring.scorer import Scorer
from reconcile.store import Store
from reconcile.store import models as registry
from reconcile.store.contacts import utcnow
from reconcile.store.migrate import upgrade
from reconcile.store.schema import label
from reconcile.synth.generator import SAMPLE_PATH, write_stream
from reconcile.synth.replay import replay
from reconcile.training.progress import library_messages
from reconcile.training.registry import ensure_default_registered

ANN = Side("ann.lee@example.com", "+12025550101", "ann lee")
ANN_ALIAS = Side("ann.lee+shop@example.com", None, "ann lee")
BO = Side("bo@example.com", "+12025550199", "bo chen")


def _run(args: list[str], url: str, ok: bool = True):
    result = CliRunner().invoke(cli, args, env={"RECONCILE_DATABASE_URL": url})
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 1, result.output
    return result


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> str:
    """A database filled by replaying a small synthetic stream through the engine, with
    the shipped default registered and active."""
    folder = tmp_path_factory.mktemp("replayed")
    stream = folder / "stream.jsonl"
    write_stream(stream, 400, seed=424242)
    url = f"sqlite:///{folder / 'replayed.db'}"
    upgrade(url)
    replay(stream, Settings(database_url=url))
    store = Store(url)
    try:
        ensure_default_registered(store, Settings(database_url=url))
    finally:
        store.dispose()
    return url


def _copy(url: str, tmp_path: Path) -> str:
    import shutil

    target = tmp_path / "copy.db"
    shutil.copyfile(url.removeprefix("sqlite:///"), target)
    return f"sqlite:///{target}"


def _copy_with_one_label(url: str, tmp_path: Path) -> str:
    """A copy of the replayed database holding one imported decision: Ann is her alias."""
    copy = _copy(url, tmp_path)
    store = Store(copy)
    try:
        insert_labels(store, [LabelPair(ANN, ANN_ALIAS, "match", "import", "import")])
    finally:
        store.dispose()
    return copy


# --- labels: one decision, one label --------------------------------------------------------


def test_importing_the_same_decisions_twice_keeps_one_label_each(sqlite_db, tmp_path):
    pairs = [LabelPair(ANN, ANN_ALIAS, "match", "import", "import"), LabelPair(ANN, BO, "non-match", "import", "import")]
    csv = tmp_path / "labels.csv"
    write_csv(pairs + [LabelPair(ANN_ALIAS, ANN, "match", "import", "import")], csv)  # a repeat, sides swapped
    first = _run(["labels", "import", str(csv)], sqlite_db)
    assert "2 label(s) imported" in first.output
    again = _run(["labels", "import", str(csv)], sqlite_db)
    assert "0 label(s) imported" in again.output
    store = Store(sqlite_db)
    try:
        held, _ = load_labels(store)
        assert sorted((p.outcome for p in held)) == ["match", "non-match"]
        # an export re-imported into its own database adds nothing
        export = tmp_path / "export.csv"
        _run(["labels", "export", str(export)], sqlite_db)
        assert "0 label(s) imported" in _run(["labels", "import", str(export)], sqlite_db).output
        assert len(load_labels(store)[0]) == 2
        # the opposite decision on the same pair is another label
        assert insert_labels(store, [LabelPair(ANN, BO, "match", "import", "import")]) == 1
    finally:
        store.dispose()


def test_the_import_key_is_unique_in_the_database(db_url):
    store = Store(db_url)
    try:
        pair = LabelPair(ANN, ANN_ALIAS, "match", "import", "import")
        assert insert_labels(store, [pair]) == 1
        row = {
            "outcome": "match", "leftRecords": [], "rightRecords": [], "source": "import",
            "decidedAt": utcnow(), "importKey": pair.import_key(),
        }
        with pytest.raises(IntegrityError):
            store.write(lambda tx: tx.conn.execute(insert(label).values(**row)))
        with store.read() as tx:
            assert tx.conn.execute(select(label.c.importKey)).scalars().all() == [pair.import_key()]
    finally:
        store.dispose()


def test_review_labels_exported_then_imported_elsewhere_are_not_doubled(replayed, tmp_path):
    url = _copy_with_one_label(replayed, tmp_path)
    export = tmp_path / "export.csv"
    _run(["labels", "export", str(export)], url)
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(fresh)
    assert "1 label(s) imported" in _run(["labels", "import", str(export)], fresh).output
    assert "0 label(s) imported" in _run(["labels", "import", str(export)], fresh).output


# --- the gate, end to end ----------------------------------------------------------------------


def test_a_model_trained_on_one_label_is_not_measurable_and_not_activated(replayed, tmp_path):
    url = _copy_with_one_label(replayed, tmp_path)
    models = tmp_path / "models"
    out = _run(["train", "--from-labels", "--models-dir", str(models), "--version", "one-label"], url).output
    evaluation = json.loads((models / "one-label" / "evaluation.json").read_text())
    held = evaluation["heldout_labels"]["pairs"]
    assert held <= 1
    if held == 0:
        assert evaluation["candidate"]["precision"] is None and evaluation["candidate"]["f1"] is None
        heldout_lines = [line for line in out.splitlines() if line.startswith("held-out")]
        assert heldout_lines and all("not measurable" in line and "1.0000" not in line for line in heldout_lines)
    refused = _run(["models", "activate", "one-label"], url, ok=False)
    assert "--force" in refused.output
    assert "not measurable" in refused.output or "decided pair(s), fewer than" in refused.output
    assert "is active" in _run(["models", "activate", "one-label", "--force"], url).output


# --- nothing is overwritten -------------------------------------------------------------------


def test_train_from_stream_never_overwrites_a_model_file(tmp_path):
    target = tmp_path / "m.json"
    args = ["train", "--from-stream", str(SAMPLE_PATH), "--output", str(target)]
    runner = CliRunner()
    assert runner.invoke(cli, args).exit_code == 0
    before = target.read_text()
    refused = runner.invoke(cli, args)
    assert refused.exit_code == 1 and "never overwrites" in refused.output
    assert target.read_text() == before
    assert runner.invoke(cli, args + ["--overwrite"]).exit_code == 0
    # the shipped default, without a name given, is never the target
    shipped = PROJECT_ROOT / "models" / "default.json"
    digest = shipped.read_bytes()
    named = runner.invoke(cli, ["train", "--from-stream", str(SAMPLE_PATH), "--models-dir", str(tmp_path), "--name", "default"])
    assert named.exit_code == 0  # another folder: a new file
    assert runner.invoke(cli, ["train", "--from-stream", str(SAMPLE_PATH), "--name", "default"]).exit_code == 1
    assert shipped.read_bytes() == digest


def test_synth_refuses_to_replace_a_stream_file():
    sample = SAMPLE_PATH.read_bytes()
    result = CliRunner().invoke(cli, ["synth", "--size", "sample"])
    assert result.exit_code == 1 and "exists already" in result.output and "--overwrite" in result.output
    assert SAMPLE_PATH.read_bytes() == sample


# --- long commands talk, libraries only when it matters -------------------------------------


def test_evaluate_shows_a_progress_bar_with_rate_and_eta(tmp_path):
    result = CliRunner().invoke(cli, ["evaluate", str(SAMPLE_PATH), "--limit", "60"])
    assert result.exit_code == 0, result.output
    assert "replay: exact baseline" in result.stderr and "replay: probabilistic" in result.stderr
    assert "60/60" in result.stderr and "/s" in result.stderr and "ETA" in result.stderr


def test_training_passes_on_only_actionable_library_messages(tmp_path):
    result = CliRunner().invoke(
        cli, ["train", "--from-stream", str(SAMPLE_PATH), "--output", str(tmp_path / "m.json")]
    )
    assert result.exit_code == 0, result.output
    assert "not yet fully trained" not in result.stderr and "not observed in dataset" not in result.stderr
    assert "5/5" in result.stderr and "ETA" in result.stderr  # off a terminal, the final state of the bar


def test_library_messages_keeps_warnings_worth_acting_on(capsys):
    splink = logging.getLogger("splink.internals.test")
    with library_messages():
        splink.info("Your model is not yet fully trained")
        splink.warning("Level x on comparison y not observed in dataset, unable to train m value")
        splink.warning("You have called predict(), but there are some parameter estimates missing")
    err = capsys.readouterr().err
    assert "predict()" in err
    assert "not yet fully trained" not in err and "not observed" not in err


# --- a model from the customer's own contacts -------------------------------------------------


def test_train_from_contacts_registers_a_loadable_model_that_scores(replayed, tmp_path):
    url = _copy(replayed, tmp_path)
    models = tmp_path / "models"
    out = _run(["train", "--from-contacts", "--models-dir", str(models), "--version", "mine"], url).output
    assert "registered mine (not active" in out
    directory = models / "mine"
    assert {"model.json", "model.tf.json", "summary.json", "evaluation.json"} <= {p.name for p in directory.iterdir()}
    summary = json.loads((directory / "summary.json").read_text())
    assert summary["records"]["distinct"] > 100 and summary["m_source"].startswith("EM")
    evaluation = json.loads((directory / "evaluation.json").read_text())
    assert evaluation["heldout_labels"]["pairs"] == 0 and evaluation["candidate"]["precision"] is None

    scorer = Scorer.load(directory / "model.json")
    same = scorer.score(
        features("jo.wood@example.com", "+12025550142", "Jo Wood"), features("jo.wood+x@example.com", "+12025550142", "Jo Wood")
    )
    strangers = scorer.score(
        features("jo.wood@example.com", "+12025550142", "Jo Wood"), features("al.pike@example.org", "+13125550987", "Al Pike")
    )
    assert same.match_probability > 0.9 > 0.1 > strangers.match_probability
    from splink import DuckDBAPI, Linker

    from reconcile.training.train import connect, feature_table, read_database

    rows, _ = read_database(url)
    Linker(DuckDBAPI(connection=connect()).register(feature_table(rows[:20])), str(directory / "model.json"))

    store = Store(url)
    try:
        record = registry.get_model(store, "mine")
        assert not record.active and registry.active_model(store).version == "default"
    finally:
        store.dispose()
    refused = _run(["models", "activate", "mine"], url, ok=False)
    assert "not measurable" in refused.output
    again = _run(["train", "--from-contacts", "--models-dir", str(models), "--version", "mine"], url, ok=False)
    assert "exists already" in again.output


def test_from_contacts_can_take_m_from_the_live_groups(replayed, tmp_path):
    url = _copy(replayed, tmp_path)
    models = tmp_path / "models"
    out = _run(
        ["train", "--from-contacts", "--models-dir", str(models), "--version", "groups", "--m-source", "groups", "--no-register"],
        url,
    ).output
    assert "registered" not in out
    summary = json.loads((models / "groups" / "summary.json").read_text())
    assert summary["m_source"] == "the live groups as persons"
    Scorer.load(models / "groups" / "model.json")
    bad = CliRunner().invoke(cli, ["train", "--from-contacts", "--m-source", "warm"], env={"RECONCILE_DATABASE_URL": url})
    assert bad.exit_code == 2 and "em or groups" in bad.output


# --- phone levels: a number written differently is no stronger than the same number --------


def test_looser_phone_levels_never_outweigh_the_exact_level():
    import math

    from reconcile.training.train import cap_looser_levels

    shipped = json.loads((PROJECT_ROOT / "models" / "default.json").read_text())

    def weights(model: dict) -> list[float]:
        phone = next(c for c in model["comparisons"] if c["output_column_name"] == "phone")
        levels = [lv for lv in phone["comparison_levels"] if not lv.get("is_null_level")]
        return [math.log2(lv["m_probability"] / lv["u_probability"]) for lv in levels]

    before = weights(shipped)
    assert max(before[1:3]) > before[0]  # the shipped model's national / trailing-digit levels
    changed = cap_looser_levels(shipped)
    after = weights(shipped)
    assert {c["level"] for c in changed} == {"Same national number", "Same trailing digits"}
    assert all(w <= after[0] + 1e-9 for w in after[1:]) and after[0] == before[0]
    assert after[-1] == before[-1]  # the "else" level was never above exact: untouched
    assert cap_looser_levels(shipped) == []  # idempotent
    other = [c for c in shipped["comparisons"] if c["output_column_name"] != "phone"]
    original = [c for c in json.loads((PROJECT_ROOT / "models" / "default.json").read_text())["comparisons"]
                if c["output_column_name"] != "phone"]
    assert other == original
