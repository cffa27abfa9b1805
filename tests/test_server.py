"""The production server as ``reconcile serve`` runs it: slow clients cannot starve it,
and the body limit holds for chunked bodies on the wire.

One server (``reconcile serve --workers 2``, granian, the default) over a fresh SQLite
database serves every test here, once with one thread per worker (the app runs in the
event loop: SQLite's default) and once with two (a pool of threads, as on PostgreSQL);
each test leaves it as it found it.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from conftest import sqlite_url
from reconcile.store import Store
from reconcile.store.migrate import upgrade
from reconcile.web.app import MAX_BODY_BYTES

RECONCILE_BIN = Path(sys.executable).parent / "reconcile"
WORKERS = 2
#: Far more slow connections of each kind than the server has threads (2 or 4 in all).
SLOW_PER_KIND = 12
#: Generous: the service answers in milliseconds; a starved one never answers.
PROMPT_S = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", params=[1, 2], ids=["app-in-event-loop", "thread-pool"])
def served(request, tmp_path_factory):
    """(base URL, port, database URL) of a running ``reconcile serve --threads N``; stopped afterwards."""
    folder = tmp_path_factory.mktemp("server")
    url = sqlite_url(folder)
    upgrade(url)
    port = free_port()
    env = {**os.environ, "RECONCILE_DATABASE_URL": url, "RECONCILE_PROBABILISTIC": "0"}
    log_path = folder / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(RECONCILE_BIN), "serve", "--port", str(port), "--workers", str(WORKERS), "--threads", str(request.param)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.2)
        yield base, port, url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def contact_count(url: str) -> int:
    store = Store(url)
    try:
        return store.counts()["contacts"]
    finally:
        store.dispose()


HEAD = "POST /identify HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
SLOW_STARTS = {
    # headers that never end (slowloris)
    "header": (HEAD + "X-Slow: a").encode(),
    # a body announced with its length, of which only a few bytes come
    "body": (HEAD + "Content-Length: 2000\r\n\r\n" + '{"email": "slow').encode(),
    # a chunked body of which one chunk comes, and never the last
    "chunked": (HEAD + "Transfer-Encoding: chunked\r\n\r\n" + "5\r\n{\"ema\r\n").encode(),
}


def open_slow_clients(stack: ExitStack, port: int) -> None:
    """Connections that send the start of a request and then nothing: each would hold a
    worker thread in a server that reads requests in the thread that serves them."""
    for start in SLOW_STARTS.values():
        for _ in range(SLOW_PER_KIND):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
            sock.sendall(start)


def test_health_and_identify_answer_while_slow_clients_hold_connections(served):
    base, port, _ = served
    with ExitStack() as stack:
        open_slow_clients(stack, port)
        time.sleep(0.5)  # every slow request is in, and stuck
        for i in range(5):
            health = requests.get(f"{base}/healthz", timeout=PROMPT_S)
            assert health.status_code == 200, health.text
            answer = requests.post(f"{base}/identify", json={"email": f"prompt{i}@example.org"}, timeout=PROMPT_S)
            assert answer.status_code == 200, answer.text
            assert answer.json()["contact"]["emails"] == [f"prompt{i}@example.org"]


def chunks(body: bytes, size: int = 4096):
    """A generator body: ``requests`` sends it with ``Transfer-Encoding: chunked``."""
    for i in range(0, len(body), size):
        yield body[i : i + size]


def test_chunked_body_over_the_limit_is_a_413_on_the_wire_and_writes_nothing(served):
    base, _, url = served
    body = json.dumps({"email": "chunked-big@example.org"}).encode() + b" " * MAX_BODY_BYTES
    before = contact_count(url)
    response = requests.post(
        f"{base}/identify", data=chunks(body), headers={"Content-Type": "application/json"}, timeout=PROMPT_S
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 413, response.text
    assert response.json() == {
        "error": {"code": "request_entity_too_large", "message": response.json()["error"]["message"]}
    }
    assert contact_count(url) == before


def test_chunked_body_within_the_limit_is_answered_on_the_wire(served):
    base, _, _ = served
    body = json.dumps({"email": "chunked-small@example.org"}).encode() + b" " * 1000
    response = requests.post(
        f"{base}/identify", data=chunks(body, 100), headers={"Content-Type": "application/json"}, timeout=PROMPT_S
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 200, response.text
    assert response.json()["contact"]["emails"] == ["chunked-small@example.org"]


def test_a_body_that_stops_coming_is_cut_off_with_a_408(served):
    """The body deadline (10 s): the connection is answered and closed, not held forever."""
    from reconcile.web.server import BODY_TIMEOUT_S

    _, port, _ = served
    with socket.create_connection(("127.0.0.1", port), timeout=BODY_TIMEOUT_S + PROMPT_S) as sock:
        sock.sendall(SLOW_STARTS["body"])
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 408"), answer
    assert json.loads(answer.split("\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"
