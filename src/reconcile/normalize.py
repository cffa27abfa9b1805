"""Pure normalisation and validation of the values a request brings.

Links are made on normalised values only, so everything that decides whether two
values are "the same" lives here and nowhere else. Nothing in this module touches
a database or Flask; every function is deterministic given its arguments.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import idna
import phonenumbers
from phonenumbers import phonenumberutil

MAX_EMAIL_LENGTH = 254
MAX_PHONE_LENGTH = 64
MAX_PHONE_DIGITS = 20
MAX_NAME_LENGTH = 200
#: An unreadable value is kept as data on the contact, cut to this many characters.
MAX_UNREADABLE_LENGTH = 320
PHONE_TAIL_DIGITS = 7
#: Distinct values each per-process cache below keeps (least recently used go first).
#: Every cached function is pure, so a hit answers exactly what a call would.
CACHE_SIZE = 1 << 15

#: Mail providers that ignore dots in the local part and have alias domains.
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})

_PHONE_ALLOWED = re.compile(r"^\+?[0-9 ()./\-]+$")
_NON_DIGIT = re.compile(r"\D")
_NAME_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")
#: Invisible spaces that ``phonenumbers`` reads as punctuation inside a number.
_ZERO_WIDTH_SPACES = dict.fromkeys(map(ord, "\u200b\u2060\ufeff"), " ")


class InvalidInput(ValueError):
    """A value a client sent cannot be used; ``field`` names it for the error body."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class UnreadableValue(InvalidInput):
    """A value of the right JSON type whose content is not an email or a phone.

    Unlike a wrong type (a client bug), this is what real checkouts send now and then:
    :func:`parse_identity` answers such a request on its other identifier when it has one.
    """


_CONTROL_CATEGORIES = ("Cc", "Cf", "Cs", "Co")


def _has_control_chars(value: str) -> bool:
    """Whether ``value`` holds a control, format, surrogate or private-use character.
    ASCII (nearly every request) is checked in C: its only unprintable characters are
    the controls (Cc); a per-character category look-up cost 40 calls a request."""
    if value.isascii():
        return not value.isprintable()
    return any(unicodedata.category(ch) in _CONTROL_CATEGORIES for ch in value)


def _clean_email_once(value: str) -> str:
    """One pass of email noise removal: surrounding whitespace, a trailing dot, ``Name
    <addr>`` or ``<addr>``, a ``mailto:`` scheme (any case), whitespace on either side
    of the ``@``."""
    value = value.strip().rstrip(".").rstrip()
    if value.endswith(">") and "<" in value:
        value = value[value.index("<") + 1 : -1].strip()
    if value[:7].lower() == "mailto:":
        value = value[7:].strip()
    local, at, domain = value.rpartition("@")
    return f"{local.rstrip()}@{domain.lstrip()}" if at else value


def _clean_email(value: str) -> str:
    """Remove email noise until nothing changes, so that cleaning is idempotent
    (``mailto:<a@b.com>`` and ``<<a@b.com>>`` come out as ``a@b.com``)."""
    value = unicodedata.normalize("NFC", value)
    while (cleaned := _clean_email_once(value)) != value:
        value = cleaned
    return value


def normalize_email(raw: object) -> str | None:
    """Clean, validate and normalise an email; ``None`` when absent.

    Noise is removed first (see :func:`_clean_email`); the value is compared in Unicode
    NFC, its local part lower-cased and its domain lower-cased and IDNA-encoded. Plus-tags
    and Gmail dots are kept: for the exact rules they make a different email (see
    :func:`mailbox_key` for the looser key the probabilistic stage uses). A string that
    is not an email raises :class:`UnreadableValue`; another type, :class:`InvalidInput`.
    """
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidInput("email", "email must be a string or null")
    return _normalize_email_text(raw)


@lru_cache(maxsize=CACHE_SIZE)
def _normalize_email_text(raw: str) -> str | None:
    """:func:`normalize_email` of a string (cached: a returning customer's email is
    normalised once per process; a refusal raises again every time)."""
    value = _clean_email(raw)
    if not value:
        return None
    if len(value) > MAX_EMAIL_LENGTH:
        raise UnreadableValue("email", f"email is longer than {MAX_EMAIL_LENGTH} characters")
    if _has_control_chars(value):
        raise UnreadableValue("email", "email contains control characters")
    if any(ch.isspace() for ch in value):
        raise UnreadableValue("email", "email contains whitespace")
    local, sep, domain = value.rpartition("@")
    if not sep or not local or not domain:
        raise UnreadableValue("email", "email must look like local@domain")
    if "@" in local:
        raise UnreadableValue("email", "email contains more than one '@'")
    domain = domain.rstrip(".").lower()
    if not domain or ".." in domain or domain.startswith("."):
        raise UnreadableValue("email", "email domain is not a valid domain name")
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii").rstrip(".")
        except idna.IDNAError as exc:
            raise UnreadableValue("email", f"email domain is not a valid domain name: {exc}") from None
        if not domain:  # UTS 46 maps a full-width dot to "." (idempotence: "x@a." is "x@a")
            raise UnreadableValue("email", "email domain is not a valid domain name")
    normalised = f"{unicodedata.normalize('NFC', local.lower())}@{domain}"
    if len(normalised) > MAX_EMAIL_LENGTH:  # lower-casing and IDNA can lengthen it ("İ" is two letters lower-cased)
        raise UnreadableValue("email", f"email is longer than {MAX_EMAIL_LENGTH} characters once normalised")
    return normalised


def _phone_text(value: str) -> str:
    """Fold what a till or a spreadsheet adds around a number.

    NFKC turns full-width digits and every Unicode space (no-break, narrow no-break,
    thin, ideographic) into ASCII; zero-width spaces become spaces; a spreadsheet's
    leading apostrophe (``'228-572-0546``) and an RFC 3966 ``tel:`` scheme are dropped.
    """
    value = unicodedata.normalize("NFKC", value).translate(_ZERO_WIDTH_SPACES).strip()
    value = value.removeprefix("'").lstrip()
    if value[:4].lower() == "tel:":
        value = value[4:].lstrip()
    return value


@lru_cache(maxsize=CACHE_SIZE)
def _valid_e164(text: str, default_region: str) -> str | None:
    """E.164 of the number ``phonenumbers`` reads in ``text`` when it is valid (an
    extension, ``;ext=``, ``x12``, ``,,244`` ..., is read and left out), else ``None``."""
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _without_extension(text: str) -> str:
    """The number before its extension, cut exactly where ``phonenumbers.parse`` cuts it.

    ``phonenumbers`` has no public call for this step of its parser; using the parser's
    own keeps one definition of "extension" (``ext.``, ``x``, ``#``, ``;ext=``, ``,,``,
    ``;`` and their Unicode and localised forms) for valid and invalid numbers alike.
    """
    _extension, number = phonenumberutil._maybe_strip_extension(text)
    return number


def normalize_phone(raw: object, default_region: str = "US") -> str | None:
    """Return a phone as E.164 when ``phonenumbers`` finds it valid, else its digits.

    Integers are accepted because the contract sends ``phoneNumber`` as a number;
    ``"123456"`` and ``123456`` therefore normalise to the same value. The extension is
    never part of the result: it is not who the customer is. A string that is not a
    phone raises :class:`UnreadableValue`; another type or a negative number,
    :class:`InvalidInput`.
    """
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise InvalidInput("phoneNumber", "phoneNumber must be a string, an integer or null")
    if isinstance(raw, int):
        if raw < 0:
            raise InvalidInput("phoneNumber", "phoneNumber must not be negative")
        raw = str(raw)
    if len(raw.strip()) > MAX_PHONE_LENGTH:
        raise UnreadableValue("phoneNumber", f"phoneNumber is longer than {MAX_PHONE_LENGTH} characters")
    value = _phone_text(raw)
    if not value:
        return None
    if _has_control_chars(value):
        raise UnreadableValue("phoneNumber", "phoneNumber contains control characters")
    valid = _valid_e164(value, default_region)
    if valid is not None:
        return valid
    number = _without_extension(value)
    if not _PHONE_ALLOWED.match(number):
        raise UnreadableValue(
            "phoneNumber",
            "phoneNumber is neither a valid phone number nor digits with spaces, '+', '-', '.', '/' or brackets",
        )
    digits = _NON_DIGIT.sub("", number)
    if not digits:
        raise UnreadableValue("phoneNumber", "phoneNumber has no digits")
    if len(digits) > MAX_PHONE_DIGITS:
        raise UnreadableValue("phoneNumber", f"phoneNumber has more than {MAX_PHONE_DIGITS} digits")
    # The digits are tried too so that normalising is idempotent: "+4155552671" is not
    # valid as +41, and its digits "4155552671" would read as the valid +14155552671.
    return _valid_e164(digits, default_region) or digits


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
    key = name_key(value)
    if key is not None and len(key) > MAX_NAME_LENGTH:  # compatibility folding can lengthen it (U+FDFA: 18 letters)
        raise InvalidInput("name", f"name is longer than {MAX_NAME_LENGTH} characters once its letters are unfolded")
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


@lru_cache(maxsize=CACHE_SIZE)
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


@lru_cache(maxsize=CACHE_SIZE)
def name_key(name: str | None) -> str | None:
    """Lower-case, accent-free, punctuation-free name with tokens sorted (order swaps agree)."""
    if not name:
        return None
    folded = unicodedata.normalize("NFKD", name)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).lower()
    tokens = _NAME_PUNCT.sub(" ", folded).split()
    return " ".join(sorted(tokens)) or None


#: The warning code of each identifier a request may bring unreadable.
UNREADABLE_CODES = {"email": "unreadable_email", "phoneNumber": "unreadable_phone"}
_OTHER_IDENTIFIER = {"email": "phoneNumber", "phoneNumber": "email"}


@dataclass(frozen=True, slots=True)
class Unreadable:
    """An email or phone of the right JSON type that could not be read.

    The request is answered on its other identifier; this value is kept only as data on
    the contact the request creates (never compared, never a blocking key, never listed
    in the answer's ``emails`` or ``phoneNumbers``), so a reviewer can still see it.
    """

    field: str  # "email" | "phoneNumber"
    raw: str  # as sent; an integer phone as its decimal digits
    reason: str

    @property
    def stored(self) -> str:
        """The value as a contact keeps it: trimmed, control characters replaced by
        U+FFFD (PostgreSQL cannot hold NUL or a lone surrogate), cut to the column."""
        text = "".join("\ufffd" if _has_control_chars(ch) else ch for ch in self.raw.strip())
        return text[:MAX_UNREADABLE_LENGTH]

    def as_warning(self) -> dict[str, str]:
        """The ``match.warnings`` entry that tells the client what happened."""
        other = _OTHER_IDENTIFIER[self.field]
        return {
            "field": self.field,
            "code": UNREADABLE_CODES[self.field],
            "message": f"{self.reason}; the request was answered on {other} alone and this value is never linked on",
        }


@dataclass(frozen=True, slots=True)
class Identity:
    """The normalised values of one request: what the engine links on."""

    email: str | None
    phone: str | None
    name: str | None = None
    unreadable: tuple[Unreadable, ...] = ()

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

    @property
    def unreadable_columns(self) -> dict[str, str | None]:
        """The unreadable values as a created contact stores them (data, not keys)."""
        raw = {u.field: u.stored for u in self.unreadable}
        return {"unreadableEmail": raw.get("email"), "unreadablePhone": raw.get("phoneNumber")}

    @property
    def warnings(self) -> list[dict[str, str]]:
        return [u.as_warning() for u in self.unreadable]


def _read(field: str, normalise, raw: object) -> tuple[str | None, Unreadable | None]:
    """Normalise one identifier; an unreadable one comes back as data instead of raising."""
    try:
        return normalise(raw), None
    except UnreadableValue as exc:
        return None, Unreadable(field, str(raw), exc.message)


def parse_identity(payload: object, default_region: str = "US") -> Identity:
    """Validate and normalise a decoded JSON request body into an :class:`Identity`.

    A wrong JSON type is the client's bug and fails the request. An identifier whose
    content cannot be read fails it only when the request has no other usable one.
    """
    if not isinstance(payload, dict):
        raise InvalidInput("body", "request body must be a JSON object")
    email, bad_email = _read("email", normalize_email, payload.get("email"))
    phone, bad_phone = _read(
        "phoneNumber", lambda raw: normalize_phone(raw, default_region), payload.get("phoneNumber")
    )
    name = normalize_name(payload.get("name"))
    unreadable = tuple(u for u in (bad_email, bad_phone) if u is not None)
    if email is None and phone is None:
        if len(unreadable) == 1:
            raise UnreadableValue(unreadable[0].field, unreadable[0].reason)
        if unreadable:
            raise InvalidInput("body", "no usable identifier: " + "; ".join(u.reason for u in unreadable))
        raise InvalidInput("body", "at least one of email and phoneNumber must be present and non-empty")
    return Identity(email=email, phone=phone, name=name, unreadable=unreadable)
