"""Reviewers' decisions as training data: labelled PAIRS OF RECORDS, CSV import/export,
and a deterministic split into training and held-out parts.

What a label becomes
--------------------
The review queue writes one ``label`` row per decision (see
:func:`reconcile.review.queue._write_label`; the table's statements are in
:mod:`reconcile.store.labels`) naming both groups' contacts as they were when
decided, by id only. A contact's values never change while it lives, so reading them
from the contacts when the labels are loaded gives the records as they were decided;
an erased contact's values are gone, and a label left without a valid record on one
side is skipped (the label row itself, ids and outcome, stays as the decision's
history). The label keeps no copy of a customer's data: erasure needs to reach only
the contacts. Training needs pairs of records, so each label is reduced to ONE pair:

* a scored item (the probabilistic stage opened it: ``pending_merge.candidateId`` is
  set): the scored pair itself, ``leftContactId``/``rightContactId``;
* a guard item (the exact stage held a shared identifier: only ``contactId`` is set)
  or a label whose pair is not among its records: the contact that triggered it paired
  with the MOST SIMILAR record of the other group, else the most similar cross pair.
  Similarity is model-free (how many of the model's feature columns agree, see
  :func:`similarity`; ties go to the lowest ids), so which pair a label trains on does
  not depend on the model being replaced. One pair per label, never all cross pairs:
  a big group would otherwise outvote every other decision, and for a rejection most
  cross pairs are trivially different and teach nothing;
* an imported label (``source='import'``): the one pair it was imported as.

Split
-----
:func:`is_heldout` hashes the normalised pair (sides in canonical order, so ``(a, b)``
and ``(b, a)`` agree) with SHA-256: about ``HELDOUT_FRACTION`` of pairs are held out,
the same pairs on every run, machine and database, and a label never changes side when
other labels are added.
"""
from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..normalize import InvalidInput, normalize_email, normalize_name, normalize_phone
from ..scoring.features import COLUMNS, features
from ..store import labels as label_table
from ..store.contacts import utcnow

HELDOUT_FRACTION = 0.25
_BUCKETS = 10_000
OUTCOMES = ("match", "non-match")
SIDE_FIELDS = ("email", "phoneNumber", "name")
CSV_COLUMNS = tuple(f"{side}_{f}" for side in ("left", "right") for f in SIDE_FIELDS) + ("outcome",)
CSV_OPTIONAL = ("source",)


@dataclass(frozen=True, slots=True)
class Side:
    """One normalised record of a labelled pair."""

    email: str | None
    phone: str | None
    name: str | None

    def features(self) -> dict[str, str | None]:
        return features(self.email, self.phone, self.name)

    def key(self) -> str:
        return "\x1f".join(v or "" for v in (self.email, self.phone, self.name))


@dataclass(frozen=True, slots=True)
class LabelPair:
    """A labelled pair of records: ``outcome`` is ``match`` or ``non-match``.

    ``kind`` says where the pair came from: ``score`` (the pair the model scored),
    ``guard`` (chosen from a guard item's groups), ``import``.
    """

    left: Side
    right: Side
    outcome: str
    source: str
    kind: str
    label_id: int | None = None
    pending_merge_id: int | None = None
    #: how many pairs of its kind this label stands for: 1 / the chance its item had of
    #: being drawn into the audit sample (1 for the uncertain band, guards and imports)
    weight: float = 1.0

    @property
    def is_match(self) -> bool:
        return self.outcome == "match"

    def canonical(self) -> tuple[Side, Side]:
        return tuple(sorted((self.left, self.right), key=Side.key))  # type: ignore[return-value]

    def split_key(self) -> str:
        a, b = self.canonical()
        return a.key() + "\x1e" + b.key()

    def import_key(self) -> str:
        """The pair and its outcome as stored in ``label.importKey`` (unique): the same
        decision imported twice is one label (migration 0012 computes the same)."""
        return hashlib.sha256(f"{self.split_key()}\x1d{self.outcome}".encode("utf-8")).hexdigest()


# --- split ----------------------------------------------------------------------------


def is_heldout(pair: LabelPair, fraction: float = HELDOUT_FRACTION) -> bool:
    """Whether ``pair`` belongs to the held-out part (a stable hash of the normalised pair)."""
    digest = hashlib.sha256(pair.split_key().encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % _BUCKETS < round(fraction * _BUCKETS)


def split(pairs: Iterable[LabelPair], fraction: float = HELDOUT_FRACTION) -> tuple[list[LabelPair], list[LabelPair]]:
    """(training, held-out), each in input order."""
    training: list[LabelPair] = []
    heldout: list[LabelPair] = []
    for pair in pairs:
        (heldout if is_heldout(pair, fraction) else training).append(pair)
    return training, heldout


# --- normalising ------------------------------------------------------------------------


def normalise_side(email: Any, phone: Any, name: Any, default_region: str = "US") -> Side:
    """Normalise one record as the service does; raises :class:`InvalidInput`."""
    side = Side(normalize_email(email), normalize_phone(phone, default_region), normalize_name(name))
    if side.email is None and side.phone is None:
        raise InvalidInput("body", "at least one of email and phoneNumber must be present and non-empty")
    return side


def _side_of(record: dict[str, Any], default_region: str) -> Side | None:
    try:
        return normalise_side(record.get("email"), record.get("phoneNumber"), record.get("name"), default_region)
    except InvalidInput:
        return None


def similarity(a: dict[str, str | None], b: dict[str, str | None]) -> int:
    """Model-free similarity of two feature records: how many feature columns agree."""
    return sum(1 for col in COLUMNS if a[col] is not None and a[col] == b[col])


def _most_similar(
    left: Sequence[dict[str, Any]], right: Sequence[dict[str, Any]], anchor_id: int | None, default_region: str
) -> tuple[Side, Side] | None:
    def sides(records: Sequence[dict[str, Any]]) -> list[tuple[int, Side]]:
        out = []
        for r in records:
            side = _side_of(r, default_region)
            if side is not None:
                out.append((r.get("id") or 0, side))
        return sorted(out, key=lambda t: t[0])

    ls, rs = sides(left), sides(right)
    if not ls or not rs:
        return None
    anchored_l = [t for t in ls if anchor_id is not None and t[0] == anchor_id]
    anchored_r = [t for t in rs if anchor_id is not None and t[0] == anchor_id]
    if anchored_l:
        ls = anchored_l
    elif anchored_r:
        rs = anchored_r
    best = None
    best_score = -1
    for _, a in ls:
        fa = a.features()
        for _, b in rs:
            score = similarity(fa, b.features())
            if score > best_score:
                best, best_score = (a, b), score
    return best


# --- the database ---------------------------------------------------------------------


def load_labels(store: Any, default_region: str = "US") -> tuple[list[LabelPair], list[str]]:
    """Every label of the store as one pair of records; also why any label was skipped."""
    rows = label_table.labels_with_items(store)
    values = label_table.contact_values(
        store, (r.get("id") for row in rows if row.source == "review" for r in [*row.leftRecords, *row.rightRecords])
    )

    def resolved(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # a review label names its contacts; their values are read now (None once erased)
        return [values.get(r.get("id"), {"id": r.get("id")}) for r in records]

    pairs: list[LabelPair] = []
    skipped: list[str] = []
    for row in rows:
        left_records = list(row.leftRecords or [])
        right_records = list(row.rightRecords or [])
        if row.source == "review":
            left_records, right_records = resolved(left_records), resolved(right_records)
        by_id_l = {r.get("id"): r for r in left_records}
        by_id_r = {r.get("id"): r for r in right_records}
        chosen: tuple[Side, Side] | None = None
        kind = "import" if row.source == "import" else "score"
        if row.source == "import" and len(left_records) == 1 and len(right_records) == 1:
            a, b = _side_of(left_records[0], default_region), _side_of(right_records[0], default_region)
            chosen = (a, b) if a and b else None
        elif (
            row.pm_candidate is not None
            and row.leftContactId in by_id_l
            and row.rightContactId in by_id_r
        ):
            a = _side_of(by_id_l[row.leftContactId], default_region)
            b = _side_of(by_id_r[row.rightContactId], default_region)
            chosen = (a, b) if a and b else None
        if chosen is None:
            kind = "guard" if row.source != "import" else "import"
            chosen = _most_similar(left_records, right_records, row.pm_contact, default_region)
        if chosen is None:
            skipped.append(f"label {row.id}: no valid record on one side")
            continue
        inclusion = row.pm_inclusion
        pairs.append(
            LabelPair(
                chosen[0], chosen[1], row.outcome, row.source, kind, label_id=row.id, pending_merge_id=row.pendingMergeId,
                weight=1.0 / inclusion if inclusion else 1.0,
            )
        )
    return pairs, skipped


def insert_labels(store: Any, pairs: Sequence[LabelPair], decided_by: str | None = None) -> int:
    """Write imported pairs as ``label`` rows (``source='import'``, one record per side).
    Idempotent: a pair with the same outcome as any label already held (imported, or a
    reviewer's decision, so an export re-imported into its own database adds nothing) is
    skipped, and so is a repeat within ``pairs``; the unique ``importKey`` makes two
    imports of one file at once write it once. Returns how many were written."""
    held = {(p.split_key(), p.outcome) for p in load_labels(store)[0]}
    now = utcnow()
    rows = {}
    for p in pairs:
        if (p.split_key(), p.outcome) in held:
            continue
        rows.setdefault(
            p.import_key(),
            {
                "pendingMergeId": None,
                "leftContactId": None,
                "rightContactId": None,
                "outcome": p.outcome,
                "leftRecords": [_record(p.left)],
                "rightRecords": [_record(p.right)],
                "source": "import",
                "decidedBy": decided_by,
                "decidedAt": now,
                "importKey": p.import_key(),
            },
        )
    if not rows:
        return 0
    return label_table.import_labels(store, list(rows.values()))


def _record(side: Side) -> dict[str, Any]:
    return {"email": side.email, "phoneNumber": side.phone, "name": side.name}


# --- CSV ------------------------------------------------------------------------------


class LabelFileError(ValueError):
    """A labels CSV that cannot be imported; ``errors`` lists every problem with its line."""

    def __init__(self, path: str | Path, errors: list[str]):
        shown = errors[:20] + ([f"... and {len(errors) - 20} more"] if len(errors) > 20 else [])
        super().__init__(f"{path}: {len(errors)} problem(s):\n  " + "\n  ".join(shown))
        self.errors = errors


def write_csv(pairs: Iterable[LabelPair], path: str | Path) -> int:
    """Write pairs with the columns of :data:`CSV_COLUMNS` plus ``source``; returns the count."""
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS + CSV_OPTIONAL)
        for p in pairs:
            writer.writerow(
                [p.left.email or "", p.left.phone or "", p.left.name or "",
                 p.right.email or "", p.right.phone or "", p.right.name or "", p.outcome, p.source]
            )
            n += 1
    return n


def read_csv(path: str | Path, default_region: str = "US") -> list[LabelPair]:
    """Read and validate a labels CSV; every value is normalised as the service would.

    All-or-nothing: raises :class:`LabelFileError` listing every bad line (line numbers
    as an editor shows them, the header being line 1). Empty cells are absent values;
    ``outcome`` is ``match`` or ``non-match``; ``source`` is ignored (imports are
    ``import``).
    """
    errors: list[str] = []
    pairs: list[LabelPair] = []
    try:
        handle = open(path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise LabelFileError(path, [f"cannot open: {exc.strerror}"]) from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise LabelFileError(path, ["line 1: the file is empty (expected a header row)"]) from None
        except csv.Error as exc:
            raise LabelFileError(path, [f"line 1: {exc}"]) from None
        except UnicodeDecodeError:
            raise LabelFileError(path, ["line 1: not UTF-8 text"]) from None
        names = [h.strip() for h in header]
        missing = [c for c in CSV_COLUMNS if c not in names]
        unknown = [c for c in names if c not in CSV_COLUMNS + CSV_OPTIONAL]
        if missing or unknown:
            problems = []
            if missing:
                problems.append(f"missing column(s) {', '.join(missing)}")
            if unknown:
                problems.append(f"unknown column(s) {', '.join(unknown)}")
            raise LabelFileError(path, [f"line 1: {'; '.join(problems)} (expected {','.join(CSV_COLUMNS)}[,source])"])
        index = {name: i for i, name in enumerate(names)}
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                errors.append(f"line {reader.line_num}: {exc}")
                break
            except UnicodeDecodeError:  # decoded as read: the file's text stops being UTF-8 after this line
                errors.append(f"after line {reader.line_num}: not UTF-8 text")
                break
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(names):
                errors.append(f"line {line}: {len(cells)} cells, expected {len(names)}")
                continue

            def cell(col: str) -> str | None:
                value = cells[index[col]].strip()
                return value or None

            outcome = (cell("outcome") or "").lower()
            line_errors = []
            if outcome not in OUTCOMES:
                line_errors.append(f"outcome {cells[index['outcome']]!r} is not 'match' or 'non-match'")
            sides = []
            for side in ("left", "right"):
                try:
                    sides.append(
                        normalise_side(cell(f"{side}_email"), cell(f"{side}_phoneNumber"), cell(f"{side}_name"), default_region)
                    )
                except InvalidInput as exc:
                    field = exc.field if exc.field != "body" else "record"
                    line_errors.append(f"{side}_{field}: {exc.message}")
            if line_errors:
                errors.append(f"line {line}: " + "; ".join(line_errors))
                continue
            pairs.append(LabelPair(sides[0], sides[1], outcome, "import", "import"))
    if errors:
        raise LabelFileError(path, errors)
    return pairs
