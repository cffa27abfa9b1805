"""The columns the model compares, derived from normalised values.

Training tables and online scoring both build records with :func:`features`, so the
two can never disagree about what "the same mailbox" or "the name key" means. All
inputs are already normalised (see :mod:`reconcile.normalize`); this module only
derives keys from them.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from ..names import NICKNAME_FAMILIES
from ..normalize import email_parts, mailbox_key, name_key, phone_national, phone_tail

#: Every column a record passed to the scorer or to Splink carries, in table order.
COLUMNS: tuple[str, ...] = (
    "email",
    "email_mailbox",
    "email_local",
    "email_domain",
    "phone",
    "phone_national",
    "phone_tail",
    "name_key",
    "name_first",
    "name_last",
    "name_first_nick",
    "name_first_nick2",
)

_NAME_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)


def _name_tokens(name: str) -> list[str]:
    """Lower-case, accent-free tokens in the order typed (name_key sorts them)."""
    folded = unicodedata.normalize("NFKD", name)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).lower()
    return _NAME_PUNCT.sub(" ", folded).split()


@lru_cache(maxsize=1)
def _family_heads() -> dict[str, tuple[str, ...]]:
    """Each name in the guards' nickname table -> the heads of the families it is in."""
    heads: dict[str, list[str]] = {}
    for family in NICKNAME_FAMILIES:
        tokens = family.split()
        for token in tokens:
            if tokens[0] not in heads.setdefault(token, []):
                heads[token].append(tokens[0])
    return {token: tuple(h) for token, h in heads.items()}


def first_name_keys(token: str | None) -> tuple[str | None, str | None]:
    """Two keys for a first name such that two first names are the same or nicknames of
    each other (per :mod:`reconcile.names`) when any key of one equals any key of the other.

    A name in one nickname family gets that family's head twice (``bill`` -> ``william``);
    a name in several (``chris``: Christopher and Christine) gets the first and the last
    family's head; a name in none gets itself. So the model's levels compare them with
    plain equalities, which Splink's SQL and the online scorer evaluate identically.
    """
    if not token:
        return None, None
    families = _family_heads().get(token)
    if not families:
        return token, token
    return families[0], families[-1]


FEATURE_CACHE_SIZE = 65_536


def features(email: str | None, phone: str | None, name: str | None) -> dict[str, str | None]:
    """All compared columns for one normalised (email, phone, name); absent parts are None.

    Memoised: the same contacts come back as candidates again and again, and parsing
    their phones costs more than scoring them. Each call gets its own dict.
    """
    return dict(_features(email, phone, name))


@lru_cache(maxsize=FEATURE_CACHE_SIZE)
def _features(email: str | None, phone: str | None, name: str | None) -> dict[str, str | None]:
    mailbox = mailbox_key(email)
    return _assemble(email, phone, name, mailbox, email_parts(mailbox)[0] if mailbox else None,
                     phone_national(phone), phone_tail(phone), name_key(name))


def stored_features(
    email: str | None,
    phone: str | None,
    name: str | None,
    *,
    email_mailbox: str | None,
    email_local: str | None,
    phone_national: str | None,
    phone_tail: str | None,
    name_key: str | None,
) -> dict[str, str | None]:
    """:func:`features` of a stored contact from the keys stored beside its values.

    The store wrote those keys with the functions :func:`features` calls
    (:attr:`reconcile.normalize.Identity.keys`), so the record is the same; reading them
    saves parsing every candidate's phone again on each request that scores it.
    """
    return _assemble(email, phone, name, email_mailbox, email_local, phone_national, phone_tail, name_key)


@lru_cache(maxsize=FEATURE_CACHE_SIZE)
def name_features(name: str | None) -> tuple[str | None, str | None, str | None, str | None]:
    """(name_first, name_last, name_first_nick, name_first_nick2) of a name: the name
    columns a stored contact does not keep (a batch snapshot derives them from ``name``
    beside the stored keys)."""
    tokens = _name_tokens(name) if name else []
    nick, nick2 = first_name_keys(tokens[0] if tokens else None)
    return (tokens[0] if tokens else None, tokens[-1] if tokens else None, nick, nick2)


def _assemble(
    email: str | None,
    phone: str | None,
    name: str | None,
    mailbox: str | None,
    local: str | None,
    national: str | None,
    tail: str | None,
    key: str | None,
) -> dict[str, str | None]:
    first, last, nick, nick2 = name_features(name)
    return {
        "email": email or None,
        "email_mailbox": mailbox,
        "email_local": local,
        "email_domain": email_parts(mailbox)[1] if mailbox else None,
        "phone": phone or None,
        "phone_national": national,
        "phone_tail": tail,
        "name_key": key,
        "name_first": first,
        "name_last": last,
        "name_first_nick": nick,
        "name_first_nick2": nick2,
    }
