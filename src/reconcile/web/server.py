"""The production servers behind ``reconcile serve``.

Each runs N worker processes, and each worker builds its own app (and so its own
database pool) with :func:`reconcile.web.app.create_app` after it starts.

- ``granian`` (the default): granian's Rust HTTP layer with the app under
  :class:`~reconcile.web.buffered_wsgi.BufferedWSGI`, so a request reaches a Python
  thread only once it has arrived whole. Slow clients hold sockets and coroutines,
  never the threads that serve (headers: 10 s, body: 10 s, then the connection is closed).
  With ``--threads 1`` the app runs in the worker's event loop itself (no thread hand-offs).
- ``granian-wsgi``: granian's own WSGI interface. A little faster, but a client that
  sends its body slowly holds a thread for as long as it likes: only behind a reverse
  proxy that buffers request bodies.
- ``gunicorn``: sync workers (``--threads 1``) or gthread. Slower here, and a slow
  client holds a thread from its first byte.

Why (measured with ``python -m bench servers``): README, Operations.
"""
from __future__ import annotations

from functools import partial
from typing import Literal

from sqlalchemy.engine import make_url

Server = Literal["granian", "granian-wsgi", "gunicorn"]
SERVERS: tuple[Server, ...] = ("granian", "granian-wsgi", "gunicorn")

#: A client has this long to send its request headers, and then as long for its body.
HEADER_TIMEOUT_S = 10
BODY_TIMEOUT_S = 10
#: Requests a granian worker holds at once (reading their bodies, waiting, or running);
#: a slow client takes one of these for at most the two timeouts.
GRANIAN_BACKPRESSURE = 1024


def default_threads(server: Server, database_url: str) -> int:
    """``--threads`` when not given (measured: bench/README.md, "SQLite workers").

    granian on SQLite: 1, the app in the worker's event loop. Every SQLite call holds
    the GIL but for the C work itself, so more threads add hand-offs and GIL contention
    but no parallel work (1.06-1.41 ms of server CPU per request against 1.38-1.79 with
    4, one worker, six interleaved pairs). PostgreSQL: 4, as its round trips release
    the GIL and another thread runs meanwhile; and 4 under the other servers, where one
    thread is one request at a time with no event loop to read the next.
    """
    return 1 if server == "granian" and make_url(database_url).get_backend_name() == "sqlite" else 4


def run(server: Server, host: str, port: int, workers: int, threads: int) -> None:
    """Serve until SIGTERM/SIGINT. ``threads``: Python threads per worker running the app."""
    if server == "gunicorn":
        run_gunicorn(host, port, workers, threads)
    else:
        run_granian(host, port, workers, threads, buffered=server == "granian")


def run_granian(host: str, port: int, workers: int, threads: int, buffered: bool) -> None:
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings

    from .buffered_wsgi import create_rsgi_app

    server = Granian(
        "reconcile.web.app:create_app",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.RSGI if buffered else Interfaces.WSGI,
        workers=workers,
        blocking_threads=None if buffered else threads,  # RSGI: the app's pool is BufferedWSGI's
        backpressure=GRANIAN_BACKPRESSURE,
        http=HTTPModes.http1,
        websockets=False,
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_TIMEOUT_S * 1000),
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=10,
    )
    if buffered:
        server.serve(target_loader=partial(create_rsgi_app, threads, workers, BODY_TIMEOUT_S), wrap_loader=False)
    else:
        server.serve()


def run_gunicorn(host: str, port: int, workers: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):
        def __init__(self, options: dict):
            self.options = options
            super().__init__()

        def load_config(self) -> None:
            for key, value in self.options.items():
                self.cfg.set(key, value)

        def load(self):
            from .app import create_serving_app

            return create_serving_app()

    _Gunicorn(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread" if threads > 1 else "sync",
            "keepalive": 5,
            "accesslog": None,
            "graceful_timeout": 10,
            "timeout": 60,
            # no gunicornc socket: every instance would share ~/.gunicorn/gunicorn.ctl
            "control_socket_disable": True,
        }
    ).run()
