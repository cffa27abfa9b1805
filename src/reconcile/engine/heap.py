"""The garbage collector's view of a process that serves requests.

Python's full collection scans every tracked object. Set up once at start-up, a serving
process holds some 90k of them that never become garbage (modules, the model and its
scorer tables, SQLAlchemy's metadata), and a full collection that came due inside a
request scanned them all: 159-255 ms of CPU in the growth replay's early windows
(bench/README.md, ``growth``). :func:`settle_heap`, called once the process is set up,
collects what start-up left behind and moves the rest out of the collector's reach
(``gc.freeze``), so later collections scan only what requests have added since. Every
entry point that runs the engine for long calls it: the server's workers
(:func:`reconcile.web.app.create_serving_app`), ``reconcile import`` (before it forks its
parse-ahead workers, which then share the frozen pages) and ``bench growth``, which
measures what the workers do.
"""
from __future__ import annotations

import gc


def settle_heap() -> None:
    """Collect start-up's garbage, then freeze what is left (call once, after set-up)."""
    gc.collect()
    gc.freeze()
