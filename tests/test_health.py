"""``GET /healthz`` tells the truth about the database, and the service recovers by itself.

For PostgreSQL a small TCP proxy sits between the app and the server so the test can
cut the database off (listener and every open connection closed) and bring it back on
the same port, as a network blip or a database restart would.
"""
from __future__ import annotations

import socket
import threading
import time

import pytest
from sqlalchemy.engine import make_url

from reconcile.config import Settings
from reconcile.store.invariants import check
from reconcile.web import create_app


class TcpProxy:
    """Forward 127.0.0.1:<port> to a target; stoppable and restartable on the same port."""

    def __init__(self, target: tuple[str, int], port: int = 0):
        self.target = target
        self.port = port
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> "TcpProxy":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._running.set()
        self._spawn(self._accept_loop, listener)
        return self

    def stop(self) -> None:
        """Close the listener and every forwarded connection, and wait for the threads."""
        self._running.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._sockets) // 2

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._running.is_set():
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                if not self._running.is_set():
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _app(url: str):
    app = create_app(Settings(database_url=url, probabilistic=False, db_pool_size=2))
    app.config.update(TESTING=True)
    return app


def _until(predicate, timeout: float = 10.0, interval: float = 0.2):
    """Call ``predicate`` until it returns something truthy; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def _assert_json_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]


# --- SQLite -------------------------------------------------------------------------------


def test_healthz_is_200_on_sqlite(sqlite_db):
    app = _app(sqlite_db)
    try:
        response = app.test_client().get("/healthz")
        assert response.status_code == 200
        assert response.get_json() == {"status": "ok", "database": "sqlite"}
    finally:
        app.extensions["reconcile"].store.dispose()


def test_healthz_is_503_json_when_the_sqlite_database_is_not_a_database(tmp_path):
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not an SQLite database file" * 200)
    app = _app(f"sqlite:///{path}")
    try:
        response = app.test_client().get("/healthz")
        assert response.status_code == 503
        assert response.get_json() == {"status": "unavailable", "database": "unreachable"}
        assert str(tmp_path) not in response.get_data(as_text=True)
    finally:
        app.extensions["reconcile"].store.dispose()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthz_tells_an_anonymous_caller_nothing_about_where_the_database_is(caplog):
    """The driver's error names host and port ("connection to server at 127.0.0.1, port
    ..."); the caller gets only the status, the operator's log gets the reason."""
    port = _closed_port()
    url = f"postgresql+psycopg://reconciler:s3cret-pw@127.0.0.1:{port}/customers?connect_timeout=2"
    app = _app(url)
    try:
        with caplog.at_level("WARNING", logger="reconcile.web.health"):
            response = app.test_client().get("/healthz")
        assert response.status_code == 503
        assert response.get_json() == {"status": "unavailable", "database": "unreachable"}
        text = response.get_data(as_text=True)
        for secret in ("127.0.0.1", str(port), "reconciler", "s3cret-pw", "customers", "postgresql+psycopg", "psycopg"):
            assert secret not in text, secret
        assert str(port) in caplog.text  # the reason is not lost: the log has it
    finally:
        app.extensions["reconcile"].store.dispose()


# --- PostgreSQL behind a proxy that can be cut -------------------------------------------


@pytest.mark.postgres
def test_postgres_outage_is_503_and_the_service_recovers_by_itself(pg_url):
    target = make_url(pg_url)
    proxy = TcpProxy((target.host or "127.0.0.1", target.port or 5432)).start()
    app = _app(target.set(port=proxy.port).render_as_string(hide_password=False))
    store = app.extensions["reconcile"].store
    client = app.test_client()
    try:
        # up: healthy, and the pool holds live connections through the proxy
        response = client.get("/healthz")
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json() == {"status": "ok", "database": "postgresql"}
        first = client.post("/identify", json={"email": "doc@hillvalley.edu", "phoneNumber": "123456"})
        assert first.status_code == 200, first.get_data(as_text=True)
        with store.engine.connect() as a, store.engine.connect() as b, store.engine.connect() as c:
            for conn in (a, b, c):  # several live connections wait in the pool when the outage hits
                conn.exec_driver_sql("SELECT 1")
        assert proxy.open_connections >= 3

        # down: listener and every connection closed
        port = proxy.port
        proxy.stop()
        for _ in range(3):  # the first call meets a dead pooled connection, the next ones a refused port
            response = client.get("/healthz")
            assert response.status_code == 503, response.get_data(as_text=True)
            body = response.get_json()
            assert body["status"] == "unavailable" and body["database"] == "unreachable"
        for _ in range(2):
            _assert_json_error(
                client.post("/identify", json={"email": "marty@hillvalley.edu", "phoneNumber": "123456"}),
                503,
                "database_unavailable",
            )

        # back on the same port: recovers without a restart of the app
        proxy = TcpProxy(proxy.target, port=port).start()
        assert proxy.port == port
        healthy = _until(lambda: client.get("/healthz").status_code == 200)
        assert healthy, "healthz did not recover after the database came back"
        second = client.post("/identify", json={"email": "marty@hillvalley.edu", "phoneNumber": "123456"})
        assert second.status_code == 200, second.get_data(as_text=True)
        assert second.get_json()["contact"] == {
            "primaryContactId": first.get_json()["contact"]["primaryContactId"],
            "emails": ["doc@hillvalley.edu", "marty@hillvalley.edu"],
            "phoneNumbers": ["123456"],
            "secondaryContactIds": [second.get_json()["match"]["createdContactIds"][0]],
        }
        # no stale pooled connection is handed out any more: every later request succeeds
        for _ in range(6):
            assert client.post("/identify", json={"phoneNumber": 123456}).status_code == 200
            assert client.get("/healthz").status_code == 200
        # the failed requests during the outage wrote nothing
        assert store.counts()["contacts"] == 2
        assert check(store) == []
    finally:
        store.dispose()
        proxy.stop()
