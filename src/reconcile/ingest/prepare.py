"""Reading and normalising an import's records ahead of the engine, in other processes.

The engine must apply events one after another, but what comes before it does not
depend on the database: reading a record at its offset, decoding it, validating and
normalising its identifiers (``phonenumbers`` parsing above all) and computing the
blocking keys a created contact stores. :func:`prepare_batch` does that for one batch
of load positions; :class:`Prefetcher` runs it in worker processes a few batches ahead
of the batch being applied, so a 2-core machine parses the next batches while the
main process writes this one. The results are the same values the main process would
compute itself (the same pure functions), handed back in load order.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from array import array
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..normalize import Identity, InvalidInput, parse_identity
from .source import Scan, records_at

#: batches prepared ahead of the one being applied, per worker
AHEAD_PER_WORKER = 3


@dataclass(frozen=True, slots=True)
class KeyedIdentity(Identity):
    """An :class:`Identity` carrying the blocking keys computed where it was parsed (a
    worker), so the process that inserts the contact does not parse its phone again.
    ``precomputed`` is exactly what :attr:`Identity.keys` returns for the same values."""

    precomputed: dict[str, str | None] = field(default_factory=dict, compare=False)

    @property
    def keys(self) -> dict[str, str | None]:
        return self.precomputed


@dataclass(frozen=True, slots=True)
class Ready:
    """One record ready for the engine: its line, time, caller's id and identity."""

    line: int
    at: datetime | None
    external_id: str | None
    identity: Identity


@dataclass(frozen=True, slots=True)
class Refused:
    """One record the engine's validation refuses: its line and why."""

    line: int
    reason: str


def prepare_batch(
    path: Path, found: Scan, start: int, stop: int, started_at: datetime, default_region: str
) -> list[Ready | Refused]:
    """Load positions ``start`` to ``stop`` of ``found``, read and parsed as
    :meth:`reconcile.engine.reconciler.Reconciler.parse` parses a request body (with
    its ``default_region``), in load order."""
    prepared: list[Ready | Refused] = []
    for record in records_at(path, found, start, stop, started_at):
        try:
            identity = parse_identity(record.payload, default_region)
        except InvalidInput as exc:
            prepared.append(Refused(record.line, f"{exc.field}: {exc.message}"))
            continue
        keyed = KeyedIdentity(identity.email, identity.phone, identity.name, identity.unreadable, identity.keys)
        prepared.append(Ready(record.line, record.at, record.external_id, keyed))
    return prepared


def _slice(found: Scan, start: int, stop: int) -> Scan:
    """The part of a scan a worker needs for positions ``start`` to ``stop`` (renumbered
    from 0): a few thousand integers to send instead of the whole file's arrays."""
    indices = [found.index_at(p) for p in range(start, stop)]
    return Scan(
        found.fingerprint, found.file_format, array("q", (found.lines[i] for i in indices)),
        array("q", (found.offsets[i] for i in indices)), None, [], stop - start, found.columns,
    )


def _start_worker() -> None:
    """A worker's set-up. Ctrl-C reaches the whole process group: the importing process
    stops the import, and the workers must not die first with a traceback of their own.
    An importing process killed outright (``kill -9``) cannot stop its workers, and a
    worker waiting for its next batch would wait forever: each one exits when its parent
    is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


class Prefetcher:
    """Batches of load positions prepared by ``workers`` processes (0: in this process,
    when it is asked), handed out in order; see the module's docstring."""

    def __init__(self, path: Path, found: Scan, started_at: datetime, default_region: str, workers: int):
        self.path, self.found, self.started_at, self.region = path, found, started_at, default_region
        self.pool = (
            ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker)
            if workers > 0 else None
        )
        self.ahead = max(1, workers) * AHEAD_PER_WORKER

    def batches(self, bounds: Iterator[tuple[int, int]]) -> Iterator[list[Ready | Refused]]:
        """Each ``(start, stop)`` of ``bounds`` prepared, in order; up to ``ahead`` of
        them are in the workers' hands while the caller applies the current one."""
        if self.pool is None:
            for start, stop in bounds:
                yield prepare_batch(self.path, self.found, start, stop, self.started_at, self.region)
            return
        pending: deque[Future] = deque()
        for start, stop in bounds:
            pending.append(self.pool.submit(
                prepare_batch, self.path, _slice(self.found, start, stop), 0, stop - start, self.started_at, self.region
            ))
            if len(pending) > self.ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self) -> None:
        """Stop the workers; batches prepared but not taken are dropped."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
