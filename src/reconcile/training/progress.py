"""A progress bar over the named steps of a training run (silent when disabled)."""
from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import contextmanager
from typing import Iterator


class Steps:
    """A rich progress bar over named steps (silent when disabled)."""

    def __init__(self, names: Sequence[str], enabled: bool):
        self.names = list(names)
        self.enabled = enabled
        self.timings: dict[str, float] = {}
        self._progress = None

    @contextmanager
    def run(self) -> Iterator["Steps"]:
        if not self.enabled:
            yield self
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description:<40}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(), console=Console(stderr=True), transient=False,
        ) as progress:
            self._progress = progress
            self._task = progress.add_task("training", total=len(self.names))
            yield self
        self._progress = None

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        if self._progress is not None:
            self._progress.update(self._task, description=name)
        started = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - started, 3)
        if self._progress is not None:
            self._progress.advance(self._task)


STEPS_FIRST = ("load labels and contacts",)
STEPS_WARM = ("warm start: the active model's parameters", "m and prior: fitted to the training labels")
STEPS_SCRATCH = (
    "u: value frequencies and random sampling",
    "m: EM over the contact table",
    "m: confirmed pairs (Splink pairwise labels)",
)


STEPS_LAST = (
    "write the model",
    "thresholds from training labels",
    "evaluate: held-out labels, both models",
    "evaluate: pending merges",
    "charts",
)

