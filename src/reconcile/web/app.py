"""The HTTP service: :func:`create_app` wires the settings, the store, the engine and
each area's blueprint. Nothing below ``web/`` imports Flask."""
from __future__ import annotations

import logging

from flask import Flask

from ..config import Settings
from ..engine.heap import settle_heap
from ..engine.reconciler import Reconciler
from ..store import Store
from .auth import persistent_secret_key
from .bounded_request import BoundedRequest

MAX_BODY_BYTES = 64 * 1024


def create_app(settings: Settings | None = None) -> Flask:
    """Application factory: configuration, the store, then each area's blueprint."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.request_class = BoundedRequest  # the body limit holds for chunked bodies too
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        SECRET_KEY=settings.secret_key or persistent_secret_key(settings.database_url, app.instance_path),
        JSON_SORT_KEYS=False,
        RECONCILE=settings,
    )
    app.json.sort_keys = False
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    store = Store(
        settings.database_url,
        pool_size=settings.db_pool_size,
        lock_timeout=settings.db_lock_timeout_seconds,
        statement_timeout=settings.db_statement_timeout_seconds or None,
    )
    if settings.probabilistic:
        _register_default_model(store, settings)
    app.extensions["reconcile"] = Reconciler(store, settings)

    from . import (
        admin,
        auth,
        corrections,
        erasure,
        errors,
        health,
        identify,
        ids,
        metrics,
        person_page,
        persons,
        review_ui,
        reviews,
        security_headers,
        split_page,
        splits,
    )

    errors.register_error_handlers(app)
    ids.init_app(app)
    security_headers.init_app(app)
    auth.init_app(app)
    metrics.init_app(app)
    app.register_blueprint(identify.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(reviews.bp)
    app.register_blueprint(review_ui.bp)  # with admin's /review/admin/models, person_page's /review/persons and split_page's /review/splits pages
    app.register_blueprint(admin.bp)
    app.register_blueprint(persons.bp)
    app.register_blueprint(corrections.bp)  # /persons/{id}/detach and its undo
    app.register_blueprint(splits.bp)  # /reviews/splits: split proposals from reconcile resolve
    app.register_blueprint(erasure.bp)
    identify.init_app(app)
    return app


def _register_default_model(store: Store, settings: Settings) -> None:
    """First start: an empty model registry gets the configured model, active."""
    from sqlalchemy.exc import SQLAlchemyError

    from ..training.registry import ensure_default_registered

    try:
        ensure_default_registered(store, settings)
    except (SQLAlchemyError, ValueError) as exc:  # no registry table yet, or a bad model file
        logging.getLogger(__name__).warning("default model not registered: %s", exc)


def create_serving_app() -> Flask:
    """The app one server worker serves: :func:`create_app`, then every object built at
    start-up (modules, the model and its scorer tables, SQLAlchemy's metadata: some 90k)
    moved out of the garbage collector's reach (:func:`reconcile.engine.heap.settle_heap`).
    A full collection then scans only what requests have added since; replaying the
    growth stream, the longest collection pause went from 47 to 20 ms of CPU
    (bench/README.md)."""
    app = create_app()
    settle_heap()
    return app
