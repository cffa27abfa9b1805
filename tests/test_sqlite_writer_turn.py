"""SQLite writers of different processes queue on an ``flock`` beside the database: a
writer goes on once it is free (also when its holder is killed with SIGKILL), and gives
up after the lock timeout having written nothing and keeping nothing locked."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time

import pytest
from conftest import sqlite_url

from reconcile.normalize import parse_identity
from reconcile.store import DatabaseBusy, Store
from reconcile.store.migrate import upgrade

LOCK_TIMEOUT = 0.6


@pytest.fixture
def store(tmp_path):
    url = sqlite_url(tmp_path)
    upgrade(url)
    store = Store(url, lock_timeout=LOCK_TIMEOUT)
    yield store
    store.dispose()


def lock_path(store: Store) -> str:
    return f"{store.engine.url.database}-writelock"


def hold_flock(store: Store) -> int:
    """The writers' lock, taken as another worker process would (an open file of its own)."""
    fd = os.open(lock_path(store), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def add_contact(store: Store, email: str) -> None:
    identity = parse_identity({"email": email}, "US")
    store.write(lambda tx: tx.insert_contact(identity, linked_id=None, method="new", cause="test"))


def contacts(store: Store) -> int:
    return store.counts()["contacts"]


def write_in_thread(store: Store, email: str) -> tuple[threading.Thread, dict]:
    """``add_contact`` on a thread; the result holds its outcome and seconds."""
    result: dict = {}

    def run() -> None:
        started = time.monotonic()
        try:
            add_contact(store, email)
            result["outcome"] = "written"
        except DatabaseBusy:
            result["outcome"] = "busy"
        result["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def test_a_writer_gives_up_after_the_lock_timeout_and_leaves_the_lock_free(store):
    fd = hold_flock(store)
    try:
        thread, result = write_in_thread(store, "refused@example.org")
        thread.join(5)
        assert result["outcome"] == "busy"
        assert LOCK_TIMEOUT * 0.9 <= result["seconds"] < LOCK_TIMEOUT * 3
    finally:
        os.close(fd)
    # the writer that gave up holds nothing
    other = os.open(lock_path(store), os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # would raise BlockingIOError
    finally:
        os.close(other)
    assert contacts(store) == 0  # the refused write changed nothing
    add_contact(store, "after@example.org")
    assert contacts(store) == 1


def test_a_killed_holder_lets_the_queued_writer_go_on(store):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         f"fd = os.open({lock_path(store)!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        thread, result = write_in_thread(store, "survivor@example.org")
        time.sleep(LOCK_TIMEOUT / 3)
        holder.kill()  # kill -9: the kernel drops its flock
        holder.wait(5)
        thread.join(5)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(5)
    assert result["outcome"] == "written" and contacts(store) == 1
