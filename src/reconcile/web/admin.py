"""Model administration: the ``/admin/models`` JSON API and the review UI's
``/review/admin/models`` page.

Same authentication as ``/reviews`` (a reviewer's bearer token, or the review UI's
session plus its CSRF token); any reviewer may look, only admin reviewers may activate
or roll back. Charts are served only as the known chart files of a registered version,
looked up by version and file name in the registry, never from a path in the URL.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, g, jsonify, redirect, render_template, request, send_file, url_for

from ..review.audit_estimates import audit_report
from ..store import models as registry
from ..training import registry as model_admin
from . import review_ui
from .auth import authenticate_api
from .errors import ApiError
from .identify import decode_optional_json_object

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(authenticate_api)

CHART_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
#: the model_version.version column's length; a longer name (or one with a NUL, which
#: PostgreSQL refuses in any string) can name no version, so it never reaches the database
MAX_VERSION = 64


def _known_shape(version: str) -> str:
    if len(version) > MAX_VERSION or "\x00" in version:
        raise ApiError(404, "unknown_model", f"no model version of that name is registered (at most {MAX_VERSION} characters)")
    return version


def _reconciler():
    return current_app.extensions["reconcile"]


def _require_admin() -> None:
    if not g.reviewer.is_admin:
        raise ApiError(403, "forbidden", "only admin reviewers may change the active model")


def _force(payload: dict) -> bool:
    force = payload.get("force", False)
    if not isinstance(force, bool):
        raise ApiError(400, "invalid_input", "force must be true or false", field="force")
    return force


def _listing() -> dict:
    records = registry.list_models(_reconciler().store)
    active = next((r.version for r in records if r.active), None)
    upper = _reconciler().settings.upper_threshold
    return {
        "models": [model_admin.summary(r, upper) for r in records],
        "active": active,
        "serving": _reconciler().models.current().as_json(),
        "audit": audit_report(_reconciler().store).as_json(),
    }


def _change(kind: str, version: str | None, force: bool, by: str):
    """Activate or roll back; the answer for the API, or ActivationRefused / UnknownModel."""
    store = _reconciler().store
    minimum = _reconciler().settings.min_heldout_pairs
    if kind == "rollback":
        record, decision = model_admin.rollback(store, force=force, by=by, min_heldout_pairs=minimum)
    else:
        record, decision = model_admin.activate(
            store, _known_shape(version), force=force, by=by, min_heldout_pairs=minimum
        )
    _reconciler().models.refresh()  # this worker at once; the others within the poll interval
    return record, decision


_REFUSAL_STATUS = {"activation_refused": 409, "nothing_to_roll_back": 409, "model_unloadable": 422}


def _api_change(kind: str, version: str | None = None):
    _require_admin()
    force = _force(decode_optional_json_object())
    try:
        record, decision = _change(kind, version, force, g.reviewer.username)
    except model_admin.UnknownModel as exc:
        raise ApiError(404, "unknown_model", str(exc)) from None
    except model_admin.ActivationRefused as exc:
        extra = {"decision": exc.decision.as_json()} if exc.decision else {}
        raise ApiError(_REFUSAL_STATUS.get(exc.code, 409), exc.code, exc.message, **extra) from None
    return jsonify({"model": model_admin.summary(record), "decision": decision.as_json(), "forced": not decision.allowed})


@bp.get("/models")
def list_models():
    return jsonify(_listing())


@bp.post("/models/<version>/activate")
def activate(version: str):
    return _api_change("activate", version)


@bp.post("/models/rollback")
def rollback():
    return _api_change("rollback")


@bp.get("/models/<version>/charts/<name>")
def chart(version: str, name: str):
    try:
        record = registry.get_model(_reconciler().store, _known_shape(version))
    except (model_admin.UnknownModel, ApiError):
        raise ApiError(404, "not_found", "no such chart") from None
    path = model_admin.chart_path(record, name)
    if path is not None:
        response = send_file(path, mimetype="image/svg+xml", max_age=0)
    else:
        drawn = model_admin.drawn_chart(record, name)
        if drawn is None:
            raise ApiError(404, "not_found", "no such chart")
        response = Response(drawn, mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = CHART_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# --- the review UI's admin page (routes on the review UI's blueprint: its login and
# CSRF checks run first) ------------------------------------------------------------


def _ui_admin_only():
    if not g.reviewer.is_admin:
        return review_ui._error_page(403, "Only admin reviewers may manage models.")
    return None


@review_ui.bp.get("/admin/models")
def models_page():
    refused = _ui_admin_only()
    if refused:
        return refused
    listing = _listing()
    current = next((m for m in listing["models"] if m["active"]), None)
    decisions = {}
    for m in listing["models"]:
        if not m["active"]:
            decision, _target, _current = model_admin.decide(_reconciler().store, m["version"])
            decisions[m["version"]] = decision
    return render_template(
        "review/models.html",
        models=listing["models"],
        active=current,
        serving=listing["serving"],
        decisions=decisions,
        configured={"upper": _reconciler().settings.upper_threshold, "lower": _reconciler().settings.lower_threshold},
        audit=listing["audit"],
    )


@review_ui.bp.post("/admin/models/<version>/activate")
def models_activate(version: str):
    return _ui_change("activate", version)


@review_ui.bp.post("/admin/models/rollback")
def models_rollback():
    return _ui_change("rollback", None)


def _ui_change(kind: str, version: str | None):
    refused = _ui_admin_only()
    if refused:
        return refused
    force = request.form.get("force") in ("1", "on", "true")
    try:
        record, decision = _change(kind, version, force, g.reviewer.username)
    except (model_admin.UnknownModel, model_admin.ActivationRefused, ApiError) as exc:
        flash(getattr(exc, "message", str(exc)), "error")
    else:
        prefix = "Forced: " if not decision.allowed else ""
        flash(f"{prefix}{record.version} is now active. {decision.reason}", "ok")
    return redirect(url_for("review_ui.models_page"))
