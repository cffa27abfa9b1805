"""Who is asking: reviewer sessions (the review UI), reviewer API tokens (the ``/reviews``
JSON API), API keys (``/identify``), and CSRF protection for everything a session can change.

A session is Flask's signed cookie (HttpOnly, SameSite=Lax, Secure when configured)
holding the reviewer's name, the account's session generation when it was issued, and a
per-session CSRF token. The cookie alone cannot be revoked, so the server keeps the
generation: logout, a password change and disabling the account move it on, and every
cookie issued before (a copied one too) stops working at once. A call that authenticates
with a bearer token carries no ambient credential, so it needs no CSRF token; a call
that rides on the session cookie does, in the ``X-CSRF-Token`` header or a form field.
"""
from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from flask import Flask, current_app, g, request, session
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy.engine import make_url

from ..review import queue as review
from ..review.queue import Reviewer
from .errors import ApiError
from .login_throttle import HashingBusy, Limits, LoginThrottle, Throttled

SESSION_USER = "reviewer"
SESSION_GENERATION = "generation"
SESSION_CSRF = "csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SECRET_KEY_FILE = "secret_key"


class ReviewerSessions(SecureCookieSessionInterface):
    """Cookie sessions only where reviewers use them. ``/identify``, ``/healthz`` and
    ``/metrics`` never read or write the cookie, so they skip its signing and parsing
    (a measurable share of a look-up's CPU time)."""

    def open_session(self, app: Flask, request):
        if not request.path.startswith(SESSION_PATHS):
            return self.make_null_session(app)
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    """Session cookie flags, ``csrf_token()`` for every template, the login throttle."""
    settings = app.config["RECONCILE"]
    app.extensions["login_throttle"] = LoginThrottle(
        Limits(
            per_account=settings.login_failures_per_account,
            per_address=settings.login_failures_per_address,
            window=settings.login_window_seconds,
            hash_slots=settings.login_hash_slots,
        )
    )
    app.session_interface = ReviewerSessions()
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=app.config["RECONCILE"].session_cookie_secure,
    )
    app.jinja_env.globals["csrf_token"] = csrf_token


#: where the review UI's session cookie is read: its pages and every JSON API call a logged-in
#: reviewer may make from the browser (``/reviews``, ``/admin``, ``/persons``, ``/erasure``)
SESSION_PATHS = ("/review", "/admin", "/persons", "/erasure")


def persistent_secret_key(database_url: str, instance_path: str) -> str:
    """A random key created once and shared through a file, so every worker process (and
    every restart) signs sessions with the same key.

    The file sits beside a SQLite database, else in the Flask instance folder. Workers
    starting together race to create it: each writes a complete temporary file and
    hard-links it into place, which only one can win; the others read the winner's.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        folder = Path(url.database).resolve().parent
    else:
        folder = Path(instance_path)
    path = folder / SECRET_KEY_FILE
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        temp = folder / f".{SECRET_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
        finally:
            temp.unlink()
    return path.read_text().strip()


# --- CSRF ---------------------------------------------------------------------------


def csrf_token() -> str:
    """This session's CSRF token, created on first use."""
    token = session.get(SESSION_CSRF)
    if not token:
        token = session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return token


def csrf_ok() -> bool:
    """Whether the request carries this session's CSRF token (header or form field)."""
    expected = session.get(SESSION_CSRF)
    supplied = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    # as bytes: compare_digest refuses str with non-ASCII characters (a 500 on a forged token)
    return bool(expected) and hmac.compare_digest(expected.encode(), supplied.encode())


# --- reviewers ----------------------------------------------------------------------


def _store():
    return current_app.extensions["reconcile"].store


def check_login(username: str, password: str) -> Reviewer | None:
    """The reviewer these credentials name, or ``None``; an :class:`ApiError` (429 with
    ``Retry-After``, or 503 when every password-check slot is busy) before any password
    is checked when the account or the client address has failed too often."""
    throttle: LoginThrottle = current_app.extensions["login_throttle"]
    address = request.remote_addr or "unknown"
    try:
        throttle.check(username, address)
        with throttle.hashing_slot():
            user = review.check_password(_store(), username, password)
    except Throttled as exc:
        raise ApiError(
            429,
            "too_many_attempts",
            f"too many failed logins for this {exc.scope}; try again in {exc.retry_after} s",
            retry_after=exc.retry_after,
        ) from None
    except HashingBusy:
        raise ApiError(503, "login_busy", "too many logins at once; try again shortly", retry_after=1) from None
    if user is None:
        throttle.failed(username, address)
    else:
        throttle.succeeded(username)
    return user


def login(user: Reviewer) -> None:
    """Start a fresh session (a new CSRF token too: nothing from before login survives)."""
    session.clear()
    session[SESSION_USER] = user.username
    session[SESSION_GENERATION] = user.session_generation
    csrf_token()


def logout() -> None:
    """End every session of the logged-in reviewer (this cookie and any copy of it)."""
    username = session.get(SESSION_USER)
    if username and session_reviewer() is not None:
        review.end_sessions(_store(), username)
    session.clear()


def session_reviewer() -> Reviewer | None:
    """The logged-in reviewer, re-read so a disabled account, or a session of an older
    generation (logged out, password changed), stops working at once."""
    username = session.get(SESSION_USER)
    if not username:
        return None
    user = review.get_reviewer(_store(), username)
    if user is None or session.get(SESSION_GENERATION) != user.session_generation:
        session.clear()
        return None
    return user


def _bearer() -> str | None:
    return _bearer_value(request.headers.get("Authorization", ""))


def _bearer_value(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def authenticate_api() -> None:
    """``before_request`` of the JSON API: a bearer token, or a session plus its CSRF token."""
    token = _bearer()
    if token is not None:
        user = review.check_token(_store(), token)
        if user is None:
            raise ApiError(401, "unauthorized", "the API token is not valid")
        g.reviewer = user
        return
    user = session_reviewer()
    if user is None:
        raise ApiError(401, "unauthorized", "log in, or send 'Authorization: Bearer <reviewer API token>'")
    if request.method not in SAFE_METHODS and not csrf_ok():
        raise ApiError(403, "csrf_failed", f"a session-authenticated call must send the {CSRF_HEADER} header")
    g.reviewer = user


def require_api_key() -> None:
    """``before_request`` of ``/identify``: when RECONCILE_API_KEYS is set, one of them must
    come in ``X-API-Key`` or ``Authorization: Bearer``."""
    keys = current_app.config["RECONCILE"].api_keys
    if not api_key_accepted(keys, request.headers.get("X-API-Key"), request.headers.get("Authorization")):
        raise ApiError(401, "unauthorized", "send a valid API key in the X-API-Key header")


def api_key_accepted(keys: tuple[str, ...], x_api_key: str | None, authorization: str | None) -> bool:
    """Whether the ``X-API-Key`` or ``Authorization: Bearer`` header values carry one of
    ``keys`` (always, when there are none). Header values in, so the WSGI route of
    ``/identify`` (:class:`reconcile.web.identify.IdentifyRoute`) decides exactly as the hook."""
    if not keys:
        return True
    supplied = x_api_key or _bearer_value(authorization or "") or ""
    # compare with every key, so the time taken does not say which one came close
    matched = [hmac.compare_digest(key.encode(), supplied.encode()) for key in keys]
    return any(matched)
