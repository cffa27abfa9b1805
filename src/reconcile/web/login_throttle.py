"""Password guessing is slowed down: failed logins are counted per account and per
client address, and the expensive part (scrypt) runs for only a few logins at once.

A check of a password costs tens of milliseconds of CPU and tens of MB of memory on
purpose. Without a limit, a flood of guesses both tries passwords quickly and takes
the CPU from ``/identify``. So:

- an account or an address with ``max`` failures inside the last ``window`` seconds
  gets a 429 with ``Retry-After`` (the seconds until its oldest counted failure ages
  out) without any password being checked; an unknown username is counted like a
  known one, so the limit does not tell which names exist;
- at most ``hash_slots`` checks run at once in a process; one more is refused with a
  503 at once rather than queued, so a flood costs at most that many cores.

The counters live in each worker process (several workers multiply what an attacker
may try by their number): a shared table would cost a write per failed login, and a
process's counters are enough to take a flood from thousands of guesses a second to
a handful a minute per account.
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: keys tracked at most (a flood of made-up usernames must not grow memory without end)
MAX_TRACKED = 100_000


class Throttled(Exception):
    """Too many failures; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int, scope: str):
        super().__init__(f"too many failed logins for this {scope}")
        self.retry_after = retry_after
        self.scope = scope


class HashingBusy(Exception):
    """Every password-check slot is taken; retry in a moment."""


@dataclass
class Limits:
    per_account: int
    per_address: int
    window: float
    hash_slots: int


class LoginThrottle:
    """Failure counters (sliding windows) and the password-check slots of one process."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic):
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._slots = threading.BoundedSemaphore(limits.hash_slots)

    def check(self, username: str, address: str) -> None:
        """Raise :class:`Throttled` when the account or the address is over its limit."""
        now = self._clock()
        with self._lock:
            for key, limit, scope in self._keys(username, address):
                times = self._recent(key, now)
                if len(times) >= limit:
                    wait = times[0] + self.limits.window - now
                    raise Throttled(max(1, math.ceil(wait)), scope)

    def failed(self, username: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for key, _limit, _scope in self._keys(username, address):
                times = self._recent(key, now)
                times.append(now)
                self._failures[key] = times
                self._failures.move_to_end(key)
            while len(self._failures) > MAX_TRACKED:
                self._failures.popitem(last=False)

    def succeeded(self, username: str) -> None:
        """A right password clears its account's count (the address's stays)."""
        with self._lock:
            self._failures.pop(_account_key(username), None)

    @contextmanager
    def hashing_slot(self) -> Iterator[None]:
        """Hold one of the password-check slots, or raise :class:`HashingBusy` at once."""
        if not self._slots.acquire(blocking=False):
            raise HashingBusy()
        try:
            yield
        finally:
            self._slots.release()

    def _keys(self, username: str, address: str) -> tuple[tuple[str, int, str], ...]:
        return (
            (_account_key(username), self.limits.per_account, "account"),
            (f"address:{address}", self.limits.per_address, "address"),
        )

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key) or deque()
        while times and times[0] <= now - self.limits.window:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
        return times


def _account_key(username: str) -> str:
    return f"account:{username.casefold()}"
