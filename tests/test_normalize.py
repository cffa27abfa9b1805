"""Normalisation: what makes two values "the same" for the exact rules (PRODUCT.md)."""
from __future__ import annotations

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import phonenumbers

from reconcile.normalize import (
    MAX_EMAIL_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PHONE_LENGTH,
    MAX_UNREADABLE_LENGTH,
    InvalidInput,
    UnreadableValue,
    email_local,
    mailbox_key,
    name_key,
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


# --- real-world noise: phones -------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("tel:+44-7550-171728", "+447550171728"),  # RFC 3966
        ("TEL:+44-7550-171728", "+447550171728"),
        ("tel:+44-7550-171728;ext=12", "+447550171728"),
        ("+39\u00a03698511597", "+393698511597"),  # no-break space
        ("+39\u202f369\u2009851\u20091597", "+393698511597"),  # narrow no-break, thin
        ("+39\u3000369\u2007851\u20021597", "+393698511597"),  # ideographic, figure, en spaces
        ("+39\u200b3698511597", "+393698511597"),  # zero-width space: punctuation to phonenumbers
        ("\uff0b\uff11 \uff14\uff11\uff15 \uff15\uff15\uff15 \uff12\uff16\uff17\uff11", "+14155552671"),  # full-width
        ("'228-572-0546", "+12285720546"),  # spreadsheet text marker
        ("228-572-0546,,244", "+12285720546"),  # pause then extension
        ("228-572-0546;244", "+12285720546"),  # wait then extension
        ("228-572-0546 ext. 12", "+12285720546"),
        ("228-572-0546 x12", "+12285720546"),
        ("228-572-0546#12", "+12285720546"),
        ("(228) 572-0546 extension 12", "+12285720546"),
    ],
)
def test_every_form_phonenumbers_reads_normalises_to_e164_without_the_extension(raw, expected):
    assert normalize_phone(raw, "US") == expected


@pytest.mark.parametrize(
    "raw", ["'123456", "tel:123456", "123456 ext. 12", "123456 x12", "123456#12", "123456,,12", "123456;12",
            "123\u00a0456", "\u2009123456\u2009", "\uff11\uff12\uff13\uff14\uff15\uff16"],
)
def test_noisy_forms_of_a_short_phone_keep_its_digits_and_drop_the_extension(raw):
    assert normalize_phone(raw, "US") == "123456"


@pytest.mark.parametrize("raw", ["abc", "12ab34", "+", "()", "call me maybe", "n/a", "123456 ext. abc", "1" * 21])
def test_a_string_that_is_no_phone_is_unreadable_rather_than_a_type_error(raw):
    with pytest.raises(UnreadableValue) as info:
        normalize_phone(raw)
    assert info.value.field == "phoneNumber"


@pytest.mark.parametrize("raw", [True, 1.5, [1], {"n": 1}, -5])
def test_a_wrong_type_or_negative_phone_is_invalid_input_not_an_unreadable_value(raw):
    with pytest.raises(InvalidInput) as info:
        normalize_phone(raw)
    assert not isinstance(info.value, UnreadableValue)


# --- real-world noise: emails -------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "doc@hillvalley.edu",
        "doc @ hillvalley.edu",
        "doc\u00a0@\u00a0hillvalley.edu",
        "doc@ hillvalley.edu",
        "mailto:doc@hillvalley.edu",
        "MailTo:Doc@HillValley.edu",
        "<doc@hillvalley.edu>",
        "Doc Brown <doc@hillvalley.edu>",
        "<mailto:doc@hillvalley.edu>",
        "mailto:<doc@hillvalley.edu>",
        "doc@hillvalley.edu.",
        " <doc@hillvalley.edu.> ",
    ],
)
def test_email_noise_is_removed_before_validating(raw):
    assert normalize_email(raw) == "doc@hillvalley.edu"


def test_a_composed_and_a_decomposed_accent_are_the_same_email():
    composed, decomposed = "jos\u00e9@caf\u00e9.fr", "jose\u0301@cafe\u0301.fr"
    assert normalize_email(composed) == normalize_email(decomposed) == "jos\u00e9@xn--caf-dma.fr"


@pytest.mark.parametrize(
    "raw", ["d oc@x.com", "doc@x .com", "no-at-sign", "mailto:", "<@x.com>", "a\u200b@x.com", "a" * 300 + "@x.com"]
)
def test_email_noise_cleaning_still_rejects_inner_whitespace_control_characters_and_empty_sides(raw):
    with pytest.raises(UnreadableValue) as info:
        if normalize_email(raw) is None:  # "mailto:" alone is nothing but noise
            raise UnreadableValue("email", "blank")
    assert info.value.field == "email"


# --- whole requests with one unreadable identifier ---------------------------------------------


def test_an_unreadable_phone_beside_a_good_email_becomes_a_warning_and_data():
    identity = parse_identity({"email": "Doc@HillValley.edu", "phoneNumber": "call me maybe"})
    assert (identity.email, identity.phone) == ("doc@hillvalley.edu", None)
    assert identity.unreadable_columns == {"unreadableEmail": None, "unreadablePhone": "call me maybe"}
    [warning] = identity.warnings
    assert warning["field"] == "phoneNumber" and warning["code"] == "unreadable_phone" and warning["message"]
    assert identity.keys["phoneNational"] is None and identity.keys["phoneTail"] is None


def test_an_unreadable_email_beside_a_good_phone_becomes_a_warning_and_data():
    identity = parse_identity({"email": "doc at hillvalley", "phoneNumber": 123456})
    assert (identity.email, identity.phone) == (None, "123456")
    assert identity.unreadable_columns == {"unreadableEmail": "doc at hillvalley", "unreadablePhone": None}
    assert [w["code"] for w in identity.warnings] == ["unreadable_email"]


def test_a_readable_request_has_no_warnings_and_no_unreadable_data():
    identity = parse_identity({"email": "doc@hillvalley.edu", "phoneNumber": "tel:+1-415-555-2671;ext=3"})
    assert identity.warnings == []
    assert identity.unreadable_columns == {"unreadableEmail": None, "unreadablePhone": None}


def test_an_unreadable_value_is_stored_without_control_characters_and_cut_to_the_column():
    identity = parse_identity({"email": "doc@hillvalley.edu", "phoneNumber": " 12\u00003\ud800 "})
    assert identity.unreadable_columns["unreadablePhone"] == "12\ufffd3\ufffd"
    long = parse_identity({"email": "x" * 1000, "phoneNumber": "123456"})
    assert long.unreadable_columns["unreadableEmail"] == "x" * MAX_UNREADABLE_LENGTH


def test_a_request_whose_only_identifier_is_unreadable_fails_on_that_field():
    with pytest.raises(UnreadableValue) as info:
        parse_identity({"phoneNumber": "call me maybe", "email": "  "})
    assert info.value.field == "phoneNumber"


def test_a_request_with_no_usable_identifier_names_both_problems():
    with pytest.raises(InvalidInput) as info:
        parse_identity({"email": "doc at hillvalley", "phoneNumber": "n/a"})
    assert info.value.field == "body"
    assert "no usable identifier" in info.value.message
    assert "email" in info.value.message and "phoneNumber" in info.value.message


def test_a_wrong_type_still_fails_the_request_even_beside_a_good_identifier():
    with pytest.raises(InvalidInput) as info:
        parse_identity({"email": "doc@hillvalley.edu", "phoneNumber": 1.5})
    assert info.value.field == "phoneNumber"


# --- properties of the noise rules -------------------------------------------------------------

_REGIONS = ("US", "GB", "DE", "FR", "IN", "BR", "IT", "JP")
_UNICODE_SPACES = st.sampled_from([" ", "\u00a0", "\u202f", "\u2009", "\u2007", "\u3000", "\u200b"])
_EXTENSIONS = st.builds(
    lambda label, digits: f"{label}{digits}",
    st.sampled_from([" ext. ", " ext ", " x", " x ", "#", ";ext=", ",,", ";", " extension "]),
    st.from_regex(r"[1-9][0-9]{0,3}", fullmatch=True),
)


def _valid_numbers():
    """A valid number of a region, in one of the formats a till prints."""
    formats = (
        phonenumbers.PhoneNumberFormat.E164,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.RFC3966,
    )
    return st.builds(
        lambda region, fmt: (phonenumbers.example_number(region), fmt),
        st.sampled_from(_REGIONS),
        st.sampled_from(formats),
    ).map(lambda pair: phonenumbers.format_number(*pair))


def _noisy(text: str, space: str, extension: str, apostrophe: bool, extend: bool) -> str:
    noisy = text.replace(" ", space).replace("-", space) if not text.startswith("tel:") else text
    noisy = f"'{noisy}" if apostrophe else noisy
    return f"{noisy}{extension}" if extend else noisy


@settings(max_examples=300, deadline=None)
@given(_valid_numbers(), _UNICODE_SPACES, _EXTENSIONS, st.booleans(), st.booleans(), st.sampled_from(_REGIONS))
def test_a_valid_number_and_its_noisy_forms_normalise_to_one_e164_key(text, space, extension, apostrophe, extend, region):
    key = normalize_phone(text, region)
    assert key is not None and key.startswith("+")
    assert normalize_phone(_noisy(text, space, extension, apostrophe, extend), region) == key
    assert normalize_phone(key, region) == key


@settings(max_examples=300, deadline=None)
@given(
    st.from_regex(r"[1-9][0-9]{2,5}", fullmatch=True),
    _UNICODE_SPACES,
    _EXTENSIONS,
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_a_short_number_and_its_noisy_forms_normalise_to_its_digits(digits, space, extension, apostrophe, extend, uri):
    """Numbers no region finds valid (3 to 6 digits, as the contract's examples) keep their
    digits, whatever noise surrounds them."""
    spaced = f"{digits[:2]}{space}{digits[2:]}"
    noisy = _noisy(("tel:" if uri else "") + spaced, space, extension, apostrophe, extend)
    assert normalize_phone(noisy, "US") == digits
    assert normalize_phone(digits, "US") == digits


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_PHONE_CHARS + "'telTEL:;#x,.\u00a0\u202f\u2009\u200b\uff10\uff11", max_size=30),
       st.sampled_from(_REGIONS))
def test_normalising_a_normalised_noisy_phone_gives_the_same_phone(raw, region):
    once = _try(normalize_phone, raw, region)
    assume(isinstance(once, str))
    assert once.lstrip("+").isdigit() and once.isascii()
    assert normalize_phone(once, region) == once


_EMAIL_NOISE = st.sampled_from(
    [
        lambda e: e,
        lambda e: e.replace("@", " @ "),
        lambda e: e.replace("@", "\u00a0@"),
        lambda e: f"mailto:{e}",
        lambda e: f"MAILTO:{e}",
        lambda e: f"<{e}>",
        lambda e: f"Some Body <{e}>",
        lambda e: f"<mailto:{e}>",
        lambda e: f"{e}.",
        lambda e: f" \t{e}\u00a0",
    ]
)


@settings(max_examples=300, deadline=None)
@given(_ASCII_EMAIL, st.lists(_EMAIL_NOISE, min_size=1, max_size=3))
def test_an_email_and_its_noisy_forms_normalise_to_one_key(raw, noises):
    key = normalize_email(raw)
    noisy = raw
    for noise in noises:
        noisy = noise(noisy)
    assert normalize_email(noisy) == key
    assert normalize_email(key) == key


_ACCENTED = st.text(alphabet=st.sampled_from("aeiouncAEIOU\u00e9\u00e8\u00fc\u00f1\u00e7\u0301\u0300\u0308"),
                    min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(_ACCENTED, _ACCENTED)
def test_composed_and_decomposed_forms_of_an_email_are_the_same_email(local, domain):
    import unicodedata

    raw = f"{local}@{domain}.com"
    results = {_try(normalize_email, unicodedata.normalize(form, raw)) for form in ("NFC", "NFD")}
    assert len(results) == 1
    (result,) = results
    if isinstance(result, str):
        assert unicodedata.is_normalized("NFC", result)
        assert normalize_email(result) == result


@settings(max_examples=200, deadline=None)
@given(_ASCII_EMAIL, st.one_of(st.text(max_size=40), st.integers(min_value=0, max_value=10**40)))
def test_a_readable_email_is_never_lost_to_whatever_comes_as_the_phone(email, phone):
    identity = parse_identity({"email": email, "phoneNumber": phone})
    assert identity.email == normalize_email(email)
    if identity.phone is None and str(phone).strip():
        assert [w["code"] for w in identity.warnings] == ["unreadable_phone"]
        assert identity.unreadable_columns["unreadablePhone"] is not None
    else:
        assert identity.warnings == []


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)) | st.text())
@example("a@b.c\x7f")
@example("\t")
@example("plain ascii")
def test_control_character_check_matches_unicode_categories(value):
    """The ASCII fast path of the control-character check answers as the Unicode
    category rule does, for ASCII and any other text."""
    import unicodedata

    from reconcile.normalize import _has_control_chars

    expected = any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") for ch in value)
    assert _has_control_chars(value) == expected


@pytest.mark.parametrize("name", ["\ufb03" * 200, "\ufdfa" * 12])
def test_a_name_whose_key_unfolds_past_its_column_is_refused(name):
    """NFKD unfolds ligatures (``ﬃ`` is three letters, U+FDFA eighteen): the stored name key
    must fit its column as the name does (PostgreSQL refuses a longer value)."""
    with pytest.raises(InvalidInput) as refused:
        normalize_name(name)
    assert refused.value.field == "name"


def test_an_email_that_lowercases_past_the_limit_is_unreadable():
    """``İ`` lower-cases to two characters: 249 of them pass the length check as sent and
    would be 503 characters stored."""
    with pytest.raises(UnreadableValue):
        normalize_email("\u0130" * 249 + "@a.bc")


@given(st.text(max_size=MAX_NAME_LENGTH))
def test_every_accepted_name_has_a_key_that_fits_the_column(raw):
    try:
        value = normalize_name(raw)
    except InvalidInput:
        return
    key = name_key(value)
    assert key is None or len(key) <= MAX_NAME_LENGTH


@given(st.text(max_size=MAX_EMAIL_LENGTH + 10))
def test_every_accepted_email_fits_the_length_limit_once_normalised(raw):
    try:
        value = normalize_email(raw)
    except (InvalidInput, UnreadableValue):
        return
    assert value is None or len(value) <= MAX_EMAIL_LENGTH
