"""Which model a worker scores with, picked up from the registry without a restart.

Each worker process holds a :class:`ModelManager`. A request asks it for the current
:class:`ModelSnapshot` once and uses that snapshot to the end, so a request in flight
keeps the model it started with while the next one may get a newer model. At most every
``RECONCILE_MODEL_POLL_SECONDS`` one request runs one cheap query for the active
version (:func:`reconcile.store.models.active_key`); when it changed, the new model is
loaded (about 10 ms) and the snapshot is swapped by a single reference assignment. A
model that fails to load is logged and the previous snapshot stays in service: requests
never fail because of a bad activation. With no active version in the registry (or no
registry table yet) the worker serves ``RECONCILE_MODEL`` with the configured thresholds.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from ..config import Settings
from ..scoring.documents import load_scorer, resolve_path
from ..store import Store
from ..store import models as registry
from .probabilistic import Scorer, Thresholds

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSnapshot:
    """One consistent choice of model and thresholds; never mutated after publication."""

    scorer: Scorer | None
    thresholds: Thresholds
    #: what decisions record: the registry version, else the scorer's own version
    version: str | None
    #: "registry" (the active version), "settings" (RECONCILE_MODEL) or "fixed" (given)
    source: str
    path: str | None
    #: the registry key this snapshot answers; None when not from the registry
    key: tuple | None = None

    def as_json(self) -> dict:
        return {
            "version": self.version,
            "source": self.source,
            "path": self.path,
            "thresholds": {"upper": self.thresholds.upper, "lower": self.thresholds.lower},
            "pid": os.getpid(),  # which worker answered: each holds its own snapshot
        }


class ModelManager:
    """Resolves the active model per worker and swaps it atomically when it changes."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        scorer: Scorer | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self.settings = settings
        self.poll_seconds = settings.model_poll_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failed_key: tuple | None = None
        defaults = Thresholds(upper=settings.upper_threshold, lower=settings.lower_threshold)
        if not settings.probabilistic:
            self.polling = False
            self._snapshot = ModelSnapshot(None, defaults, None, "fixed", None)
        elif scorer is not None:  # given by the caller (tests, evaluation): never replaced
            self.polling = False
            self._snapshot = ModelSnapshot(scorer, defaults, scorer.version, "fixed", None)
        else:
            self.polling = True
            self._snapshot = self._initial()
        self._next_check = self._clock() + self.poll_seconds

    # --- what requests call ------------------------------------------------------

    def current(self) -> ModelSnapshot:
        """The snapshot to use for one request; checks the registry when the poll
        interval has passed (one thread checks, the others carry on with the old one)."""
        if not self.polling or self._clock() < self._next_check:
            return self._snapshot
        if not self._lock.acquire(blocking=False):
            return self._snapshot
        try:
            if self._clock() >= self._next_check:
                self._check()
                self._next_check = self._clock() + self.poll_seconds
        finally:
            self._lock.release()
        return self._snapshot

    def refresh(self) -> ModelSnapshot:
        """Check the registry now (after an activation made by this process)."""
        if not self.polling:
            return self._snapshot
        with self._lock:
            self._check()
            self._next_check = self._clock() + self.poll_seconds
        return self._snapshot

    # --- internals -------------------------------------------------------------------

    def _initial(self) -> ModelSnapshot:
        try:
            key = registry.active_key(self.store)
        except SQLAlchemyError as exc:
            log.warning("model registry unavailable (%s); serving %s", type(exc).__name__, self.settings.model_path)
            key = None
        if key is not None:
            try:
                return self._load_registered(key)
            except Exception:  # noqa: BLE001 - fall back to the configured model
                log.exception("active model %s failed to load; serving %s instead", key[0], self.settings.model_path)
                self._failed_key = key
        return self._load_settings()

    def _load_settings(self) -> ModelSnapshot:
        # raises ModelUnavailable: the service cannot start
        scorer = load_scorer(self.settings.model_path)
        thresholds = Thresholds(upper=self.settings.upper_threshold, lower=self.settings.lower_threshold)
        return ModelSnapshot(scorer, thresholds, scorer.version, "settings", self.settings.model_path)

    def _load_registered(self, key: tuple) -> ModelSnapshot:
        version, path, upper, lower, _activated = key
        scorer = load_scorer(str(resolve_path(path)))
        # Decisions record the registry's version name (so they join the registry); set
        # once, on a fresh object nobody else holds yet.
        scorer.version = version
        thresholds = Thresholds(
            upper=self.settings.upper_threshold if upper is None else upper,
            lower=self.settings.lower_threshold if lower is None else lower,
        )
        return ModelSnapshot(scorer, thresholds, version, "registry", path, key)

    def _check(self) -> None:
        try:
            key = registry.active_key(self.store)
        except SQLAlchemyError as exc:
            log.warning("model registry check failed (%s); keeping %s", type(exc).__name__, self._snapshot.version)
            return
        current = self._snapshot
        if key == current.key or (key is None and current.source == "settings"):
            return
        if key is not None and key == self._failed_key:
            return  # already logged; retried when the registry changes again
        try:
            snapshot = self._load_registered(key) if key is not None else self._load_settings()
        except Exception:  # noqa: BLE001 - never fail requests over a bad model
            log.exception("model %s failed to load; keeping %s", key[0] if key else self.settings.model_path, current.version)
            self._failed_key = key
            return
        self._failed_key = None
        self._snapshot = snapshot  # one reference assignment: atomic for readers
        log.info("now serving model %s (%s), thresholds %s", snapshot.version, snapshot.path, snapshot.thresholds)
