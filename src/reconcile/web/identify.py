"""``POST /identify``: the contract's endpoint. Thin: decode, delegate, encode.

The request is answered by :class:`IdentifyRoute`, in front of Flask, straight from the
WSGI environ: Flask's request and response objects, URL matching, contexts and hooks
cost about as much CPU per request as a look-up in the engine (bench/README.md,
"The /identify route"). It does everything the Flask route and its hooks do (the API
key, the body limit, validation, the metrics, the security headers) and hands every
other case to Flask: a request it would not answer the same way (no or too long a
``Content-Length``, a chunked or cut-short body, a refused API key) goes to the
blueprint below unchanged, and an error raised while answering goes to the app's error
handlers, so every error keeps its one JSON shape.
"""
from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterable

import orjson
from flask import Blueprint, Flask, Response, current_app, g, request

from ..engine.reconciler import Reconciler
from .auth import api_key_accepted, require_api_key
from .errors import ApiError
from .metrics import observe_identify
from .security_headers import API_HEADER_LIST

bp = Blueprint("identify", __name__)
bp.before_request(require_api_key)  # only when RECONCILE_API_KEYS is set

PATH = "/identify"


def decode_json_object() -> dict:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    return decode_json_bytes(request.get_data(cache=False))


def decode_optional_json_object() -> dict:
    """The body of a call whose fields are all optional (a decision's note): a JSON object,
    an empty body meaning ``{}``, or the same 400s as :func:`decode_json_bytes` (too deep
    a nesting included, which Flask's ``get_json(silent=True)`` lets through as a 500)."""
    raw = request.get_data(cache=True)
    return decode_json_bytes(raw) if raw.strip() else {}


def decode_json_bytes(raw: bytes) -> dict:
    """``raw`` as a JSON object, or a 400 that says what is wrong with it."""
    if not raw.strip():
        raise ApiError(400, "invalid_json", "request body is empty; send a JSON object")
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: deep nesting
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_json", "request body must be a JSON object")
    return payload


def answer(reconciler: Reconciler, raw: bytes) -> tuple[bytes, str]:
    """The JSON answer to a request body, and its ``match.method`` (for the metrics)."""
    result = reconciler.identify(reconciler.parse(decode_json_bytes(raw)))
    # orjson: the answer encoded in C (bench/web_profile.py); the same JSON values as
    # jsonify, non-ASCII as UTF-8 rather than \u escapes
    return orjson.dumps(result.as_json()), result.match["method"]


@bp.post(PATH)
def identify():
    """The requests :class:`IdentifyRoute` hands over (see the module's docstring)."""
    payload, g.identify_method = answer(current_app.extensions["reconcile"], request.get_data(cache=False))
    return Response(payload, mimetype="application/json")


class IdentifyRoute:
    """WSGI middleware (``app.wsgi_app``) answering ``POST /identify`` without Flask's
    per-request machinery; every other request, and every case it does not answer
    itself, goes to ``app`` (see the module's docstring)."""

    def __init__(self, app: Flask, wsgi_app: Callable[[dict, Callable], Iterable[bytes]]):
        self.app = app
        self.wsgi_app = wsgi_app
        self.api_keys = app.config["RECONCILE"].api_keys
        self.max_body = app.config["MAX_CONTENT_LENGTH"]

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.wsgi_app(environ, start_response)
        length = environ.get("CONTENT_LENGTH", "")
        if not (length.isascii() and length.isdigit()) or int(length) > self.max_body:
            return self.wsgi_app(environ, start_response)  # chunked, none or too long: Flask's 413 and reading
        if self.api_keys and not api_key_accepted(
            self.api_keys, environ.get("HTTP_X_API_KEY"), environ.get("HTTP_AUTHORIZATION")
        ):
            return self.wsgi_app(environ, start_response)  # the blueprint's hook answers the 401
        started = time.perf_counter()
        raw = environ["wsgi.input"].read(int(length))
        if len(raw) != int(length):  # the client went away mid-body: werkzeug's answer
            environ["wsgi.input"] = io.BytesIO(raw)
            return self.wsgi_app(environ, start_response)
        try:
            payload, method = answer(self.app.extensions["reconcile"], raw)
        except Exception as exc:  # noqa: BLE001 - every error goes to the app's handlers
            return self._error(environ, raw, exc, started, start_response)
        observe_identify(200, method, started)
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload))), *API_HEADER_LIST],
        )
        return [payload]

    def _error(self, environ: dict, raw: bytes, exc: Exception, started: float, start_response: Callable):
        """The answer Flask gives when its route raises ``exc``: the app's error handler,
        then its after-request hooks (metrics timed from ``started``, security headers)."""
        environ["wsgi.input"] = io.BytesIO(raw)
        with self.app.request_context(environ):
            g.identify_started = started
            response = self.app.finalize_request(self.app.handle_user_exception(exc))
            return response(environ, start_response)


def init_app(app: Flask) -> None:
    """Put :class:`IdentifyRoute` in front of the app: last, once the engine is built."""
    app.wsgi_app = IdentifyRoute(app, app.wsgi_app)
