"""What a long command shows while it runs: a progress bar with rate and ETA on stderr
(over named steps, or over counted items such as events), and only those library log
messages a user can act on.

Every command that can run longer than a second uses one of these, so nobody stares at
a silent terminal for 15 s (``reconcile evaluate`` on 5,000 events did). On a terminal
the bar redraws in place; elsewhere (a CI log, a pipe) rich prints its final state once.
"""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

#: Splink's warnings that training handles itself: a level the data never showed gets
#: an explicit value (rule-of-three u, ``train.UNOBSERVED_M``) and is listed in the
#: model's summary, so the warning is noise to the person running the command.
HANDLED_LIBRARY_MESSAGES = ("not observed in dataset",)


def _columns(rate: bool) -> tuple[Any, ...]:
    from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Items per second (rich only has a bytes-per-second column)."""

        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text("-/s" if speed is None else f"{speed:,.0f}/s" if speed >= 10 else f"{speed:.2f}/s")

    return (
        TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(), *([RateColumn()] if rate else []),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
    )


@contextmanager
def _progress(enabled: bool, rate: bool = True) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    if not console.is_terminal:  # a log file or pipe: wide enough for every column
        console = Console(stderr=True, width=140)
    with Progress(*_columns(rate), console=console, transient=False) as progress:
        yield progress


class Bar:
    """Counted items (events, records) in one or more tasks; silent when disabled."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._progress: Any = None

    @contextmanager
    def run(self) -> Iterator["Bar"]:
        with _progress(self.enabled) as progress:
            self._progress = progress
            try:
                yield self
            finally:
                self._progress = None

    def task(self, description: str, total: int | None) -> int | None:
        """A new line of the bar; ``total`` None when the count is unknown (no ETA)."""
        if self._progress is None:
            return None
        return self._progress.add_task(description, total=total)

    def update(self, task: int | None, completed: int) -> None:
        if self._progress is not None and task is not None:
            self._progress.update(task, completed=completed)


class Steps:
    """A rich progress bar over named steps (silent when disabled)."""

    def __init__(self, names: Sequence[str], enabled: bool):
        self.names = list(names)
        self.enabled = enabled
        self.timings: dict[str, float] = {}
        self._progress = None

    @contextmanager
    def run(self) -> Iterator["Steps"]:
        with _progress(self.enabled, rate=False) as progress:  # steps per second would mean nothing
            self._progress = progress
            if progress is not None:
                self._task = progress.add_task("training", total=len(self.names))
            try:
                yield self
            finally:
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


class _Actionable(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        message = record.getMessage()
        return not any(handled in message for handled in HANDLED_LIBRARY_MESSAGES)


class _Stderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at emit time, so a running progress bar
    (which redirects it) prints the message above itself instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record).strip() + "\n")
        except Exception:  # noqa: BLE001 - logging must never break the command
            self.handleError(record)


@contextmanager
def library_messages() -> Iterator[None]:
    """While training runs, Splink's log passes on only what a user can act on: its
    warnings and errors, less those training handles itself
    (:data:`HANDLED_LIBRARY_MESSAGES`). Splink logs every sampling chunk and EM iteration
    at INFO, and each ``Linker`` it builds resets the ``splink`` logger to INFO and adds
    its own handler when the logger has none; a handler of ours with this filter is in
    place first, so Splink adds none. Restored afterwards."""
    splink = logging.getLogger("splink")
    saved = (splink.level, list(splink.handlers), splink.propagate)
    handler = _Stderr(logging.WARNING)
    handler.addFilter(_Actionable())
    handler.setFormatter(logging.Formatter("splink: %(message)s"))
    splink.handlers = [handler]
    splink.propagate = False
    splink.setLevel(logging.WARNING)
    try:
        yield
    finally:
        splink.setLevel(saved[0])
        splink.handlers = saved[1]
        splink.propagate = saved[2]


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

#: ``reconcile train --from-stream`` / ``--from-contacts`` (:func:`reconcile.training.train.train`)
STEPS_UNLABELLED = (
    "u and TF tables: value frequencies",
    "u: random sampling",
    "m: EM over the records",
    "write the model",
    "evaluate: held-out persons",
)
