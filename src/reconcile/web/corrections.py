"""``/persons/{contactId}/detach`` and its undo: a reviewer's correction of a wrong merge.

Thin: authenticate like ``/reviews`` (a reviewer's bearer token, or a session plus its
CSRF token), decode, delegate to :mod:`reconcile.review.detach`, encode. A refusal is a
409 (or 403, 404) with a stable code; an id outside the id column's range is a 404.
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify

from ..review import detach as corrections
from .auth import authenticate_api
from .errors import ApiError
from .identify import decode_optional_json_object
from .reviews import MAX_NOTE

bp = Blueprint("corrections", __name__, url_prefix="/persons")
bp.before_request(authenticate_api)

#: ids are 32-bit on PostgreSQL: a larger one names nothing (and must never reach the database)
MAX_ID = 2**31 - 1

_STATUS_OF_ERROR = {
    corrections.NotFound: 404,
    corrections.NothingToDetach: 409,
    corrections.CannotUndo: 409,
    corrections.GroupBusy: 409,
    corrections.NotYours: 403,
}


def _error(exc: corrections.DetachError) -> ApiError:
    return ApiError(_STATUS_OF_ERROR.get(type(exc), 409), exc.code, exc.message, id=exc.target_id)


def _in_range(kind: str, value: int) -> int:
    if not 1 <= value <= MAX_ID:
        raise ApiError(404, "not_found", f"{kind} {value} does not exist", id=value)
    return value


def _required_note() -> str:
    note = decode_optional_json_object().get("note")
    if not isinstance(note, str) or not note.strip() or len(note) > MAX_NOTE or "\x00" in note:
        raise ApiError(
            400, "invalid_input", f"note is required: a non-empty string of at most {MAX_NOTE} characters, without NUL",
            field="note",
        )
    return note.strip()


@bp.post("/<int(signed=True):contact_id>/detach")
def detach(contact_id: int):
    contact_id = _in_range("contact", contact_id)
    note = _required_note()
    reconciler = current_app.extensions["reconcile"]
    try:
        result = corrections.detach(reconciler.store, reconciler.guards, contact_id, g.reviewer.username, note)
    except corrections.DetachError as exc:
        raise _error(exc) from None
    return jsonify(result.as_json())


@bp.post("/detachments/<int(signed=True):detachment_id>/undo")
def undo(detachment_id: int):
    detachment_id = _in_range("detachment", detachment_id)
    store = current_app.extensions["reconcile"].store
    try:
        result = corrections.undo(store, detachment_id, g.reviewer.username, admin=g.reviewer.is_admin)
    except corrections.DetachError as exc:
        raise _error(exc) from None
    return jsonify(result.as_json())
