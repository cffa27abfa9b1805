"""`reconcile models list|register|activate|rollback` and `db upgrade` over a real SQLite
database, and what the running reconciler serves after each change."""
from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from conftest import sqlite_url
from model_versions import make_version, scores

from reconcile.cli import main as cli
from reconcile.config import Settings
from reconcile.engine.reconciler import Reconciler
from reconcile.normalize import parse_identity
from reconcile.store import Store
from reconcile.store import models as registry


@pytest.fixture
def db(tmp_path, monkeypatch) -> str:
    """An upgraded database made with the CLI, as an operator would."""
    url = sqlite_url(tmp_path)
    monkeypatch.setenv("RECONCILE_DATABASE_URL", url)
    monkeypatch.delenv("RECONCILE_MODEL", raising=False)
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "registered the configured model as version default (active)" in result.output
    return url


@pytest.fixture
def store(db):
    store = Store(db)
    yield store
    store.dispose()


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(cli, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 1, result.output
    return result.output


def better(tmp_path, version="v2"):
    """Beats the default on the same held-out labels."""
    return make_version(tmp_path / "models", version, candidate=scores(0.97, 0.85), active=scores(0.96, 0.80, "default"))


def worse(tmp_path, version="v3", against="default"):
    return make_version(tmp_path / "models", version, candidate=scores(0.955, 0.70), active=scores(0.96, 0.80, against))


def serve(reconciler: Reconciler, email: str) -> dict:
    """One /identify through the engine that creates a contact (so a model decides)."""
    return reconciler.identify(parse_identity({"email": email, "phoneNumber": None}, "US")).match


def test_db_upgrade_registers_the_shipped_default_once(db):
    out = run("models", "list")
    assert "* default" in out
    again = CliRunner().invoke(cli, ["db", "upgrade"])
    assert again.exit_code == 0 and "registered" not in again.output
    listed = json.loads(run("models", "list", "--json"))
    assert [(m["version"], m["active"], m["path"]) for m in listed] == [("default", True, "models/default.json")]


def test_register_reads_the_directory_a_training_run_writes(tmp_path, db, store):
    folder = better(tmp_path)
    out = run("models", "register", str(folder))
    assert "registered v2" in out
    record = registry.get_model(store, "v2")
    assert (record.upper_threshold, record.lower_threshold, record.active) == (0.999, 0.9, False)
    assert record.metrics["candidate"]["f1"] == 0.85
    assert record.path == str(folder / "model.json")
    line = next(line for line in run("models", "list").splitlines() if " v2 " in line)
    assert "0.9700" in line and "0.8500" in line and "0.9990" in line


def test_register_a_bare_json_under_another_version(tmp_path, db, store):
    bare = tmp_path / "mine.json"
    shutil.copyfile(make_version(tmp_path, "x") / "model.json", bare)
    shutil.copyfile(tmp_path / "x" / "model.tf.json", tmp_path / "mine.tf.json")
    run("models", "register", str(bare), "--version", "alt")
    assert registry.get_model(store, "alt").metrics is None


def test_register_refuses_what_does_not_load(tmp_path, db, store):
    folder = better(tmp_path)
    (folder / "model.json").write_text('{"comparisons": "nope"}')
    out = run("models", "register", str(folder), ok=False)
    assert "does not load as a model" in out
    assert [m.version for m in registry.list_models(store)] == ["default"]


def test_activate_a_better_model_and_the_service_switches(tmp_path, db, store):
    reconciler = Reconciler(store, Settings(database_url=db, model_poll_seconds=0))
    assert serve(reconciler, "a@x.org")["modelVersion"] == "default"
    run("models", "register", str(better(tmp_path)))
    out = run("models", "activate", "v2", "--by", "carol")
    assert "v2 is not worse than default" in out and "v2 is active (previous: default)" in out
    active = registry.active_model(store)
    assert (active.version, active.activated_by, active.previous_version) == ("v2", "carol", "default")
    match = serve(reconciler, "b@x.org")
    assert match["modelVersion"] == "v2"
    assert reconciler.thresholds.upper == 0.999 and reconciler.thresholds.lower == 0.9


def test_a_worse_model_is_refused_unless_forced(tmp_path, db, store):
    run("models", "register", str(worse(tmp_path)))
    out = run("models", "activate", "v3", ok=False)
    assert "v3 is worse than the active default" in out and "F1 0.7000 < 0.8000" in out and "--force" in out
    assert registry.active_model(store).version == "default"
    out = run("models", "activate", "v3", "--force")
    assert out.startswith("forced: v3 is worse") and registry.active_model(store).version == "v3"


def test_a_model_without_metrics_needs_force(tmp_path, db, store):
    run("models", "register", str(make_version(tmp_path / "models", "bare")))
    out = run("models", "activate", "bare", ok=False)
    assert "no held-out metrics for bare" in out
    run("models", "activate", "bare", "--force")
    assert registry.active_model(store).version == "bare"


def test_rollback_returns_to_the_previous_version(tmp_path, db, store):
    run("models", "register", str(better(tmp_path)))
    run("models", "activate", "v2")
    # v2's evaluation measured default worse on the same labels: going back needs --force
    out = run("models", "rollback", ok=False)
    assert "default is worse than the active v2" in out
    out = run("models", "rollback", "--force", "--by", "carol")
    assert "default is active (previous: v2)" in out
    assert registry.active_model(store).version == "default"
    # and forward again: v2 replaced nothing worse than itself
    run("models", "rollback")
    assert registry.active_model(store).version == "v2"


def test_rollback_after_a_forced_bad_model_needs_no_force(tmp_path, db, store):
    run("models", "register", str(worse(tmp_path)))
    run("models", "activate", "v3", "--force")
    run("models", "rollback")
    assert registry.active_model(store).version == "default"


def test_nothing_to_roll_back_and_unknown_versions_are_errors(db):
    assert "default replaced no other version" in run("models", "rollback", ok=False)
    assert "no model version 'nope' is registered" in run("models", "activate", "nope", ok=False)


def test_activation_refuses_a_model_whose_files_are_gone(tmp_path, db, store):
    folder = better(tmp_path)
    run("models", "register", str(folder))
    (folder / "model.json").unlink()
    out = run("models", "activate", "v2", "--force", ok=False)
    assert "does not load" in out and registry.active_model(store).version == "default"


def test_a_model_that_fails_to_load_keeps_the_previous_one_serving(tmp_path, db, store):
    reconciler = Reconciler(store, Settings(database_url=db, model_poll_seconds=0))
    folder = better(tmp_path)
    run("models", "register", str(folder))
    run("models", "activate", "v2")
    assert serve(reconciler, "a@x.org")["modelVersion"] == "v2"
    # the registry points at a broken model (registered behind the CLI's back)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.json").write_text("{not json")
    registry.register_model(store, "broken", str(tmp_path / "broken" / "model.json"))
    registry.set_active(store, "broken", "test")
    assert serve(reconciler, "b@x.org")["modelVersion"] == "v2"
    assert serve(reconciler, "c@x.org")["modelVersion"] == "v2"
    # once the registry moves on, the worker follows
    registry.set_active(store, "default", "test")
    assert serve(reconciler, "d@x.org")["modelVersion"] == "default"


def test_first_start_registers_the_default_when_the_registry_is_empty(tmp_path):
    from reconcile.store.migrate import upgrade
    from reconcile.web import create_app

    url = sqlite_url(tmp_path)
    upgrade(url)
    app = create_app(Settings(database_url=url))
    try:
        store = app.extensions["reconcile"].store
        assert [(m.version, m.active) for m in registry.list_models(store)] == [("default", True)]
        assert app.extensions["reconcile"].models.current().version == "default"
    finally:
        app.extensions["reconcile"].store.dispose()


def test_activation_rollback_and_the_switch_on_each_backend(db_url, tmp_path):
    """The same registry calls on SQLite and PostgreSQL (model_admin under the CLI and API)."""
    from reconcile.training.registry import (
        ActivationRefused,
        activate,
        ensure_default_registered,
        register_path,
        rollback,
    )

    store = Store(db_url)
    try:
        settings = Settings(database_url=db_url, model_poll_seconds=0)
        assert ensure_default_registered(store, settings).version == "default"
        assert ensure_default_registered(store, settings) is None
        reconciler = Reconciler(store, settings)
        register_path(store, better(tmp_path))
        register_path(store, worse(tmp_path))
        activate(store, "v2", by="t")
        assert serve(reconciler, "a@x.org")["modelVersion"] == "v2"
        with pytest.raises(ActivationRefused, match="worse"):
            activate(store, "v3", by="t")
        record, decision = activate(store, "v3", force=True, by="t")
        assert not decision.allowed and record.previous_version == "v2"
        assert rollback(store, by="t")[0].version == "v2"
        assert serve(reconciler, "b@x.org")["modelVersion"] == "v2"
        assert [(m.version, m.active) for m in registry.list_models(store)] == [
            ("default", False), ("v2", True), ("v3", False)
        ]
    finally:
        store.dispose()
