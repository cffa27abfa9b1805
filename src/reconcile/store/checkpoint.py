"""SQLite's WAL checkpoints, run by a background thread instead of inside a request.

SQLite checkpoints automatically once the write-ahead log passes 1,000 pages, and it does
so inside the ``COMMIT`` that crossed the mark: that request copies the log's pages into
the database file and waits for two ``fsync``s (``synchronous=NORMAL`` syncs only at a
checkpoint). Replaying the growth stream, one such commit took 2.0 s of wall time for
0.24 s of CPU (bench/README.md, ``growth``). Here the request connections turn the
automatic checkpoint off (``PRAGMA wal_autocheckpoint=0``, :mod:`.engine`) and one daemon
thread per process runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection once a
second when the log has changed since its last look (its modification time and size, by
``stat``). A passive checkpoint waits for no reader and no writer, and the driver lets go of
the GIL while SQLite works, so requests go on meanwhile. The copying is the same as
SQLite's own (a checkpoint copies only the pages added since the last one); the fsyncs are
at most two a second (SQLite's trigger, every 1,000 pages, fired about three times a second
at 300 created contacts a second). Two processes' checkpointers (two server workers) do
not wait on each other either: the one that finds the other checkpointing skips its turn.

The thread never opens the database's files itself, only ``stat``s the log: closing any
descriptor of a file drops every POSIX lock the process holds on it, SQLite's included, and
another process could then take the WAL index for unused and rebuild it under this one's
memory map (a first version read the index header with ``open``/``pread``/``close``: an import
beside a reader died of SIGBUS).

The thread starts with the first transaction of the process (a server worker forked
after start-up gets its own), and stops with :meth:`reconcile.store.Store.dispose`. When
no checkpointer runs (the process ended), the last connection to close checkpoints the log
as SQLite always does, and the next checkpointer starts from whatever the log holds.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
from urllib.parse import quote

log = logging.getLogger(__name__)

#: how often the thread looks at the log (seconds): the log holds at most this long's writes
INTERVAL_SECONDS = 1.0


class WalCheckpointer:
    """Checkpoints the SQLite database at ``path`` from a background thread (see the module)."""

    def __init__(self, path: str, interval: float = INTERVAL_SECONDS):
        self.path = path
        self.wal_path = f"{path}-wal"
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        #: passive checkpoints run so far, and failed (tests and benchmarks read them)
        self.runs = 0
        self.failures = 0

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

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        seen: tuple[int, int] | None = None
        stop = self._stop
        try:
            while True:
                stopping = stop.wait(self.interval)
                try:
                    st = os.stat(self.wal_path)
                except FileNotFoundError:
                    if stopping or not os.path.exists(self.path):  # nothing left to do
                        return
                    continue
                state = (st.st_mtime_ns, st.st_size)
                if state != seen:
                    try:
                        if conn is None:
                            conn = sqlite3.connect(  # mode=rw: never creates a database that went away
                                f"file:{quote(self.path)}?mode=rw", uri=True, timeout=0, isolation_level=None,
                                check_same_thread=False,
                            )
                        self.checkpoint(conn)
                        seen = state
                    except sqlite3.Error:
                        # with the automatic checkpoint off, a thread that gave up would let
                        # the log grow without end: try again at the next look
                        log.warning("WAL checkpoint of %s failed; trying again", self.path, exc_info=True)
                        self.failures += 1
                if stopping:
                    return
        finally:
            if conn is not None:
                conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """One passive checkpoint on ``conn``: copies what no reader still needs, waits for nobody."""
        busy, _log_frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if not busy:
            self.runs += 1
