"""The model registry: which Splink model versions exist, their metrics and thresholds,
and which one is active. Activation is explicit and reversible (``previousVersion``)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from . import Store
from .contacts import as_utc, utcnow
from .schema import model_version


@dataclass(frozen=True)
class ModelRecord:
    version: str
    path: str
    metrics: dict[str, Any] | None
    upper_threshold: float | None
    lower_threshold: float | None
    active: bool
    created_at: Any
    activated_at: Any
    activated_by: str | None
    previous_version: str | None

    @classmethod
    def from_row(cls, row) -> "ModelRecord":
        return cls(
            version=row.version,
            path=row.path,
            metrics=row.metrics,
            upper_threshold=row.upperThreshold,
            lower_threshold=row.lowerThreshold,
            active=bool(row.active),
            created_at=as_utc(row.createdAt),
            activated_at=as_utc(row.activatedAt),
            activated_by=row.activatedBy,
            previous_version=row.previousVersion,
        )


class UnknownModel(LookupError):
    """No model with that version is registered."""


@contextmanager
def _writing(store: Store) -> Iterator[Any]:
    """A write transaction; on SQLite ``BEGIN IMMEDIATE``, so it waits for the write lock
    instead of failing to upgrade a read lock while /identify writes (ignored elsewhere)."""
    with store.engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn:
        with conn.begin():
            yield conn


def register_model(
    store: Store,
    version: str,
    path: str,
    *,
    metrics: dict[str, Any] | None = None,
    upper_threshold: float | None = None,
    lower_threshold: float | None = None,
) -> ModelRecord:
    """Add a version to the registry (inactive). Re-registering a version updates it."""
    with _writing(store) as conn:
        exists = conn.execute(select(model_version.c.version).where(model_version.c.version == version)).first()
        values = {
            "path": path,
            "metrics": metrics,
            "upperThreshold": upper_threshold,
            "lowerThreshold": lower_threshold,
        }
        if exists:
            conn.execute(update(model_version).where(model_version.c.version == version).values(**values))
        else:
            conn.execute(insert(model_version).values(version=version, createdAt=utcnow(), active=False, **values))
    return get_model(store, version)


def get_model(store: Store, version: str) -> ModelRecord:
    with store.reading() as conn:
        row = conn.execute(select(model_version).where(model_version.c.version == version)).first()
    if row is None:
        raise UnknownModel(f"no model version {version!r} is registered: see `reconcile models list`")
    return ModelRecord.from_row(row)


def list_models(store: Store) -> list[ModelRecord]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(model_version).order_by(model_version.c.createdAt)).all()
    return [ModelRecord.from_row(r) for r in rows]


def active_model(store: Store) -> ModelRecord | None:
    """The active version, or ``None`` when the service runs on its configured default."""
    with store.reading() as conn:
        row = conn.execute(select(model_version).where(model_version.c.active.is_(True))).first()
    return ModelRecord.from_row(row) if row else None


def active_key(store: Store) -> tuple | None:
    """What identifies the serving choice, in one cheap query: (version, path, upper,
    lower, activatedAt) of the active version, or None. Workers poll this, so on a
    connection that reads only (:meth:`Store.reading`: no ROLLBACK to drop the pooled
    connection's prepared statements)."""
    with store.reading() as conn:
        row = conn.execute(
            select(
                model_version.c.version,
                model_version.c.path,
                model_version.c.upperThreshold,
                model_version.c.lowerThreshold,
                model_version.c.activatedAt,
            ).where(model_version.c.active.is_(True))
        ).first()
    return tuple(row) if row else None


def set_active(store: Store, version: str, by: str | None) -> ModelRecord:
    """Make ``version`` the only active model, remembering the one it replaces."""
    with _writing(store) as conn:
        target = conn.execute(
            select(model_version).where(model_version.c.version == version).with_for_update()
        ).first()
        if target is None:
            raise UnknownModel(f"no model version {version!r} is registered: see `reconcile models list`")
        current = conn.execute(select(model_version.c.version).where(model_version.c.active.is_(True))).scalar()
        conn.execute(update(model_version).where(model_version.c.active.is_(True)).values(active=False))
        conn.execute(
            update(model_version)
            .where(model_version.c.version == version)
            .values(
                active=True,
                activatedAt=utcnow(),
                activatedBy=by,
                previousVersion=current if current != version else target.previousVersion,
            )
        )
    return get_model(store, version)
