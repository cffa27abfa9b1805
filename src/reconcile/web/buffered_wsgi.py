"""Run the Flask (WSGI) app under granian's RSGI interface, reading every request whole
before a thread touches it.

granian's own WSGI interface hands a request to a Python thread as soon as its headers
have arrived; the thread then blocks in ``wsgi.input.read()`` for as long as the client
takes to send the body, and granian has no body timeout. Twelve clients sending a body a
byte a second stopped a 2-worker service (``bench/servers.py``). Here the body is read
in granian's event loop, where a slow client costs a coroutine and at most the body
limit in memory, under a deadline; only a complete request goes to the app. This is
what a buffering reverse proxy (nginx's ``proxy_request_buffering``) does, inside the
server process.

With one thread per worker the app runs in the event loop itself, once the request is
whole: a pool of one thread only added two thread hand-offs per request (the loop
wakes the thread, the thread wakes the loop) and a GIL hand-over at every SQLite call
the app made while the loop wanted the GIL too. Served over HTTP on SQLite that was
about 34 futex calls per request against 1.5 run in the loop (``strace -c`` of a
worker, bench/README.md). A slow client still costs a coroutine only: its body is read
by the loop between two requests, under the same deadline. With more threads the app
runs in a pool of that many (PostgreSQL, whose round trips release the GIL).

A ``Content-Length`` over the app's ``MAX_CONTENT_LENGTH`` is not read at all, and a
chunked body is read to one byte past it: the app then sees the length and answers its
own 413, so every error keeps the app's one JSON shape.
"""
from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from granian.rsgi import Headers, HTTPProtocol, Scope

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]

_TIMEOUT_BODY = json.dumps(
    {"error": {"code": "request_timeout", "message": "the request body did not arrive in time"}}
).encode()


class BodyTooLarge(Exception):
    """The body would pass the limit: stop reading it."""


class BufferedWSGI:
    """An RSGI application that serves ``app`` from ``threads`` threads (one: the event loop's).

    ``body_timeout``: seconds a client has to send its whole body once its headers are
    in; past it the answer is a 408 and the connection is closed.
    """

    def __init__(self, app: WSGIApp, threads: int, max_body: int, body_timeout: float, workers: int):
        self.app = app
        self.max_body = max_body
        self.body_timeout = body_timeout
        #: None: the app runs in the event loop (one thread per worker; see the module's docstring)
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wsgi") if threads > 1 else None
        self.base_environ = {
            "SCRIPT_NAME": "",
            "wsgi.version": (1, 0),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": threads > 1,
            "wsgi.multiprocess": workers > 1,
            "wsgi.run_once": False,
            "SERVER_SOFTWARE": "granian+reconcile",
        }

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        if scope.proto != "http":  # no websockets here
            return
        headers = scope.headers
        length = headers.get("content-length")
        try:
            # asyncio.timeout, not wait_for: no second task per request
            async with asyncio.timeout(self.body_timeout):
                if length is not None and length.isdigit() and int(length) > self.max_body:
                    body = b""  # not read: the app sees the length and answers 413
                elif length is not None and length.isdigit() and headers.get("transfer-encoding") is None:
                    body = await proto()  # granian reads the announced bytes in one call
                    length = str(len(body))
                else:
                    body = await self._read_body(proto)
                    length = str(len(body))
        except BodyTooLarge:
            body, length = b"", str(self.max_body + 1)
        except TimeoutError:
            proto.response_bytes(
                408, [("content-type", "application/json"), ("connection", "close")], _TIMEOUT_BODY
            )
            return
        environ = self.environ(scope, headers, body, length)
        if self.pool is None:
            status, response_headers, payload = self._call(environ)
        else:
            status, response_headers, payload = await asyncio.get_running_loop().run_in_executor(
                self.pool, self._call, environ
            )
        proto.response_bytes(status, response_headers, payload)

    async def _read_body(self, proto: HTTPProtocol) -> bytes:
        body = bytearray()
        async for chunk in proto:
            body += chunk
            if len(body) > self.max_body:
                raise BodyTooLarge
        return bytes(body)

    def environ(self, scope: Scope, headers: Headers, body: bytes, length: str | None) -> dict[str, Any]:
        """The WSGI environ (PEP 3333) of a request whose body has been read."""
        server_host, _, server_port = scope.server.rpartition(":")
        client_host, _, client_port = scope.client.rpartition(":")
        environ = {
            **self.base_environ,
            "REQUEST_METHOD": scope.method,
            # granian gives the path percent-decoded; WSGI wants its UTF-8 bytes as latin-1
            "PATH_INFO": scope.path.encode("utf-8", "surrogateescape").decode("latin-1"),
            "QUERY_STRING": scope.query_string,
            "SERVER_NAME": server_host,
            "SERVER_PORT": server_port,
            "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
            "REMOTE_ADDR": client_host,
            "REMOTE_PORT": client_port,
            "wsgi.url_scheme": scope.scheme,
            "wsgi.input": io.BytesIO(body),
        }
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            if key == "TRANSFER_ENCODING":
                continue  # the body is de-chunked: it has a length now
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = f"HTTP_{key}"
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        if length is not None:
            environ["CONTENT_LENGTH"] = length
        return environ

    def _call(self, environ: dict) -> tuple[int, list[tuple[str, str]], bytes]:
        """Run the app (in the loop or a pool thread); the whole response comes back (they are small)."""
        started: list = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
            started[:] = [int(status.split(" ", 1)[0]), headers]

        result = self.app(environ, start_response)
        try:
            payload = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        return started[0], started[1], payload


def create_rsgi_app(threads: int, workers: int, body_timeout: float) -> BufferedWSGI:
    """granian's factory target (see :mod:`reconcile.web.server`): one app per worker."""
    from .app import create_serving_app

    app = create_serving_app()
    return BufferedWSGI(app, threads, app.config["MAX_CONTENT_LENGTH"], body_timeout, workers)
