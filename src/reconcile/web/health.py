"""``GET /healthz`` (database reachability and writability) and ``GET /openapi.json``."""
from __future__ import annotations

import json
import logging
from functools import cache
from importlib import resources

from flask import Blueprint, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from .errors import RETRY_AFTER_SECONDS

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


#: seconds the health check waits for the database's write lock: a writer that waits
#: longer than this is already far slower than any request should be
WRITE_PROBE_SECONDS = 0.5


@bp.get("/healthz")
def healthz():
    """Anyone may call this (load balancers do), so the answer says whether the database
    answered and which backend it is, never where it is: a driver's error names the host
    and port, so it goes to the log only.

    A database that answers reads but whose write lock stays held elsewhere (every
    ``/identify`` would wait, then fail) is reported as ``write-stuck``: the probe takes
    the write lock for an instant, writing nothing, and waits at most
    :data:`WRITE_PROBE_SECONDS`.
    """
    store = current_app.extensions["reconcile"].store
    try:
        store.ping()
        writable = store.writable(WRITE_PROBE_SECONDS)
    except SQLAlchemyError as exc:
        log.warning("health check: database unreachable: %s", getattr(exc, "orig", None) or exc)
        return _unavailable("unreachable")
    if not writable:
        log.warning("health check: the database's write lock stayed held for %s s", WRITE_PROBE_SECONDS)
        return _unavailable("write-stuck")
    return jsonify({"status": "ok", "database": store.dialect})


def _unavailable(database: str):
    response = jsonify({"status": "unavailable", "database": database})
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response, 503


@cache
def openapi_document() -> dict:
    return json.loads(resources.files("reconcile").joinpath("openapi.json").read_text())


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())
