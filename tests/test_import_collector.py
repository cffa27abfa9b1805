"""The garbage collector's settings during an import (:mod:`reconcile.ingest.collector`):
rarer collections and a frozen heap inside, the process's own settings back after,
whatever way the import ends."""
from __future__ import annotations

import gc

import pytest

from reconcile.ingest.collector import OLDER_THRESHOLDS, YOUNG_THRESHOLD, fewer_collections


@pytest.fixture
def default_collector():
    before = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_an_import_collects_rarely_over_a_frozen_heap_and_restores_the_settings_after(default_collector):
    held = [object() for _ in range(100)]  # noqa: F841  (some heap to freeze)
    with fewer_collections():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_the_settings_come_back_when_the_import_fails(default_collector):
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("a batch failed")
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_a_heap_frozen_before_the_import_stays_frozen_after(default_collector):
    gc.freeze()
    frozen = gc.get_freeze_count()
    with fewer_collections():
        pass
    assert gc.get_freeze_count() == frozen
