"""Normalisation: what makes two values "the same" for the exact rules (PRODUCT.md)."""
from __future__ import annotations

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from reconcile.normalize import (
    MAX_EMAIL_LENGTH,
    MAX_PHONE_LENGTH,
    InvalidInput,
    email_local,
    mailbox_key,
    normalize_email,
    normalize_name,
    normalize_phone,
    parse_identity,
    phone_tail,
)

# --- email: examples ------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("a@x.com", "a@x.com"),
        ("A@X.com ", "a@x.com"),
        ("  Lorraine@HillValley.EDU\t", "lorraine@hillvalley.edu"),
        ("a@x.com.", "a@x.com"),
        ("a@bücher.de", "a@xn--bcher-kva.de"),
        ("a@BÜCHER.de", "a@xn--bcher-kva.de"),
        ("a@ａ.com", "a@a.com"),  # full-width letters fold under UTS 46
    ],
)
def test_email_is_trimmed_lowercased_and_its_domain_idna_encoded(raw, expected):
    assert normalize_email(raw) == expected


def test_email_case_and_surrounding_whitespace_variants_are_the_same_email():
    assert normalize_email("A@X.com ") == normalize_email("a@x.com")


@pytest.mark.parametrize("raw", [None, "", "   ", "\t\n"])
def test_absent_or_blank_email_is_none(raw):
    assert normalize_email(raw) is None


def test_plus_alias_and_gmail_dots_are_kept_by_the_exact_normaliser():
    assert normalize_email("Doc+Time@x.com") == "doc+time@x.com"
    assert normalize_email("doc+time@x.com") != normalize_email("doc@x.com")
    assert normalize_email("d.o.c@gmail.com") == "d.o.c@gmail.com"
    assert normalize_email("d.o.c@gmail.com") != normalize_email("doc@gmail.com")
    assert normalize_email("doc@googlemail.com") != normalize_email("doc@gmail.com")


def test_mailbox_key_folds_plus_alias_gmail_dots_and_googlemail():
    assert mailbox_key("doc+time@x.com") == "doc@x.com"
    assert mailbox_key("d.o.c+x@gmail.com") == "doc@gmail.com"
    assert mailbox_key("d.o.c@googlemail.com") == "doc@gmail.com"
    assert email_local("d.o.c+x@googlemail.com") == "doc"
    # dots are only folded for Gmail
    assert mailbox_key("d.o.c@x.com") == "d.o.c@x.com"
    assert mailbox_key(None) is None


@pytest.mark.parametrize(
    "raw",
    [
        "no-at-sign",
        "@x.com",
        "a@",
        "@",
        "a@b@c.com",
        "a b@x.com",
        "a@x..com",
        "a@.x.com",
        "a@.",
        "a\u0000@x.com",
        "a@x.com\u0007",
        "a\u200b@x.com",  # zero-width space (format character)
        "a" * MAX_EMAIL_LENGTH + "@x.com",
    ],
)
def test_malformed_email_is_rejected_with_invalid_input_on_the_email_field(raw):
    with pytest.raises(InvalidInput) as info:
        normalize_email(raw)
    assert info.value.field == "email"
    assert info.value.message


@pytest.mark.parametrize("raw", [1, 1.5, True, False, {"a": 1}, ["a@x.com"], b"a@x.com"])
def test_email_of_a_non_string_type_is_rejected(raw):
    with pytest.raises(InvalidInput) as info:
        normalize_email(raw)
    assert info.value.field == "email"


# --- phone: examples ------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, region, expected",
    [
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("+1 415 555 2671", "US", "+14155552671"),
        (4155552671, "US", "+14155552671"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 20 7946 0958", "GB", "+442079460958"),
    ],
)
def test_valid_phone_is_formatted_as_e164_using_the_default_region(raw, region, expected):
    assert normalize_phone(raw, region) == expected


def test_default_region_decides_how_a_national_number_is_read():
    assert normalize_phone("020 7946 0958", "GB") == "+442079460958"
    assert normalize_phone("020 7946 0958", "US") != "+442079460958"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("123456", "123456"),
        (123456, "123456"),
        (" 123456 ", "123456"),
        ("3000000000", "3000000000"),  # possible but not valid: kept as digits
        ("1", "1"),
        (1, "1"),
        ("555", "555"),
        ("0", "0"),
        ("919-191", "919191"),
    ],
)
def test_invalid_or_merely_possible_phone_is_kept_as_its_digits(raw, expected):
    assert normalize_phone(raw, "US") == expected


def test_phone_as_string_and_as_integer_are_the_same_phone():
    assert normalize_phone("123456") == normalize_phone(123456)
    assert normalize_phone("4155552671") == normalize_phone(4155552671)


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_absent_or_blank_phone_is_none(raw):
    assert normalize_phone(raw) is None


@pytest.mark.parametrize("raw", [True, False, 1.0, 123456.0, float("nan"), {"n": 1}, [123456], b"123456"])
def test_phone_of_a_non_string_non_integer_type_is_rejected(raw):
    with pytest.raises(InvalidInput) as info:
        normalize_phone(raw)
    assert info.value.field == "phoneNumber"


@pytest.mark.parametrize(
    "raw",
    [
        -5,
        "abc",
        "12a34",
        "+",
        "()",
        "12\u000034",
        "123\n456",
        "1" * 21,
        "1" * (MAX_PHONE_LENGTH + 1),
        10**30,
    ],
)
def test_malformed_phone_is_rejected_with_invalid_input_on_the_phone_field(raw):
    with pytest.raises(InvalidInput) as info:
        normalize_phone(raw)
    assert info.value.field == "phoneNumber"


def test_phone_tail_is_the_last_seven_digits_or_none_for_short_phones():
    assert phone_tail("+14155552671") == "5552671"
    assert phone_tail("123456") is None


# --- names and whole requests -----------------------------------------------------------


def test_name_whitespace_is_collapsed_and_blank_is_none():
    assert normalize_name("  Marty \t McFly ") == "Marty McFly"
    assert normalize_name("   ") is None
    with pytest.raises(InvalidInput):
        normalize_name(42)


def test_parse_identity_needs_an_object_with_at_least_one_identifier():
    identity = parse_identity({"email": " A@X.com", "phoneNumber": 123456, "name": "Doc"})
    assert (identity.email, identity.phone, identity.name) == ("a@x.com", "123456", "Doc")
    for bad in ({}, {"email": None, "phoneNumber": None}, {"email": " ", "phoneNumber": ""}, [], "x", 1, None):
        with pytest.raises(InvalidInput):
            parse_identity(bad)


# --- properties ---------------------------------------------------------------------------

_LOCAL = st.text(
    alphabet=st.characters(categories=("Ll", "Lu", "Nd"), include_characters="._+-"), min_size=1, max_size=20
)
_LABEL = st.text(alphabet=st.characters(categories=("Ll", "Lu", "Nd")), min_size=1, max_size=12)
_DOMAIN = st.lists(_LABEL, min_size=1, max_size=3).map(".".join)
_EMAILISH = st.builds(lambda l, d, s: f"{l}@{d}{s}", _LOCAL, _DOMAIN, st.sampled_from(["", ".", " ", "\t"]))
_ASCII_EMAIL = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,15}@[A-Za-z0-9]{1,10}(\.[A-Za-z]{2,5}){1,2}", fullmatch=True)

_PHONE_CHARS = "0123456789 +-().-/"
_PHONEISH = st.one_of(
    st.text(alphabet=_PHONE_CHARS, max_size=25),
    st.integers(min_value=0, max_value=10**21),
    st.from_regex(r"\+?[1-9][0-9]{6,14}", fullmatch=True),
)


def _try(fn, *args):
    try:
        return fn(*args)
    except InvalidInput:
        return InvalidInput


@settings(max_examples=300, deadline=None)
@given(st.one_of(_EMAILISH, st.text(max_size=40)))
@example("x@a\uff0e")  # full-width dot: IDNA turns it into a trailing "."
@example("x@\uff0e")
def test_normalising_a_normalised_email_gives_the_same_email(raw):
    once = _try(normalize_email, raw)
    assume(isinstance(once, str))
    assert normalize_email(once) == once


@settings(max_examples=300, deadline=None)
@given(_PHONEISH, st.sampled_from(["US", "GB", "DE", "IN"]))
@example("+4155552671", "US")  # not valid as +41; its digits are a valid US number
@example("+2155552671", "US")
def test_normalising_a_normalised_phone_gives_the_same_phone(raw, region):
    once = _try(normalize_phone, raw, region)
    assume(isinstance(once, str))
    assert normalize_phone(once, region) == once


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), _EMAILISH))
def test_email_normaliser_raises_nothing_but_invalid_input_on_any_text(raw):
    result = _try(normalize_email, raw)
    if isinstance(result, str):
        local, at, domain = result.rpartition("@")
        assert at and local and domain
        assert result == result.strip()
        assert domain.isascii() and domain == domain.lower()
        assert len(result) <= 2 * MAX_EMAIL_LENGTH


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=100), _PHONEISH), st.sampled_from(["US", "GB", "FR", "JP"]))
def test_phone_normaliser_raises_nothing_but_invalid_input_on_any_text(raw, region):
    result = _try(normalize_phone, raw, region)
    if isinstance(result, str):
        assert result.lstrip("+").isdigit() and result.isascii()
        assert "+" not in result[1:]


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=6,
    )
)
def test_parse_identity_raises_nothing_but_invalid_input_on_any_json_value(payload):
    for body in (payload, {"email": payload}, {"phoneNumber": payload}, {"name": payload, "phoneNumber": "1"}):
        result = _try(parse_identity, body)
        if result is not InvalidInput:
            assert result.email is not None or result.phone is not None


@settings(max_examples=200, deadline=None)
@given(_ASCII_EMAIL, st.sampled_from([str.upper, str.lower, str.title, lambda s: f"  {s}\t"]))
def test_case_and_whitespace_variants_of_an_email_normalise_alike(raw, variant):
    base = normalize_email(raw)
    assert base == raw.lower()
    assert normalize_email(variant(raw)) == base


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**19))
def test_an_integer_phone_and_its_decimal_string_are_the_same_phone(number):
    assert _try(normalize_phone, number) == _try(normalize_phone, str(number))


@settings(max_examples=200, deadline=None)
@given(_EMAILISH)
def test_mailbox_key_is_idempotent_and_ignores_plus_tags(raw):
    email = _try(normalize_email, raw)
    assume(isinstance(email, str))
    key = mailbox_key(email)
    assert mailbox_key(key) == key
    local, _, domain = email.rpartition("@")
    if "+" not in local and local:
        tagged = normalize_email(f"{local}+tag@{domain}")
        if isinstance(tagged, str):
            assert mailbox_key(tagged) == mailbox_key(email)
