"""``reconcile resolve``: re-resolve the whole live table in batch (see reconcile.batch)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import click

from ..config import Settings


@click.command()
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True, help="where Splink scores the pairs")
@click.option("--dry-run/--apply", "dry_run", default=True, show_default=True, help="--apply turns the proposals into review items (never into merges or splits)")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="write the JSON report here")
@click.option("--spark-master", default=None, help="Spark master URL (default local[2]); on a cluster --snapshot-dir must be shared")
@click.option("--snapshot-dir", type=click.Path(file_okay=False), default=None, help="keep the Parquet snapshot here (default: a temporary directory, removed after)")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None, help="match probability a model link needs (default: the active model's upper threshold)")
@click.option("--memory-limit", default=None, help="DuckDB's memory limit, e.g. 2GB (default: a quarter of the machine's memory); it spills to the snapshot directory beyond it")
@click.option("--limit", default=20, show_default=True, type=int, help="proposals of each kind listed on the terminal")
def resolve(engine: str, dry_run: bool, report_path: str | None, spark_master: str | None, snapshot_dir: str | None, threshold: float | None, memory_limit: str | None, limit: int) -> None:
    """Re-resolve every live contact with the active model and report what would change."""
    from ..batch.apply import apply
    from ..batch.flow import resolve as run
    from ..batch.report import as_json, summary
    from ..batch.engines import EngineUnavailable
    from ..scoring.documents import ModelUnavailable
    from ..store import Store

    if report_path:  # before the run (and an --apply's review items), not after
        folder = Path(report_path).resolve().parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise click.ClickException(f"cannot write the report to {report_path}: {folder} is not a writable directory")
    settings = Settings.from_env()
    store = Store(settings.database_url)
    try:
        try:
            resolution = run(
                store,
                settings,
                engine=engine,
                snapshot_dir=Path(snapshot_dir) if snapshot_dir else None,
                spark_master=spark_master,
                threshold=threshold,
                memory_limit=memory_limit,
            )
        except (ModelUnavailable, EngineUnavailable) as exc:
            raise click.ClickException(str(exc)) from None
        applied = None if dry_run else apply(store, resolution)
    finally:
        store.dispose()
    report = as_json(resolution, applied)
    if report_path:
        Path(report_path).write_text(json.dumps(report, indent=2) + "\n")
    click.echo(summary(report, limit))
    if report_path:
        click.echo(f"\nreport: {report_path}")
    if dry_run:
        click.echo("dry run: nothing was changed (--apply opens review items)")
