"""Pure normalisation and validation of the values a request brings.

Links are made on normalised values only, so everything that decides whether two
values are "the same" lives here and nowhere else. Nothing in this module touches
a database or Flask; every function is deterministic given its arguments.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import idna
import phonenumbers

MAX_EMAIL_LENGTH = 254
MAX_PHONE_LENGTH = 64
MAX_NAME_LENGTH = 200
PHONE_TAIL_DIGITS = 7

#: Mail providers that ignore dots in the local part and have alias domains.
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})

_PHONE_ALLOWED = re.compile(r"^\+?[0-9 ()./\-]+$")
_NON_DIGIT = re.compile(r"\D")
_NAME_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")


class InvalidInput(ValueError):
    """A value a client sent cannot be used; ``field`` names it for the error body."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _has_control_chars(value: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") for ch in value)


def normalize_email(raw: object) -> str | None:
    """Trim and lower-case an email, IDNA-encode its domain; ``None`` when absent.

    Plus-tags and Gmail dots are kept: for the exact rules they make a different
    email (see :func:`mailbox_key` for the looser key the probabilistic stage uses).
    """
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidInput("email", "email must be a string or null")
    value = raw.strip()
    if not value:
        return None
    if len(value) > MAX_EMAIL_LENGTH:
        raise InvalidInput("email", f"email is longer than {MAX_EMAIL_LENGTH} characters")
    if _has_control_chars(value):
        raise InvalidInput("email", "email contains control characters")
    if any(ch.isspace() for ch in value):
        raise InvalidInput("email", "email contains whitespace")
    local, sep, domain = value.rpartition("@")
    if not sep or not local or not domain:
        raise InvalidInput("email", "email must look like local@domain")
    if "@" in local:
        raise InvalidInput("email", "email contains more than one '@'")
    domain = domain.rstrip(".").lower()
    if not domain or ".." in domain or domain.startswith("."):
        raise InvalidInput("email", "email domain is not a valid domain name")
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii").rstrip(".")
        except idna.IDNAError as exc:
            raise InvalidInput("email", f"email domain is not a valid domain name: {exc}") from None
        if not domain:  # UTS 46 maps a full-width dot to "." (idempotence: "x@a." is "x@a")
            raise InvalidInput("email", "email domain is not a valid domain name")
    return f"{local.lower()}@{domain}"


def normalize_phone(raw: object, default_region: str = "US") -> str | None:
    """Return a phone as E.164 when ``phonenumbers`` finds it valid, else its digits.

    Integers are accepted because the contract sends ``phoneNumber`` as a number;
    ``"123456"`` and ``123456`` therefore normalise to the same value.
    """
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise InvalidInput("phoneNumber", "phoneNumber must be a string, an integer or null")
    if isinstance(raw, int):
        if raw < 0:
            raise InvalidInput("phoneNumber", "phoneNumber must not be negative")
        value = str(raw)
    else:
        value = raw.strip()
    if not value:
        return None
    if len(value) > MAX_PHONE_LENGTH:
        raise InvalidInput("phoneNumber", f"phoneNumber is longer than {MAX_PHONE_LENGTH} characters")
    if _has_control_chars(value):
        raise InvalidInput("phoneNumber", "phoneNumber contains control characters")
    if not _PHONE_ALLOWED.match(value):
        raise InvalidInput(
            "phoneNumber", "phoneNumber may hold only digits, spaces, '+', '-', '.', '/' and brackets"
        )
    digits = _NON_DIGIT.sub("", value)
    if not digits:
        raise InvalidInput("phoneNumber", "phoneNumber has no digits")
    if len(digits) > 20:
        raise InvalidInput("phoneNumber", "phoneNumber has more than 20 digits")
    for candidate in (value, digits):
        # The digits are tried too so that normalising is idempotent: "+4155552671" is not
        # valid as +41, and its digits "4155552671" would read as the valid +14155552671.
        try:
            parsed = phonenumbers.parse(candidate, default_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return digits


def normalize_name(raw: object) -> str | None:
    """Collapse whitespace in a display name; ``None`` when absent."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidInput("name", "name must be a string or null")
    value = _SPACES.sub(" ", raw).strip()
    if not value:
        return None
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInput("name", f"name is longer than {MAX_NAME_LENGTH} characters")
    if _has_control_chars(value):
        raise InvalidInput("name", "name contains control characters")
    return value


# --- keys for the probabilistic stage -------------------------------------------------


def email_parts(email: str) -> tuple[str, str]:
    """Split a normalised email into (local part, domain)."""
    local, _, domain = email.rpartition("@")
    return local, domain


def mailbox_key(email: str | None) -> str | None:
    """The mailbox an email delivers to: plus-tag dropped; Gmail dots and alias domain folded."""
    if not email:
        return None
    local, domain = email_parts(email)
    local = local.split("+", 1)[0] or local
    if domain in GMAIL_DOMAINS:
        local = local.replace(".", "") or local
        domain = "gmail.com"
    return f"{local}@{domain}"


def email_local(email: str | None) -> str | None:
    """The local part of the mailbox key, the blocking key for typos in the domain."""
    key = mailbox_key(email)
    return email_parts(key)[0] if key else None


def phone_national(phone: str | None) -> str | None:
    """The national significant number of an E.164 phone; the digits of any other."""
    if not phone:
        return None
    if phone.startswith("+"):
        try:
            parsed = phonenumbers.parse(phone, None)
        except phonenumbers.NumberParseException:
            return phone[1:]
        return phonenumbers.national_significant_number(parsed)
    return phone.lstrip("0") or phone


def phone_tail(phone: str | None) -> str | None:
    """The last digits of a phone: survives country codes, trunk prefixes and typos up front."""
    if not phone:
        return None
    digits = _NON_DIGIT.sub("", phone)
    return digits[-PHONE_TAIL_DIGITS:] if len(digits) >= PHONE_TAIL_DIGITS else None


def name_key(name: str | None) -> str | None:
    """Lower-case, accent-free, punctuation-free name with tokens sorted (order swaps agree)."""
    if not name:
        return None
    folded = unicodedata.normalize("NFKD", name)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).lower()
    tokens = _NAME_PUNCT.sub(" ", folded).split()
    return " ".join(sorted(tokens)) or None


@dataclass(frozen=True, slots=True)
class Identity:
    """The normalised values of one request: what the engine links on."""

    email: str | None
    phone: str | None
    name: str | None = None

    @property
    def keys(self) -> dict[str, str | None]:
        """Blocking keys stored beside the contact so candidates are an index look-up away."""
        return {
            "emailMailbox": mailbox_key(self.email),
            "emailLocal": email_local(self.email),
            "phoneNational": phone_national(self.phone),
            "phoneTail": phone_tail(self.phone),
            "nameKey": name_key(self.name),
        }


def parse_identity(payload: object, default_region: str = "US") -> Identity:
    """Validate and normalise a decoded JSON request body into an :class:`Identity`."""
    if not isinstance(payload, dict):
        raise InvalidInput("body", "request body must be a JSON object")
    email = normalize_email(payload.get("email"))
    phone = normalize_phone(payload.get("phoneNumber"), default_region)
    name = normalize_name(payload.get("name"))
    if email is None and phone is None:
        raise InvalidInput("body", "at least one of email and phoneNumber must be present and non-empty")
    return Identity(email=email, phone=phone, name=name)
