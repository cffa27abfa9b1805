"""The columns the model compares, derived from normalised values.

Training tables and online scoring both build records with :func:`features`, so the
two can never disagree about what "the same mailbox" or "the name key" means. All
inputs are already normalised (see :mod:`reconcile.normalize`); this module only
derives keys from them.
"""
from __future__ import annotations

import re
import unicodedata

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
)

_NAME_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)


def _name_tokens(name: str) -> list[str]:
    """Lower-case, accent-free tokens in the order typed (name_key sorts them)."""
    folded = unicodedata.normalize("NFKD", name)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).lower()
    return _NAME_PUNCT.sub(" ", folded).split()


def features(email: str | None, phone: str | None, name: str | None) -> dict[str, str | None]:
    """All compared columns for one normalised (email, phone, name); absent parts are None."""
    mailbox = mailbox_key(email)
    tokens = _name_tokens(name) if name else []
    return {
        "email": email or None,
        "email_mailbox": mailbox,
        "email_local": email_parts(mailbox)[0] if mailbox else None,
        "email_domain": email_parts(mailbox)[1] if mailbox else None,
        "phone": phone or None,
        "phone_national": phone_national(phone),
        "phone_tail": phone_tail(phone),
        "name_key": name_key(name),
        "name_first": tokens[0] if tokens else None,
        "name_last": tokens[-1] if tokens else None,
    }
