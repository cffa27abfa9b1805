"""``POST /identify``: the contract's endpoint. Thin: decode, delegate, encode."""
from __future__ import annotations

import json

import orjson
from flask import Blueprint, Response, current_app, g, request

from .auth import require_api_key
from .errors import ApiError

bp = Blueprint("identify", __name__)
bp.before_request(require_api_key)  # only when RECONCILE_API_KEYS is set


def decode_json_object() -> dict:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise ApiError(400, "invalid_json", "request body is empty; send a JSON object")
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: deep nesting
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_json", "request body must be a JSON object")
    return payload


@bp.post("/identify")
def identify():
    reconciler = current_app.extensions["reconcile"]
    identity = reconciler.parse(decode_json_object())
    result = reconciler.identify(identity)
    g.identify_method = result.match["method"]  # for the metrics, without re-reading the body
    # orjson: the hot path's answer encoded in C (bench/web_profile.py); the same JSON
    # values as jsonify, non-ASCII as UTF-8 rather than \u escapes
    return Response(orjson.dumps(result.as_json()), mimetype="application/json")
