"""The queue SQLite writers of different processes wait in: an exclusive ``flock`` on a
file beside the database, taken with a deadline and without polling.

A blocking ``flock`` wakes the moment the holder lets go (or dies: the kernel drops the
lock of a killed process), but it cannot be given a deadline. Polling a non-blocking
``flock`` can, and that is what the store did: sleeps of 0.2-2 ms, each wake a system call
and a GIL hand-over, and on average half a sleep of a free lock nobody took while the
other worker, or the next request in line, waited. With two workers serving SQLite that
was about a tenth of a worker's time (bench/README.md, "SQLite workers").

So a contended wait is handed to one thread per process that blocks in ``flock`` (the
call releases the GIL), while the writer waits on an event for what is left of its
deadline. The writer wakes as soon as the thread has the lock; if the deadline passes
first, the writer gives its turn up, and the thread lets go of the lock the moment it
gets it. Either way nobody polls, and no wait outlasts the writer's deadline.
"""
from __future__ import annotations

import fcntl
import os
import queue
import threading
from dataclasses import dataclass, field


class WaitTimedOut(Exception):
    """Another process held the lock past the deadline; the caller holds nothing."""


@dataclass(eq=False)
class _Wait:
    """One contended wait: the writer's ``fd``, and who owns it once the thread's ``flock``
    returns (the writer while it still waits, the thread once the writer gave up)."""

    fd: int
    done: threading.Event = field(default_factory=threading.Event)  # the thread's flock returned
    abandoned: bool = False
    error: OSError | None = None


class FlockQueue:
    """Takes an exclusive ``flock`` on ``path`` for the writers of this process, one at a
    time (the store queues them on a thread lock first)."""

    def __init__(self, path: str):
        self.path = path
        self._guard = threading.Lock()  # orders a grant against a give-up
        self._waits: queue.SimpleQueue[_Wait] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._thread_pid = 0

    def take(self, timeout: float) -> int:
        """An open descriptor holding the lock; :meth:`release` it. Waits at most
        ``timeout`` seconds, then raises :class:`WaitTimedOut`."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd  # the lock was free: no thread involved
        except BlockingIOError:
            pass
        except BaseException:
            os.close(fd)
            raise
        wait = _Wait(fd)
        self._waiter().put(wait)
        wait.done.wait(timeout)
        with self._guard:
            if not wait.done.is_set():
                wait.abandoned = True  # the thread closes fd once its flock returns
                raise WaitTimedOut
        if wait.error is not None:
            os.close(fd)
            raise wait.error
        return fd

    @staticmethod
    def release(fd: int) -> None:
        os.close(fd)  # closing the descriptor drops its flock

    def _waiter(self) -> queue.SimpleQueue[_Wait]:
        """The waits' queue, its thread started on the first contended wait in this
        process (a forked child starts its own: threads do not survive a fork)."""
        if self._thread is None or self._thread_pid != os.getpid():
            self._waits = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._serve, args=(self._waits,), name="sqlite-writer-flock", daemon=True)
            self._thread_pid = os.getpid()
            self._thread.start()
        return self._waits

    def _serve(self, waits: queue.SimpleQueue[_Wait]) -> None:
        while True:
            wait = waits.get()
            try:
                fcntl.flock(wait.fd, fcntl.LOCK_EX)  # blocks without the GIL
            except OSError as exc:
                wait.error = exc
            with self._guard:
                if not wait.abandoned:
                    wait.done.set()
                    continue
            os.close(wait.fd)  # its writer gave up: let the next one have the lock at once
