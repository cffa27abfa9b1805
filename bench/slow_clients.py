"""Slow clients for ``bench/servers.py``: connections that trickle a request one byte a second.

Three kinds, each a real attack on a server that reads requests in the thread that
serves them: headers that never end (slowloris), a ``Content-Length`` body sent a byte
at a time, and a chunked body sent a chunk of one byte at a time. A connection the
server closes is opened again at once, so the pressure lasts as long as the run;
``reopened`` counts those (a server's timeouts at work).
"""
from __future__ import annotations

import socket
import threading
import time

KINDS = ("header", "body", "chunked")

_HEAD = "POST /identify HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
_START = {
    "header": _HEAD.encode() + b"X-Slow: ",
    "body": (_HEAD + "Content-Length: 4000\r\n\r\n").encode() + b'{"email": "slow@bench.example", "pad": "',
    "chunked": (_HEAD + "Transfer-Encoding: chunked\r\n\r\n").encode(),
}
_DRIP = {"header": b"a", "body": b"x", "chunked": b"1\r\nx\r\n"}


class SlowClients(threading.Thread):
    """``per_kind`` connections of each kind in ``kinds`` to ``host:port``, dripping until :meth:`stop`."""

    def __init__(self, host: str, port: int, per_kind: int, kinds: tuple[str, ...] = KINDS, interval: float = 1.0):
        super().__init__(daemon=True)
        self.address = (host, port)
        self.kinds = [kind for kind in kinds for _ in range(per_kind)]
        self.interval = interval
        self.reopened = 0
        self.failed_opens = 0
        self._done = threading.Event()
        self._socks: list[socket.socket | None] = [None] * len(self.kinds)

    def _open(self, i: int) -> None:
        try:
            sock = socket.create_connection(self.address, timeout=2)
            sock.sendall(_START[self.kinds[i]])
            self._socks[i] = sock
        except OSError:
            self.failed_opens += 1
            self._socks[i] = None

    def start_all(self) -> "SlowClients":
        for i in range(len(self.kinds)):
            self._open(i)
        self.start()
        return self

    def run(self) -> None:
        while not self._done.wait(self.interval):
            for i, sock in enumerate(self._socks):
                if sock is None:
                    self._open(i)
                    continue
                try:
                    sock.sendall(_DRIP[self.kinds[i]])
                except OSError:  # closed by the server: open another
                    sock.close()
                    self.reopened += 1
                    self._open(i)

    def stop(self) -> None:
        self._done.set()
        self.join()
        for sock in self._socks:
            if sock is not None:
                sock.close()


class Prober(threading.Thread):
    """``GET /healthz`` and a known ``POST /identify`` every ``interval`` seconds on fresh
    connections; records each latency, or the timeout as a failure."""

    def __init__(self, host: str, port: int, interval: float = 0.5, timeout: float = 5.0):
        super().__init__(daemon=True)
        self.host, self.port, self.interval, self.timeout = host, port, interval, timeout
        self.latencies: dict[str, list[float]] = {"healthz": [], "identify": []}
        self.failures: dict[str, int] = {"healthz": 0, "identify": 0}
        self._done = threading.Event()

    def _probe(self, name: str, method: str, path: str, body: bytes | None) -> None:
        import http.client

        started = time.perf_counter()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            headers = {"Content-Type": "application/json"} if body else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise OSError(f"status {response.status}")
            self.latencies[name].append(time.perf_counter() - started)
        except OSError:
            self.failures[name] += 1
        finally:
            conn.close()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            self._probe("healthz", "GET", "/healthz", None)
            self._probe("identify", "POST", "/identify", b'{"email": "probe@bench.example"}')

    def stop(self) -> None:
        self._done.set()
        self.join()
