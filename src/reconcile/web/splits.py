"""``/reviews/splits``: split proposals (from ``reconcile resolve --apply``) as a JSON API,
beside the merge proposals of ``/reviews`` and with the same verbs: confirm accepts the
split, reject keeps the group.

Thin: authenticate like ``/reviews``, decode, delegate to :mod:`reconcile.review.splits`,
encode. A refused decision is a 409 (404 for an unknown id) with a stable code.
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from ..review import queue as review
from ..review import splits
from . import metrics
from .auth import authenticate_api
from .errors import ApiError
from .identify import decode_optional_json_object
from .reviews import _note, api_error, int_arg

bp = Blueprint("splits", __name__, url_prefix="/reviews/splits")
bp.before_request(authenticate_api)

STATUSES = ("pending", "confirmed", "rejected", "superseded")


@bp.get("")
def list_splits():
    status = request.args.get("status", "pending")
    if status not in STATUSES:
        raise ApiError(400, "invalid_parameter", f"status must be one of {', '.join(STATUSES)}", field="status")
    store = current_app.extensions["reconcile"].store
    page = splits.list_splits(
        store, status, int_arg("page", 1, review.MAX_PAGE), int_arg("per_page", splits.PER_PAGE, review.MAX_PER_PAGE)
    )
    return jsonify({**page, "counts": splits.counts(store)})


@bp.get("/<int:split_id>")
def get_split(split_id: int):
    try:
        return jsonify(splits.get_split(current_app.extensions["reconcile"].store, split_id))
    except review.ReviewError as exc:
        raise api_error(exc) from None


@bp.post("/<int:split_id>/confirm")
def confirm(split_id: int):
    note = _note(decode_optional_json_object())
    reconciler = current_app.extensions["reconcile"]
    return _decided(lambda: splits.confirm(reconciler.store, reconciler.guards, split_id, g.reviewer.username, note))


@bp.post("/<int:split_id>/reject")
def reject(split_id: int):
    note = _note(decode_optional_json_object())
    return _decided(lambda: splits.reject(current_app.extensions["reconcile"].store, split_id, g.reviewer.username, note))


def _decided(decide):
    try:
        result = decide()
    except review.ReviewError as exc:
        metrics.count_decision(exc.code)
        raise api_error(exc) from None
    metrics.count_decision(result.status)
    return jsonify(result.as_json())
