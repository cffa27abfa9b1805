"""``reconcile evaluate`` replays the committed sample through /identify's code path and
reports the exact baseline beside the full pipeline."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from reconcile.synth.generator import SAMPLE_PATH
from reconcile.synth.replay import evaluate_stream
from sqlalchemy import create_engine, text

from reconcile.cli import main
from reconcile.config import PROJECT_ROOT, Settings


def test_evaluate_sample_reports_both_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(PROJECT_ROOT)
    out, assigned = tmp_path / "metrics.json", tmp_path / "assignments.jsonl"
    result = CliRunner().invoke(
        main, ["evaluate", "data/sample_stream.jsonl", "--json", str(out), "--assignments", str(assigned)]
    )
    assert result.exit_code == 0, result.output
    assert "exact baseline" in result.output
    assert "contract (offline)" in result.output
    assert "probabilistic" in result.output

    runs = json.loads(out.read_text())["runs"]
    baseline = runs["exact baseline"]
    assert baseline["events"] == 500
    assert baseline["rejected"] == 0
    assert baseline["persons"] < baseline["events"]
    # the noisy sample splits some people, and the shared identifiers join some
    assert 0.5 < baseline["pairwise_recall"] < 1
    assert 0.5 < baseline["pairwise_precision"] <= 1
    assert 0 < baseline["bcubed_f1"] < 1
    assert baseline["split_persons"] > 0
    assert baseline["largest_cluster"] >= 2
    assert baseline["events_per_second"] > 0

    # the bare contract, without guards, as a reference row
    contract = runs["contract (offline)"]
    assert contract["events"] == 500
    assert contract["overmerged_clusters"] >= baseline["overmerged_clusters"]

    full = runs["probabilistic"]
    if "error" not in full:  # no model shipped yet: the row says why instead
        assert full["events"] == 500 and full["rejected"] == 0
        assert 0 < full["pairwise_f1"] <= 1

    rows = [json.loads(line) for line in assigned.read_text().splitlines()]
    for run, metrics in runs.items():
        mine = [r for r in rows if r["run"] == run]
        assert len(mine) == (0 if "error" in metrics else 500)
        if mine:
            assert len({r["cluster"] for r in mine}) == metrics["clusters"]


def test_evaluate_on_a_given_database_recreates_it_per_run(tmp_path):
    url = f"sqlite:///{tmp_path / 'scratch.db'}"
    report = evaluate_stream(SAMPLE_PATH, Settings(probabilistic=False), database_url=url, limit=120)
    baseline = report["runs"]["exact baseline"]
    assert baseline["events"] == 120
    engine = create_engine(url)
    with engine.connect() as conn:
        contacts = conn.execute(text('SELECT COUNT(*) FROM "Contact"')).scalar_one()
    engine.dispose()
    assert 0 < contacts <= 120  # only the last run's replay, not both runs' rows

    with pytest.raises(ValueError, match="already holds contacts"):
        evaluate_stream(SAMPLE_PATH, database_url=url, limit=10)
