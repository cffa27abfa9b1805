"""Train the Splink model and write ``models/<name>.json`` with its TF tables and metrics.

Recipe (see ../shared/SPLINK5-NOTES.md, pitfall 1):

1. Load records (a JSONL event stream, or the live ``Contact`` table), normalise them
   and de-duplicate identical records.
2. Group records into clusters: the ``person`` labels when the stream has them,
   otherwise a proxy (records sharing an exact email or phone, ignoring values seen
   with 3+ different names, which are shared identifiers rather than a person).
3. u by random sampling over ONE record per cluster, so random pairs really are
   non-matches; levels the sample never saw get the rule-of-three bound ``3 / pairs``
   instead of Splink's silent default.
4. u of each exact level with a TF adjustment, and its TF table, from how many
   clusters use each value (see :func:`value_frequencies`); term frequencies can only
   down-weight shared values. Record-level frequencies would re-introduce the pitfall
   (a person's own repeated email would look "common").
5. Prior from the clusters: matching pairs / all pairs.
6. m by EM (u fixed) over a few blocking rules; a level EM never saw gets m = 1e-6
   written explicitly, so reloading never falls back to a default. Then the looser
   phone levels are capped at the exact level's weight (:func:`cap_looser_levels`).
7. With labels: hold out 20% of persons and report pairwise P/R/F1 of Splink's
   predictions on them at a few thresholds.
"""
from __future__ import annotations

import gzip
import json
import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..normalize import InvalidInput, normalize_email, normalize_name, normalize_phone
from ..scoring import model_spec
from ..scoring.features import COLUMNS, features
from ..scoring.scorer import tf_path_for
from .progress import STEPS_UNLABELLED, Steps, library_messages

log = logging.getLogger(__name__)

HOLDOUT_FRACTION = 0.2
U_MAX_PAIRS = 3e6
EVAL_THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)
#: A value seen with this many different names is a shared identifier, not a person.
PROXY_SHARED_NAMES = 3
UNOBSERVED_M = 1e-6
SEED = 42


@dataclass(frozen=True, slots=True)
class Row:
    """One de-duplicated normalised record and its cluster label (None: unlabelled)."""

    email: str | None
    phone: str | None
    name: str | None
    person: str | None


def read_stream(path: str | Path, default_region: str = "US") -> tuple[list[Row], int]:
    """Normalised, de-duplicated records of a JSONL event stream; also the invalid count."""
    events = iter_jsonl(path)
    return _dedupe(
        ((e.get("email"), e.get("phoneNumber"), e.get("name"), e.get("person")) for e in events), default_region
    )


def read_database(url: str, default_region: str = "US") -> tuple[list[Row], int]:
    """Normalised, de-duplicated live contacts of the store at ``url`` (no labels)."""
    from ..store.exports import live_contacts

    rows = [(email, phone, name, None) for email, phone, name in live_contacts(url)]
    return _dedupe(rows, default_region)


def _dedupe(raw: Iterable[tuple[Any, Any, Any, Any]], default_region: str = "US") -> tuple[list[Row], int]:
    seen: set[Row] = set()
    rows: list[Row] = []
    invalid = 0
    for email, phone, name, person in raw:
        try:
            row = Row(
                normalize_email(email),
                normalize_phone(phone, default_region),
                normalize_name(name),
                None if person is None else str(person),
            )
        except InvalidInput:
            invalid += 1
            continue
        if row.email is None and row.phone is None:
            invalid += 1
            continue
        if row not in seen:
            seen.add(row)
            rows.append(row)
    return rows, invalid


# --- clusters, value frequencies, prior ----------------------------------------------


def proxy_clusters(rows: list[Row]) -> list[str]:
    """Cluster ids without labels: union of rows sharing an exact email or phone that is
    not a shared identifier (seen with PROXY_SHARED_NAMES+ different name keys)."""
    feats = [features(r.email, r.phone, r.name) for r in rows]
    names: dict[tuple[str, str], set[str]] = defaultdict(set)
    for f in feats:
        for col in ("email", "phone"):
            if f[col] and f["name_key"]:
                names[(col, f[col])].add(f["name_key"])
    keys = [
        [(col, f[col]) for col in ("email", "phone") if f[col] and len(names[(col, f[col])]) < PROXY_SHARED_NAMES]
        for f in feats
    ]
    return [f"proxy{root}" for root in joined_by_keys(keys)]


def joined_by_keys(keys: Sequence[Iterable[Hashable]]) -> list[int]:
    """Each row's cluster, as the index of one of its rows: rows sharing any key
    (``keys[i]`` are row ``i``'s) are joined, transitively (union-find)."""
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[Hashable, int] = {}
    for i, row_keys in enumerate(keys):
        for key in row_keys:
            parent[find(i)] = find(first.setdefault(key, i))
    return [find(i) for i in range(len(keys))]


def value_frequencies(
    feats: list[dict], clusters: list[str], column: str, identifier: bool
) -> tuple[float, dict[str, float], dict[str, Any]]:
    """(u of the exact level, TF table, diagnostics) from how many clusters use each value.

    ``tf_v = (k_v - 1) / (K - 1)``: the chance another cluster's value is ``v``. For
    an identifier (a mailbox, a phone line: one owner by construction) a value no two
    clusters share is treated as unshared: the exact level's u is the rule-of-three
    bound ``3 / (K (K - 1) / 2)`` and every shared value is in the TF table. For a
    name (drawn from a population, so a name seen once may well recur) the exact
    level's u is the average ``sum k_v (k_v - 1) / (K (K - 1))`` and the table keeps
    the values above it. Either way ``tf_minimum_u_value`` is that u, so a TF lookup
    can only lower the weight of a value.
    """
    users: dict[str, set[str]] = defaultdict(set)
    for f, cluster in zip(feats, clusters):
        if f[column] is not None:
            users[f[column]].add(cluster)
    k = {value: len(c) for value, c in users.items()}
    total = sum(k.values())
    if total < 2:
        raise ValueError(f"too few values of {column} to train on")
    pairs = total * (total - 1)
    average = sum(n * (n - 1) for n in k.values()) / pairs
    u = 3.0 / (pairs / 2) if identifier else max(average, 1.0 / pairs)
    table = {v: (n - 1) / (total - 1) for v, n in k.items() if (n - 1) / (total - 1) > u}
    diagnostics = {
        "u_exact": u,
        "u_average_over_values": average,
        "distinct_values": len(k),
        "shared_values": sum(1 for n in k.values() if n > 1),
        "tf_values_kept": len(table),
    }
    return u, table, diagnostics


def prior_from_clusters(clusters: list[str]) -> float:
    """Probability that two random records match: matching pairs over all pairs."""
    sizes: dict[str, int] = defaultdict(int)
    for c in clusters:
        sizes[c] += 1
    n = len(clusters)
    matching = sum(s * (s - 1) for s in sizes.values())
    return matching / (n * (n - 1))


# --- Splink ---------------------------------------------------------------------------


def connect() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that fails rather than download anything."""
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions=false")
    con.execute("SET autoload_known_extensions=false")
    return con


def feature_table(rows: list[Row], ids: Iterable[int] | None = None) -> pa.Table:
    """The Splink input table: unique_id, person label and every feature column."""
    ids = range(len(rows)) if ids is None else ids
    records = []
    for i in ids:
        r = rows[i]
        rec = {"unique_id": i, "person": r.person}
        rec.update(features(r.email, r.phone, r.name))
        records.append(rec)
    schema = pa.schema([("unique_id", pa.int64()), ("person", pa.string())] + [(c, pa.string()) for c in COLUMNS])
    return pa.Table.from_pylist(records, schema=schema)


def tf_arrow(column: str, table: dict[str, float]) -> pa.Table:
    """A TF table as Splink expects it: the column and ``tf_<column>``."""
    return pa.table(
        {column: pa.array(list(table), pa.string()), f"tf_{column}": pa.array(list(table.values()), pa.float64())}
    )


def register_tf_tables(linker: Any, db_api: Any, tables: dict[str, dict[str, float]]) -> None:
    """Give Splink the model's own TF tables (not ones recomputed from its input)."""
    for column, table in tables.items():
        sdf = db_api.register(tf_arrow(column, table))
        linker.table_management.register_term_frequency_lookup(sdf, column)


def _estimate_u(con: duckdb.DuckDBPyConnection, table: pa.Table, settings: dict) -> tuple[dict, float]:
    """u by random sampling on one record per cluster; returns levels' u by (comparison, index)."""
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register(table)
    linker = Linker(sdf, settings)
    linker.training.estimate_u_using_random_sampling(max_pairs=U_MAX_PAIRS, seed=SEED)
    trained = linker._settings_obj.as_dict()  # only levels Splink actually observed carry a u
    n = table.num_rows
    pairs = min(U_MAX_PAIRS, n * (n - 1) / 2)
    return trained, pairs


def fixed_u_settings(
    base: dict, trained_u: dict, exact_u: dict[str, float], u_pairs: float
) -> tuple[dict, list[str]]:
    """A copy of ``base`` with every non-null level's u set and fixed: the exact TF levels'
    u from value frequencies (``exact_u``, pitfall 1), the rest from random sampling
    (``trained_u``), levels sampling never saw at the rule-of-three bound ``3 / u_pairs``.
    Returns the settings and the levels filled by that bound."""
    settings = json.loads(json.dumps(base))
    filled_u = []
    for ci, comparison in enumerate(settings["comparisons"]):
        for li, level in enumerate(comparison["comparison_levels"]):
            if level.get("is_null_level"):
                continue
            tf_col = level.get("tf_adjustment_column")
            if tf_col:
                level["u_probability"] = exact_u[tf_col]
                level["tf_minimum_u_value"] = exact_u[tf_col]
            else:
                u = trained_u["comparisons"][ci]["comparison_levels"][li].get("u_probability")
                if u is None:
                    u = 3.0 / u_pairs
                    filled_u.append(f"{comparison['output_column_name']}: {level.get('label_for_charts')}")
                level["u_probability"] = u
            level["fix_u_probability"] = True
    return settings, filled_u


def cap_looser_levels(settings: dict, comparisons: Iterable[str] = model_spec.MONOTONE_COMPARISONS) -> list[dict[str, Any]]:
    """In each of ``comparisons``, raise the u of every level after the exact (TF) level
    whose match weight exceeds the exact level's to ``m * u_exact / m_exact``: its weight
    becomes the exact level's, never more (see :data:`model_spec.MONOTONE_COMPARISONS`).
    ``u_exact`` is the exact level's base u (its TF minimum), so a value known to be
    shared still weighs less exact than written differently only by the TF table's
    doing. Returns what was changed."""
    wanted = set(comparisons)
    changed = []
    for comparison in settings["comparisons"]:
        if comparison["output_column_name"] not in wanted:
            continue
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        exact = next((lv for lv in levels if lv.get("tf_adjustment_column")), None)
        if exact is None or not exact.get("m_probability") or not exact.get("u_probability"):
            continue
        ratio = exact["u_probability"] / exact["m_probability"]
        for level in levels[levels.index(exact) + 1 :]:
            m, u = level.get("m_probability"), level.get("u_probability")
            if m is None or u is None or m * ratio <= u or m * ratio >= 1:
                continue
            level["u_probability"] = m * ratio
            level["fix_u_probability"] = True
            changed.append(
                {"comparison": comparison["output_column_name"], "level": level.get("label_for_charts"), "u_before": u, "u": m * ratio}
            )
    return changed


def fill_unobserved_m(settings: dict) -> list[str]:
    """Write m = UNOBSERVED_M on every non-null level without one (so reloading never falls
    back to Splink's default); returns the levels filled."""
    filled_m = []
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            if not level.get("is_null_level") and "m_probability" not in level:
                level["m_probability"] = UNOBSERVED_M
                filled_m.append(f"{comparison['output_column_name']}: {level.get('label_for_charts')}")
    return filled_m


@dataclass
class Fitted:
    """A model's Splink settings and TF tables, and how they were estimated."""

    settings: dict[str, Any]
    tf_tables: dict[str, dict[str, float]]
    prior: float
    u_pairs: float
    diagnostics: dict[str, Any]
    filled_u: list[str]
    filled_m: list[str]
    seconds: dict[str, float]


def fit(
    rows: list[Row], ids: list[int], clusters: list[str], m_source: str, steps: Steps | None = None
) -> Fitted:
    """Estimate every parameter on ``rows[ids]`` (steps 3-6 of the module's recipe).

    ``clusters`` (one per id) is the person proxy behind u, the TF tables and the prior:
    the stream's labels, or without labels the live groups / exact-value union. m comes
    from EM (``m_source="em"``) or from the rows' ``person`` labels (``"labels"``)."""
    from splink import DuckDBAPI, Linker

    steps = steps or Steps(STEPS_UNLABELLED, enabled=False)
    with steps.step(STEPS_UNLABELLED[0]):
        feats = [features(rows[i].email, rows[i].phone, rows[i].name) for i in ids]
        exact_u: dict[str, float] = {}
        tf_tables: dict[str, dict[str, float]] = {}
        diagnostics: dict[str, Any] = {}
        for column in model_spec.TF_COLUMNS:
            identifier = column in model_spec.IDENTIFIER_COLUMNS
            exact_u[column], tf_tables[column], diagnostics[column] = value_frequencies(feats, clusters, column, identifier)
        prior = prior_from_clusters(clusters)

    con = connect()
    try:
        base = model_spec.settings_creator(prior).get_settings("duckdb").as_dict()
        with steps.step(STEPS_UNLABELLED[1]):  # u by random sampling over one record per cluster
            t0 = time.perf_counter()
            first_of: dict[str, int] = {}
            for i, c in zip(ids, clusters):
                first_of.setdefault(c, i)
            trained_u, u_pairs = _estimate_u(con, feature_table(rows, sorted(first_of.values())), base)
            u_seconds = time.perf_counter() - t0
            settings, filled_u = fixed_u_settings(base, trained_u, exact_u, u_pairs)

        with steps.step(STEPS_UNLABELLED[2]):  # m, with the model's own TF tables
            t0 = time.perf_counter()
            db_api = DuckDBAPI(connection=con)
            linker = Linker(db_api.register(feature_table(rows, ids)), settings)
            register_tf_tables(linker, db_api, tf_tables)
            if m_source == "labels":
                if not all(rows[i].person is not None for i in ids):
                    raise ValueError("m from labels needs a labelled stream (every event with a person)")
                linker.training.estimate_m_from_label_column("person")
            elif m_source == "em":
                for rule in model_spec.em_blocking_rules():
                    linker.training.estimate_parameters_using_expectation_maximisation(rule)
            else:
                raise ValueError(f"unknown m source {m_source!r}")
            em_seconds = time.perf_counter() - t0
            final = linker._settings_obj.as_dict()
    finally:
        con.close()
    filled_m = fill_unobserved_m(final)
    diagnostics["looser_levels_capped"] = cap_looser_levels(final)
    final["probability_two_random_records_match"] = prior
    final["linker_uid"] = None
    return Fitted(
        final, tf_tables, prior, u_pairs, diagnostics, filled_u, filled_m,
        {"u_sampling": round(u_seconds, 2), "em": round(em_seconds, 2)},
    )


def refuse_overwrite(*paths: Path) -> None:
    """Training writes new files only: an existing model file (perhaps the one the
    active version is served from) is never replaced unless the caller says so."""
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise FileExistsError(
            f"{', '.join(existing)} exist(s) already: training never overwrites a model; choose another "
            "--name/--output, or pass --overwrite"
        )


def write_model(fitted: Fitted, model_path: Path) -> None:
    """The model document and its TF tables beside it (``<model>.tf.json``)."""
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model_path.write_text(json.dumps(fitted.settings, indent=2) + "\n")
    tf_path_for(model_path).write_text(json.dumps(fitted.tf_tables, sort_keys=True, separators=(",", ":")) + "\n")


def train(
    rows: list[Row], name: str, models_dir: Path, source: str, m_source: str = "auto", *,
    overwrite: bool = False, progress: bool = False,
) -> dict[str, Any]:
    """Train on ``rows`` and write ``<name>.json``, ``<name>.tf.json``, ``<name>.metrics.json``.

    ``m_source``: ``"em"`` (the recipe above), ``"labels"`` (m from the training
    records' person labels with Splink's ``estimate_m_from_label_column``; labelled
    streams only) or ``"auto"``: labels when every record has one, else EM. EM has no
    way to tell a relative from a match when they share a phone and a surname (it gave
    "same last name, different first name" m = 0.02, +2.4 bits, against 0.0003 from the
    labels, -3.5 bits), so a labelled stream trains m from its labels.

    Existing files are refused (:func:`refuse_overwrite`) unless ``overwrite``."""
    model_path = models_dir / f"{name}.json"
    metrics_path = models_dir / f"{name}.metrics.json"
    if not overwrite:
        refuse_overwrite(model_path, tf_path_for(model_path), metrics_path)
    if m_source == "auto":
        m_source = "labels" if rows and all(r.person is not None for r in rows) else "em"
    started = time.perf_counter()
    labelled = all(r.person is not None for r in rows) and bool(rows)
    rng = random.Random(SEED)
    holdout: set[str] = set()
    if labelled:
        persons = sorted({r.person for r in rows})
        holdout = set(rng.sample(persons, int(len(persons) * HOLDOUT_FRACTION)))
    train_ids = [i for i, r in enumerate(rows) if r.person not in holdout]
    test_ids = [i for i, r in enumerate(rows) if r.person in holdout]
    train_rows = [rows[i] for i in train_ids]
    proxy = proxy_clusters(train_rows)
    clusters = [r.person for r in train_rows] if labelled else proxy

    steps = Steps(STEPS_UNLABELLED if labelled and test_ids else STEPS_UNLABELLED[:-1], progress)
    with library_messages(), steps.run():
        fitted = fit(rows, train_ids, clusters, m_source, steps)
        if labelled:
            feats = [features(r.email, r.phone, r.name) for r in train_rows]
            for column in model_spec.TF_COLUMNS:
                identifier = column in model_spec.IDENTIFIER_COLUMNS
                fitted.diagnostics[column]["unlabelled_proxy"] = value_frequencies(feats, proxy, column, identifier)[2]
        with steps.step(STEPS_UNLABELLED[3]):
            write_model(fitted, model_path)
        train_seconds = time.perf_counter() - started

        metrics: dict[str, Any] = {
            "model": model_path.name,
            "source": source,
            "records": len(rows),
            "training_records": len(train_ids),
            "heldout_records": len(test_ids),
            "clusters": "person labels" if labelled else "unlabelled proxy (exact email/phone)",
            "m_source": "EM" if m_source == "em" else "person labels",
            "training_clusters": len(set(clusters)),
            "probability_two_random_records_match": fitted.prior,
            "u_sampling_pairs": fitted.u_pairs,
            "exact_levels": fitted.diagnostics,
            "u_filled_by_rule_of_three": fitted.filled_u,
            "m_filled_unobserved": fitted.filled_m,
            "parameters": _parameter_summary(fitted.settings),
            "seconds": {**fitted.seconds, "total": round(train_seconds, 2)},
        }
        if labelled and test_ids:
            with steps.step(STEPS_UNLABELLED[4]):
                t0 = time.perf_counter()
                con = connect()
                try:
                    metrics["heldout"] = evaluate(con, rows, test_ids, model_path, fitted.tf_tables)
                finally:
                    con.close()
                metrics["seconds"]["evaluation"] = round(time.perf_counter() - t0, 2)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _parameter_summary(settings: dict) -> list[dict[str, Any]]:
    out = []
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            m, u = level["m_probability"], level["u_probability"]
            out.append(
                {
                    "comparison": comparison["output_column_name"],
                    "level": level.get("label_for_charts"),
                    "m": m,
                    "u": u,
                    "weight": math.log2(max(m, 1e-300) / max(u, 1e-300)),
                    "tf": level.get("tf_adjustment_column"),
                }
            )
    return out


def evaluate(
    con: duckdb.DuckDBPyConnection, rows: list[Row], ids: list[int], model_path: Path, tf_tables: dict
) -> dict[str, Any]:
    """Pairwise P/R/F1 of Splink's predictions (saved model, blocking rules) on ``ids``."""
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register(feature_table(rows, ids))
    linker = Linker(sdf, str(model_path))
    register_tf_tables(linker, db_api, tf_tables)
    predictions = linker.inference.predict(threshold_match_probability=min(EVAL_THRESHOLDS))
    table = predictions.as_pyarrow_table()
    left = table.column("unique_id_l").to_pylist()
    right = table.column("unique_id_r").to_pylist()
    prob = table.column("match_probability").to_pylist()
    person = {i: rows[i].person for i in ids}
    sizes: dict[str, int] = defaultdict(int)
    for i in ids:
        sizes[person[i]] += 1
    true_pairs = sum(s * (s - 1) // 2 for s in sizes.values())
    out: dict[str, Any] = {"records": len(ids), "persons": len(sizes), "true_pairs": true_pairs, "thresholds": {}}
    for threshold in EVAL_THRESHOLDS:
        predicted = tp = 0
        for a, b, p in zip(left, right, prob):
            if p >= threshold:
                predicted += 1
                tp += person[a] == person[b]
        # undefined (None, "not measurable") rather than a perfect-looking 1.0
        precision = tp / predicted if predicted else None
        recall = tp / true_pairs if true_pairs else None
        f1 = None
        if precision is not None and recall is not None:
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out["thresholds"][str(threshold)] = {
            "predicted_pairs": predicted,
            "precision": None if precision is None else round(precision, 4),
            "recall": None if recall is None else round(recall, 4),
            "f1": None if f1 is None else round(f1, 4),
        }
    return out


def iter_jsonl(path: str | Path) -> Iterator[dict]:
    """Events of a JSONL stream (``.gz`` accepted)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
