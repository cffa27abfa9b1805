"""The production server: gunicorn with N worker processes, each building its own app
(and so its own database pool) after the fork."""
from __future__ import annotations

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from . import create_app

        return create_app()


def run_gunicorn(host: str, port: int, workers: int, threads: int) -> None:
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
