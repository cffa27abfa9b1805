"""``GET /healthz`` (database reachability) and ``GET /openapi.json``."""
from __future__ import annotations

import json
import logging
from functools import cache
from importlib import resources

from flask import Blueprint, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz():
    """Anyone may call this (load balancers do), so the answer says whether the database
    answered and which backend it is, never where it is: a driver's error names the host
    and port, so it goes to the log only."""
    store = current_app.extensions["reconcile"].store
    try:
        store.ping()
    except SQLAlchemyError as exc:
        log.warning("health check: database unreachable: %s", exc.orig or exc)
        return jsonify({"status": "unavailable", "database": "unreachable"}), 503
    return jsonify({"status": "ok", "database": store.dialect})


@cache
def openapi_document() -> dict:
    return json.loads(resources.files("reconcile").joinpath("openapi.json").read_text())


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())
