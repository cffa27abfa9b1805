"""Re-resolution on Spark, for tables beyond one machine (``pip install reconcile[spark]``,
Java 17).

``master`` is any Spark master URL: ``local[2]`` runs in-process; on a cluster
(``spark://host:7077``, ``yarn``, ``k8s://…``) the snapshot directory must be a path
every executor reads (a shared filesystem, or an object store Spark is configured for).
Splink's bundled similarity jar provides ``jaro_winkler``; Spark needs a checkpoint
directory to break the lineage of Splink's iterative steps.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa


APP_NAME = "reconcile-resolve"


class SparkEngine:
    dialect = "spark"

    def __init__(self, master: str = "local[2]", work_dir: Path | None = None):
        try:
            from pyspark.sql import SparkSession
            from splink import SparkAPI
            from splink.backends.spark import similarity_jar_location
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError("the spark engine needs pyspark: pip install 'reconcile[spark]' (and Java 17)") from exc
        if master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
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
                .config("spark.driver.memory", os.environ.get("RECONCILE_SPARK_DRIVER_MEMORY", "2g"))
                .config("spark.sql.autoBroadcastJoinThreshold", "-1")
            )
        self.spark = builder.getOrCreate()
        self.spark.sparkContext.setCheckpointDir(str(checkpoints))
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
