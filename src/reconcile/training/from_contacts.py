"""``reconcile train --from-contacts``: a model fitted to a deployment's own live
``Contact`` table, with no labels at all.

Why: the shipped default was fitted to our synthetic generator's choices, and a model
fitted to one generator fails on each customer's data in its own way (shared family
phones, borrowed emails). A new deployment should start from its own data; reviewers'
decisions then refine it (``--from-labels``).

Recipe (:func:`reconcile.training.train.fit`, the same as a stream without labels):
the person proxy is the service's own live grouping (``COALESCE(linkedId, id)``: exact
links, confident model links, confirmed reviews); u by random sampling over one record
per live group, the exact levels' u and the term-frequency tables from how many groups
use each value (the exact-level fix, SPLINK5-NOTES pitfall 1); the prior from the
groups; m by EM (u fixed) over the whole table with the model's blocking rules, or
with ``m_source="groups"`` from the live groups taken as persons (Splink's
``estimate_m_from_label_column``).

Why the second: EM cannot tell relatives from one person when they share a phone and a
surname. Fitted to a replay of 25,000 events (medium stream, seed 901) it gave "same last
name, different first name" +4.5 bits; m from the live groups gave +0.8, because the
exact stage's name guards keep such relatives in separate groups. On the next 25,000
events of that stream (default thresholds; a tuning measurement, see the closing note)
EM gave pairwise F1 0.9756, B-cubed F1 0.9750 and 1,144 review items, the live groups
0.9761, 0.9761 and 710, the shipped model 0.9765, 0.9791 and 1,016. The price of the
groups: they are the service's own decisions, so m learns what the service already links.

The version is written as ``models/<version>/`` (``model.json``, ``model.tf.json``,
``summary.json``, ``evaluation.json``) and registered, never activated: with no labels
nothing is measured, its ``evaluation.json`` says so, and the activation gate refuses
it without ``--force``.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..config import Settings
from ..scoring.documents import MODEL_FILE
from . import train as base_train
from .progress import STEPS_UNLABELLED, Steps, library_messages
from .review_load import clusters_of, live_rows

#: fewer distinct records than this cannot estimate anything
MIN_RECORDS = 3
M_SOURCES = ("em", "groups")


class ContactsTrainingError(RuntimeError):
    """Training cannot run: too few contacts, a version that exists, a bad name."""


@dataclass
class ContactsModel:
    version: str
    directory: Path
    summary: dict[str, Any]
    registered: bool


def default_version() -> str:
    return "contacts-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


def train_from_contacts(
    store: Any,
    settings: Settings,
    models_dir: Path,
    version: str | None = None,
    *,
    m_source: str = "em",
    register: bool = True,
    progress: bool = False,
) -> ContactsModel:
    """Fit, write ``models_dir/<version>/`` and register it (inactive) unless told not to.
    ``m_source``: ``"em"`` or ``"groups"`` (the module's doc)."""
    if m_source not in M_SOURCES:
        raise ContactsTrainingError(f"m source must be one of {', '.join(M_SOURCES)}")
    from .registry import register_path

    started = time.perf_counter()
    version = version or default_version()
    if len(version) > 64 or "/" in version or version.startswith("."):
        raise ContactsTrainingError(f"bad version {version!r}: 1 to 64 characters, no '/'")
    directory = Path(models_dir) / version
    if directory.exists():
        raise ContactsTrainingError(f"{directory} exists already: training never overwrites a model; choose another --version")
    steps = Steps(STEPS_UNLABELLED[:-1], progress)
    with library_messages(), steps.run():
        rows, invalid = live_rows(settings.database_url, settings.default_region)
        if len(rows) < MIN_RECORDS:
            raise ContactsTrainingError(
                f"the contact table has {len(rows)} distinct valid record(s): at least {MIN_RECORDS} are needed"
            )
        clusters = clusters_of(rows, "live")
        fitted = base_train.fit(rows, list(range(len(rows))), clusters, "em" if m_source == "em" else "labels", steps)
        with steps.step(STEPS_UNLABELLED[3]):
            directory.mkdir(parents=True)
            base_train.write_model(fitted, directory / MODEL_FILE)
    summary = {
        "version": version,
        "trained_at": datetime.now(timezone.utc).isoformat(),
        "source": "the live Contact table (no labels)",
        "records": {"distinct": len(rows), "invalid_or_empty": invalid, "live_groups": len(set(clusters))},
        "person_proxy": "live groups (COALESCE(linkedId, id))",
        "m_source": "EM over the contact table (u fixed)" if m_source == "em" else "the live groups as persons",
        "probability_two_random_records_match": fitted.prior,
        "u_sampling_pairs": fitted.u_pairs,
        "exact_levels": fitted.diagnostics,
        "u_filled_by_rule_of_three": fitted.filled_u,
        "m_filled_unobserved": fitted.filled_m,
        "parameters": base_train._parameter_summary(fitted.settings),
        "seconds": {**fitted.seconds, **steps.timings, "total": round(time.perf_counter() - started, 3)},
    }
    evaluation = {
        "heldout_labels": {"pairs": 0, "confirmed": 0, "rejected": 0},
        "candidate": {
            "version": version,
            "pairs": 0,
            "precision": None,
            "recall": None,
            "f1": None,
            "not_measurable": "trained on the contact table without labels: no held-out labels to measure it on",
        },
    }
    (directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (directory / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n")
    registered = False
    if register:
        register_path(store, directory, version)
        registered = True
    return ContactsModel(version, directory, summary, registered)
