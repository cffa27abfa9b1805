"""A phone passed to another person (a recycled number, a borrowed or shared line) and
used WITHOUT a name: the exact stage has no name to clash with, but the new email the
request brings is evidence of whose it is. When it names none of the phone's named
holders the link is held for review; otherwise, and whenever the holders carry no name
(the contract's own examples), it links as the contract says."""
from __future__ import annotations

import pytest
from conftest import assert_sound, identify, rows
from hypothesis import given
from hypothesis import strategies as st

from reconcile.config import Settings
from reconcile.names import local_part_names_nobody
from reconcile.store.schema import pending_merge
from reconcile.web import create_app


@pytest.mark.parametrize(
    "local,names,locals_,nobody",
    [
        ("oliviam65553", ["katherine moore"], ["katherine.moore"], True),
        ("harpreetc475", ["johnson patricia", "johnson trish"], ["patricia.johnson"], True),
        ("chenhe12", ["chen he"], ["chenh79"], False),  # his own second address
        ("fang.he", ["chen he"], [], False),  # a relative: the surname says nothing more
        ("bill.turner+shop", ["turner william"], [], False),  # a nickname of the holder
        ("jsmith", ["john smith"], [], False),
        ("kmoore1", ["katherine moore"], [], False),
        ("katherinne.moor", ["x y"], ["katherine.moore"], False),  # like the holder's own address
        ("a1", ["katherine moore"], [], False),  # too few letters to say
    ],
)
def test_an_email_names_nobody_only_when_it_shares_no_name_and_looks_like_no_address(local, names, locals_, nobody):
    assert local_part_names_nobody(local, names, locals_) is nobody


@given(first=st.sampled_from(["ann", "maria", "li", "oluwaseun", "jose"]), last=st.sampled_from(["lee", "garcia", "okafor", "ng"]),
       digits=st.integers(0, 9999), sep=st.sampled_from(["", ".", "_"]))
def test_an_address_built_from_the_holders_name_is_always_theirs(first, last, digits, sep):
    for local in (f"{first}{sep}{last}{digits}", f"{first[0]}{last}", f"{last}{sep}{first}"):
        assert not local_part_names_nobody(local, [" ".join(sorted((first, last)))], [])


def test_a_nameless_stranger_on_a_named_phone_is_held_for_review(client, store):
    kate = identify(client, email="katherine.moore@yahoo.com", phoneNumber="2013492933", name="Katherine Moore")
    other = identify(client, email="oliviam65553@gmail.com", phoneNumber="2013492933")
    assert other["contact"]["primaryContactId"] != kate["contact"]["primaryContactId"]
    (guard,) = other["match"]["guards"]
    assert guard["guard"] == "shared-identifier" and "names none of them" in guard["reason"]
    (pending,) = rows(store, pending_merge)
    assert pending.guard == "shared-identifier" and other["match"]["pendingMergeIds"] == [pending.id]
    assert_sound(store)


def test_a_nameless_request_whose_email_fits_the_holder_links(client, store):
    chen = identify(client, email="chenh79@aol.com", phoneNumber="2015076225", name="Chen He")
    again = identify(client, email="chen.he12@gmail.com", phoneNumber="2015076225")
    assert again["contact"]["primaryContactId"] == chen["contact"]["primaryContactId"]
    assert again["match"]["guards"] == [] and rows(store, pending_merge) == []


def test_the_contracts_nameless_examples_link_as_written(client, store):
    first = identify(client, email="lorraine@hillvalley.edu", phoneNumber="123456")
    second = identify(client, email="mcfly@hillvalley.edu", phoneNumber="123456")
    assert second["contact"]["primaryContactId"] == first["contact"]["primaryContactId"]
    assert second["contact"]["emails"] == ["lorraine@hillvalley.edu", "mcfly@hillvalley.edu"]


def test_the_guard_can_be_turned_off(sqlite_db):
    app = create_app(Settings(database_url=sqlite_db, probabilistic=False, borrowed_phone_guard=False))
    client = app.test_client()
    kate = identify(client, email="katherine.moore@yahoo.com", phoneNumber="2013492933", name="Katherine Moore")
    other = identify(client, email="oliviam65553@gmail.com", phoneNumber="2013492933")
    assert other["contact"]["primaryContactId"] == kate["contact"]["primaryContactId"]


def test_a_known_email_and_another_groups_phone_join_the_groups_as_the_contract_says(client, store):
    lorraine = identify(client, email="lorraine@hillvalley.edu", phoneNumber="4155552671", name="Lorraine Baines")
    identify(client, email="marty@hillvalley.edu", phoneNumber="4155552672", name="Marty McFly")
    merged = identify(client, email="lorraine@hillvalley.edu", phoneNumber="4155552672")
    assert merged["contact"]["primaryContactId"] == lorraine["contact"]["primaryContactId"]
    assert merged["match"]["guards"] == [] and len(merged["match"]["demotedContactIds"]) == 1
    assert_sound(store)
