"""Texts that name a customer's values by reference, never by copy.

Guard reasons, audit details and review evidence are stored as templates such as
``email '{17.email}' is a placeholder``: ``{<contact id>.<field>}`` stands for that
contact's value, read from the ``Contact`` row whenever the text is shown. A value then
lives in exactly one place, its contact, so erasing the contact erases it from every
reason that ever quoted it (an erased value renders as ``[erased]``).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

FIELDS = ("email", "phoneNumber", "name")
ERASED = "[erased]"
_REF = re.compile(r"\{(\d+)\.(email|phoneNumber|name)\}")


def ref(contact_id: int, field: str) -> str:
    """The reference to ``field`` of contact ``contact_id``, for a template."""
    if field not in FIELDS:
        raise ValueError(f"unknown field {field!r}")
    return f"{{{int(contact_id)}.{field}}}"


def contact_ids(template: str) -> set[int]:
    """Every contact a template refers to."""
    return {int(m.group(1)) for m in _REF.finditer(template)}


def render(template: str, value_of: Callable[[int, str], str | None]) -> str:
    """The template with each reference replaced by the value ``value_of`` gives
    (``[erased]`` when it gives ``None``: the contact was erased or has no such value)."""
    return _REF.sub(lambda m: value_of(int(m.group(1)), m.group(2)) or ERASED, template)


def render_from_rows(template: str, rows: Iterable[Any]) -> str:
    """:func:`render` with the values of contact rows (anything with ``id`` and the fields)."""
    by_id = {r.id: r for r in rows}
    return render(template, lambda i, f: getattr(by_id[i], f, None) if i in by_id else None)


def referenced_ids(value: Any) -> set[int]:
    """Every contact referred to by any string inside a JSON-like value."""
    if isinstance(value, str):
        return contact_ids(value)
    if isinstance(value, dict):
        return set().union(*(referenced_ids(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(referenced_ids(v) for v in value)) if value else set()
    return set()


def render_json(value: Any, value_of: Callable[[int, str], str | None]) -> Any:
    """A JSON-like value with every string rendered (dict keys are never templates)."""
    if isinstance(value, str):
        return render(value, value_of)
    if isinstance(value, dict):
        return {k: render_json(v, value_of) for k, v in value.items()}
    if isinstance(value, list):
        return [render_json(v, value_of) for v in value]
    return value


__all__ = ["ref", "contact_ids", "render", "render_from_rows", "referenced_ids", "render_json", "ERASED", "FIELDS"]
