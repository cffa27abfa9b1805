"""Ids in URLs and bodies: only values that a row can have reach the database.

Every id column is an ``Integer``: 32 bits on PostgreSQL, 64 on SQLite. An id above
the smaller range can name no row on either backend, yet sent as a query parameter it
makes PostgreSQL fail with "out of range" (a 500 before this check). The ``int`` URL
converter is replaced app-wide, so every ``<int:...>`` route (present and future) takes
only 1 to :data:`MAX_ID` and answers anything else with the 404 of an unknown URL.
"""
from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

#: the largest value of a 32-bit signed integer column (PostgreSQL ``integer``)
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """``<int:x>``: a whole number from 1 to :data:`MAX_ID` in ASCII digits, else no match."""

    regex = r"[0-9]+"  # ASCII digits only: werkzeug's \d+ takes other scripts' digits too

    def __init__(self, map, fixed_digits: int = 0, min: int | None = 1, max: int | None = MAX_ID, signed: bool = False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def as_id(value: Any) -> int | None:
    """A decoded JSON value as an id a row could have, else ``None``.

    JSON has one number type: ``7.0`` is the integer 7 to JSON Schema (and to the
    OpenAPI document), though Python decodes it as a float. Booleans are not numbers here.
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID:
        return value
    return None


def init_app(app: Flask) -> None:
    """Install the bounded converter before any blueprint's rules are added."""
    app.url_map.converters["int"] = IdConverter
