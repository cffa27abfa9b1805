"""``POST /erasure``: an admin reviewer forgets a customer (see :mod:`reconcile.engine.erasure`).

Authenticated as the rest of the JSON API (a reviewer's bearer token, or the review
UI's session plus its CSRF token); only admin reviewers may erase.
"""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify

from ..engine.erasure import AmbiguousValue, ErasureKey, UnknownContact, erase
from .auth import authenticate_api
from .errors import ApiError
from .identify import decode_json_object

bp = Blueprint("erasure", __name__)
bp.before_request(authenticate_api)

KEYS = ("email", "phoneNumber", "contactId")
#: the largest id the Contact table's integer column holds on every backend
MAX_CONTACT_ID = 2**31 - 1


@bp.post("/erasure")
def erasure():
    if not g.reviewer.is_admin:
        raise ApiError(403, "forbidden", "only admin reviewers may erase customers")
    payload = decode_json_object()
    unknown = sorted(set(payload) - set(KEYS))
    if unknown:
        raise ApiError(400, "invalid_input", f"unknown field(s): {', '.join(unknown)}", field=unknown[0])
    contact_id = payload.get("contactId")
    if isinstance(contact_id, int) and not isinstance(contact_id, bool) and contact_id > MAX_CONTACT_ID:
        raise ApiError(404, "not_found", f"contact {contact_id} does not exist")
    reconciler = current_app.extensions["reconcile"]
    key = ErasureKey.parse(
        payload.get("email"), payload.get("phoneNumber"), contact_id, reconciler.settings.default_region
    )
    try:
        result = erase(reconciler.store, key, by=g.reviewer.username)
    except UnknownContact as exc:
        raise ApiError(404, exc.code, exc.message) from None
    except AmbiguousValue as exc:
        raise ApiError(409, exc.code, exc.message) from None
    return jsonify({"erasure": result.as_json()})
