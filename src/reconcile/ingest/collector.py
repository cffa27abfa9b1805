"""The garbage collector's settings while an import loads its batches.

An import allocates a great deal (rows, answers, review evidence) and keeps very little
of it: a batch's objects live until its commit. With CPython's default thresholds
(700, 10, 10) the collector ran ~750 young, ~70 middle and 6 full collections per
15,000 events at 300k contacts, and a full one walks every object the process holds
(the modules, SQLAlchemy's metadata, the model and its tables, the normalisation
caches): 7.5% of the importing process's CPU (bench/README.md, ``batch``). Nothing
decided depends on when the collector runs, so this changes no result.

For the import's duration, :func:`fewer_collections` moves what the process already
holds out of the collector's reach (:func:`reconcile.engine.heap.settle_heap`, as the web
server does at start-up)
and collects the young generation every :data:`YOUNG_THRESHOLD` allocations instead of
700: most of a batch is still alive at a young collection, so a low threshold only
moves it, object by object, into the older generations, which are then walked again.
"""
from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from ..engine.heap import settle_heap

#: allocations (net of deallocations) between two young collections during an import
YOUNG_THRESHOLD = 50_000
#: young collections between two middle ones, middle ones between two full ones
OLDER_THRESHOLDS = (20, 100)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the body with the heap frozen and rarer collections; restore both after.

    A process whose heap someone already froze (a forked server) keeps its freeze: it is
    neither extended nor undone here."""
    before = gc.get_threshold()
    freeze = gc.get_freeze_count() == 0
    if freeze:
        settle_heap()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        if freeze:
            gc.unfreeze()
