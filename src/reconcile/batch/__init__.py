"""Batch re-resolution (``reconcile resolve``): the whole live table re-scored and
re-clustered with the active model, on DuckDB or Spark, and the differences from the
live groups turned into proposals for reviewers, never into silent changes."""
