"""Name compatibility, the shared-identifier guard's test of "clearly different people":
short forms, nicknames and initials are one person; the relation is symmetric and
reflexive whatever the names (hypothesis)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconcile.names import names_compatible

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

