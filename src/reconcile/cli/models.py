"""``reconcile models list|activate|rollback|register``: the model registry from the shell.

Running workers pick an activation up within RECONCILE_MODEL_POLL_SECONDS, no restart.
"""
from __future__ import annotations

import getpass
import json

import click

from ..config import Settings


def _by(name: str | None) -> str:
    if name:
        return name[:64]
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "cli"


def _store():
    from ..store import Store

    return Store(Settings.from_env().database_url)


def register_default(settings: Settings) -> None:
    """After ``db upgrade``: an empty registry gets the configured model, active."""
    from ..store import Store
    from ..training.registry import ensure_default_registered

    store = Store(settings.database_url)
    try:
        record = ensure_default_registered(store, settings, by="db upgrade")
    except ValueError as exc:
        click.echo(f"warning: the configured model was not registered: {exc}", err=True)
        return
    finally:
        store.dispose()
    if record is not None:
        click.echo(f"registered the configured model as version {record.version} (active)")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


@click.group()
def models() -> None:
    """Model versions: list, register, activate (refuses a worse model), roll back."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="print the registry as JSON")
def models_list(as_json: bool) -> None:
    """The registered versions, oldest first; * marks the active one."""
    from ..store.models import list_models
    from ..training.registry import summary

    store = _store()
    try:
        records = list_models(store)
    finally:
        store.dispose()
    if as_json:
        click.echo(json.dumps([summary(r) for r in records], indent=2, default=str))
        return
    if not records:
        click.echo("no model registered: `reconcile models register PATH`")
        return
    click.echo(f"  {'version':<24} {'precision':>9} {'recall':>9} {'F1':>9} {'upper':>8} {'lower':>8}  activated")
    for record in records:
        info = summary(record)
        held = info["heldout"] or {}
        when = f"{info['activatedAt'] or '-'} by {record.activated_by or '-'}" if record.activated_at else "-"
        click.echo(
            f"{'*' if record.active else ' '} {record.version:<24} {_fmt(held.get('precision')):>9} "
            f"{_fmt(held.get('recall')):>9} {_fmt(held.get('f1')):>9} {_fmt(record.upper_threshold):>8} "
            f"{_fmt(record.lower_threshold):>8}  {when}"
        )


@models.command("register")
@click.argument("path", type=click.Path(exists=True))
@click.option("--version", "version", help="default: the directory's name, or the JSON file's name without .json")
def models_register(path: str, version: str | None) -> None:
    """Register a model directory (model.json, thresholds.json, evaluation.json) or a model JSON."""
    from ..training.registry import register_path

    store = _store()
    try:
        record = register_path(store, path, version)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.dispose()
    click.echo(f"registered {record.version} ({record.path}); activate with `reconcile models activate {record.version}`")


def _activation(kind: str, force: bool, by: str | None, version: str | None = None) -> None:
    from ..store.models import UnknownModel
    from ..training.registry import ActivationRefused, activate, rollback

    store = _store()
    minimum = Settings.from_env().min_heldout_pairs
    try:
        if kind == "rollback":
            record, decision = rollback(store, force=force, by=_by(by), min_heldout_pairs=minimum)
        else:
            record, decision = activate(store, version, force=force, by=_by(by), min_heldout_pairs=minimum)
    except (ActivationRefused, UnknownModel) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.dispose()
    if not decision.allowed:
        click.echo(f"forced: {decision.reason}")
    else:
        click.echo(decision.reason)
    click.echo(
        f"{record.version} is active (previous: {record.previous_version or '-'}); "
        "running workers switch within RECONCILE_MODEL_POLL_SECONDS"
    )


@models.command("activate")
@click.argument("version")
@click.option(
    "--force", is_flag=True,
    help="activate even if it is worse on held-out labels, or cannot be compared (too few held-out pairs: "
    "RECONCILE_MIN_HELDOUT_PAIRS; a metric not measurable)",
)
@click.option("--by", "by", help="who activates (recorded); default cli:<user>")
def models_activate(version: str, force: bool, by: str | None) -> None:
    """Make VERSION the active model, unless it is worse than the active one on held-out labels
    or the held-out labels cannot tell (fewer decided pairs than RECONCILE_MIN_HELDOUT_PAIRS,
    or a metric not measurable)."""
    _activation("activate", force, by, version)


@models.command("rollback")
@click.option("--force", is_flag=True, help="roll back even to a version measured worse")
@click.option("--by", "by", help="who rolls back (recorded); default cli:<user>")
def models_rollback(force: bool, by: str | None) -> None:
    """Re-activate the version the active one replaced."""
    _activation("rollback", force, by)
