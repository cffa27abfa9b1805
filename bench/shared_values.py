"""Values several people really share, for seeding ``bench/identify.py`` "shaped like life".

Bulk-seeded uniform contacts (one email and one phone per person, never shared) hid a
guard whose cost grew with every holder of a shared value (issue 13). Real tables hold
family phones, role mailboxes, placeholders and the fillers a till types when the customer
gives nothing, and the guards do their work on exactly those. This module writes such
requests; :func:`seed_through_engine` sends them through ``Reconciler.identify`` with the
shipped settings, so the guards record what they record in production (``link_guard``
rows, pending merges, any state they keep) instead of the benchmark guessing it.

Shares of the seeded rows (the rest are the bulk-seeded unique people):

* families (3%): 2-5 people with one surname and different first names share a phone,
  each with their own email (``persons_in_family`` is 12.5% of persons in the generator);
* role mailboxes (1%): ``info@``, ``sales@``... at a company, 3-30 colleagues each, each
  with their own phone;
* placeholders (1.5%): the generator's placeholder emails and phones, beside the person's
  own other identifier (1.4% of the generator's events carry one);
* fillers (0.1%): values no pattern calls a placeholder (phone ``0``, ``10000000000``, ``1``;
  ``test@test.com``, ``a@a.com``) that pile up holders as in issue 13's 1M-event run (phone
  ``0``: 183 holders at 204k contacts).
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable

SHARES = {"family": 0.03, "role": 0.01, "placeholder": 0.015, "filler": 0.001}
ROLES = ("info", "sales", "orders", "office", "billing", "support", "hello", "accounts")
FILLER_EMAILS = ("test@test.com", "a@a.com")
FILLER_PHONES = ("0", "10000000000", "1")
#: seeded phones for shared-value people start here in ``identify.seed_phone``'s sequence,
#: far beyond the bulk seed's (which uses fewer than 2 per contact)
PHONE_OFFSET = 100_000_000


class SharedValues:
    """Request bodies (email, phoneNumber, name) of people who share values, in a seeded order."""

    def __init__(self, seed: int, phone: Callable[[int], str]):
        from reconcile.synth import generator as synth

        self.synth, self.rng, self.phone_of = synth, random.Random(seed), phone
        self.cultures = [c for c, _, _ in synth.CULTURES]
        self.weights = [w for _, w, _ in synth.CULTURES]
        self.domains = [d for d, _ in synth.PROVIDERS]
        self.placeholder_emails = [e for e in synth.PLACEHOLDER_EMAILS if e not in FILLER_EMAILS]
        self.placeholder_phones = [str(p) for p in synth.PLACEHOLDER_PHONES]
        self.n_phone = self.n_email = 0

    def _phone(self) -> str:
        self.n_phone += 1
        return self.phone_of(PHONE_OFFSET + self.n_phone)

    def _person(self, culture: str | None = None, surname: str | None = None) -> tuple[str, str]:
        culture = culture or self.rng.choices(self.cultures, self.weights)[0]
        first = self.rng.choice(list(self.synth.FIRST_NAMES[culture]))
        return first, surname or self.rng.choice(self.synth.SURNAMES[culture])

    def _email(self, first: str, last: str) -> str:
        self.n_email += 1
        slug = self.synth._slug
        return f"{slug(first)}.{slug(last)}.s{self.n_email}@{self.rng.choice(self.domains)}"

    def families(self, rows: int) -> list[dict]:
        out: list[dict] = []
        while len(out) < rows:
            culture = self.rng.choices(self.cultures, self.weights)[0]
            surname = self.rng.choice(self.synth.SURNAMES[culture])
            firsts = list(self.synth.FIRST_NAMES[culture])
            phone = self._phone()
            for first in self.rng.sample(firsts, min(len(firsts), self.rng.choice((2, 2, 3, 3, 4, 5)))):
                out.append({"email": self._email(first, surname), "phoneNumber": phone, "name": f"{first} {surname}"})
        return out[:rows]

    def role_mailboxes(self, rows: int) -> list[dict]:
        out: list[dict] = []
        company = 0
        while len(out) < rows:
            company += 1
            mailbox = f"{self.rng.choice(ROLES)}@company{company}.com"
            for _ in range(self.rng.randint(3, 30)):
                first, last = self._person()
                out.append({"email": mailbox, "phoneNumber": self._phone(), "name": f"{first} {last}"})
        return out[:rows]

    def _beside(self, rows: int, emails: list[str], phones: list[str]) -> list[dict]:
        """People giving one of these values beside their own other identifier."""
        out = []
        for _ in range(rows):
            first, last = self._person()
            name = f"{first} {last}" if self.rng.random() < 0.85 else None
            if self.rng.random() < len(emails) / (len(emails) + len(phones)):
                out.append({"email": self.rng.choice(emails), "phoneNumber": self._phone(), "name": name})
            else:
                out.append({"email": self._email(first, last), "phoneNumber": self.rng.choice(phones), "name": name})
        return out

    def bodies(self, size: int) -> list[dict]:
        """About ``sum(SHARES) * size`` bodies, every kind mixed in one seeded order."""
        out = (self.families(round(size * SHARES["family"]))
               + self.role_mailboxes(round(size * SHARES["role"]))
               + self._beside(round(size * SHARES["placeholder"]), self.placeholder_emails, self.placeholder_phones)
               + self._beside(round(size * SHARES["filler"]), list(FILLER_EMAILS), list(FILLER_PHONES)))
        self.rng.shuffle(out)
        return [{k: v for k, v in body.items() if v is not None} for body in out]


def seed_through_engine(url: str, bodies: list[dict], log) -> dict:
    """Send ``bodies`` through ``Reconciler.identify`` (shipped settings: model on, guards
    on) into the database at ``url``; returns what the answers said."""
    from reconcile.config import Settings
    from reconcile.engine.reconciler import Reconciler
    from reconcile.store import Store

    store = Store(url, pool_size=1)
    reconciler = Reconciler(store, Settings(database_url=url))
    counts = {"created": 0, "guard_entries": 0, "pending_merges": 0}
    started = time.perf_counter()
    try:
        for i, body in enumerate(bodies, start=1):
            match = reconciler.identify(reconciler.parse(body)).match
            counts["created"] += len(match["createdContactIds"])
            counts["guard_entries"] += len(match["guards"])
            counts["pending_merges"] += len(match["pendingMergeIds"])
            if i % 10_000 == 0:
                log(f"  shared values: {i:,}/{len(bodies):,} through the engine ({time.perf_counter() - started:.0f}s)")
    finally:
        store.dispose()
    counts["seconds"] = round(time.perf_counter() - started, 1)
    return counts
