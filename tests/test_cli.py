"""The ``reconcile`` command against a real SQLite file named by RECONCILE_DATABASE_URL."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, text

from reconcile.cli import main
from reconcile.config import Settings
from reconcile.store.migrate import current
from reconcile.web import create_app

HEAD = sorted(
    p.name.split("_", 1)[0]
    for p in (Path(__file__).resolve().parents[1] / "src/reconcile/migrations/versions").glob("[0-9]*.py")
)[-1]


@pytest.fixture
def db_url(tmp_path) -> str:
    """A path that does not exist yet, in a folder that does not exist yet."""
    return f"sqlite:///{tmp_path / 'nested' / 'reconcile.db'}"


def run(args: list[str], url: str):
    return CliRunner().invoke(main, args, env={"RECONCILE_DATABASE_URL": url}, catch_exceptions=False)


def populate(url: str) -> None:
    """Two groups through the real service: {1 primary, 2, 3} share a phone; {4} alone."""
    app = create_app(Settings(database_url=url, probabilistic=False))
    client = app.test_client()
    try:
        for body in (
            {"email": "doc@hillvalley.edu", "phoneNumber": "123456"},
            {"email": "marty@hillvalley.edu", "phoneNumber": "123456"},
            {"email": "emmett@hillvalley.edu", "phoneNumber": "123456"},
            {"email": "biff@hillvalley.edu", "phoneNumber": "717171"},
        ):
            assert client.post("/identify", json=body).status_code == 200
    finally:
        app.extensions["reconcile"].store.dispose()


def corrupt(url: str, *statements: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for sql in statements:
                conn.execute(text(sql))
    finally:
        engine.dispose()


def test_db_upgrade_creates_the_schema_at_the_newest_revision(db_url):
    result = run(["db", "upgrade"], db_url)
    assert result.exit_code == 0, result.output
    assert "head" in result.output
    engine = create_engine(db_url)
    try:
        tables = set(inspect(engine).get_table_names())
        columns = {c["name"] for c in inspect(engine).get_columns("Contact")}
    finally:
        engine.dispose()
    assert {"Contact", "audit_log", "alembic_version"} <= tables
    assert {"id", "phoneNumber", "email", "linkedId", "linkPrecedence", "createdAt", "updatedAt", "deletedAt"} <= columns
    assert current(db_url).startswith(HEAD)


def test_db_upgrade_twice_is_harmless_and_keeps_data(db_url):
    assert run(["db", "upgrade"], db_url).exit_code == 0
    populate(db_url)
    result = run(["db", "upgrade"], db_url)
    assert result.exit_code == 0, result.output
    assert run(["check"], db_url).output.strip().endswith("4 contacts, 0 invariant(s) broken")


def test_check_exits_0_on_a_sound_database(db_url):
    assert run(["db", "upgrade"], db_url).exit_code == 0
    populate(db_url)
    result = run(["check"], db_url)
    assert result.exit_code == 0, result.output
    assert "4 contacts, 0 invariant(s) broken" in result.output


def test_check_exits_1_and_names_a_secondary_pointing_at_a_secondary(db_url):
    assert run(["db", "upgrade"], db_url).exit_code == 0
    populate(db_url)
    corrupt(db_url, 'UPDATE "Contact" SET "linkedId" = 2 WHERE id = 3')
    result = run(["check"], db_url)
    assert result.exit_code == 1, result.output
    assert "[link-shape]" in result.output
    assert "(3, 'secondary', 2)" in result.output
    # the link changed without an audit entry: that is reported too
    assert "[audit-current]" in result.output


def test_check_exits_1_when_two_primaries_share_an_email(db_url):
    assert run(["db", "upgrade"], db_url).exit_code == 0
    populate(db_url)
    corrupt(db_url, "UPDATE \"Contact\" SET email = 'doc@hillvalley.edu' WHERE id = 4")
    result = run(["check"], db_url)
    assert result.exit_code == 1, result.output
    assert "[email-split]" in result.output
    assert "doc@hillvalley.edu" in result.output
    assert "[link-shape]" not in result.output


def test_check_exits_1_when_a_primary_is_younger_than_its_secondary(db_url):
    assert run(["db", "upgrade"], db_url).exit_code == 0
    populate(db_url)
    corrupt(db_url, "UPDATE \"Contact\" SET \"createdAt\" = '1985-10-26 01:21:00.000000' WHERE id = 2")
    result = run(["check"], db_url)
    assert result.exit_code == 1, result.output
    assert "[oldest-primary]" in result.output


def test_installed_reconcile_command_reports_through_its_exit_status(db_url):
    """The console script, as an operator runs it: a real process and its exit code."""
    exe = Path(sys.executable).with_name("reconcile")
    env = {**os.environ, "RECONCILE_DATABASE_URL": db_url}
    upgrade = subprocess.run([str(exe), "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    populate(db_url)
    sound = subprocess.run([str(exe), "check"], env=env, capture_output=True, text=True, timeout=120)
    assert sound.returncode == 0, sound.stdout + sound.stderr
    corrupt(db_url, 'UPDATE "Contact" SET "linkedId" = 2 WHERE id = 3')
    broken = subprocess.run([str(exe), "check"], env=env, capture_output=True, text=True, timeout=120)
    assert broken.returncode == 1
    assert "[link-shape]" in broken.stdout


@pytest.mark.parametrize(
    ("url", "args", "threads"),
    [
        ("sqlite:///{tmp}/r.db", [], 1),  # granian on SQLite: the app in the event loop
        ("postgresql+psycopg://u@127.0.0.1/db", [], 4),  # round trips release the GIL
        ("sqlite:///{tmp}/r.db", ["--server", "gunicorn"], 4),  # one thread: one request at a time
        ("sqlite:///{tmp}/r.db", ["--threads", "3"], 3),
    ],
)
def test_serve_picks_its_threads_by_backend_and_server_unless_told(monkeypatch, tmp_path, url, args, threads):
    import reconcile.web.server as server

    started: dict = {}
    monkeypatch.setattr(server, "run", lambda name, **kw: started.update(kw, server=name))
    result = run(["serve", "--workers", "2", *args], url.format(tmp=tmp_path))
    assert result.exit_code == 0, result.output
    assert started["threads"] == threads and started["workers"] == 2
