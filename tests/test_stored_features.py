"""Scoring a stored contact reads the keys stored beside its values instead of deriving
them again (no phone parsed per candidate): the record must be the one :func:`features`
derives from the values, for any request the service accepts."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from reconcile.normalize import InvalidInput, parse_identity
from reconcile.scoring.features import features, stored_features

_PHONES = st.one_of(
    st.none(),
    st.sampled_from(["+1 415 555 2671", "020 7946 0958", "+39 06 6982 1234", "0", "10000000000", "123456", "(555) 010-9999"]),
    st.text(alphabet="0123456789 +-()", max_size=18),
    st.integers(min_value=0, max_value=10**15),
)
_EMAILS = st.one_of(
    st.none(),
    st.sampled_from(["Jo.Doe+promo@GoogleMail.com", "info@shop.example", "a@a.com", "x@bücher.de"]),
    st.emails(),
)
_NAMES = st.one_of(st.none(), st.sampled_from(["Łukasz Nowak", "Bill  O'Brien", "María-José García", "李 小龙"]), st.text(max_size=30))


@settings(max_examples=300, deadline=None)
@given(email=_EMAILS, phone=_PHONES, name=_NAMES)
def test_features_from_stored_keys_equal_features_from_values(email, phone, name):
    try:
        identity = parse_identity({"email": email, "phoneNumber": phone, "name": name}, "US")
    except InvalidInput:  # unreadable values included: the service refuses or stores them as data
        return
    keys = identity.keys
    from_keys = stored_features(
        identity.email,
        identity.phone,
        identity.name,
        email_mailbox=keys["emailMailbox"],
        email_local=keys["emailLocal"],
        phone_national=keys["phoneNational"],
        phone_tail=keys["phoneTail"],
        name_key=keys["nameKey"],
    )
    assert from_keys == features(identity.email, identity.phone, identity.name)
    assert list(from_keys) == list(features(identity.email, identity.phone, identity.name))
