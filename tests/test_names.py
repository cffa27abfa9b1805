"""Name compatibility, the shared-identifier guard's test of "clearly different people":
short forms, nicknames, initials and letters ASCII lacks are one person; the relation is
symmetric and reflexive whatever the names (hypothesis). ``one_person``, the size guards'
evidence, asks it of every pair."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconcile.names import names_compatible, one_person
from reconcile.normalize import name_key

NAMES = st.text(alphabet=st.sampled_from("abcdeilmnorstxyz .-'ÀÉ"), max_size=24)


@pytest.mark.parametrize(
    "a, b",
    [
        ("Al King", "Alex King"),
        ("Al King", "Alexander King"),
        ("Sam Reed", "Samuel Reed"),
        ("Alejandro Ruiz", "Alex Ruiz"),
        ("Bill Hart", "William Hart"),
        ("K Smith", "Kate Smith"),
        ("King Al", "Alex King"),
        ("Lena Gross", "Lena Groß"),
        ("LENA GROSS", "Groß Lena"),
        ("Lukasz Nowak", "Łukasz Nowak"),
        ("Soren Ostergaard", "Søren Østergaard"),
        ("Małgorzata Nowak", "Gosia Nowak"),
    ],
)
def test_short_forms_nicknames_and_initials_are_the_same_person(a, b):
    assert names_compatible(a, b) and names_compatible(b, a)


@pytest.mark.parametrize(
    "a, b",
    [("Alex King", "Mary King"), ("Katherine Lee", "Christopher Lee"), ("Jo Ann", "Bob Ann"), ("Li Wei", "Lo Wei")],
)
def test_clearly_different_names_stay_different(a, b):
    assert not names_compatible(a, b)


@given(NAMES, NAMES)
def test_compatibility_is_symmetric(a, b):
    assert names_compatible(a, b) == names_compatible(b, a)


@given(NAMES)
def test_a_name_is_compatible_with_itself_and_its_initials(name):
    assert names_compatible(name, name)
    initials = " ".join(t[0] for t in name.split() if t[:1].isalpha())
    assert names_compatible(name, initials)


@given(NAMES, st.integers(min_value=2, max_value=6))
def test_a_clipped_first_name_is_compatible(name, keep):
    tokens = name.split()
    if tokens:
        clipped = " ".join([tokens[0][:keep], *tokens[1:]])
        assert names_compatible(name, clipped)



def test_one_person_asks_every_pair_not_a_chain():
    """"J Smith" is compatible with both, but John and Jane are two people."""
    keys = [name_key(n) for n in ("John Smith", "J Smith", "Jane Smith")]
    assert not one_person(keys[:2], keys[2:])
    assert one_person([name_key("Anthony Wright"), name_key("Wright Tony")], [name_key("Wright Anthony")])


def test_a_side_without_names_is_no_evidence():
    assert not one_person([name_key("Ann Lee")], [None, None])
    assert not one_person([], [name_key("Ann Lee")])


@given(st.lists(st.lists(NAMES, max_size=3), min_size=1, max_size=3), st.randoms(use_true_random=False))
def test_one_person_does_not_depend_on_the_order_of_names_or_sides(sides, rnd):
    keyed = [[name_key(n) for n in side] for side in sides]
    shuffled = [rnd.sample(side, len(side)) for side in rnd.sample(keyed, len(keyed))]
    assert one_person(*keyed) == one_person(*shuffled)
