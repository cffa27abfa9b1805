"""Over-merge guards in the exact stage: placeholders, shared identifiers, rejected
pairs, group size. A guarded link is recorded, never silent; the invariants hold."""
import pytest
from hypothesis import given
from hypothesis import strategies as st
from conftest import assert_sound, identify, rows
from sqlalchemy import insert

from reconcile.config import Settings
from reconcile.engine.guards import ONE_PERSON_CEILING, Guards
from reconcile.store.contacts import utcnow
from reconcile.store.schema import cannot_link, link_guard, pending_merge
from reconcile.web import create_app


@pytest.mark.parametrize(
    "field,value",
    [
        ("email", "noemail@noemail.com"),
        ("email", "none@gmail.com"),
        ("email", "n/a@example.com"),
        ("phoneNumber", "000-000-0000"),
        ("phoneNumber", "1234567890"),
        ("phoneNumber", "9999999999"),
    ],
)
def test_placeholder_values_never_link_strangers(client, store, field, value):
    other = "phoneNumber" if field == "email" else "email"
    first = identify(client, **{field: value, other: "4155552671" if other == "phoneNumber" else "ann@a.com"})
    second = identify(client, **{field: value, other: "4155550199" if other == "phoneNumber" else "bob@b.com"})
    assert first["contact"]["primaryContactId"] != second["contact"]["primaryContactId"]
    assert second["match"]["guards"][0]["guard"] == "placeholder"
    guards = rows(store, link_guard)
    assert [(g.field, g.guard) for g in guards] == [(field, "placeholder")]
    assert rows(store, pending_merge) == []  # a placeholder is no evidence worth a reviewer's time
    assert_sound(store)


def test_short_values_from_the_contract_are_not_placeholders():
    guards = Guards.from_settings(Settings())
    for phone in ("1", "2", "111", "555", "123456", "717171", "919191"):
        assert guards.unlinkable("phoneNumber", phone) is None
    assert guards.unlinkable("email", "lorraine@hillvalley.edu") is None


@pytest.mark.parametrize("domain", ["example.com", "example.org", "example.net", "test.com"])
@pytest.mark.parametrize("local", ["a", "x", "test", "abc", "asdf", "customer", "lorraine"])
def test_client_suite_addresses_are_ordinary_values(local, domain):
    assert Guards.from_settings(Settings()).unlinkable("email", f"{local}@{domain}") is None


def test_two_orders_from_an_example_com_address_link(client, store):
    first = identify(client, email="a@example.com", phoneNumber="1")
    second = identify(client, email="a@example.com", phoneNumber="2")
    assert second["contact"] == {
        "primaryContactId": first["contact"]["primaryContactId"],
        "emails": ["a@example.com"],
        "phoneNumbers": ["1", "2"],
        "secondaryContactIds": [second["match"]["createdContactIds"][0]],
    }
    assert second["match"]["guards"] == []
    assert rows(store, link_guard) == []
    assert_sound(store)


def test_configured_blocklist_adds_to_the_defaults(tmp_path):
    guards = Guards.from_settings(Settings(blocked_emails=(" Till@Shop.com",), blocked_phones=("(415) 555-2671",)))
    assert guards.unlinkable("email", "till@shop.com") == "placeholder"
    assert guards.unlinkable("phoneNumber", "+14155552671") == "placeholder"


def test_role_mailboxes_link_nobody_by_themselves(client, store):
    first = identify(client, email="Info@Acme.com", phoneNumber="4155552671")
    second = identify(client, email="info@acme.com", phoneNumber="4155550199")
    assert first["contact"]["primaryContactId"] != second["contact"]["primaryContactId"]
    assert second["match"]["guards"][0]["guard"] == "role-mailbox"
    assert_sound(store)


def test_family_phone_with_clearly_different_names_is_held_for_review(client, store):
    alice = identify(client, email="alice@smith.org", phoneNumber="4155552671", name="Alice Smith")
    bob = identify(client, email="bob@smith.org", phoneNumber="4155552671", name="Bob Smith")
    assert bob["contact"]["primaryContactId"] != alice["contact"]["primaryContactId"]
    assert bob["match"]["guards"][0]["guard"] == "shared-identifier"
    (pending,) = rows(store, pending_merge)
    assert (pending.reason, pending.guard, pending.status) == ("guard", "shared-identifier", "pending")
    assert bob["match"]["pendingMergeIds"] == [pending.id]
    # the phone alone, without a name, now reaches only the oldest group holding it
    again = identify(client, phoneNumber="4155552671")
    assert again["contact"]["primaryContactId"] == alice["contact"]["primaryContactId"]
    assert_sound(store)


def test_compatible_names_on_a_phone_link_as_the_contract_says(client, store):
    first = identify(client, email="william@x.com", phoneNumber="4155552671", name="William Turner")
    second = identify(client, email="bill@y.com", phoneNumber="(415) 555-2671", name="Turner Bill")
    assert second["contact"]["primaryContactId"] == first["contact"]["primaryContactId"]
    assert second["match"]["guards"] == []
    assert_sound(store)


def test_rejected_pair_is_never_joined_by_a_later_exact_link(client, store):
    a = identify(client, email="a@x.com", phoneNumber="111111")["contact"]["primaryContactId"]
    b = identify(client, email="b@x.com", phoneNumber="222222")["contact"]["primaryContactId"]
    with store.engine.begin() as conn:
        conn.execute(insert(cannot_link).values(leftContactId=a, rightContactId=b, createdAt=utcnow()))
    bridged = identify(client, email="a@x.com", phoneNumber="222222")
    assert bridged["contact"]["primaryContactId"] == a
    assert b not in bridged["contact"]["secondaryContactIds"]
    assert bridged["match"]["guards"][0]["guard"] == "cannot-link"
    (pending,) = rows(store, pending_merge)
    assert pending.reason == "conflict"
    # the new pairing is kept (nothing lost) with the guard that kept the phone's groups apart
    (guard,) = rows(store, link_guard)
    assert (guard.field, guard.value, guard.guard) == ("phoneNumber", "222222", "cannot-link")
    assert_sound(store)


def test_group_size_cap_holds_the_link_for_review(tmp_path, sqlite_db):
    app = create_app(Settings(database_url=sqlite_db, probabilistic=False, max_group_size=3))
    client = app.test_client()
    store = app.extensions["reconcile"].store
    for n in range(3):
        identify(client, email="same@x.com", phoneNumber=f"55500{n}")
    fourth = identify(client, email="same@x.com", phoneNumber="555009")
    assert fourth["match"]["guards"][0]["guard"] == "group-size"
    assert len(fourth["contact"]["secondaryContactIds"]) == 0
    assert_sound(store)


def test_merging_two_large_groups_waits_for_a_reviewer(sqlite_db):
    app = create_app(Settings(database_url=sqlite_db, probabilistic=False, large_group_size=2))
    client = app.test_client()
    store = app.extensions["reconcile"].store
    for phone in ("1001", "1002"):
        identify(client, email="left@x.com", phoneNumber=phone)
    for phone in ("2001", "2002"):
        identify(client, email="right@x.com", phoneNumber=phone)
    bridge = identify(client, email="left@x.com", phoneNumber="2001")
    assert bridge["match"]["guards"][0]["guard"] == "large-merge"
    assert bridge["contact"]["emails"] == ["left@x.com"]  # the right-hand group stayed apart
    assert_sound(store)


def test_one_persons_named_group_grows_past_the_size_cap(sqlite_db):
    """A frequent customer's many contacts carry one person's names: the cap, which stops
    a chain of false joins (other people's names), does not hold them."""
    app = create_app(Settings(database_url=sqlite_db, probabilistic=False, max_group_size=3))
    client, store = app.test_client(), app.extensions["reconcile"].store
    names = ("Anthony Wright", "Tony Wright", "Wright Anthony", "ANTHONY WRIGHT")
    answers = [identify(client, email="anthony@w.net", phoneNumber=f"55500{n}", name=name) for n, name in enumerate(names)]
    assert {a["contact"]["primaryContactId"] for a in answers} == {answers[0]["contact"]["primaryContactId"]}
    assert len(answers[-1]["contact"]["secondaryContactIds"]) == 3
    assert answers[-1]["match"]["guards"] == []
    assert rows(store, pending_merge) == []
    assert_sound(store)


def test_one_persons_named_group_stops_at_the_ceiling(sqlite_db):
    """One name is weak evidence at scale (a till typing the same name on its own phone):
    past ONE_PERSON_CEILING times the cap, even one person's named group is held."""
    app = create_app(Settings(database_url=sqlite_db, probabilistic=False, max_group_size=2))
    client, store = app.test_client(), app.extensions["reconcile"].store
    ceiling = 2 * ONE_PERSON_CEILING
    answers = [
        identify(client, email=f"walk.in.{n}@till.example", phoneNumber="555000", name="Walk In")
        for n in range(ceiling + 1)
    ]
    assert len(answers[ceiling - 1]["contact"]["secondaryContactIds"]) == ceiling - 1
    assert answers[ceiling - 1]["match"]["guards"] == []
    held = answers[ceiling]
    assert held["match"]["guards"][0]["guard"] == "group-size"
    assert len(held["contact"]["secondaryContactIds"]) == 0
    assert_sound(store)


def test_a_nameless_request_on_a_full_group_is_still_held(sqlite_db):
    app = create_app(Settings(database_url=sqlite_db, probabilistic=False, max_group_size=3))
    client, store = app.test_client(), app.extensions["reconcile"].store
    for n in range(3):
        identify(client, email="anthony@w.net", phoneNumber=f"55500{n}", name="Anthony Wright")
    nameless = identify(client, email="anthony@w.net", phoneNumber="555009")
    assert nameless["match"]["guards"][0]["guard"] == "group-size"
    assert nameless["contact"]["secondaryContactIds"] == []
    assert_sound(store)


@pytest.mark.parametrize("right_name,joined", [("Ann Lee", True), ("Annie Lee", True), ("Bob Lee", False)])
def test_two_large_groups_join_when_their_names_are_one_person(sqlite_db, right_name, joined):
    """A nameless bridge between two large groups: their names are the only evidence."""
    app = create_app(Settings(database_url=sqlite_db, probabilistic=False, large_group_size=2))
    client, store = app.test_client(), app.extensions["reconcile"].store
    for phone in ("1001", "1002"):
        identify(client, email="left@x.com", phoneNumber=phone, name="Ann Lee")
    for phone in ("2001", "2002"):
        identify(client, email="right@x.com", phoneNumber=phone, name=right_name)
    bridge = identify(client, email="left@x.com", phoneNumber="2001")
    if joined:
        assert bridge["contact"]["emails"] == ["left@x.com", "right@x.com"]
        assert bridge["match"]["guards"] == []
    else:
        assert bridge["match"]["guards"][0]["guard"] == "large-merge"
        assert bridge["contact"]["emails"] == ["left@x.com"]
    assert_sound(store)


def test_a_size_hold_does_not_mark_a_value_shared_by_different_people(client, store):
    """Only guards that saw different people on a value make it "known to be shared"."""
    from reconcile.engine.guards import SHARED_BY_PEOPLE

    a = identify(client, email="someone@x.com")["contact"]["primaryContactId"]
    with store.engine.begin() as conn:
        for value, guard in (("grown@x.com", "group-size"), ("big@x.com", "large-merge"), ("home@x.com", "shared-identifier")):
            conn.execute(
                insert(link_guard).values(contactId=a, field="email", value=value, guard=guard, reason="t", createdAt=utcnow())
            )
    asked = [("email", v) for v in ("grown@x.com", "big@x.com", "home@x.com", "nobody@x.com")]
    with store.read() as tx:
        assert tx.guarded_values(asked, SHARED_BY_PEOPLE) == {("email", "home@x.com")}


def test_a_family_phone_joins_one_persons_other_group_and_holds_the_relative(client, store):
    """The phone is known to be shared (Alice and Bob Smith); Alice's second group, reached
    through her new email, and her first, reached only through the family phone, carry one
    person's names: they join. Bob's group stays held, with or without a name on the request."""
    alice = identify(client, email="alice@smith.org", phoneNumber="4155552671", name="Alice Smith")
    bob = identify(client, email="bob@smith.org", phoneNumber="4155552671", name="Bob Smith")
    alice2 = identify(client, email="alice.s@mail.com", name="Alice Smith")
    both = identify(client, email="alice.s@mail.com", phoneNumber="4155552671", name="Alice Smith")
    groups = {alice["contact"]["primaryContactId"], alice2["contact"]["primaryContactId"]}
    assert both["contact"]["primaryContactId"] in groups
    assert set(both["contact"]["secondaryContactIds"]) >= groups - {both["contact"]["primaryContactId"]}
    held = {g["primaryContactId"]: g["guard"] for g in both["match"]["guards"]}
    assert held == {bob["contact"]["primaryContactId"]: "shared-identifier"}
    assert_sound(store)


def family_phone_in_three_groups(client) -> list[int]:
    """Three clearly different people on one phone: the names guard gives each a group."""
    primaries = [
        identify(client, email=f"{first.lower()}@home.net", phoneNumber="4155552671", name=f"{first} {last}")[
            "contact"
        ]["primaryContactId"]
        for first, last in (("Alice", "Smith"), ("Bob", "Jones"), ("Carol", "White"))
    ]
    assert len(set(primaries)) == 3
    return primaries


@pytest.mark.parametrize("limit,joins_oldest", [(3, True), (2, False)])
def test_a_value_held_by_more_groups_than_the_limit_links_nobody(db_url, limit, joins_oldest):
    app = create_app(Settings(database_url=db_url, probabilistic=False, max_groups_per_identifier=limit))
    client, store = app.test_client(), app.extensions["reconcile"].store
    alice, bob, carol = family_phone_in_three_groups(client)
    reviews_before = len(rows(store, pending_merge))
    # an address with too few letters to say whose it is (the borrowed-phone guard holds
    # one that names none of the holders: tests/test_borrowed_phone.py)
    nameless = identify(client, email="d7@home.net", phoneNumber="4155552671")
    if joins_oldest:  # within the limit: the known-shared phone reaches the oldest group
        assert nameless["contact"]["primaryContactId"] == alice
    else:  # over it: the phone is no evidence at all, and no reviewer is asked about it
        assert nameless["contact"]["primaryContactId"] not in (alice, bob, carol)
        assert {g["guard"] for g in nameless["match"]["guards"]} == {"shared-value"}
        assert {g["primaryContactId"] for g in nameless["match"]["guards"]} == {alice, bob, carol}
        assert len(rows(store, pending_merge)) == reviews_before
        (guard,) = [g for g in rows(store, link_guard) if g.guard == "shared-value"]
        assert (guard.field, guard.value) == ("phoneNumber", "+14155552671")
    assert_sound(store)
    store.dispose()


def test_a_widely_shared_value_does_not_stop_the_other_identifier_linking(sqlite_db):
    app = create_app(Settings(database_url=sqlite_db, probabilistic=False, max_groups_per_identifier=2))
    client, store = app.test_client(), app.extensions["reconcile"].store
    erin = identify(client, email="erin@work.net", phoneNumber="6505550123")["contact"]["primaryContactId"]
    family_phone_in_three_groups(client)
    answer = identify(client, email="erin@work.net", phoneNumber="4155552671")
    assert answer["contact"]["primaryContactId"] == erin
    assert answer["contact"]["phoneNumbers"] == ["+16505550123", "+14155552671"]
    assert answer["match"]["createdContactIds"] == answer["contact"]["secondaryContactIds"]
    assert {g["guard"] for g in answer["match"]["guards"]} == {"shared-value"}
    assert_sound(store)


def test_the_groups_limit_is_read_from_the_environment_and_must_be_positive(monkeypatch):
    monkeypatch.setenv("RECONCILE_MAX_GROUPS_PER_IDENTIFIER", "5")
    assert Guards.from_settings(Settings.from_env()).max_groups_per_identifier == 5
    with pytest.raises(ValueError, match="RECONCILE_MAX_GROUPS_PER_IDENTIFIER"):
        Guards.from_settings(Settings(max_groups_per_identifier=0))


@given(st.text(alphabet="0123456789", max_size=30))
def test_a_digit_pattern_is_one_repeated_digit_or_a_run_stepping_by_one(digits):
    """The substring check says what the definition says: at least 7 digits, all equal or
    every step +1 (or every step -1) modulo 10."""
    from reconcile.engine.guards import MIN_PATTERN_DIGITS, _digit_pattern

    steps = {(int(b) - int(a)) % 10 for a, b in zip(digits, digits[1:])}
    expected = len(digits) >= MIN_PATTERN_DIGITS and (len(set(digits)) == 1 or steps in ({1}, {9}))
    assert _digit_pattern(digits) == expected


@given(st.integers(7, 30), st.integers(0, 9), st.sampled_from([1, 9]))
def test_every_run_of_seven_or_more_digits_is_a_pattern(length, start, step):
    from reconcile.engine.guards import _digit_pattern

    assert _digit_pattern("".join(str((start + step * i) % 10) for i in range(length)))


def test_a_guard_record_on_the_phone_speaks_of_the_phone(tmp_path):
    """A request held from one group on two values for two reasons (the email a role
    mailbox, the phone carried by a clearly different name) records each value's own guard."""
    from review_seed import exact_only
    from review_seed import identify as identify_in

    from reconcile.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'guards.db'}"
    upgrade(url)
    rec = create_app(exact_only(url)).extensions["reconcile"]
    try:
        identify_in(rec, "info@shop.io", "+14155550123", "John Smith")
        identify_in(rec, "info@shop.io", "+14155550123", "Mary Jones")
        recorded = {r.field: (r.guard, r.reason) for r in rows(rec.store, link_guard)}
        assert recorded["email"][0] == "role-mailbox" and recorded["email"][1].startswith("email ")
        assert recorded["phoneNumber"][0] == "shared-identifier" and recorded["phoneNumber"][1].startswith("phoneNumber ")
    finally:
        rec.store.dispose()
