"""Password guessing is throttled: per account and per client address a 429 with
Retry-After in the standard error shape, no password checked meanwhile; the right
password works again once the window has passed; and no more password checks run at
once than the configured slots, the rest refused at once with a 503."""
from __future__ import annotations

import threading
import time

import pytest
from review_seed import PASSWORD, exact_only, reviewer

from reconcile.web import create_app
from reconcile.web.login_throttle import HashingBusy, Limits, LoginThrottle

#: the window the expiry test waits out; long enough that its attempts fit inside it on a loaded machine
WINDOW = 3.0
#: a window no test waits out: the counts must not expire between a test's attempts
STEADY = 600.0


@pytest.fixture
def make_app(db_url):
    made = []

    def make(window: float):
        app = create_app(
            exact_only(db_url, login_failures_per_account=3, login_failures_per_address=5, login_window_seconds=window)
        )
        app.config.update(TESTING=True)
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["reconcile"].store.dispose()


@pytest.fixture
def app(make_app):
    return make_app(WINDOW)


@pytest.fixture
def steady_app(make_app):
    return make_app(STEADY)


def attempt(app, username: str, password: str, address: str = "192.0.2.1"):
    client = app.test_client()
    client.get("/review/login", environ_base={"REMOTE_ADDR": address})
    with client.session_transaction("/review/") as sess:
        csrf = sess["csrf"]
    return client.post(
        "/review/login",
        data={"username": username, "password": password, "csrf_token": csrf},
        environ_base={"REMOTE_ADDR": address},
    )


def assert_throttled(response, window: float = WINDOW) -> None:
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= window + 1
    error = response.get_json()["error"]
    assert error["code"] == "too_many_attempts" and error["message"]


def test_wrong_passwords_for_one_account_get_429_until_the_window_passes(app):
    reviewer(app.extensions["reconcile"].store, "alice")
    for _ in range(3):
        assert attempt(app, "alice", "wrong password").status_code == 401
    # from another address too: the account's own limit
    assert_throttled(attempt(app, "alice", PASSWORD, address="198.51.100.7"))
    assert_throttled(attempt(app, "ALICE", "wrong password", address="198.51.100.8"))
    time.sleep(WINDOW)
    assert attempt(app, "alice", PASSWORD).status_code == 302


def test_one_address_guessing_many_accounts_gets_429_and_others_still_log_in(steady_app):
    app = steady_app
    reviewer(app.extensions["reconcile"].store, "alice")
    for i in range(5):  # unknown names count like known ones
        assert attempt(app, f"user{i}", "wrong password").status_code == 401
    assert_throttled(attempt(app, "alice", PASSWORD), STEADY)
    assert attempt(app, "alice", PASSWORD, address="203.0.113.9").status_code == 302


def test_a_right_password_clears_the_accounts_count(steady_app):
    app = steady_app
    reviewer(app.extensions["reconcile"].store, "alice")
    for _ in range(2):
        attempt(app, "alice", "wrong password", address="192.0.2.50")
    assert attempt(app, "alice", PASSWORD, address="192.0.2.51").status_code == 302
    for _ in range(2):
        assert attempt(app, "alice", "wrong password", address="192.0.2.52").status_code == 401


def test_password_checks_beyond_the_slots_are_refused_at_once():
    throttle = LoginThrottle(Limits(per_account=5, per_address=5, window=60, hash_slots=2))
    entered, release = threading.Barrier(3), threading.Event()

    def hold() -> None:
        with throttle.hashing_slot():
            entered.wait()
            release.wait()

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for t in holders:
        t.start()
    entered.wait()
    with pytest.raises(HashingBusy):
        with throttle.hashing_slot():
            pass
    release.set()
    for t in holders:
        t.join()
    with throttle.hashing_slot():  # free again
        pass


def test_a_login_finding_every_slot_busy_gets_503_with_retry_after(app):
    reviewer(app.extensions["reconcile"].store, "alice")
    throttle = app.extensions["login_throttle"]
    with throttle.hashing_slot():  # the one slot (the default) is taken
        response = attempt(app, "alice", PASSWORD)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.get_json()["error"]["code"] == "login_busy"
    assert attempt(app, "alice", PASSWORD).status_code == 302
