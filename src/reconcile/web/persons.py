"""``/persons``: look a person up and see why (read-only JSON).

``GET /persons/<id>`` and ``GET /persons?email=|phoneNumber=`` give whole groups,
``/persons/<id>/history`` their changes in time order (paged as ``/reviews`` is), and
``/persons/<id>/why?other=<id>`` the chain of links joining two contacts. Thin: decode,
delegate to :mod:`reconcile.review.persons`, encode.

Contact ids can be enumerated, so these answers are never open: they need a reviewer
(bearer token, or the review UI's session) or one of ``RECONCILE_API_KEYS``, even when
``/identify`` is left open because no key is configured.
"""
from __future__ import annotations

import hmac
import re

from flask import Blueprint, current_app, jsonify, request

from ..normalize import InvalidInput, normalize_email, normalize_phone
from ..review import persons as lookup
from ..review.queue import MAX_PAGE, MAX_PER_PAGE
from ..store.persons import MAX_CONTACT_ID
from .auth import _bearer, authenticate_api
from .errors import ApiError
from .reviews import int_arg

bp = Blueprint("persons", __name__, url_prefix="/persons")

#: plain ASCII digits, short enough to convert (no signs, spaces or other scripts' digits)
_DIGITS = re.compile(r"[0-9]{1,19}")


@bp.before_request
def _authenticate() -> None:
    """One of the configured API keys (``X-API-Key`` or ``Authorization: Bearer``), else a
    reviewer exactly as ``/reviews`` authenticates one; no credentials is a 401."""
    keys = current_app.config["RECONCILE"].api_keys
    supplied = request.headers.get("X-API-Key")
    candidate = supplied if supplied is not None else _bearer()
    if keys and candidate is not None:
        # compare with every key, so the time taken does not say which one came close
        if any([hmac.compare_digest(key.encode(), candidate.encode()) for key in keys]):
            return
    if supplied is not None:
        raise ApiError(401, "unauthorized", "the API key is not valid")
    authenticate_api()


def _store():
    return current_app.extensions["reconcile"].store


def _settings():
    return current_app.config["RECONCILE"]


def _contact_id(raw: str) -> int:
    """A contact id from the path; anything that names no possible contact is a 404."""
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_CONTACT_ID:
        raise ApiError(404, "not_found", f"contact {raw[:40]!r} does not exist: ids are whole numbers from 1 to {MAX_CONTACT_ID}")
    return int(raw)


def _api_error(exc: lookup.PersonError) -> ApiError:
    return ApiError(404 if isinstance(exc, lookup.NotFound) else 409, exc.code, exc.message)


@bp.get("")
def find():
    """``?email=`` or ``?phoneNumber=`` (exactly one), normalised as ``/identify`` does."""
    email, phone = request.args.get("email"), request.args.get("phoneNumber")
    if (email is None) == (phone is None):
        raise ApiError(400, "invalid_parameter", "give exactly one of email and phoneNumber", field="email")
    try:
        if email is not None:
            value = normalize_email(email)
            field = "email"
        else:
            value = normalize_phone(phone, _settings().default_region)
            field = "phoneNumber"
    except InvalidInput as exc:
        raise ApiError(400, "invalid_parameter", exc.message, field=exc.field) from None
    if value is None:
        raise ApiError(400, "invalid_parameter", f"{field} is empty", field=field)
    found = lookup.find(_store(), email=value if field == "email" else None, phone=value if field == "phoneNumber" else None)
    return jsonify({"persons": found, "limit": lookup.MAX_SEARCH_GROUPS})


@bp.get("/<raw_id>")
def person(raw_id: str):
    try:
        return jsonify(lookup.person(_store(), _contact_id(raw_id)))
    except lookup.PersonError as exc:
        raise _api_error(exc) from None


@bp.get("/<raw_id>/history")
def history(raw_id: str):
    contact_id = _contact_id(raw_id)
    page = int_arg("page", 1, MAX_PAGE)
    per_page = int_arg("per_page", 50, MAX_PER_PAGE)
    try:
        return jsonify(lookup.history(_store(), contact_id, page, per_page).as_json())
    except lookup.PersonError as exc:
        raise _api_error(exc) from None


@bp.get("/<raw_id>/why")
def why(raw_id: str):
    contact_id = _contact_id(raw_id)
    other = request.args.get("other")
    if other is None or not _DIGITS.fullmatch(other):
        raise ApiError(400, "invalid_parameter", "other must be a contact id (a whole number)", field="other")
    other_id = _contact_id(other)
    try:
        return jsonify(lookup.why(_store(), contact_id, other_id, current_app.extensions["reconcile"].guards))
    except lookup.PersonError as exc:
        raise _api_error(exc) from None
