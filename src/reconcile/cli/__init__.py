"""The ``reconcile`` command: operations on the service (migrate, serve, check, ...)."""
from __future__ import annotations

import sys

import click

from ..config import Settings


@click.group()
def main() -> None:
    """Identity reconciliation service. Configuration comes from RECONCILE_* variables."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema of RECONCILE_DATABASE_URL."""
    from ..store.engine import make_engine
    from ..store.migrate import upgrade

    settings = Settings.from_env()
    make_engine(settings.database_url).dispose()  # creates the SQLite file's folder
    upgrade(settings.database_url, revision)
    click.echo(f"database at revision {revision}: {_redact(settings.database_url)}")
    if revision == "head":
        from .models import register_default

        register_default(settings)


@db.command("purge")
def db_purge() -> None:
    """Rewrite the database so erased values leave no bytes in free space (SQLite: VACUUM
    and a WAL checkpoint; PostgreSQL: VACUUM FULL, which locks each table in turn)."""
    from ..store import DatabaseBusy, Store
    from ..store.erasure import purge_free_space

    settings = Settings.from_env()
    store = Store(settings.database_url)
    try:
        purge_free_space(store)
    except DatabaseBusy as exc:  # the file is rewritten, but the log may still hold old bytes: run it again
        raise click.ClickException(f"{exc}; run `reconcile db purge` again") from None
    finally:
        store.dispose()
    click.echo(f"database rewritten: {_redact(settings.database_url)}")


@main.command()
def check() -> None:
    """Check the invariants of the contact graph; exit 1 when any is broken."""
    from ..store import Store
    from ..store.invariants import check as run_checks

    settings = Settings.from_env()
    store = Store(settings.database_url)
    try:
        violations = run_checks(store)
        counts = store.counts()
    finally:
        store.dispose()
    for violation in violations:
        click.echo(str(violation))
    click.echo(f"{counts['contacts']} contacts, {len(violations)} invariant(s) broken")
    sys.exit(1 if violations else 0)


@main.command()
@click.option("--email", default=None, help="erase the person holding this email")
@click.option("--phone", default=None, help="erase the person holding this phone")
# the Contact id column's range on every backend (a larger id would fail PostgreSQL's bind, not be "unknown")
@click.option("--contact-id", default=None, type=click.IntRange(min=1, max=2**31 - 1), help="erase the person this contact belongs to")
@click.option("--by", default="cli", show_default=True, help="who asked, for the audit log")
def erase(email: str | None, phone: str | None, contact_id: int | None, by: str) -> None:
    """Forget a customer: tombstone every contact of their group (see POST /erasure)."""
    import json

    from ..engine.erasure import ErasureError, ErasureKey
    from ..engine.erasure import erase as run_erasure
    from ..normalize import InvalidInput
    from ..store import Store

    settings = Settings.from_env()
    try:
        key = ErasureKey.parse(email, phone, contact_id, settings.default_region)
    except InvalidInput as exc:
        raise click.UsageError(exc.message) from None
    store = Store(settings.database_url)
    try:
        result = run_erasure(store, key, by=by[:64])
    except ErasureError as exc:
        click.echo(f"refused: {exc.message}", err=True)
        sys.exit(1)
    finally:
        store.dispose()
    click.echo(json.dumps(result.as_json()))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="worker processes")
@click.option(
    "--threads", default=None, type=click.IntRange(1, 256),
    help="threads per worker running the app (1: the worker's event loop runs it)  [default: 1 with granian on SQLite, else 4]",
)
@click.option(
    "--server",
    type=click.Choice(["granian", "granian-wsgi", "gunicorn", "werkzeug"]),
    default="granian",
    show_default=True,
    help="granian: the production server, which reads each request whole before a thread serves it; "
    "granian-wsgi: granian's WSGI interface (only behind a body-buffering proxy); gunicorn: sync workers "
    "with --threads 1, else gthread; werkzeug: Flask's development server (one process). See README, Operations",
)
def serve(host: str, port: int, workers: int, threads: int | None, server: str) -> None:
    """Serve the HTTP API."""
    if server == "werkzeug":
        from ..web import create_app

        create_app().run(host=host, port=port, threaded=True)
        return
    from ..web.server import default_threads, run

    if threads is None:
        threads = default_threads(server, Settings.from_env().database_url)
    run(server, host=host, port=port, workers=workers, threads=threads)


@main.group()
def reviewer() -> None:
    """Reviewer accounts for the review UI and the /reviews API."""


@reviewer.command("add")
@click.argument("username")
@click.option("--admin", is_flag=True, help="may undo other reviewers' decisions")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="prompted for when omitted")
def reviewer_add(username: str, admin: bool, password: str) -> None:
    """Create a reviewer; prints their API token, which is shown only this once."""
    from ..review.queue import add_reviewer
    from ..store import Store

    store = Store(Settings.from_env().database_url)
    try:
        token = add_reviewer(store, username, password, admin=admin)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.dispose()
    click.echo(f"reviewer {username} created{' (admin)' if admin else ''}")
    click.echo(f"API token (shown once; send as 'Authorization: Bearer <token>'): {token}")


@reviewer.command("token")
@click.argument("username")
def reviewer_token(username: str) -> None:
    """Replace a reviewer's API token (the old one stops working) and print the new one."""
    from ..review.queue import new_token
    from ..store import Store

    store = Store(Settings.from_env().database_url)
    try:
        token = new_token(store, username)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.dispose()
    click.echo(f"API token for {username} (shown once): {token}")


@reviewer.command("list")
def reviewer_list() -> None:
    """Every reviewer: name, admin or not, created, disabled."""
    from ..review.queue import list_reviewers
    from ..store import Store

    store = Store(Settings.from_env().database_url)
    try:
        accounts = list_reviewers(store)
    finally:
        store.dispose()
    for account in accounts:
        state = f"disabled {account.disabled_at:%Y-%m-%d %H:%M} UTC" if account.disabled_at else "active"
        role = "admin" if account.is_admin else "reviewer"
        click.echo(f"{account.username}\t{role}\tcreated {account.created_at:%Y-%m-%d %H:%M} UTC\t{state}")
    if not accounts:
        click.echo("no reviewers: `reconcile reviewer add NAME`")


def _account_change(change, username: str, *args) -> None:
    from ..store import Store

    store = Store(Settings.from_env().database_url)
    try:
        change(store, username, *args)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.dispose()


@reviewer.command("disable")
@click.argument("username")
def reviewer_disable(username: str) -> None:
    """Disable a reviewer: their sessions and API token stop working at once."""
    from ..review.queue import set_disabled

    _account_change(set_disabled, username, True)
    click.echo(f"reviewer {username} disabled; every session of theirs has ended")


@reviewer.command("enable")
@click.argument("username")
def reviewer_enable(username: str) -> None:
    """Enable a disabled reviewer again (they log in afresh; no old session comes back)."""
    from ..review.queue import set_disabled

    _account_change(set_disabled, username, False)
    click.echo(f"reviewer {username} enabled")


@reviewer.command("passwd")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="prompted for when omitted")
def reviewer_passwd(username: str, password: str) -> None:
    """Set a reviewer's password; every session of theirs ends at once."""
    from ..review.queue import set_password

    _account_change(set_password, username, password)
    click.echo(f"password of {username} changed; every session of theirs has ended")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@main.command()
@click.option("--size", type=click.Choice(["sample", "small", "medium", "large"]), default="small", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", type=click.Path(dir_okay=False), help="default: data/synth/stream-SIZE-seedN.jsonl[.gz]; sample: data/sample_stream.jsonl")
@click.option("--overwrite", is_flag=True, help="replace the file when it exists (refused otherwise: data/sample_stream.jsonl is tracked)")
def synth(size: str, seed: int, out: str | None, overwrite: bool) -> None:
    """Write a seeded, labelled stream of checkout events (JSON Lines) for training and evaluation."""
    import time
    from pathlib import Path

    from ..synth.generator import SIZES, default_path, write_stream
    from ..training.progress import Bar

    path = Path(out) if out else default_path(size, seed)
    if path.exists() and not overwrite:
        raise click.ClickException(f"{path} exists already: choose another --out, or pass --overwrite")
    started = time.perf_counter()
    bar = Bar(enabled=True)
    with bar.run():
        task = bar.task(f"synth {size}, seed {seed}", SIZES[size])
        stats = write_stream(path, SIZES[size], seed, progress=lambda n: bar.update(task, n))
    click.echo(f"{stats.events} events of {stats.persons} persons in {time.perf_counter() - started:.1f}s: {path}")
    for kind, rate in stats.rates().items():
        click.echo(f"  {kind:<28} {rate:7.2%} of {'persons' if kind.startswith('persons_') else 'events'}")


@main.command()
@click.argument("stream", type=click.Path(exists=True, dir_okay=False))
@click.option("--limit", type=int, help="replay only the first N events")
@click.option("--db-url", help="an EMPTY scratch database, re-created per run (default: temporary SQLite files)")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="also write the metrics here")
@click.option("--assignments", type=click.Path(dir_okay=False), help="write each run's event -> final group here (JSONL)")
def evaluate(stream: str, limit: int | None, db_url: str | None, json_path: str | None, assignments: str | None) -> None:
    """Replay a labelled STREAM through /identify's code path; score the exact baseline and the full pipeline."""
    from ..synth.generator import read_stream
    from ..synth.replay import RUNS, evaluate_stream, print_report, write_json
    from ..training.progress import Bar

    total = sum(1 for _ in read_stream(stream, limit))
    bar = Bar(enabled=True)
    with bar.run():
        tasks = {run: bar.task(f"replay: {run}", total) for run, _ in RUNS}

        def progress(run: str, n: int) -> None:
            bar.update(tasks[run], n)

        report = evaluate_stream(
            stream, Settings.from_env(), database_url=db_url, limit=limit, progress=progress, assignments_path=assignments
        )
    print_report(report)
    if json_path:
        write_json(report, json_path)


@main.command()
@click.option("--from-stream", "stream", type=click.Path(exists=True, dir_okay=False), help="JSONL events (email, phoneNumber, name[, person])")
@click.option("--from-db", "from_db", is_flag=True, help="the Contact table of RECONCILE_DATABASE_URL, written as models/NAME.json (prefer --from-contacts)")
@click.option("--from-contacts", "from_contacts", is_flag=True, help="the live Contact table of RECONCILE_DATABASE_URL, no labels: writes models/VERSION/ and registers it (not active)")
@click.option("--name", default=None, help="--from-stream/--from-db: writes models/NAME.json, .tf.json, .metrics.json (default: stream-/db-<UTC timestamp>)")
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="--from-stream/--from-db: the model JSON to write (instead of --models-dir/--name)")
@click.option("--overwrite", is_flag=True, help="--from-stream/--from-db: replace model files that exist (refused otherwise)")
@click.option("--models-dir", type=click.Path(file_okay=False), default=None, help="default: the project's models/")
@click.option("--from-labels", "from_labels", is_flag=True, help="reviewers' labels and the Contact table of RECONCILE_DATABASE_URL: writes models/VERSION/")
@click.option("--target-precision", default=0.99, show_default=True, type=float, help="--from-labels: precision the upper threshold must reach on training labels")
@click.option("--version", "version", default=None, help="--from-labels/--from-contacts: the version (default: labels-/contacts-<UTC timestamp>)")
@click.option("--register/--no-register", default=True, show_default=True, help="--from-labels/--from-contacts: add the version to the registry (never activates it)")
@click.option(
    "--m-source", type=click.Choice(["weighted", "warm", "labels+em", "labels", "em", "groups"]), default=None,
    help="--from-labels (default weighted): weighted = the active model updated by every label weighted by "
    "1/inclusion probability; warm = updated by the labels unweighted; else from scratch with m from labels and/or EM. "
    "--from-contacts (default em): EM, or groups = m from the live groups taken as persons",
)
def train(
    stream: str | None, from_db: bool, from_contacts: bool, name: str | None, output: str | None, overwrite: bool,
    models_dir: str | None, from_labels: bool, target_precision: float, version: str | None, register: bool,
    m_source: str | None,
) -> None:
    """Train the Splink model (u by sampling, exact-level u from value frequencies, m by EM),
    or with --from-labels a new model version from reviewers' decisions. Never writes over
    an existing model (new versions get new names)."""
    from pathlib import Path

    from ..config import PROJECT_ROOT
    from ..training import train as training

    sources = sum(map(bool, (stream, from_db, from_contacts, from_labels)))
    if sources != 1:
        raise click.UsageError("give exactly one of --from-stream PATH, --from-db, --from-contacts and --from-labels")
    root = Path(models_dir) if models_dir else PROJECT_ROOT / "models"
    if from_labels or from_contacts:
        if output or name or overwrite:
            raise click.UsageError("--output, --name and --overwrite are for --from-stream/--from-db: use --version")
        if from_labels:
            if m_source == "groups":
                raise click.UsageError("--m-source groups is for --from-contacts")
            _train_from_labels(root, version, target_precision, register, m_source or "weighted")
        else:
            if m_source not in (None, "em", "groups"):
                raise click.UsageError("--from-contacts takes --m-source em or groups")
            _train_from_contacts(root, version, register, m_source or "em")
        return
    if m_source is not None:
        raise click.UsageError("--m-source is for --from-labels and --from-contacts")
    if output:
        if not output.endswith(".json") or output.endswith(".tf.json"):
            raise click.UsageError("--output is the model JSON to write, ending in .json")
        if name or models_dir:
            raise click.UsageError("give either --output or --models-dir/--name")
        root, name = Path(output).parent, Path(output).name[: -len(".json")]
    elif name is None:
        from datetime import datetime, timezone

        name = ("stream-" if stream else "db-") + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    settings = Settings.from_env()
    if stream:
        rows, invalid = training.read_stream(stream, settings.default_region)
        source = stream
    else:
        rows, invalid = training.read_database(settings.database_url, settings.default_region)
        source = _redact(settings.database_url)
    click.echo(f"{len(rows)} distinct records ({invalid} invalid or empty skipped) from {source}")
    try:
        metrics = training.train(rows, name, root, source, overwrite=overwrite, progress=True)
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"model {root / metrics['model']} trained in {metrics['seconds']['total']} s")
    for threshold, scores in metrics.get("heldout", {}).get("thresholds", {}).items():
        click.echo(
            f"  held-out p>={threshold}: precision {_metric(scores['precision'])} recall {_metric(scores['recall'])} "
            f"F1 {_metric(scores['f1'])}"
        )


def _train_from_contacts(models_dir, version: str | None, register: bool, m_source: str) -> None:
    from ..store import Store
    from ..training.from_contacts import ContactsTrainingError, train_from_contacts

    settings = Settings.from_env()
    store = Store(settings.database_url)
    try:
        result = train_from_contacts(
            store, settings, models_dir, version, m_source=m_source, register=register, progress=True
        )
    except (ContactsTrainingError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.dispose()
    records = result.summary["records"]
    click.echo(
        f"model {result.version} in {result.directory} ({result.summary['seconds']['total']:.1f} s): "
        f"{records['distinct']} distinct records in {records['live_groups']} live groups, no labels"
    )
    if result.registered:
        click.echo(
            f"registered {result.version} (not active; nothing measured without labels, so activation needs "
            f"`reconcile models activate {result.version} --force`)"
        )


from .models import models as _models  # noqa: E402 - `reconcile models ...`

main.add_command(_models)

from .bulk import export_command as _export_command  # noqa: E402 - `reconcile export --format parquet PATH`
from .bulk import import_command as _import_command  # noqa: E402 - `reconcile import FILE`

main.add_command(_import_command)
main.add_command(_export_command)

def _train_from_labels(models_dir, version: str | None, target_precision: float, register: bool, m_source: str) -> None:
    from ..store import Store
    from ..training.retrain import TrainingError, train_from_labels

    settings = Settings.from_env()
    store = Store(settings.database_url)
    try:
        result = train_from_labels(
            store, settings, models_dir, version, target_precision=target_precision, m_source=m_source,
            register=register, progress=True,
        )
    except (TrainingError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.dispose()
    labels = result.summary["labels"]
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo(
        f"model {result.version} in {result.directory} ({result.summary['seconds']['total']:.1f} s): "
        f"{labels['training']['pairs']} training labels ({labels['training']['confirmed']} confirmed), "
        f"{labels['heldout']['pairs']} held out"
    )
    t = result.thresholds
    click.echo(
        f"thresholds: upper {t['upper']:.6g} lower {t['lower']:.6g}; on training labels: precision {_metric(t['precision'])}, "
        f"false-match rate {t['false_match_rate']:.4f}, false non-match rate {t['false_non_match_rate']:.4f}"
    )
    for name in ("candidate", "active"):
        block = result.evaluation.get(name, {})
        if "error" in block:
            click.echo(f"held-out {name} {block.get('version')}: {block['error']}")
            continue
        pending = block.get("pending_merges", {})
        unmeasured = f" ({block['not_measurable']})" if block.get("not_measurable") else ""
        click.echo(
            f"held-out {name} {block['version']} (upper {block['upper']:.6g}, lower {block['lower']:.6g}), "
            f"{block['pairs']} pairs: precision {_metric(block['precision'])} recall {_metric(block['recall'])} "
            f"F1 {_metric(block['f1'])}{unmeasured}; "
            f"pending merges: {pending.get('link', 0)} link, {pending.get('drop', 0)} drop, {pending.get('review', 0)} stay"
        )
    if result.registered:
        click.echo(f"registered {result.version} (not active: `reconcile models activate {result.version}`)")


def _metric(value: float | None) -> str:
    return "not measurable" if value is None else f"{value:.4f}"


@main.group()
def labels() -> None:
    """Reviewers' decisions as labelled pairs of records (CSV import/export)."""


@labels.command("export")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
def labels_export(path: str) -> None:
    """Write every label as one pair of records to PATH (CSV)."""
    from ..review.labels import load_labels, write_csv
    from ..store import Store

    settings = Settings.from_env()
    store = Store(settings.database_url)
    try:
        pairs, skipped = load_labels(store, settings.default_region)
    finally:
        store.dispose()
    n = write_csv(pairs, path)
    click.echo(f"{n} label(s) written to {path}" + (f"; {len(skipped)} skipped: {'; '.join(skipped[:5])}" if skipped else ""))


@labels.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--by", "decided_by", default=None, help="recorded as the labels' decidedBy")
def labels_import(path: str, decided_by: str | None) -> None:
    """Import labelled pairs from PATH (CSV: left_email,left_phoneNumber,left_name,
    right_email,right_phoneNumber,right_name,outcome[,source]); all or nothing."""
    from ..review.labels import LabelFileError, insert_labels, read_csv
    from ..store import Store

    settings = Settings.from_env()
    try:
        pairs = read_csv(path, settings.default_region)
    except LabelFileError as exc:
        raise click.ClickException(str(exc)) from None
    store = Store(settings.database_url)
    try:
        written = insert_labels(store, pairs, decided_by)
    finally:
        store.dispose()
    click.echo(f"{written} label(s) imported from {path} ({len(pairs) - written} already present)")


from .resolve import resolve  # noqa: E402 - registered beside the others

main.add_command(resolve)


if __name__ == "__main__":
    main()
