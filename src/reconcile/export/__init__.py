"""Golden records out (``reconcile export``): one row per person and one per contact, as
Parquet files any engine reads (DuckDB, Trino, Spark). See :mod:`.parquet`."""
