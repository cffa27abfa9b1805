"""Random request sequences through ``POST /identify`` against an in-memory reference.

The reference is the contract stated as plainly as possible: a union-find over the
normalised values; a request creates a row iff it brings a value nobody has sent before;
the group of a request is the set of rows whose values are connected to its values; the
oldest row of a group is its primary. After every step the database must agree with it.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from reconcile.config import Settings
from reconcile.store.invariants import check
from reconcile.store.migrate import upgrade
from reconcile.store.schema import contact
from reconcile.web import create_app

ABSENT = object()  # the key is left out of the JSON body

# (what the client sends, the normalised value the contract links on)
EMAILS = [
    ("doc@hillvalley.edu", "doc@hillvalley.edu"),
    ("DOC@HillValley.edu", "doc@hillvalley.edu"),
    ("  doc@hillvalley.edu\t", "doc@hillvalley.edu"),
    ("marty@hillvalley.edu", "marty@hillvalley.edu"),
    ("Marty@HILLVALLEY.EDU ", "marty@hillvalley.edu"),
    ("marty+1985@hillvalley.edu", "marty+1985@hillvalley.edu"),  # not folded by the exact rules
    ("biff@hillvalley.edu", "biff@hillvalley.edu"),
    ("lorraine@bücher.de", "lorraine@xn--bcher-kva.de"),
    ("LORRAINE@BÜCHER.DE", "lorraine@xn--bcher-kva.de"),
    (None, None),
    ("", None),
    ("   ", None),
    (ABSENT, None),
]
PHONES = [
    ("123456", "123456"),
    (123456, "123456"),
    (" 123456 ", "123456"),
    ("(415) 555-2671", "+14155552671"),
    (4155552671, "+14155552671"),
    ("+1 415 555 2671", "+14155552671"),
    ("919191", "919191"),
    (717171, "717171"),
    ("555", "555"),
    ("1", "1"),
    (None, None),
    ("", None),
    (ABSENT, None),
]


@dataclass
class Reference:
    """The contract over plain Python: rows in creation order and a union-find on values."""

    rows: list[tuple[int, str | None, str | None]] = field(default_factory=list)  # (id, email, phone)
    parent: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    def find(self, v):
        while self.parent[v] != v:
            self.parent[v] = self.parent[self.parent[v]]
            v = self.parent[v]
        return v

    def union(self, a, b):
        self.parent[self.find(a)] = self.find(b)

    @staticmethod
    def values(email, phone):
        return [v for v in (("e", email) if email else None, ("p", phone) if phone else None) if v]

    def group_of(self, value) -> list[tuple[int, str | None, str | None]]:
        root = self.find(value)
        return [r for r in self.rows if any(self.find(v) == root for v in self.values(r[1], r[2]))]

    def primary_of_row(self, row) -> int:
        return self.group_of(self.values(row[1], row[2])[0])[0][0]

    def apply(self, email, phone) -> dict:
        """Apply one valid request; return the expected contact and match fields."""
        values = self.values(email, phone)
        seen = [v for v in values if v in self.parent]
        primaries_before = sorted({self.group_of(v)[0][0] for v in seen})
        created = []
        if len(seen) < len(values):
            created = [len(self.rows) + 1]
            self.rows.append((created[0], email, phone))
        for v in values:
            self.parent.setdefault(v, v)
        if len(values) == 2:
            self.union(*values)
        group = self.group_of(values[0])
        primary = group[0][0]
        expected_contact = {
            "primaryContactId": primary,
            "emails": list(dict.fromkeys(r[1] for r in group if r[1] is not None)),
            "phoneNumbers": list(dict.fromkeys(r[2] for r in group if r[2] is not None)),
            "secondaryContactIds": [r[0] for r in group if r[0] != primary],
        }
        return {
            "contact": expected_contact,
            "created": created,
            "demoted": [p for p in primaries_before if p != primary],
            "method": "exact" if seen else "new",
        }


request_strategy = st.tuples(st.sampled_from(EMAILS), st.sampled_from(PHONES))


def _body(email_raw, phone_raw) -> dict:
    body = {}
    if email_raw is not ABSENT:
        body["email"] = email_raw
    if phone_raw is not ABSENT:
        body["phoneNumber"] = phone_raw
    return body


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory) -> Path:
    """One migrated SQLite file; every hypothesis example starts from a copy of it."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def _db_rows(store) -> list[tuple[int, str | None, str | None, int]]:
    with store.read() as tx:
        rows = tx.conn.execute(
            select(contact.c.id, contact.c.email, contact.c.phoneNumber, contact.c.linkedId).order_by(contact.c.id)
        ).all()
    return [(r.id, r.email, r.phoneNumber, r.linkedId if r.linkedId is not None else r.id) for r in rows]


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(request_strategy, min_size=1, max_size=16))
def test_identify_sequences_agree_with_a_union_find_reference(migrated_template, requests):
    workdir = Path(tempfile.mkdtemp(prefix="reconcile-prop-"))
    try:
        db = workdir / "reconcile.db"
        shutil.copyfile(migrated_template, db)
        app = create_app(
            Settings(
                database_url=f"sqlite:///{db}",
                probabilistic=False,  # the exact rules only: the reference knows nothing of a model
                # the over-merge guards on group size are out of reach: the contract, unguarded
                max_group_size=10_000,
                large_group_size=10_000,
            )
        )
        app.config.update(TESTING=True)
        store = app.extensions["reconcile"].store
        client = app.test_client()
        ref = Reference()
        try:
            for (email_raw, email), (phone_raw, phone) in requests:
                before = store.counts()
                response = client.post("/identify", json=_body(email_raw, phone_raw))
                body = response.get_json()
                if email is None and phone is None:
                    assert response.status_code == 400, body
                    assert body["error"]["code"]
                    assert store.counts() == before
                    continue
                assert response.status_code == 200, body
                expected = ref.apply(email, phone)

                assert body["contact"] == expected["contact"]
                match = body["match"]
                assert match["createdContactIds"] == expected["created"]
                assert match["demotedContactIds"] == expected["demoted"]
                assert match["method"] == expected["method"]
                if not expected["created"]:
                    assert store.counts()["contacts"] == before["contacts"]
                else:
                    assert store.counts()["contacts"] == before["contacts"] + 1

                # the whole table, not just the answer: same rows, same grouping
                rows = _db_rows(store)
                assert [(i, e, p) for i, e, p, _ in rows] == ref.rows
                db_groups = {}
                for row_id, _, _, primary in rows:
                    db_groups.setdefault(primary, set()).add(row_id)
                ref_groups = {}
                for row in ref.rows:
                    ref_groups.setdefault(ref.primary_of_row(row), set()).add(row[0])
                assert db_groups == ref_groups

                violations = check(store)
                assert violations == [], "\n".join(map(str, violations))
        finally:
            store.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_reference_reproduces_the_seed_merge_example():
    """The reference itself must encode the contract, or the property above proves nothing."""
    ref = Reference()
    assert ref.apply("george@hillvalley.edu", "919191")["contact"]["primaryContactId"] == 1
    assert ref.apply("biffsucks@hillvalley.edu", "717171")["contact"]["primaryContactId"] == 2
    merged = ref.apply("george@hillvalley.edu", "717171")
    assert merged == {
        "contact": {
            "primaryContactId": 1,
            "emails": ["george@hillvalley.edu", "biffsucks@hillvalley.edu"],
            "phoneNumbers": ["919191", "717171"],
            "secondaryContactIds": [2],
        },
        "created": [],
        "demoted": [2],
        "method": "exact",
    }
