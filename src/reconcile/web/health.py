"""``GET /healthz`` (database reachability) and ``GET /openapi.json``."""
from __future__ import annotations

import json
from functools import cache
from importlib import resources

from flask import Blueprint, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    store = current_app.extensions["reconcile"].store
    try:
        store.ping()
    except SQLAlchemyError as exc:
        return jsonify({"status": "unavailable", "database": "unreachable", "detail": str(exc.orig or exc)[:200]}), 503
    return jsonify({"status": "ok", "database": store.dialect})


@cache
def openapi_document() -> dict:
    return json.loads(resources.files("reconcile").joinpath("openapi.json").read_text())


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())
