"""A server worker's app leaves what it built at start-up out of the garbage collector's
scans (``gc.freeze``), so a full collection during a request scans only newer objects."""
from __future__ import annotations

import gc

from reconcile.web.app import create_serving_app


def test_the_serving_app_freezes_its_start_up_objects(sqlite_db, monkeypatch):
    monkeypatch.setenv("RECONCILE_DATABASE_URL", sqlite_db)
    monkeypatch.setenv("RECONCILE_PROBABILISTIC", "0")
    gc.unfreeze()
    try:
        app = create_serving_app()
        assert gc.get_freeze_count() > 10_000
        assert app.extensions["reconcile"] is not None
        app.extensions["reconcile"].store.dispose()
    finally:
        gc.unfreeze()
