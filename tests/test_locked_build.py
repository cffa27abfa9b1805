"""The environment the tests run in is the one the lock describes, and the scorer
refuses to run beside a DuckDB build whose arithmetic it does not reproduce."""
from __future__ import annotations

import re
from importlib import metadata

import pytest

from reconcile.config import PROJECT_ROOT
from reconcile.scoring import similarity
from reconcile.scoring.scorer import Scorer

LOCK = PROJECT_ROOT / "requirements" / "test.txt"
#: the Spark engine's lock, installed by ``make test`` beside the test lock (sdist allowed)
SPARK_LOCK = PROJECT_ROOT / "requirements" / "spark.txt"
PINNED = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)")


def _locked(lock=LOCK) -> dict[str, str]:
    pins = {}
    for line in lock.read_text().splitlines():
        match = PINNED.match(line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_the_lock_pins_every_package_with_hashes() -> None:
    text = LOCK.read_text()
    pins = _locked()
    assert "duckdb" in pins and "splink" in pins and "jellyfish" in pins
    requirements = [line for line in text.splitlines() if line and not line[0].isspace() and line[0] != "#"]
    assert len(requirements) == len(pins), "a requirement without an exact version"
    assert text.count("--hash=sha256:") >= len(pins)


def test_the_spark_lock_pins_pyspark_with_hashes() -> None:
    pins = _locked(SPARK_LOCK)
    assert pins.get("pyspark") == "4.3.0" and "py4j" in pins
    assert SPARK_LOCK.read_text().count("--hash=sha256:") >= len(pins)


def test_every_installed_dependency_is_the_locked_version() -> None:
    wrong = {}
    for name, version in {**_locked(SPARK_LOCK), **_locked()}.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # a platform-only package (the lock is universal): not installed here
        if installed != version:
            wrong[name] = (installed, version)
    assert not wrong, f"installed versions differ from requirements/test.txt or spark.txt: {wrong}"


def test_the_lock_holds_the_duckdb_build_the_scorer_reproduces() -> None:
    assert _locked()["duckdb"] == similarity.REPRODUCED_DUCKDB
    similarity.check_duckdb_build()  # the installed build: no error


def test_another_duckdb_build_is_refused_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(similarity.DuckDBBuildMismatch, match="2.0.1"):
        similarity.check_duckdb_build("2.0.1")
    monkeypatch.setattr(similarity.metadata, "version", lambda name: "2.0.1")
    with pytest.raises(similarity.DuckDBBuildMismatch):
        Scorer.load(PROJECT_ROOT / "models" / "default.json")
