"""A bulk import's name-key candidates kept in memory (``store.candidates.ResidentNameKeys``)
must answer every look-up exactly as the candidate query would, and must forget what it
holds when someone else wrote or when a batch did not commit."""
from __future__ import annotations

import pytest

import reconcile.engine.probabilistic as probabilistic
import reconcile.store.candidates as candidates
from reconcile.config import Settings
from reconcile.engine.reconciler import Event, Reconciler
from reconcile.store import Store
from reconcile.store.batch import BatchContactTx
from reconcile.store.candidates import ResidentNameKeys

from test_import import run_import, synth_events, write_jsonl


def test_every_lookup_of_an_import_equals_the_candidate_query(sqlite_db, tmp_path, monkeypatch):
    """Each candidate look-up of a real import, answered by the resident lists and again
    by the query alone in the same transaction: the same rows in the same order. A small
    ``per_key`` and slack make the lists overflow, so the fallback to the query (a list
    too short to tell) runs too."""
    monkeypatch.setattr(candidates, "RESIDENT_SLACK", 1)
    settings = Settings(database_url=sqlite_db, candidates_per_key=2)
    real = candidates.fetch_candidates
    seen = {"answered": 0, "fell back": 0}

    def both_ways(tx, keys, exclude_primary, per_key):
        resident = tx.resident
        assert resident is not None  # the import attached its lists
        if keys.get("nameKey"):
            answer = resident.holders(tx.conn, keys["nameKey"], exclude_primary, per_key)
            seen["answered" if answer is not None else "fell back"] += 1
        got = real(tx, keys, exclude_primary, per_key)
        tx.resident = None
        try:
            expected = real(tx, keys, exclude_primary, per_key)
        finally:
            tx.resident = resident
        assert [tuple(r) for r in got] == [tuple(r) for r in expected]
        return got

    monkeypatch.setattr(probabilistic, "fetch_candidates", both_ways)
    path = write_jsonl(tmp_path / "events.jsonl", synth_events(2500, seed=3))
    summary = run_import(sqlite_db, path, settings, batch_size=250)
    assert summary.totals["loaded"] > 2000
    assert seen["answered"] > 500 and seen["fell back"] > 0, seen


def _batch(reconciler: Reconciler, resident: ResidentNameKeys, payloads: list[dict], fail: bool = False) -> None:
    events = [Event(reconciler.parse(p), f"t:{i}", source="test") for i, p in enumerate(payloads)]

    def then(tx, results):
        if fail:
            raise RuntimeError("the batch fails after its writes")

    reconciler.identify_many(events, then=then, resident=resident)


def _holders(store: Store, resident: ResidentNameKeys, key: str) -> list[int]:
    def look(tx: BatchContactTx) -> list[int]:
        tx.attach(resident)
        return [r.id for r in resident.holders(tx.conn, key, -1, 20)]

    ids = store.write(look, tx_type=BatchContactTx)
    resident.committed()
    return ids


def test_the_lists_forget_another_writers_commit_and_a_rolled_back_batch(sqlite_db):
    store = Store(sqlite_db, pool_size=1)
    other = Store(sqlite_db, pool_size=1)
    try:
        settings = Settings(database_url=sqlite_db, probabilistic=False)
        reconciler = Reconciler(store, settings)
        resident = ResidentNameKeys(settings.candidates_per_key)
        _batch(reconciler, resident, [{"email": "ann@a.example", "name": "Ann Lee"}])
        key = reconciler.parse({"email": "x@a.example", "name": "Ann Lee"}).keys["nameKey"]
        first = _holders(store, resident, key)
        assert len(first) == 1

        # the import's own batch: the list follows its insert without reading again
        _batch(reconciler, resident, [{"email": "ann2@b.example", "name": "Lee Ann"}])
        assert len(_holders(store, resident, key)) == 2

        # another connection commits a holder: the next batch sees PRAGMA data_version move
        Reconciler(other, settings).identify(reconciler.parse({"email": "ann3@c.example", "name": "Ann Lee"}))
        assert len(_holders(store, resident, key)) == 3

        # a batch that rolls back: its insert must not stay in the lists
        with pytest.raises(RuntimeError):
            _batch(reconciler, resident, [{"email": "ann4@d.example", "name": "Ann Lee"}], fail=True)
        assert len(_holders(store, resident, key)) == 3
    finally:
        store.dispose()
        other.dispose()
