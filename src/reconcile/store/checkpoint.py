"""SQLite's WAL checkpoints, run by a background thread instead of inside a request.

SQLite checkpoints automatically once the write-ahead log passes 1,000 pages, and it does
so inside the ``COMMIT`` that crossed the mark: that request copies the log's pages into
the database file and waits for two ``fsync``s (``synchronous=NORMAL`` syncs only at a
checkpoint). Replaying the growth stream, one such commit took 2.0 s of wall time for
0.24 s of CPU (bench/README.md, ``growth``). Here the request connections turn the
automatic checkpoint off (``PRAGMA wal_autocheckpoint=0``, :mod:`.engine`) and one daemon
thread per process runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection when the
log holds as many pages not yet copied as SQLite's own trigger (1,000): the same
checkpoints, so the same copying and fsyncs, but off the request path. A passive
checkpoint waits for no reader and no writer, and the driver lets go of the GIL while
SQLite works, so requests go on meanwhile. The thread reads how many pages wait from the
WAL index (the ``-shm`` file: its header's ``mxFrame`` less the checkpoint's
``nBackfill``, https://www.sqlite.org/walformat.html), one ``pread`` a look.
Two processes' checkpointers (two server workers) do not wait on each other either: the
one that finds the other checkpointing skips its turn.

The thread starts with the first write of the process that writes (a server worker forked
after start-up gets its own), and stops with :meth:`reconcile.store.Store.dispose`. When
no checkpointer runs (the process ended), the last connection to close checkpoints the log
as SQLite always does, and the next checkpointer starts from whatever the log holds.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import struct
import threading

log = logging.getLogger(__name__)

#: how often the thread looks at the log (seconds)
INTERVAL_SECONDS = 0.1
#: pages waiting in the log that make a checkpoint due (SQLite's wal_autocheckpoint default)
DUE_PAGES = 1000
#: the WAL index header: mxFrame (u32, native byte order) at byte 16; nBackfill at byte 96
_INDEX_BYTES = 100


class WalCheckpointer:
    """Checkpoints the SQLite database at ``path`` from a background thread (see the module)."""

    def __init__(self, path: str, interval: float = INTERVAL_SECONDS, due_pages: int = DUE_PAGES):
        self.path = path
        self.index_path = f"{path}-shm"
        self.interval = interval
        self.due_pages = due_pages
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        #: passive checkpoints run so far (tests and benchmarks read it)
        self.runs = 0

    def ensure_running(self) -> None:
        """Start the thread unless it runs in this process (cheap: called before each write)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name="sqlite-wal-checkpoint", daemon=True)
            self._pid = os.getpid()
            self._thread.start()

    def stop_soon(self) -> None:
        """Ask the thread to stop without waiting for it (a store collected undisposed)."""
        self._stop.set()

    def stop(self) -> None:
        """Stop the thread (if this process runs it) after one last checkpoint."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None or self._pid != os.getpid():
                self._pid = None
                return
            self._pid = None
            self._stop.set()
        thread.join()

    def waiting_pages(self) -> int | None:
        """Pages in the log not yet copied into the database (None: no log to look at)."""
        try:
            fd = os.open(self.index_path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            header = os.pread(fd, _INDEX_BYTES, 0)
        finally:
            os.close(fd)
        if len(header) < _INDEX_BYTES:
            return None
        (max_frame,) = struct.unpack_from("=I", header, 16)
        (backfilled,) = struct.unpack_from("=I", header, 96)
        return max(0, max_frame - backfilled)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        stop = self._stop
        try:
            while True:
                stopping = stop.wait(self.interval)
                if not os.path.exists(self.path):  # the database was removed: nothing left to do
                    return
                waiting = self.waiting_pages()
                if waiting is not None and (waiting >= self.due_pages or (stopping and waiting)):
                    if conn is None:
                        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
                    self.checkpoint(conn)
                if stopping:
                    return
        except sqlite3.Error:  # the database went away (a test's temporary folder): nothing to do
            log.debug("WAL checkpointer of %s stopped", self.path, exc_info=True)
        finally:
            if conn is not None:
                conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """One passive checkpoint on ``conn``: copies what no reader still needs, waits for nobody."""
        busy, _log_frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if not busy:
            self.runs += 1
