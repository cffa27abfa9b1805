"""``reconcile resolve``: re-resolve the whole live table with the active model, once,
whatever engine runs the scoring.

snapshot (Parquet) ─► Splink blocking + prediction on the engine, every blocked pair,
keeping those at or above the upper threshold ─► links (a reviewer's confirmations,
shared values, the model's pairs) ─► constrained clustering
(:mod:`reconcile.batch.clustering`) ─► diff against the live groups
(:mod:`reconcile.batch.diff`) ─► the pairs the proposals show scored again with their
evidence ─► report; with ``apply``, review items (:mod:`reconcile.batch.apply`).
Nothing here writes to the store except ``apply``.
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from splink import Linker

from ..config import Settings
from ..engine.active_model import ModelManager
from ..engine.guards import SHARED_BY_PEOPLE, Guards
from ..names import distinct_names
from ..scoring.documents import ModelUnavailable, resolve_path
from ..scoring.scorer import tf_path_for
from ..store import Store
from ..store.resolution import judgements
from .clustering import MODEL, REVIEW, SHARED_VALUE, Clusters, Link, cluster
from .diff import Diff, Pair, diff, with_evidence
from .engines import BatchEngine, open_engine, require
from .model_settings import (
    BlockingKey,
    blocking_keys,
    level_labels,
    load_document,
    settings_for,
)
from .snapshot import Snapshot, write_snapshot


@dataclass
class Resolution:
    """What one run found; :func:`reconcile.batch.report.as_json` says it."""

    engine_name: str
    model_version: str | None
    model_path: str
    threshold: float
    snapshot: Snapshot
    #: model links at or above the threshold
    links_scored: int
    #: the pairs the proposals show, with their evidence
    pairs: dict[tuple[int, int], Pair]
    clusters: Clusters
    diff: Diff
    timings: dict[str, float]


@dataclass(frozen=True)
class ActiveModel:
    version: str | None
    path: str
    upper: float


def active_model(store: Store, settings: Settings) -> ActiveModel:
    """The model and upper threshold the service scores with now (the registry's active
    version, else ``RECONCILE_MODEL``)."""
    snapshot = ModelManager(store, settings).current()
    if snapshot.scorer is None or snapshot.path is None:
        raise ModelUnavailable("resolve needs a model: RECONCILE_PROBABILISTIC=0 runs the exact rules only")
    return ActiveModel(snapshot.version, str(resolve_path(snapshot.path)), snapshot.thresholds.upper)


def resolve(
    store: Store,
    settings: Settings,
    *,
    engine: str = "duckdb",
    snapshot_dir: Path | None = None,
    spark_master: str | None = None,
    threshold: float | None = None,
    memory_limit: str | None = None,
) -> Resolution:
    """Re-resolve every live contact; read-only."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    require(engine)  # before minutes of snapshotting, not after
    model = active_model(store, settings)
    document = load_document(model.path)
    threshold = model.upper if threshold is None else threshold
    guards = Guards.from_settings(settings)
    with tempfile.TemporaryDirectory(prefix="reconcile-resolve-") as scratch:
        directory = snapshot_dir or Path(scratch)
        keys = blocking_keys(document)
        snapshot = write_snapshot(store, guards, directory, keys, settings.batch_block_cap)
        decided = judgements(store, SHARED_BY_PEOPLE)
        timings["snapshot"] = time.perf_counter() - started
        opened = open_engine(
            engine, spark_master=spark_master, work_dir=directory, memory_limit=memory_limit,
            spark_driver_memory=settings.spark_driver_memory,
        )
        scoring = Scoring(opened, document, keys, snapshot.path, model.path)
        try:
            scored = scoring.links(threshold)
            timings["predict"] = time.perf_counter() - started - timings["snapshot"]
            mark = time.perf_counter()
            links = [Link(a, b, REVIEW) for a, b in decided.must_link]
            links += shared_value_links(snapshot, decided.guarded, settings.max_names_per_identifier)
            links += [Link(through[0], other, SHARED_VALUE) for through in decided.requests for other in through[1:]]
            links += [Link(a, b, MODEL, weight) for a, b, weight in scored]
            # reviewers' confirmations and requests' links outlive an erasure of one of their
            # contacts; only links between live contacts (the snapshot's) are clustered
            live = set(snapshot.ids)
            clusters = cluster(
                dict(zip(snapshot.ids, snapshot.name_keys)),
                [link for link in links if link.a != link.b and link.a in live and link.b in live],
                cannot_link=decided.cannot_link,
                max_size=guards.size_limit(),
                one_person_size=guards.size_limit(one_person=True),
            )
            found = diff(snapshot, clusters)
            timings["cluster"] = time.perf_counter() - mark
            mark = time.perf_counter()
            pairs = scoring.explain(found.pairs_to_explain())
            timings["evidence"] = time.perf_counter() - mark
        finally:
            scoring.close()
    found = with_evidence(found, clusters, pairs, threshold)
    timings["total"] = time.perf_counter() - started
    return Resolution(engine, model.version, model.path, threshold, snapshot, len(scored), pairs, clusters, found, timings)


class Scoring:
    """Splink on one engine, over one snapshot, with the model's term frequencies, in two
    passes: every blocked pair scored lean (ids and weights of those at or above the
    threshold only: what clustering needs), then the few pairs the proposals show scored
    again with every comparison's level and weight (registered as blocked pairs, so any
    two contacts can be explained, blocked together or not)."""

    def __init__(self, backend: BatchEngine, document: dict[str, Any], keys: list[BlockingKey], snapshot: Path, model_path: str):
        self.backend = backend
        self.document = document
        self.keys = keys
        self.directory = snapshot.parent
        self.input = backend.register(snapshot, "snapshot")
        self.tf = term_frequency_files(model_path, self.directory)

    def _linker(self, evidence: bool) -> Linker:
        linker = Linker(self.input, settings_for(self.document, self.backend.dialect, evidence=evidence, jaro_winkler=self.backend.jaro_winkler, keys=self.keys), log_level=logging.WARNING)
        for column, path in self.tf.items():
            linker.table_management.register_term_frequency_lookup(self.backend.register(path, f"tf_{column}"), column)
        return linker

    def links(self, threshold: float) -> list[tuple[int, int, float]]:
        """(smaller id, larger id, match weight) of every blocked pair at or above ``threshold``."""
        predictions = self._linker(evidence=False).inference.predict(threshold_match_probability=threshold)
        table = self.backend.rows(predictions, ["unique_id_l", "unique_id_r", "match_weight"]).to_pydict()
        return [
            (min(a, b), max(a, b), w) for a, b, w in zip(table["unique_id_l"], table["unique_id_r"], table["match_weight"])
        ]

    def explain(self, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], Pair]:
        """Each wanted pair scored with its evidence, by (smaller id, larger id)."""
        if not wanted:
            return {}
        ordered = sorted(wanted)
        path = self.directory / "explain_pairs.parquet"
        pq.write_table(
            pa.table({"match_key": ["0"] * len(ordered), "join_key_l": [a for a, _ in ordered], "join_key_r": [b for _, b in ordered]}),
            path,
        )
        linker = self._linker(evidence=True)
        linker.table_management.register_blocked_pairs_for_predict(self.backend.register(path, "explain_pairs"))
        comparisons = [c["output_column_name"] for c in self.document["comparisons"]]
        tf = {c["output_column_name"] for c in self.document["comparisons"] for lv in c["comparison_levels"] if lv.get("tf_adjustment_column")}
        columns = ["unique_id_l", "unique_id_r", "match_weight", "match_probability"]
        columns += [f"gamma_{c}" for c in comparisons] + [f"mw_{c}" for c in comparisons] + [f"mw_tf_adj_{c}" for c in comparisons if c in tf]
        table = self.backend.rows(linker.inference.predict(), columns).to_pydict()
        labels = level_labels(self.document)
        pairs: dict[tuple[int, int], Pair] = {}
        for n in range(len(table["unique_id_l"])):
            a, b = sorted((table["unique_id_l"][n], table["unique_id_r"][n]))
            evidence = []
            for c in comparisons:
                gamma = table[f"gamma_{c}"][n]
                weight = table[f"mw_{c}"][n] + ((table[f"mw_tf_adj_{c}"][n] or 0.0) if c in tf else 0.0)
                evidence.append({"comparison": c, "level": labels[c].get(gamma, str(gamma)), "gamma": gamma, "weight": weight})
            pairs[(a, b)] = Pair(a, b, table["match_probability"][n], table["match_weight"][n], tuple(evidence))
        return pairs

    def close(self) -> None:
        self.backend.close()


def term_frequency_files(model_path: str, directory: Path) -> dict[str, Path]:
    """The model's term-frequency tables (``<model>.tf.json``, what the online scorer
    reads) as Parquet beside the snapshot, one per column: the batch weighs a shared
    value exactly as ``/identify`` does, instead of by its frequency in this table."""
    path = tf_path_for(model_path)
    if not path.exists():
        return {}
    files = {}
    for column, table in json.loads(path.read_text()).items():
        files[column] = directory / f"tf_{column}.parquet"
        pq.write_table(pa.table({column: list(table), f"tf_{column}": list(table.values())}), files[column])
    return files


def shared_value_links(snapshot: Snapshot, guarded: set[tuple[str, str]], max_names: int) -> list[Link]:
    """The contract's links: contacts holding the same email or phone, for every value
    that can link (the snapshot emptied placeholders and role mailboxes), that no guard
    recorded as shared, and that does not carry more than ``max_names`` clearly different
    names (the online ``shared-identifier`` guard's test, with the whole table in view).

    The values are grouped in Arrow: of a million contacts' values only those held twice
    or more (a few percent) reach Python."""
    links = []
    rows = pa.array(range(len(snapshot.ids)), pa.int64())
    for field, values in (("email", snapshot.emails), ("phoneNumber", snapshot.phones)):
        table = pa.table({"value": pa.array(values, pa.string()), "row": rows}).filter(pc.is_valid(pc.field("value")))
        held = table.group_by("value").aggregate([("row", "list"), ("row", "count")])
        held = held.filter(pc.greater_equal(pc.field("row_count"), 2))
        for value, rows_of in zip(held["value"].to_pylist(), held["row_list"].to_pylist()):
            if (field, value) in guarded:
                continue
            rows_of.sort()  # rows are in id order: the first is the oldest holder
            keys = [(snapshot.name_keys[n], snapshot.name_keys[n]) for n in rows_of if snapshot.name_keys[n]]
            if len(keys) > 1 and len(distinct_names(keys, limit=max_names)) > max_names:
                continue
            first = snapshot.ids[rows_of[0]]
            links += [Link(first, snapshot.ids[n], SHARED_VALUE) for n in rows_of[1:]]
    return links
