"""How long a request holds the write lock (SQLite's writer turn, PostgreSQL's advisory
locks), and what it spends it on.

``store_calls --hold`` installs :class:`HoldClock` before the app is built. It wraps each
attempt at a write transaction (``Store._write_once``: on SQLite the writer turn, the
per-process lock and the ``flock``, around ``BEGIN IMMEDIATE`` ... ``COMMIT``; on PostgreSQL
``BEGIN`` with the advisory locks ... ``COMMIT``; in one process nobody else waits for them,
so it is their hold) and, inside it, the store and engine calls a write path makes, each
timed by its own (exclusive) wall time while the lock is held: nested wrapped calls are
charged to themselves, not to their caller. What no wrapped call
covers is ``other`` (the engine's own Python between statements, ``BEGIN``, SQLAlchemy's
transaction handling). Wall time, because the turn is what other writers wait for; on a
quiet machine a single-threaded process's wall time inside the turn is its CPU time,
which is also recorded for the whole hold so the two can be compared (on PostgreSQL the
server backend's CPU is in the wall time only).
"""
from __future__ import annotations

import functools
import time
from collections import Counter
from contextlib import contextmanager
from typing import Any

#: (module, attribute holder, attribute) of every call charged separately. Functions
#: imported by name into the engine modules are patched where the engine looks them up.
_WRAPPED = (
    ("reconcile.store.contacts", "ContactTx", "find_matching"),
    ("reconcile.store.contacts", "ContactTx", "holding_groups"),
    ("reconcile.store.contacts", "ContactTx", "guarded_values"),
    ("reconcile.store.contacts", "ContactTx", "contacts"),
    ("reconcile.store.contacts", "ContactTx", "lock_primaries"),
    ("reconcile.store.contacts", "ContactTx", "lock_groups"),
    ("reconcile.store.contacts", "ContactTx", "group_members"),
    ("reconcile.store.contacts", "ContactTx", "group_sizes"),
    ("reconcile.store.contacts", "ContactTx", "insert_contact"),
    ("reconcile.store.contacts", "ContactTx", "_shift_holdings"),
    ("reconcile.store.contacts", "ContactTx", "_audit"),
    ("reconcile.store.contacts", "ContactTx", "merge_groups"),
    ("reconcile.engine.exact", None, "cannot_link_pairs"),
    ("reconcile.engine.exact", None, "open_pending_merge"),
    ("reconcile.engine.exact", None, "record_guard"),
    ("reconcile.engine.probabilistic", None, "cannot_link_pairs"),
    ("reconcile.engine.probabilistic", None, "open_pending_merge"),
    ("reconcile.engine.probabilistic", None, "fetch_candidates"),
    ("reconcile.scoring.scorer", "Scorer", "score_many"),
)


class Tally:
    """What the turns of some requests added up to."""

    def __init__(self) -> None:
        self.turns = 0
        self.wall = 0.0
        self.cpu = 0.0
        self.parts: Counter = Counter()
        self.parts_cpu: Counter = Counter()
        self.commits: list[float] = []  # each COMMIT's wall time

    def summary(self, requests: int) -> dict[str, Any]:
        """Mean ms per request: the hold (wall, CPU), and each part's (wall, CPU); the
        COMMITs' median and the share of their time in the slowest 1% (checkpoints)."""
        parts = {
            name: [round(t * 1000 / requests, 4), round(self.parts_cpu[name] * 1000 / requests, 4)]
            for name, t in self.parts.most_common()
        }
        parts["other"] = [
            round((self.wall - sum(self.parts.values())) * 1000 / requests, 4),
            round((self.cpu - sum(self.parts_cpu.values())) * 1000 / requests, 4),
        ]
        commits = sorted(self.commits)
        slow = commits[len(commits) * 99 // 100:]
        return {
            "turns": round(self.turns / requests, 3),
            "hold_ms": round(self.wall * 1000 / requests, 4),
            "hold_cpu_ms": round(self.cpu * 1000 / requests, 4),
            "parts_ms": parts,
            "commit_median_ms": round(commits[len(commits) // 2] * 1000, 4) if commits else None,
            "commit_slowest_1pct_share": round(sum(slow) / sum(commits), 3) if commits else None,
        }


class HoldClock:
    """Per-request hold time of the writer turn (wall and CPU) and its breakdown, added
    to :attr:`tally` (swap it to count two sets of requests apart)."""

    def __init__(self) -> None:
        self.held = False
        self.tally = Tally()
        self._stack: list[list[float]] = []  # per open wrapped call: [wall, CPU] its children took
        self._patch()

    def _patch(self) -> None:
        import importlib

        from reconcile.store import Store

        for module_name, holder_name, attr in _WRAPPED:
            module = importlib.import_module(module_name)
            holder = getattr(module, holder_name) if holder_name else module
            label = f"{holder_name}.{attr}" if holder_name else attr
            setattr(holder, attr, self._timed(label, getattr(holder, attr)))
        write_once = Store._write_once
        clock = self

        @contextmanager
        def timed_write(store: Store, conn, lock_keys, tx_type):
            if clock.held:  # a nested write: counted once, in the outer one
                with write_once(store, conn, lock_keys, tx_type) as tx:
                    yield tx
                return
            clock.held = True
            clock.tally.turns += 1
            wall, cpu = time.perf_counter(), time.process_time()
            original_commit = store.engine.dialect.do_commit
            store.engine.dialect.do_commit = clock._timed("COMMIT", original_commit)
            try:
                with write_once(store, conn, lock_keys, tx_type) as tx:
                    yield tx
            finally:
                store.engine.dialect.do_commit = original_commit
                clock.tally.wall += time.perf_counter() - wall
                clock.tally.cpu += time.process_time() - cpu
                clock.held = False

        Store._write_once = timed_write  # type: ignore[method-assign]

    def _timed(self, label: str, fn):
        clock = self

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if not clock.held:
                return fn(*args, **kwargs)
            clock._stack.append([0.0, 0.0])
            start, start_cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
                children, children_cpu = clock._stack.pop()
                clock.tally.parts[label] += elapsed - children
                clock.tally.parts_cpu[label] += elapsed_cpu - children_cpu
                if label == "COMMIT":
                    clock.tally.commits.append(elapsed)
                if clock._stack:
                    clock._stack[-1][0] += elapsed
                    clock._stack[-1][1] += elapsed_cpu

        return timed

