"""``/reviews``: the review queue as a JSON API (list, show, confirm, reject, undo, bulk).

Thin: authenticate (:func:`reconcile.web.auth.authenticate_api`), decode, delegate to
:mod:`reconcile.review.queue`, encode. A refused decision is a 409 with a stable code.
"""
from __future__ import annotations

import re

from flask import Blueprint, current_app, g, jsonify, request

from ..review import cases
from ..review import queue as review
from ..store import models as registry
from . import metrics
from .auth import authenticate_api
from .errors import ApiError
from .identify import decode_optional_json_object
from .ids import MAX_ID, as_id

bp = Blueprint("reviews", __name__, url_prefix="/reviews")
bp.before_request(authenticate_api)

MAX_BULK = 500
MAX_NOTE = 2000
#: plain ASCII digits, short enough to convert (no signs, spaces, underscores or other scripts' digits)
_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")

_STATUS_OF_ERROR = {
    review.NotFound: 404,
    review.AlreadyDecided: 409,
    review.Superseded: 409,
    review.ResolvedElsewhere: 409,
    cases.CaseChanged: 409,
    review.CannotUndo: 409,
    review.NotYours: 403,
}


def api_error(exc: review.ReviewError) -> ApiError:
    return ApiError(_STATUS_OF_ERROR.get(type(exc), 409), exc.code, exc.message, id=exc.item_id)


def _store():
    return current_app.extensions["reconcile"].store


def bands() -> dict[str, tuple[float, float]]:
    """(lower, upper) thresholds of every model version an item may name: the registered
    versions, and the one this worker serves (which may be the shipped model, unregistered)."""
    found = {
        m.version: (m.lower_threshold, m.upper_threshold)
        for m in registry.list_models(_store())
        if m.lower_threshold is not None and m.upper_threshold is not None
    }
    serving = current_app.extensions["reconcile"].models.current()
    if serving.version is not None:
        found.setdefault(serving.version, (serving.thresholds.lower, serving.thresholds.upper))
    return found


def int_arg(name: str, default: int, maximum: int) -> int:
    """A query parameter from 1 to ``maximum`` (``default`` when absent).

    Anything else, an empty value included (the document says an integer), is a 400
    that states the range: a value above it is refused rather than capped, so a client
    never gets less than it asked for without knowing, and a huge number never reaches
    the database as an offset it cannot hold.
    """
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (_WHOLE_NUMBER.fullmatch(raw) and 1 <= int(raw) <= maximum):
        raise ApiError(400, "invalid_parameter", f"{name} must be a whole number from 1 to {maximum}", field=name)
    return int(raw)


def _note(payload: dict) -> str | None:
    note = payload.get("note")
    if note is None:
        return None
    if not isinstance(note, str) or len(note) > MAX_NOTE or "\x00" in note:
        raise ApiError(
            400, "invalid_input", f"note must be a string of at most {MAX_NOTE} characters, without NUL", field="note"
        )
    return note.strip() or None


@bp.get("")
def list_reviews():
    status = request.args.get("status", "pending") or None
    if status == "all":
        status = None
    if status is not None and status not in review.STATUSES:
        raise ApiError(400, "invalid_parameter", f"status must be all or one of {', '.join(review.STATUSES)}", field="status")
    order = request.args.get("order", "score")
    if order not in ("score", "age"):
        raise ApiError(400, "invalid_parameter", "order must be score or age", field="order")
    page = review.list_items(
        _store(),
        status=status,
        order=order,
        page=int_arg("page", 1, review.MAX_PAGE),
        per_page=int_arg("per_page", 50, review.MAX_PER_PAGE),
        bands=bands(),
    )
    return jsonify(
        {
            "items": page.items,
            "page": page.page,
            "perPage": page.per_page,
            "pages": page.pages,
            "total": page.total,
            "counts": page.counts,
        }
    )


@bp.get("/<int:item_id>")
def get_review(item_id: int):
    try:
        return jsonify(review.get_item(_store(), item_id, bands()))
    except review.ReviewError as exc:
        raise api_error(exc) from None


@bp.post("/<int:item_id>/confirm")
def confirm(item_id: int):
    return _decide(item_id, "confirm", _note(decode_optional_json_object()))


@bp.post("/<int:item_id>/reject")
def reject(item_id: int):
    return _decide(item_id, "reject", _note(decode_optional_json_object()))


def _decide(item_id: int, decision: review.Decision, note: str | None):
    try:
        result = review.decide(_store(), item_id, g.reviewer.username, decision, note)
    except review.ReviewError as exc:
        metrics.count_decision(exc.code)
        raise api_error(exc) from None
    metrics.count_decision(result.status)
    return jsonify(result.as_json())


@bp.post("/<int:item_id>/undo")
def undo(item_id: int):
    try:
        result = review.undo(_store(), item_id, g.reviewer.username, admin=g.reviewer.is_admin)
    except review.ReviewError as exc:
        raise api_error(exc) from None
    metrics.count_decision("undone")
    return jsonify(result.as_json())


@bp.get("/cases")
def list_cases():
    """The pending queue as cases: items touching the same groups, decided together."""
    order = request.args.get("order", "score")
    if order not in ("score", "age"):
        raise ApiError(400, "invalid_parameter", "order must be score or age", field="order")
    page = cases.list_cases(
        _store(),
        order=order,
        page=int_arg("page", 1, review.MAX_PAGE),
        per_page=int_arg("per_page", 50, review.MAX_PER_PAGE),
        bands=bands(),
    )
    return jsonify(
        {"cases": page.cases, "page": page.page, "perPage": page.per_page, "pages": page.pages, "total": page.total, "items": page.items}
    )


@bp.get("/cases/<int:item_id>")
def get_case(item_id: int):
    try:
        return jsonify(cases.get_case(_store(), item_id, bands()))
    except review.ReviewError as exc:
        raise api_error(exc) from None


def _id_list(value, field: str, *, limit: int = MAX_BULK) -> list[int]:
    ids = [as_id(i) for i in value] if isinstance(value, list) else None
    if not ids or len(ids) > limit or None in ids:
        raise ApiError(400, "invalid_input", f"{field} must be a list of 1 to {limit} ids (1 to {MAX_ID})", field=field)
    return ids


@bp.post("/cases/<int:item_id>/decide")
def decide_case(item_id: int):
    """Settle a case: ``persons`` lists its groups (primary ids) person by person."""
    payload = decode_optional_json_object()
    item_ids = _id_list(payload.get("itemIds"), "itemIds")
    persons = payload.get("persons")
    if not isinstance(persons, list) or not persons or len(persons) > MAX_BULK:
        raise ApiError(400, "invalid_input", "persons must be a list of lists of group (primary) ids", field="persons")
    persons = [_id_list(p, "persons") for p in persons]
    try:
        results = cases.decide_case(_store(), item_ids, persons, g.reviewer.username, _note(payload), case_id=item_id)
    except review.ReviewError as exc:
        metrics.count_decision(exc.code)
        raise api_error(exc) from None
    except ValueError as exc:
        raise ApiError(400, "invalid_input", str(exc), field="persons") from None
    for result in results:
        metrics.count_decision(result.status)
    return jsonify({"results": [r.as_json() for r in results]})


@bp.post("/bulk")
def bulk():
    """Decide many items, each on its own: the answer lists every id's outcome."""
    payload = decode_optional_json_object()
    ids, decision = payload.get("ids"), payload.get("decision")
    if decision not in ("confirm", "reject"):
        raise ApiError(400, "invalid_input", "decision must be confirm or reject", field="decision")
    if isinstance(ids, list):
        ids = [as_id(i) for i in ids]
    if not isinstance(ids, list) or not ids or len(ids) > MAX_BULK or None in ids:
        raise ApiError(
            400, "invalid_input", f"ids must be a list of 1 to {MAX_BULK} review ids (1 to {MAX_ID})", field="ids"
        )
    outcomes = review.decide_many(_store(), ids, g.reviewer.username, decision, _note(payload))
    results = []
    for outcome in outcomes:
        if isinstance(outcome, review.ReviewError):
            metrics.count_decision(outcome.code)
            results.append({"id": outcome.item_id, "ok": False, "error": {"code": outcome.code, "message": outcome.message}})
        else:
            metrics.count_decision(outcome.status)
            results.append({"ok": True, **outcome.as_json()})
    done = sum(r["ok"] for r in results)
    return jsonify({"results": results, "decided": done, "refused": len(results) - done})
