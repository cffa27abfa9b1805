"""Reading an import file: CSV (with a header) or JSON Lines, one event per record, with
``email``, ``phoneNumber``, optional ``name``, ``createdAt`` and ``externalId``.

The file is read twice. The first pass (:func:`scan`) checks every record's shape (a
JSON object, the CSV's field count, UTF-8, a readable ``createdAt``, an ``externalId``
that fits), keeps each good record's byte offset and time, and fixes the **load order**:
records with a ``createdAt`` by that time, then those without one, each in file order
(a stable sort on the line number; it depends on the file alone, so a resumed import
walks the same order). The second pass reads the records at their offsets, in that
order, one batch at a time, so a million events never sit in memory as objects: only
three arrays of integers do. Whether the identifiers themselves are usable is the
engine's call (``Reconciler.parse``), made when the record is loaded.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import stat
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

import orjson

FIELDS = ("email", "phoneNumber", "name", "createdAt", "externalId")
FORMATS = ("csv", "jsonl")
MAX_EXTERNAL_ID = 128
#: the sort key of a record without ``createdAt``: after every dated one
UNDATED = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_HASH_CHUNK = 1 << 20
_BOM = b"\xef\xbb\xbf"


class ImportFileError(Exception):
    """The file as a whole cannot be imported (unknown format, no identifier column)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One good record: what goes to the engine, when it happened, the caller's id for it."""

    line: int
    payload: dict
    at: datetime | None
    external_id: str | None


@dataclass
class Scan:
    """The first pass over a file: its good records' lines and offsets (in file order),
    the load order over them, and the records refused as (line, reason)."""

    fingerprint: str
    file_format: str
    lines: array
    offsets: array
    order: array | None  # indices into the arrays, in load order; None: file order already
    rejects: list[tuple[int, str]]
    records: int
    columns: tuple[str, ...] | None = None  # a CSV's header

    @property
    def to_load(self) -> int:
        return len(self.lines)

    def index_at(self, position: int) -> int:
        """The record loaded at ``position`` of the load order."""
        return position if self.order is None else self.order[position]


def detect_format(path: Path, given: str | None) -> str:
    if given:
        if given not in FORMATS:
            raise ImportFileError(f"unknown format {given!r}: use one of {', '.join(FORMATS)}")
        return given
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise ImportFileError(f"cannot tell the format of {path.name} from its name: give --format csv or --format jsonl")


def check_regular_file(path: Path) -> None:
    """Refuse anything but a regular file: the file is read three times (hash, scan,
    load) and again on resume, and a pipe or device gives its bytes only once (the scan
    would find nothing, and the run would be recorded finished with no records)."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise ImportFileError(f"{path} is not a regular file (a pipe or a device can be read only once): save it to a file and import that")


def fingerprint(path: Path) -> str:
    """SHA-256 of the file's bytes: which import a run of this file continues."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class Reader:
    """Reads records from an open binary file at any offset (see :func:`scan`)."""

    def __init__(self, f: BinaryIO, file_format: str, columns: tuple[str, ...] | None = None):
        self.f = f
        self.file_format = file_format
        self.columns = columns

    def raw_record(self) -> tuple[bytes, int]:
        """The bytes of the record at the file's position and how many physical lines it
        spans (a CSV field may hold line breaks inside quotes); ``b""`` at the end."""
        raw = self.f.readline()
        if self.file_format != "csv" or b'"' not in raw:  # no quote: the line is the record
            return raw, 1
        return self._quoted_record(raw)

    def _quoted_record(self, first: bytes) -> tuple[bytes, int]:
        """The CSV record starting with the line ``first``, delimited by the csv module
        itself (counting quotes cannot tell ``Bob 5'10"`` from an opened quoted field, and
        swallowed the rest of the file). When the module cannot read it (a quote left
        open, text after a closing quote), the record is the first line alone, which
        :meth:`parse` refuses with the module's reason, and the next line starts the next
        record: every line is then loaded or refused on its own."""
        start = self.f.tell() - len(first)
        chunks = [first]

        def lines() -> Iterator[str]:
            yield first.decode("utf-8", errors="surrogateescape")
            while more := self.f.readline():
                chunks.append(more)
                yield more.decode("utf-8", errors="surrogateescape")

        try:
            next(csv.reader(lines(), strict=True))
        except csv.Error:
            self.f.seek(start + len(first))
            return first, 1
        return b"".join(chunks), len(chunks)

    def parse(self, raw: bytes, line: int, started_at: datetime) -> Record | str:
        """The record in ``raw``, or why it is refused."""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"not UTF-8 (byte {exc.start + 1})"
        if self.file_format == "csv":
            try:
                rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
            except csv.Error as exc:
                return f"unreadable CSV: {exc}"
            if len(rows) != 1:  # a bare carriage return splits the line: no part may vanish
                return f"one CSV record expected, found {len(rows)} (a line break outside quotes?)"
            fields = rows[0]
            assert self.columns is not None
            if len(fields) != len(self.columns):
                return f"expected {len(self.columns)} fields as in the header, found {len(fields)}"
            item = {name: (value if value.strip() else None) for name, value in zip(self.columns, fields)}
        else:
            try:
                item = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                return f"not JSON: {str(exc).splitlines()[0][:120]}"
            if not isinstance(item, dict):
                return "not a JSON object"
        at = _created_at(item.get("createdAt"), started_at)
        if isinstance(at, str):
            return at
        external = item.get("externalId")
        if external is not None:
            if isinstance(external, int) and not isinstance(external, bool):
                external = str(external)
            if not isinstance(external, str) or not external.strip() or len(external) > MAX_EXTERNAL_ID:
                return f"externalId must be a non-empty string of at most {MAX_EXTERNAL_ID} characters"
            external = external.strip()
            # PostgreSQL refuses NUL in text: one such row would stop the import for good
            if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in external):
                return "externalId must not contain control characters"
        payload = {"email": item.get("email"), "phoneNumber": item.get("phoneNumber"), "name": item.get("name")}
        return Record(line, payload, at, external)


def _created_at(value: object, started_at: datetime) -> datetime | None | str:
    """An ISO 8601 ``createdAt`` (no offset: UTC), or why it cannot be used. A time after
    the import started is refused: contacts created online meanwhile would be older."""
    if value is None:
        return None
    if not isinstance(value, str):
        return "createdAt must be an ISO 8601 date-time string"
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        return "createdAt is not an ISO 8601 date-time"
    try:
        at = at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        return "createdAt is out of range in UTC"
    if at > started_at:
        return "createdAt is later than the import's start"
    return at


def _sort_key(at: datetime | None) -> int:
    if at is None:
        return UNDATED
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _header(f: BinaryIO) -> tuple[tuple[str, ...], int]:
    raw = f.readline()
    text = raw.decode("utf-8-sig", errors="replace")
    try:
        columns = tuple(c.strip() for c in next(csv.reader([text]), []))
    except csv.Error as exc:  # e.g. lines ended by a bare carriage return
        raise ImportFileError(f"the CSV header cannot be read: {exc}") from None
    if not {"email", "phoneNumber"} & set(columns):
        raise ImportFileError(
            f"the CSV header must name an email and/or a phoneNumber column (found: {', '.join(columns) or 'nothing'})"
        )
    return columns, len(raw)


def _start(f: BinaryIO, file_format: str) -> tuple[tuple[str, ...] | None, int, int]:
    """A CSV's header, the offset of the first record and its line. A UTF-8 byte order
    mark is not part of the first record (the CSV header's decoding drops it)."""
    if file_format == "csv":
        columns, offset = _header(f)
        return columns, offset, 2
    if f.read(len(_BOM)) == _BOM:
        return None, len(_BOM), 1
    f.seek(0)
    return None, 0, 1


def scan(path: Path, file_format: str, digest: str, started_at: datetime) -> Scan:
    """The first pass: every record checked, the good ones' offsets and the load order."""
    lines, offsets, keys = array("q"), array("q"), array("q")
    rejects: list[tuple[int, str]] = []
    records = 0
    with open(path, "rb") as f:
        columns, offset, line = _start(f, file_format)
        reader = Reader(f, file_format, columns)
        while True:
            raw, spans = reader.raw_record()
            if not raw:
                break
            if raw.strip():
                records += 1
                record = reader.parse(raw, line, started_at)
                if isinstance(record, str):
                    rejects.append((line, record))
                else:
                    lines.append(line)
                    offsets.append(offset)
                    keys.append(_sort_key(record.at))
            offset += len(raw)
            line += spans
    ordered = all(keys[i] <= keys[i + 1] for i in range(len(keys) - 1))
    order = None if ordered else array("q", sorted(range(len(keys)), key=keys.__getitem__))
    return Scan(digest, file_format, lines, offsets, order, rejects, records, columns)


def records_at(
    path: Path, found: Scan, start: int, stop: int, started_at: datetime
) -> Iterator[Record]:
    """The records of load positions ``start`` to ``stop``, read at their offsets (one
    forward read when the file is in load order already)."""
    with open(path, "rb") as f:
        reader = Reader(f, found.file_format, found.columns)
        cursor = -1
        for position in range(start, stop):
            index = found.index_at(position)
            if found.offsets[index] != cursor:
                f.seek(found.offsets[index])
            raw, _ = reader.raw_record()
            cursor = found.offsets[index] + len(raw)
            record = reader.parse(raw, found.lines[index], started_at)
            if isinstance(record, str):  # the file changed under us since the scan
                raise ImportFileError(f"line {found.lines[index]} changed while importing: {record}")
            yield record


def raw_lines(path: Path, found: Scan, wanted: list[int]) -> dict[int, str]:
    """The text of the records starting at the given lines (for the rejects file)."""
    wanted_set = set(wanted)
    texts: dict[int, str] = {}
    with open(path, "rb") as f:
        columns, _, line = _start(f, found.file_format)
        reader = Reader(f, found.file_format, columns)
        while len(texts) < len(wanted_set):
            raw, spans = reader.raw_record()
            if not raw:
                break
            if line in wanted_set:
                texts[line] = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            line += spans
    return texts
