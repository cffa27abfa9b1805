"""Cases: pending items touching the same groups are one case, decided at once; one
label per item, confirmations merge, rejections record cannot-links, and a case that
changed since it was read is refused whole."""
from __future__ import annotations

import pytest
from conftest import assert_sound, rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from review_seed import exact_only, identify, open_item

from reconcile.review import cases
from reconcile.review import queue as review
from reconcile.store.schema import cannot_link, contact, label, pending_merge
from reconcile.web import create_app


@pytest.fixture
def rec(db_url):
    app = create_app(exact_only(db_url))
    yield app.extensions["reconcile"]
    app.extensions["reconcile"].store.dispose()


def three_groups(rec, i: int = 0) -> tuple[int, int, int, list[int]]:
    """Three one-contact groups of one Ann Lee and items a-b, b-c, a-c."""
    a, b, c = (
        identify(rec, f"ann{i}.{k}@hillvalley.edu", f"+44207946{i:02d}{k:02d}", "Ann Lee")["primaryContactId"]
        for k in range(3)
    )
    return a, b, c, [open_item(rec.store, x, y) for x, y in ((a, b), (b, c), (a, c))]


def test_items_touching_the_same_groups_are_one_case(rec):
    a, b, c, items = three_groups(rec)
    d = identify(rec, "bob@twinpines.org", "+442079469998", "Bob Lee")["primaryContactId"]
    e = identify(rec, "bob.lee@twinpines.org", "+442079469999", "Bob Lee")["primaryContactId"]
    lone = open_item(rec.store, d, e)
    found = {c.id: c for c in cases.find_cases(rec.store)}
    assert found[items[0]].item_ids == tuple(items) and found[items[0]].groups == (a, b, c)
    assert found[lone].item_ids == (lone,) and found[lone].groups == (d, e)
    page = cases.list_cases(rec.store)
    assert (page.total, page.items) == (2, 4)
    assert page.cases[0]["pairs"] == 3 and len(page.cases[0]["contacts"]) == 3


def test_a_case_decided_as_one_person_merges_all_and_labels_every_pair(rec):
    store = rec.store
    a, b, c, items = three_groups(rec)
    results = cases.decide_case(store, items, [[a, b, c]], "alice")
    assert [r.status for r in results] == ["confirmed"] * 3
    assert {r.status for r in rows(store, pending_merge)} == {"confirmed"}
    labels = rows(store, label)
    assert sorted(l.pendingMergeId for l in labels) == items and {l.outcome for l in labels} == {"match"}
    assert {r.linkedId or r.id for r in rows(store, contact)} == {a}
    assert_sound(store)
    # "undo last" takes the case back from its last step: a-c (which merged nothing: its
    # label only, the item stays closed), then b-c (c splits off again); a-b is then refused,
    # as the undo of any confirmation whose group changed since (detach it instead)
    undone = [review.undo(store, review.last_decision(store, "alice"), "alice").status for _ in range(2)]
    assert undone == ["resolved", "pending"]
    assert [l.pendingMergeId for l in rows(store, label)] == [items[0]]
    # a-c was closed by b-c's merge: with it undone, a and c are apart and a-c asks again
    assert {r.id: r.status for r in rows(store, pending_merge)} == {items[0]: "confirmed", items[1]: "pending", items[2]: "pending"}
    assert len({r.linkedId or r.id for r in rows(store, contact)}) == 2
    with pytest.raises(review.CannotUndo):
        review.undo(store, items[0], "alice")
    assert_sound(store)


def test_a_case_split_into_two_people_confirms_within_and_rejects_across(rec):
    store = rec.store
    a, b, c, (ab, bc, ac) = three_groups(rec)
    cases.decide_case(store, [ab, bc, ac], [[a, b], [c]], "alice")
    status = {r.id: r.status for r in rows(store, pending_merge)}
    assert status == {ab: "confirmed", bc: "rejected", ac: "rejected"}
    outcomes = {l.pendingMergeId: l.outcome for l in rows(store, label)}
    assert outcomes == {ab: "match", bc: "non-match", ac: "non-match"}
    assert len(rows(store, cannot_link)) == 2
    # each label holds the sides as they were when the case was read: one contact each
    assert all(len(l.leftRecords) == len(l.rightRecords) == 1 for l in rows(store, label))
    assert review.get_item(store, bc)["seen"]["left"]["contacts"][0]["id"] == b
    assert_sound(store)


def test_a_person_whose_groups_no_item_joins_is_refused(rec):
    store = rec.store
    a = identify(rec, "x1@hillvalley.edu", "+442079469901", "Ann Lee")["primaryContactId"]
    b = identify(rec, "x2@hillvalley.edu", "+442079469902", "Ann Lee")["primaryContactId"]
    c = identify(rec, "x3@hillvalley.edu", "+442079469903", "Ann Lee")["primaryContactId"]
    ab, bc = open_item(store, a, b), open_item(store, b, c)
    with pytest.raises(ValueError, match="no item of the case joins"):
        cases.decide_case(store, [ab, bc], [[a, c], [b]], "alice")
    with pytest.raises(ValueError, match=f"groups \\[{c}\\] have none"):
        cases.decide_case(store, [ab, bc], [[a, b]], "alice")
    with pytest.raises(cases.CaseChanged):
        cases.decide_case(store, [ab, bc], [[a, b], [c, 999]], "alice")  # a group the case does not join
    assert {r.status for r in rows(store, pending_merge)} == {"pending"} and rows(store, label) == []


def test_a_case_that_changed_since_it_was_read_writes_nothing(rec):
    store = rec.store
    a, b, c, (ab, bc, ac) = three_groups(rec)
    review.reject(store, bc, "bob")  # decided one by one meanwhile: b-c leaves the case
    with pytest.raises(cases.CaseChanged):
        cases.decide_case(store, [ab, bc, ac], [[a, b, c]], "alice")
    assert [l.pendingMergeId for l in rows(store, label)] == [bc]


@pytest.fixture(scope="module")
def sqlite_rec(tmp_path_factory):
    from reconcile.store.migrate import upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('cases') / 'reconcile.db'}"
    upgrade(url)
    app = create_app(exact_only(url))
    yield app.extensions["reconcile"]
    app.extensions["reconcile"].store.dispose()


_runs = iter(range(10**6))


def _reaches(nodes: set[int], pairs: set[tuple[int, int]]) -> bool:
    """Whether ``pairs`` connect all of ``nodes``."""
    start = min(nodes)
    seen, frontier = {start}, [start]
    while frontier:
        node = frontier.pop()
        for a, b in pairs:
            for x, y in ((a, b), (b, a)):
                if x == node and y in nodes and y not in seen:
                    seen.add(y)
                    frontier.append(y)
    return seen == nodes


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.integers(min_value=2, max_value=5).flatmap(
        lambda n: st.tuples(
            st.just(n),
            # a path through every group (so they are one case), plus any other pairs
            st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda e: e[0] < e[1])).map(
                lambda extra: extra | {(k, k + 1) for k in range(n - 1)}
            ),
            st.lists(st.integers(0, n - 1), min_size=n, max_size=n),
        )
    )
)
def test_any_case_decision_leaves_exactly_the_partition_it_names(sqlite_rec, drawn):
    """Whatever the graph of items and the partition: a partition each person of which
    its items connect is applied exactly (same person: one group; different: apart, with
    a cannot-link on every item between them) with one label per item; any other is
    refused and writes nothing."""
    n, edges, person = drawn
    store, run = sqlite_rec.store, next(_runs)
    groups = [
        identify(sqlite_rec, f"p{run}.{k}@hillvalley.edu", f"+1415{run:04d}{k:03d}", "Ann Lee")["primaryContactId"] for k in range(n)
    ]
    items = {open_item(store, groups[a], groups[b]): (a, b) for a, b in sorted(edges)}
    persons: dict[int, list[int]] = {}
    for k, p in enumerate(person):
        persons.setdefault(p, []).append(groups[k])
    before = len(rows(store, label))
    within = {(a, b) for a, b in edges if person[a] == person[b]}
    if not all(_reaches({k for k in range(n) if person[k] == p}, within) for p in set(person)):
        with pytest.raises(ValueError, match="no item of the case joins"):
            cases.decide_case(store, list(items), list(persons.values()), "alice")
        assert len(rows(store, label)) == before
        return
    cases.decide_case(store, list(items), list(persons.values()), "alice")
    now = {r.id: r.linkedId or r.id for r in rows(store, contact)}
    for i, (a, b) in items.items():
        assert (now[groups[a]] == now[groups[b]]) == (person[a] == person[b])
    outcomes = {l.pendingMergeId: l.outcome for l in rows(store, label) if l.pendingMergeId in items}
    assert outcomes == {i: "match" if person[a] == person[b] else "non-match" for i, (a, b) in items.items()}
    blocked = {r.pendingMergeId for r in rows(store, cannot_link) if r.pendingMergeId in items}
    assert blocked == {i for i, (a, b) in items.items() if person[a] != person[b]}
    assert_sound(store)
