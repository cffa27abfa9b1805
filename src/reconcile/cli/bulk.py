"""``reconcile import FILE`` (historical events in, through the engine) and ``reconcile
export --format parquet PATH`` (golden records out)."""
from __future__ import annotations

import sys

import click

from ..config import Settings


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "file_format", type=click.Choice(["csv", "jsonl"]), default=None, help="default: from the file name (.csv; .jsonl, .ndjson, .json)")
@click.option("--batch-size", default=None, type=click.IntRange(1, 100_000), help="events per transaction  [default: 2000 on SQLite, 500 on PostgreSQL]")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(0, 64), help="processes reading and parsing records ahead of the engine (0: none)")
@click.option("--rejects", "rejects_path", type=click.Path(dir_okay=False), default=None, help="default: FILE.rejects.csv")
@click.option("--progress/--no-progress", default=None, help="progress bar (default: when stderr is a terminal)")
def import_command(
    path: str, file_format: str | None, batch_size: int | None, workers: int, rejects_path: str | None, progress: bool | None
) -> None:
    """Load historical events from PATH (CSV or JSON Lines: email, phoneNumber, name,
    createdAt, externalId) through the same engine, rules and guards as /identify, oldest
    first. Interrupted, it resumes where it stopped when run again on the same file."""
    from ..engine.heap import settle_heap
    from ..engine.reconciler import Reconciler
    from ..ingest.loader import import_file
    from ..ingest.source import ImportFileError
    from ..store import DatabaseBusy, Store
    from ..store.imports import ImportConflict

    settings = Settings.from_env()
    store = Store(settings.database_url, pool_size=2, statement_timeout=None)
    bar = None
    if progress or (progress is None and sys.stderr.isatty()):
        from ..ingest.progress import import_progress

        bar = import_progress()
    task = None

    def on_start(position: int, total: int) -> None:
        nonlocal task
        if position:
            click.echo(f"resuming at event {position:,} of {total:,}", err=True)
        if bar is not None:
            bar.start()
            task = bar.add_task("import", total=total, completed=position)

    def on_batch(n: int) -> None:
        if bar is not None and task is not None:
            bar.advance(task, n)

    try:
        reconciler = Reconciler(store, settings)
        settle_heap()  # as a server worker does: start-up's objects out of the collector's scans
        summary = import_file(
            path, reconciler, file_format=file_format, batch_size=batch_size, rejects_path=rejects_path,
            on_start=on_start, on_batch=on_batch, workers=workers,
        )
    except (ImportFileError, ImportConflict) as exc:
        raise click.ClickException(str(exc)) from None
    except DatabaseBusy as exc:  # a batch waited past RECONCILE_DB_LOCK_TIMEOUT_SECONDS: nothing of it was written
        raise click.ClickException(f"{exc}; every committed batch stays: run the same command again to resume") from None
    except KeyboardInterrupt:
        if bar is not None:
            bar.stop()
        click.echo("interrupted: every committed batch stays; run the same command again to resume", err=True)
        sys.exit(130)
    finally:
        if bar is not None:
            bar.stop()
        store.dispose()
    totals, run = summary.totals, summary.run
    if summary.already_done:
        click.echo(f"{path} was imported already (run {run.id}, finished {run.finished_at:%Y-%m-%d %H:%M} UTC); nothing loaded")
    elif summary.loaded_now:
        rate = summary.loaded_now / summary.seconds if summary.seconds else 0.0
        click.echo(f"{summary.loaded_now:,} events in {summary.seconds:.1f}s ({rate:,.0f}/s)")
    click.echo(
        f"run {run.id}: {run.records:,} records; loaded {totals['loaded']:,} (linked {totals['linked']:,}, "
        f"of which probabilistic {totals['probabilistic']:,}; created {totals['created']:,} new persons; "
        f"{totals['contacts']:,} contacts written), pending {totals['pending']:,} review items opened, "
        f"rejected {totals['rejected']:,}"
    )
    if summary.rejects_path is not None:
        click.echo(f"rejected rows (line, reason, record): {summary.rejects_path}")


@click.command("export")
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--format", "file_format", type=click.Choice(["parquet"]), default="parquet", show_default=True)
def export_command(path: str, file_format: str) -> None:
    """Write the golden records into the directory PATH: persons.parquet (one row per
    person) and contacts.parquet (one row per live contact)."""
    from ..export.parquet import export_parquet
    from ..store import Store

    settings = Settings.from_env()
    store = Store(settings.database_url, pool_size=2, statement_timeout=None)
    try:
        summary = export_parquet(store, path)
    finally:
        store.dispose()
    click.echo(f"{summary.persons:,} persons and {summary.contacts:,} contacts written to {summary.directory}/persons.parquet, contacts.parquet")
