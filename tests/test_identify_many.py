"""``Reconciler.identify_many`` (many requests in one transaction, as a bulk import runs
them) decides every request exactly as ``identify`` does alone: a property over streams
whose few values collide all the time, so groups grow, merge, and guards fire."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from conftest import sqlite_url
from reconcile.config import Settings
from reconcile.engine.reconciler import Event, Reconciler
from reconcile.store import Store
from reconcile.store.migrate import upgrade
from test_import import graph

EMAILS = [None, "doc@hv.edu", "doc+lab@hv.edu", "marty@hv.edu", "noemail@hv.edu", "info@hv.edu"]
PHONES = [None, "123456", "5551234", "0000000", "919191"]
NAMES = [None, "Doc Brown", "Emmett Brown", "Marty McFly", "Biff Tannen"]

requests = st.lists(
    st.tuples(st.sampled_from(EMAILS), st.sampled_from(PHONES), st.sampled_from(NAMES)).filter(lambda r: r[0] or r[1]),
    min_size=1,
    max_size=30,
)


@hypothesis_settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=requests, batch=st.integers(min_value=1, max_value=12))
def test_a_batch_decides_each_request_as_it_would_be_decided_alone(tmp_path_factory, stream, batch):
    urls = []
    for _ in range(2):
        url = sqlite_url(tmp_path_factory.mktemp("db"))
        upgrade(url)
        urls.append(url)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    at = [start + timedelta(minutes=i) for i in range(len(stream))]
    alone, batched = (Store(url, pool_size=2) for url in urls)
    try:
        one, many = Reconciler(alone, Settings(database_url=urls[0])), Reconciler(batched, Settings(database_url=urls[1]))
        identities = [one.parse({"email": e, "phoneNumber": p, "name": n}) for e, p, n in stream]
        answers = [one.identify(identity, f"r{i}", at=at[i]) for i, identity in enumerate(identities)]
        batched_answers = []
        for first in range(0, len(identities), batch):
            events = [Event(identities[i], f"r{i}", at[i]) for i in range(first, min(first + batch, len(identities)))]
            batched_answers += many.identify_many(events)
    finally:
        alone.dispose()
        batched.dispose()
    assert [a.as_json() for a in batched_answers] == [a.as_json() for a in answers]
    assert graph(urls[0]) == graph(urls[1])
