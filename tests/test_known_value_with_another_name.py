"""A request that brings a known email under a clearly different name is answered, not a
crash: the read path hands the guard the holders' names (it once passed (id, name)
pairs where names were expected, a TypeError on every such request)."""
from __future__ import annotations

from reconcile.config import Settings
from reconcile.engine.reconciler import Reconciler
from reconcile.store import Store


def test_a_known_email_under_another_name_is_answered_and_kept_apart(db_url):
    store = Store(db_url, pool_size=1)
    try:
        reconciler = Reconciler(store, Settings(database_url=db_url, probabilistic=False))
        first = reconciler.identify(reconciler.parse({"email": "family@x.com", "name": "Ann Smith"}))
        again = reconciler.identify(reconciler.parse({"email": "family@x.com", "name": "Bob Jones"}))
        assert first.contact["emails"] == ["family@x.com"]
        assert again.contact["emails"] == ["family@x.com"]
        assert again.match["method"] in ("exact", "new")
    finally:
        store.dispose()
