"""The identify benchmark's seed is shaped like life: people who really share values
(issue 13: uniform seeds hid a guard whose cost grew with every holder of a shared value).

These check the seed's *shape*, not any speed: families share one phone under one surname
with different first names, and sending the shared-value requests through the engine
creates one contact each, makes the guards fire and leaves every invariant intact.
"""
from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's bench/ package

from bench.identify import seed_phone  # noqa: E402
from bench.shared_values import ROLES, SHARES, SharedValues, seed_through_engine  # noqa: E402
from reconcile.store import Store  # noqa: E402
from reconcile.store.invariants import check  # noqa: E402
from reconcile.synth.generator import SURNAMES  # noqa: E402

ALL_SURNAMES = {s for names in SURNAMES.values() for s in names}


def test_family_members_share_a_phone_and_a_surname_under_different_first_names():
    families = defaultdict(list)
    for body in SharedValues(7, seed_phone).families(300):
        families[body["phoneNumber"]].append(body)
    complete = list(families.values())[:-1]  # the last family may be cut at 300 rows
    assert complete
    for members in complete:
        assert 2 <= len(members) <= 5
        surnames = [s for s in ALL_SURNAMES if all(b["name"].endswith(" " + s) for b in members)]
        assert surnames
        firsts = [b["name"][: -len(surnames[0]) - 1] for b in members]
        assert len(set(firsts)) == len(firsts)
        assert len({b["email"] for b in members}) == len(members)


def test_every_kind_of_shared_value_is_in_the_seed_in_its_share():
    bodies = SharedValues(3, seed_phone).bodies(20_000)
    assert len(bodies) == round(20_000 * sum(SHARES.values()))
    phones = defaultdict(int)
    emails = defaultdict(int)
    for body in bodies:
        phones[body.get("phoneNumber")] += 1
        emails[body.get("email")] += 1
    assert phones["0"] and phones["10000000000"] and emails["test@test.com"]  # fillers
    assert phones["0000000000"] and emails["noemail@noemail.com"]  # placeholders
    assert any(e.split("@")[0] in ROLES and "@company" in e and n >= 3 for e, n in emails.items())  # role mailboxes


def test_shared_values_through_the_engine_make_guards_fire_and_keep_the_invariants(db_url):
    bodies = SharedValues(11, seed_phone).bodies(2_000)
    counts = seed_through_engine(db_url, bodies, log=lambda _msg: None)
    assert counts["created"] == len(bodies)  # each brings a value of its own
    assert counts["guard_entries"] > 0
    store = Store(db_url, pool_size=1)
    try:
        assert check(store) == []
    finally:
        store.dispose()
