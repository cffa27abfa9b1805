"""Over-merge guards: reasons not to link on an identifier, or not to join two groups.

Pure functions over values and counts; the linking stages ask them and record what
they say (a ``link_guard`` row, a pending merge), so a guarded link is never silent.

A value is a placeholder by what it *is* (a local part or a digit pattern that says
"none given", or a configured block list), never by its domain: ``example.com`` and
``test.com`` are where client test suites put their ordinary addresses. Values that are
shared in practice are found from the data instead: several clearly different names on
one value, or one value held by more groups than ``max_groups_per_identifier``.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import Settings
from ..names import NamedKey, distinct_names, keys_compatible, local_part_names_nobody
from ..normalize import email_parts, normalize_email, normalize_phone
from ..references import ref
from ..store.detach import DETACH_GUARD

#: local parts that *say* "the customer gave no email" at any domain; short or filler
#: ones (``test``, ``a``, ``x``, ``abc``, ``asdf``, ``customer``) are ordinary values that
#: client suites use, and shared fillers are caught by the data-driven guards instead
PLACEHOLDER_LOCAL_PARTS = frozenset(
    "noemail no-email no.email no_email nomail none null nil na n.a n/a unknown "
    "noreply no-reply donotreply do-not-reply dontemail refused declined notprovided "
    "not-provided notgiven no nobody noone nothing".split()
)
#: role accounts (RFC 2142 and common practice): shared by colleagues by design
ROLE_LOCAL_PARTS = frozenset(
    "info sales orders order accounts accounting office admin administrator purchasing procurement "
    "contact contactus support help helpdesk billing invoices finance hr jobs careers team hello "
    "enquiries enquiry inquiries service customerservice reception marketing webmaster postmaster "
    "hostmaster abuse noc security mail shop store booking bookings reservations".split()
)
#: The guards whose record on a value says different people use it: a placeholder or role
#: mailbox, names that clash on it, many groups on it, a reviewer's rejection of a join
#: through it, a reviewer's detachment that left it on both sides. A size hold
#: (``group-size``, ``large-merge``) says only that a group grew, so a value it recorded
#: is not "known to be shared" (:mod:`reconcile.engine.exact`, the detachment's evidence
#: graph, the batch re-resolution): counting it made a frequent customer's every later
#: request a shared-identifier hold, 99-100% the same person (bench/README.md, ``queue_mix``).
SHARED_BY_PEOPLE = frozenset(
    {"placeholder", "role-mailbox", "shared-identifier", "shared-value", "cannot-link", DETACH_GUARD}
)
#: a group whose names are all one person's passes ``max_group_size`` up to this many
#: times it (:meth:`Guards.merge_block`); beyond, it is held like any other
ONE_PERSON_CEILING = 4
_DIGITS = re.compile(r"\D")
MIN_PATTERN_DIGITS = 7
_UP, _DOWN = "0123456789", "9876543210"


def _digit_pattern(digits: str) -> bool:
    """One repeated digit, or a straight run up or down (0000000, 1234567890, 9876543).

    Seven digits at least: shorter values (``1``, ``111``, ``123456``) are the contract's
    own examples and link like any other."""
    if len(digits) < MIN_PATTERN_DIGITS:
        return False
    # every step +1 (or -1) modulo 10 is a substring of the digits cycling up (or down);
    # substring tests, because a batch re-resolution asks this of every stored phone
    cycles = len(digits) // 10 + 2
    return digits == digits[0] * len(digits) or digits in _UP * cycles or digits in _DOWN * cycles


@dataclass(frozen=True)
class Guards:
    """The guard configuration of one service instance."""

    blocked_emails: frozenset[str]
    blocked_phones: frozenset[str]
    max_names_per_identifier: int
    max_groups_per_identifier: int
    max_group_size: int
    large_group_size: int
    borrowed_phone_guard: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> "Guards":
        emails = {e for e in (normalize_email(v) for v in settings.blocked_emails) if e}
        phones = {p for p in (normalize_phone(v, settings.default_region) for v in settings.blocked_phones) if p}
        if settings.max_groups_per_identifier < 1:
            # below 1 every held value would be shared, but the read path answers from one group
            raise ValueError("RECONCILE_MAX_GROUPS_PER_IDENTIFIER must be at least 1")
        return cls(
            blocked_emails=frozenset(emails),
            blocked_phones=frozenset(phones),
            max_names_per_identifier=settings.max_names_per_identifier,
            max_groups_per_identifier=settings.max_groups_per_identifier,
            max_group_size=settings.max_group_size,
            large_group_size=settings.large_group_size,
            borrowed_phone_guard=settings.borrowed_phone_guard,
        )

    def unlinkable(self, field: str, value: str | None) -> str | None:
        """The guard that forbids linking on this value by itself, if any.

        ``placeholder``: a value that stands for "none given"; ``role-mailbox``: an
        address a team shares by design. Either is stored but never links people.
        (Asked several times per request about the same values: the answer is cached.)
        """
        if value is None:
            return None
        return _unlinkable(self, field, value)

    def shared_identifier(
        self,
        request_name: NamedKey | None,
        holders: Sequence[tuple[int, NamedKey]],
        value_names: list[NamedKey],
    ) -> str | None:
        """A reason not to link on an identifier to a group whose holders' names clash.

        ``holders`` are the (contact id, name) of the value's holders within one group,
        ``value_names`` the names on it across every group holding it (a value held by
        more than ``max_groups_per_identifier`` groups never gets here:
        :meth:`widely_shared` holds it first, so these lists stay bounded): the value
        counts as shared once it has been used with more than
        ``max_names_per_identifier`` clearly different names. Names come with their
        stored keys (:data:`reconcile.names.NamedKey`), so nothing is normalised again,
        and the count stops once it passes the limit. The reason names the holders by
        reference (:mod:`reconcile.references`), never by copy.
        """
        if not request_name or not request_name[0]:
            return None
        shown = distinct_names([name for _, name in holders])
        if not shown or any(keys_compatible(request_name[1], key) for _, key in shown):
            return None
        people = distinct_names([request_name, *value_names], limit=self.max_names_per_identifier)
        if len(people) > self.max_names_per_identifier:
            first_holder = {name: next(i for i, n in holders if n == name) for name in shown[:3]}
            named = ", ".join(ref(i, "name") for i in first_holder.values())
            limit = self.max_names_per_identifier
            return f"is held by {named}, not compatible with the request's name (more than {limit} names in all)"
        return None

    def borrowed_phone(
        self, request_email: str | None, holders: Sequence[tuple[int, NamedKey]], holder_emails: Sequence[str]
    ) -> str | None:
        """A reason not to link a NAMELESS request on a phone alone, when the email it
        brings is held by nobody yet and names none of the phone's named holders (see
        :func:`reconcile.names.local_part_names_nobody`): a number passed to another
        person (recycled by the carrier, borrowed, a shared line) carries no name to
        clash with when the request gives none, but its new address is evidence of
        another person. Holders without names give no evidence (the contract's own
        examples carry none), so the rule never applies to them."""
        if not self.borrowed_phone_guard or request_email is None:
            return None
        keys = [key for _, (_, key) in holders if key]
        if not keys:
            return None
        local, _ = email_parts(request_email)
        if not local_part_names_nobody(local, keys, [email_parts(e)[0] for e in holder_emails]):
            return None
        named = ", ".join(ref(i, "name") for i, _ in holders[:3])
        return f"is held by {named}; the request gives no name and its new email names none of them"

    def widely_shared(self, groups: int) -> str | None:
        """A reason not to link on a value that ``groups`` separate groups already hold.

        Under the contract one value sits in one group; it sits in several only where
        another guard kept people apart on it. Held by more than
        ``max_groups_per_identifier`` groups, it is shared by many (a till's filler, a
        family phone): like a placeholder it is stored and never links by itself.
        """
        if groups > self.max_groups_per_identifier:
            return f"is held by {groups} separate groups (limit {self.max_groups_per_identifier})"
        return None

    def size_limit(self, one_person: bool = False) -> int:
        """The most contacts a group may reach without a reviewer (see :meth:`merge_block`)."""
        return self.max_group_size * ONE_PERSON_CEILING if one_person else self.max_group_size

    def merge_block(self, sizes: list[int], one_person: bool = False) -> tuple[str, str] | None:
        """(guard, reason) when joining groups of these sizes must wait for a reviewer.

        The size limits stop a chain of false joins (a family phone, then a relative's
        email, then that relative's workplace...) from growing one group without end.
        Such a chain brings in other people's names; ``one_person`` says the evidence
        shows none: both sides carry names and all of them (the request's too) are one
        person's by :func:`reconcile.names.one_person` (nicknames, typos, initials,
        swapped order, dropped diacritics). Then the join is not held for its size, up to
        :data:`ONE_PERSON_CEILING` times the cap: measured on the synthetic streams, such
        holds were one frequent customer's contacts, 99-100% the same person
        (bench/README.md, ``queue_mix``). The ceiling stays because one name is weak
        evidence at scale: a till that types the same name with every customer's email
        on its own phone would otherwise grow one group, and every answer that lists it,
        without end. A side without names gives no evidence, so it stays capped.
        """
        total, limit = sum(sizes), self.size_limit(one_person)
        if total > limit:
            return "group-size", f"the merged group would hold {total} contacts (limit {limit})"
        if one_person:
            return None
        big = [s for s in sizes if s >= self.large_group_size]
        if len(big) >= 2:
            return "large-merge", f"joins groups of {' and '.join(map(str, sorted(big)))} contacts"
        return None


@functools.lru_cache(maxsize=1 << 16)
def _unlinkable(guards: Guards, field: str, value: str) -> str | None:
    """:meth:`Guards.unlinkable`, a pure function of the configuration and the value."""
    if field == "email":
        if value in guards.blocked_emails:
            return "placeholder"
        local, _ = email_parts(value)
        if local in PLACEHOLDER_LOCAL_PARTS:
            return "placeholder"
        return "role-mailbox" if local.split("+", 1)[0] in ROLE_LOCAL_PARTS else None
    if value in guards.blocked_phones:
        return "placeholder"
    digits = _DIGITS.sub("", value)
    national = digits[-10:] if value.startswith("+") else digits
    return "placeholder" if _digit_pattern(digits) or _digit_pattern(national) else None
