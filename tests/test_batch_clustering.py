"""The batch clustering never chains strangers: a link is refused when it would join a
cannot-link pair, pass the group-size cap, or join clusters whose names all clash."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from reconcile.batch.clustering import MODEL, REVIEW, SHARED_VALUE, Link, cluster
from reconcile.names import keys_compatible


def test_one_false_link_does_not_chain_two_people():
    names = {1: "john smith", 2: "john smith", 3: "mary smith", 4: "mary smith"}
    links = [Link(1, 2, SHARED_VALUE), Link(3, 4, SHARED_VALUE), Link(2, 3, MODEL, 15.0)]
    out = cluster(names, links, cannot_link=[], max_size=25)
    assert out.label == {1: 1, 2: 1, 3: 3, 4: 3}
    assert out.refused == [(Link(2, 3, MODEL, 15.0), "names")]


def test_a_reviewers_confirmation_overrides_names_but_not_a_cannot_link():
    names = {1: "robert jones", 2: "jane doe", 3: "ann lee"}
    out = cluster(names, [Link(1, 2, REVIEW), Link(2, 3, REVIEW)], cannot_link=[(1, 3)], max_size=25)
    assert out.label == {1: 1, 2: 1, 3: 3}
    assert out.refused[0][1] == "cannot-link"


def test_nicknames_and_missing_names_agree_and_the_strongest_link_wins_the_cap():
    names = {1: "robert jones", 2: "bob jones", 3: None, 4: "bobby jones"}
    links = [Link(1, 2, MODEL, 20.0), Link(2, 3, MODEL, 18.0), Link(3, 4, MODEL, 11.0)]
    out = cluster(names, links, cannot_link=[], max_size=3)
    assert out.label == {1: 1, 2: 1, 3: 1, 4: 4}
    assert out.refused == [(Link(3, 4, MODEL, 11.0), "group-size")]


def test_one_persons_shared_values_pass_the_cap_as_online_but_a_strangers_do_not():
    """The online exact stage lets one person's named contacts pass the size cap up to a
    ceiling (Guards.merge_block); the batch gives the same links the same cap, so it does
    not propose to split what the service rightly built."""
    names = {1: "anthony wright", 2: "tony wright", 3: "anthony wright", 4: "mary jones"}
    links = [Link(1, 2, SHARED_VALUE), Link(2, 3, SHARED_VALUE), Link(3, 4, SHARED_VALUE)]
    out = cluster(names, links, cannot_link=[], max_size=2, one_person_size=8)
    assert out.label == {1: 1, 2: 1, 3: 1, 4: 4}
    assert cluster(names, links, cannot_link=[], max_size=2).label == {1: 1, 2: 1, 3: 3, 4: 4}
    model = [Link(1, 2, SHARED_VALUE), Link(2, 3, MODEL, 20.0)]
    assert cluster(names, model, cannot_link=[], max_size=2, one_person_size=8).label[3] == 3


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(2, 14),
    raw_links=st.lists(st.tuples(st.integers(0, 13), st.integers(0, 13), st.floats(-5, 30), st.sampled_from([REVIEW, SHARED_VALUE, MODEL])), max_size=40),
    raw_cannot=st.lists(st.tuples(st.integers(0, 13), st.integers(0, 13)), max_size=6),
    first_names=st.lists(st.sampled_from(["john", "mary", "bob", "robert", None]), min_size=14, max_size=14),
    cap=st.integers(1, 6),
    ceiling=st.sampled_from([1, 2, 4]),
)
def test_no_cluster_holds_a_cannot_link_pair_or_passes_the_cap_whatever_the_links(
    n, raw_links, raw_cannot, first_names, cap, ceiling
):
    names = {i: (f"{first_names[i]} smith" if first_names[i] else None) for i in range(n)}
    links = [Link(a, b, kind, w) for a, b, w, kind in raw_links if a < n and b < n and a != b]
    cannot = [(a, b) for a, b in raw_cannot if a < n and b < n and a != b]
    out = cluster(names, links, cannot_link=cannot, max_size=cap, one_person_size=cap * ceiling)
    assert set(out.label) == set(names)
    sizes: dict[int, int] = {}
    for i, label in out.label.items():
        sizes[label] = sizes.get(label, 0) + 1
        assert label == min(j for j, other in out.label.items() if other == label)
    assert max(sizes.values()) <= max(cap * ceiling, 1)
    for label, count in sizes.items():  # past the cap only one person's names, all compatible
        if count > cap:
            keys = {names[i] for i, other in out.label.items() if other == label and names[i]}
            assert keys and all(keys_compatible(a, b) for a in keys for b in keys)
    assert all(out.label[a] != out.label[b] for a, b in cannot)
    # every accepted link lies inside one cluster; the order does not depend on the input order
    assert all(out.label[link.a] == out.label[link.b] for link in out.accepted)
    assert cluster(names, list(reversed(links)), cannot_link=cannot, max_size=cap, one_person_size=cap * ceiling).label == out.label
