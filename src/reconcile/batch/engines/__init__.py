"""The two places a re-resolution can run, behind one small interface.

Like Splink's own ``DatabaseAPI``, an adapter only says how its engine is reached: the
Splink database API to build a linker on, how the Parquet snapshot becomes a table
there, and how the scored pairs the flow keeps come back as Arrow. Everything else
(which model, which pairs, clustering, the diff) is :mod:`reconcile.batch.flow`'s, once.
"""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa


class EngineUnavailable(RuntimeError):
    """The engine asked for is not installed here (the command says what to install)."""


def require(name: str) -> None:
    """Fail at once, before a snapshot is written, when ``name`` cannot run here: Spark
    needs ``pip install 'reconcile[spark]'`` and Java. (Unknown names fail in
    :func:`open_engine`.)"""
    if name != "spark":
        return
    if importlib.util.find_spec("pyspark") is None:
        raise EngineUnavailable("the spark engine needs pyspark: pip install 'reconcile[spark]' (and Java 17)")
    if shutil.which("java") is None:
        raise EngineUnavailable("the spark engine needs Java 17 on the PATH (java was not found)")


class BatchEngine(Protocol):
    #: Splink's name for the SQL dialect (the model's settings are rebuilt for it)
    dialect: str
    #: the SQL function computing DuckDB's Jaro-Winkler, bit for bit, on this engine
    jaro_winkler: str

    def database_api(self) -> Any:
        """The Splink database API a linker runs on."""

    def register(self, parquet: Path, name: str) -> Any:
        """A Parquet file (the snapshot, a term-frequency table) as a Splink dataframe
        of this engine, under the plain table name ``name``."""

    def rows(self, frame: Any, columns: list[str]) -> pa.Table:
        """``columns`` of a Splink dataframe of this engine, as Arrow."""

    def close(self) -> None:
        """Release the engine (connections, sessions)."""


def open_engine(
    name: str,
    *,
    spark_master: str | None = None,
    work_dir: Path | None = None,
    memory_limit: str | None = None,
    spark_driver_memory: str = "2g",
) -> BatchEngine:
    """The adapter called ``name`` ("duckdb" or "spark"); ``memory_limit`` bounds DuckDB,
    ``spark_driver_memory`` a local Spark's one JVM (a cluster's memory is its own configuration)."""
    if name == "duckdb":
        from .duckdb import DuckDBEngine

        return DuckDBEngine(memory_limit, work_dir / "duckdb-spill" if work_dir else None)
    if name == "spark":
        from .spark import SparkEngine

        return SparkEngine(master=spark_master or "local[2]", work_dir=work_dir, driver_memory=spark_driver_memory)
    raise ValueError(f"unknown engine {name!r}: use duckdb or spark")
