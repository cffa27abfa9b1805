"""One JSON error shape for every failure: ``{"error": {"code": ..., "message": ...}}``.

A 503 (the database is unreachable, or busy past the configured lock or statement
timeout) always carries ``Retry-After``: the request changed nothing and may be sent again.
"""
from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from ..normalize import InvalidInput
from ..store import DatabaseBusy, StaleGroup, is_busy

log = logging.getLogger(__name__)

#: seconds a client is asked to wait before retrying after a 503
RETRY_AFTER_SECONDS = 1


class ApiError(Exception):
    """An error with an HTTP status and a stable machine-readable code."""

    def __init__(self, status: int, code: str, message: str, *, retry_after: int | None = None, **extra):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def error_response(status: int, code: str, message: str, **extra):
    body = {"error": {"code": code, "message": message, **extra}}
    return jsonify(body), status


def unavailable(code: str, message: str, retry_after: int = RETRY_AFTER_SECONDS):
    """A 503 in the standard shape, with ``Retry-After``."""
    response, status = error_response(503, code, message)
    response.headers["Retry-After"] = str(retry_after)
    return response, status


def _busy():
    return unavailable("database_busy", "the database is busy (a lock was held too long); nothing was changed, retry shortly")


def _slug(name: str) -> str:
    return name.lower().replace(" ", "_").replace("'", "")


def _is_review_page(path: str) -> bool:
    return path.startswith("/review/") and not path.startswith("/review/static/")


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        response, status = error_response(exc.status, exc.code, exc.message, **exc.extra)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response, status

    @app.errorhandler(DatabaseBusy)
    def _db_busy(exc: DatabaseBusy):
        log.warning("database busy: %s", exc)
        return _busy()

    @app.errorhandler(StaleGroup)
    def _stale(exc: StaleGroup):
        # the store retried the transaction and the group kept changing under it: contention,
        # not a fault of the request, which changed nothing and may succeed again
        log.warning("group kept changing: %s", exc)
        return unavailable(
            "database_busy", "a group kept changing while it was being locked; nothing was changed, retry shortly"
        )

    @app.errorhandler(InvalidInput)
    def _invalid(exc: InvalidInput):
        return error_response(400, "invalid_input", exc.message, field=exc.field)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if exc.code == 404 and _is_review_page(request.path):
            # a browser following a bad link (an id out of range never matches a route)
            # gets the UI's page, not the API's JSON
            message = "Nothing here: the page, or the record it names, does not exist."
            return render_template("review/error.html", status=404, message=message), 404
        body, status = error_response(exc.code or 500, _slug(exc.name), exc.description or exc.name)
        if getattr(exc, "valid_methods", None):  # a 405 must say what is allowed
            body.headers["Allow"] = ", ".join(exc.valid_methods)
        return body, status

    @app.errorhandler(OperationalError)
    def _db_down(exc: OperationalError):
        if is_busy(exc):
            log.warning("database busy: %s", exc.orig)
            return _busy()
        log.warning("database unavailable: %s", exc.orig)
        return unavailable("database_unavailable", "the database is not reachable; retry shortly")

    @app.errorhandler(DBAPIError)
    def _db_error(exc: DBAPIError):
        if exc.connection_invalidated:
            return unavailable("database_unavailable", "the database connection was lost; retry shortly")
        log.exception("database error")
        return error_response(500, "internal_error", "the request failed and changed nothing")

    @app.errorhandler(Exception)
    def _crash(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "the request failed and changed nothing")
