"""SQLite's WAL checkpoints, run by a background thread instead of inside a request.

SQLite checkpoints automatically once the write-ahead log passes 1,000 pages, and it does
so inside the ``COMMIT`` that crossed the mark: that request copies the log's pages into
the database file and waits for two ``fsync``s (``synchronous=NORMAL`` syncs only at a
checkpoint). Replaying the growth stream, one such commit took 2.0 s of wall time for
0.24 s of CPU (bench/README.md, ``growth``). Here the request connections turn the
automatic checkpoint off (``PRAGMA wal_autocheckpoint=0``, :mod:`.engine`) and one daemon
thread per process runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection every
:data:`INTERVAL_SECONDS` when the log has changed since its last look (its modification time
and size, by ``stat``). A passive checkpoint waits for no reader and no writer, and the driver
lets go of the GIL while SQLite works, so requests go on meanwhile. The copying is the same
as SQLite's own (a checkpoint copies only the pages added since the last one). Two
processes' checkpointers (two server workers) do
not wait on each other either: the one that finds the other checkpointing skips its turn.

A passive checkpoint alone does not bound the log. SQLite starts writing the log from its
beginning again only when a writer finds every frame copied and no reader still reading
from the log, and under steady load with two worker processes that moment never comes: the
other worker commits during each checkpoint, and readers hold snapshots that stop it short
(measured with ``bench identify``, 2 workers at ~1,000 requests/s: the log grew by ~45 MB a
second, to 840 MB in 17 s, with this thread's passive checkpoints and, before it, with
SQLite's own; SQLite's documentation calls this checkpoint starvation). So once the log
holds more than :data:`RESTART_BYTES` of frames, each look whose passive checkpoint copied
every frame (no reader holds an older snapshot) runs a second passive one (the frames
committed meanwhile, copied and synced while writers go on) and then
``wal_checkpoint(RESTART)``: it holds new writers back while it waits (at most
:data:`RESTART_WAIT_MS`) for the readers of the moment to finish, copies and syncs the few
frames added since, and makes the next writer start the log again from its beginning. The
file keeps its size (its high-water mark, a little past the limit) and is written over from
the start: no ``ftruncate`` and no ``fsync`` of the log while writers wait, and no blocks to
allocate again for the next commits. A first version emptied the file (``TRUNCATE``): the
requests that waited for it were the slowest calls of the growth replay (110-166 ms on a
quiet machine), and it held writers 114 ms at the median under load against 21 ms now
(bench/README.md, ``growth``, "Starting the log over"). It runs in the writers' turn
(:class:`reconcile.store.WriterTurn`), so writers wait for it as for any writer, within their
own lock timeout, and go on the moment it ends. A long reader (an export) keeps the log from
starting over until it ends, as it would anyway, without holding writers back meanwhile.
(``reconcile db purge`` still empties the file: :mod:`.erasure`.)

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
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from urllib.parse import quote

log = logging.getLogger(__name__)

#: how often the thread looks at the log (seconds); a look that finds it past
#: RESTART_BYTES starts it over, so the shorter, the less a restarting checkpoint has to copy
#: while writers wait (bench/README.md, ``identify``, "The write-ahead log under load")
INTERVAL_SECONDS = 0.25
#: a log holding more frames than this (16,000 pages of 4 KiB) is checkpointed with RESTART,
#: which waits for readers and makes the next writer start the log over; a shorter one with
#: PASSIVE, which waits for nobody. Each restart costs every connection its cached view of
#: the log: at 1M contacts 16 MB cost ~25% more CPU per request than 64 MB (bench/README.md,
#: "The write-ahead log under load")
RESTART_BYTES = 64 << 20
#: the longest a RESTART checkpoint waits for readers and writers before it gives up until
#: the next look (writers queue behind it meanwhile, so it must stay short)
RESTART_WAIT_MS = 100
#: the bytes a frame adds to its page in the log (its header)
FRAME_HEADER_BYTES = 24


class WalCheckpointer:
    """Checkpoints the SQLite database at ``path`` from a background thread (see the module)."""

    def __init__(
        self, path: str, turn: Callable[[], AbstractContextManager[None]] = nullcontext, interval: float = INTERVAL_SECONDS
    ):
        self.path = path
        #: the writers' turn (:class:`reconcile.store.WriterTurn`), held by a restarting
        #: checkpoint so that writers queue behind it there, not in SQLite's busy handler
        self.turn = turn
        self.wal_path = f"{path}-wal"
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        #: passive checkpoints run so far, restarting ones, and failed (tests and benchmarks read them)
        self.runs = 0
        self.restarts = 0
        self.failures = 0
        self.restart_bytes = RESTART_BYTES

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
        frame_bytes = 0
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
                            frame_bytes = conn.execute("PRAGMA page_size").fetchone()[0] + FRAME_HEADER_BYTES
                        if self.look(conn, frame_bytes):
                            seen = state  # else a restart is still due: try again at the next look
                    except Exception:  # noqa: BLE001 - SQLite's errors, a turn not had in time: never end the thread
                        # with the automatic checkpoint off, a thread that gave up would let
                        # the log grow without end: try again at the next look
                        log.warning("WAL checkpoint of %s failed; trying again", self.path, exc_info=True)
                        self.failures += 1
                if stopping:
                    return
        finally:
            if conn is not None:
                conn.close()

    def look(self, conn: sqlite3.Connection, frame_bytes: int) -> bool:
        """One look at a log that changed: a passive checkpoint, then a restart if the log
        is past :attr:`restart_bytes`; whether the log is settled (short, or started over)
        rather than still due a restart.

        The passive checkpoint copies what it can without holding anyone back, and says
        how many frames the log holds and whether it copied every one. Only when the log
        is long and no reader holds a snapshot older than its end does the restarting
        checkpoint run, in the writers' turn (:attr:`turn`: writers queue behind it there
        and wake the moment it ends, not at the next step of SQLite's busy handler): it
        holds new writers back while it waits (at most :data:`RESTART_WAIT_MS`) for the
        readers of the moment to finish, and has little left to copy. While a long reader
        (an export, a snapshot for ``reconcile resolve``) holds an older snapshot, nothing
        could start the log over anyway, and trying every look would hold writers back on
        every look: the log waits for the reader, and writers go on."""
        busy, frames, copied = self.checkpoint(conn)
        if frames * frame_bytes <= self.restart_bytes:
            return True
        if busy or copied < frames:
            return False
        # the frames committed while that one copied, copied and synced now, outside the
        # turn: what the restart copies and syncs while writers wait is then only what
        # came in during this second, short checkpoint
        busy, frames, copied = self.checkpoint(conn)
        if busy or copied < frames:
            return False
        with self.turn():
            conn.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
            try:
                busy, _frames, _copied = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            finally:
                conn.execute("PRAGMA busy_timeout=0")
        if busy:
            log.info("WAL of %s still in use after %d ms; restarting it at the next look", self.path, RESTART_WAIT_MS)
            return False
        self.restarts += 1
        return True

    def checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        """One passive checkpoint on ``conn``: copies what no reader still needs, waits for
        nobody; SQLite's answer (busy, frames in the log, frames copied)."""
        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if not busy:
            self.runs += 1
        return busy, frames, copied
