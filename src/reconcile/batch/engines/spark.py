"""Re-resolution on Spark, for tables beyond one machine (``pip install reconcile[spark]``,
Java 17).

``master`` is any Spark master URL: ``local[2]`` runs in-process; on a cluster
(``spark://host:7077``, ``yarn``, ``k8s://…``) the snapshot directory must be a path
every executor reads (a shared filesystem, or an object store Spark is configured for).
Jaro-Winkler is DuckDB's arithmetic in a Python UDF (executors need ``reconcile``
installed); Splink's bundled jar is still loaded for its other functions. Spark needs a
checkpoint directory to break the lineage of Splink's iterative steps.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa

from ...scoring.similarity import jaro_winkler_similarity
from . import EngineUnavailable

APP_NAME = "reconcile-resolve"


def _duckdb_jaro_winkler(a: str | None, b: str | None) -> float | None:
    return None if a is None or b is None else jaro_winkler_similarity(a, b)


class SparkEngine:
    dialect = "spark"
    #: DuckDB's Jaro-Winkler as a Python UDF (reconcile.scoring.similarity, the online
    #: scorer's bit-exact copy): with the bundled jar's ``jaro_winkler`` instead, Spark
    #: missed 498 of DuckDB's 44,973 links on the 100k bench seed (e.g. "miasmith194" /
    #: "miasmith41592": 0.951 in DuckDB, below the 0.95 level in the jar)
    jaro_winkler = "duckdb_jaro_winkler"

    def __init__(self, master: str = "local[2]", work_dir: Path | None = None, driver_memory: str = "2g"):
        try:
            from pyspark.sql import SparkSession
            from pyspark.sql.types import DoubleType
            from splink import SparkAPI
            from splink.backends.spark import similarity_jar_location
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EngineUnavailable("the spark engine needs pyspark: pip install 'reconcile[spark]' (and Java 17)") from exc
        if master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            # the UDF's workers must be this interpreter (with reconcile), not PATH's python3
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        checkpoints = (work_dir or Path.cwd()) / "spark-checkpoints"
        builder = SparkSession.builder.master(master).appName(APP_NAME).config("spark.jars", similarity_jar_location())
        if master.startswith("local"):
            # a few cores: Spark's 200 default shuffle partitions would be 200 tiny tasks each
            # step; a cluster keeps its own settings (spark-defaults.conf, --conf)
            builder = (
                builder.config("spark.driver.host", os.environ["SPARK_LOCAL_IP"])
                .config("spark.sql.shuffle.partitions", "8")
                .config("spark.default.parallelism", "8")
                .config("spark.ui.enabled", "false")
                # one JVM does everything: Spark's 1g driver default fails to broadcast the
                # blocked pairs of 100k contacts; sort-merge joins spill instead
                .config("spark.driver.memory", driver_memory)
                .config("spark.sql.autoBroadcastJoinThreshold", "-1")
            )
        self.spark = builder.getOrCreate()
        self.spark.sparkContext.setCheckpointDir(str(checkpoints))
        self.spark.udf.register(self.jaro_winkler, _duckdb_jaro_winkler, DoubleType())
        self._api = SparkAPI(spark_session=self.spark)

    def database_api(self) -> Any:
        return self._api

    def register(self, parquet: Path, name: str) -> Any:
        self.spark.read.parquet(str(parquet)).createOrReplaceTempView(name)
        return self._api.register(name)

    def rows(self, frame: Any, columns: list[str]) -> pa.Table:
        return frame.as_spark_dataframe().select(*columns).toArrow()

    def close(self) -> None:
        self.spark.stop()
