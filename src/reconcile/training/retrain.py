"""``reconcile train --from-labels``: a new model version from reviewers' decisions.

Recipe (the parameters; see ../shared/SPLINK5-NOTES.md pitfall 1 and
:mod:`reconcile.training.train`, whose functions this reuses):

1. Labels from the store as pairs of records (:mod:`reconcile.review.labels`), split
   deterministically into training (~75%) and held-out (~25%) parts. Contacts from the
   live table, each with its live group (``COALESCE(linkedId, id)``): the person proxy
   (``proxy="live"``; ``"exact"`` is the older shared-email/phone union).
2. ``m_source="warm"`` (default): the ACTIVE model's settings, u and TF tables, with m
   and the prior fitted to the training labels by a penalised conditional likelihood
   (:mod:`reconcile.training.warm_start`): labels move the model only where they give
   evidence, and no labels give the active model back. Reason: the labels are the pairs
   the active model put between its thresholds, a sample selected by its own score;
   re-estimating u and m from scratch on such a sample (below) came out worse than the
   model it was meant to replace.
3. From scratch (``labels+em``, ``labels``, ``em``): u by random sampling over one
   record per proxy cluster, with the exact identifier levels' u and the TF tables
   from value frequencies over clusters (``train.value_frequencies``,
   ``train.fixed_u_settings``); the prior from those clusters; m, per level:

   * ``labels+em``: Splink's ``estimate_m_from_pairwise_labels`` on the
     CONFIRMED training pairs (a linker over just those records), and EM (u fixed) over
     the contact table. They are combined per comparison as a weighted mean,
     ``m = (n_c m_labels + EM_PSEUDO_PAIRS m_em) / (n_c + EM_PSEUDO_PAIRS)``, ``n_c``
     the confirmed pairs where that comparison is not null: EM is a prior worth
     ``EM_PSEUDO_PAIRS`` labelled pairs (the selection bias of 2 applies);
   * ``labels``: labels only (levels not observed get ``train.UNOBSERVED_M``);
   * ``em``: EM only (the existing recipe).

   With fewer than ``MIN_CONFIRMED`` confirmed training pairs, m comes from EM alone
   and the summary says so.
4. The REJECTED pairs, which Splink's label estimation ignores, choose the thresholds
   together with the confirmed ones (:func:`choose_thresholds`), on the training
   labels of scored pairs (guard items are held by guards whatever their score):

   * upper: the lowest score ``t`` such that precision of ``score >= t'`` is at least
     the target for EVERY ``t' >= t`` (a plain "lowest t with precision >= target"
     can sit in a lucky dip with few labels) AND the one-sided 95% Wilson lower bound
     of precision at ``t`` reaches the target (``CONFIDENCE_Z``); when no cut
     qualifies, the active model's upper (labels too few to justify another), or just
     above the highest-scored rejected pair when the labels contradict that one too;
   * lower: the highest score that keeps ``LOWER_RECALL`` (99%) of the confirmed pairs
     at or above it, raised if needed so that the review load (candidate pairs of the
     contact table from different live groups sharing a blocking key, scored in
     ``[lower, upper)``) stays within the active model's; never above upper;
   * false-match rate (rejected pairs at or above upper) and false non-match rate
     (confirmed pairs below lower) are reported.

5. Evaluation on the held-out labels of the new model and the active one (the
   registry's active version, else the configured default) side by side: precision,
   recall, F1 at each model's thresholds (what the activation policy compares), and
   threshold-free average precision and ROC AUC of the match weight; how each would
   decide the currently pending merges; charts as offline SVG.
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from ..config import PROJECT_ROOT, Settings
from ..review.labels import HELDOUT_FRACTION, LabelPair, load_labels, split
from ..scoring import model_spec
from ..scoring.documents import MODEL_FILE
from ..scoring.features import features
from ..scoring.scorer import Scorer, compile_condition, tf_path_for
from . import charts, warm_start
from . import train as base_train

MIN_CONFIRMED = 10
EM_PSEUDO_PAIRS = 50
TARGET_PRECISION = 0.99
LOWER_RECALL = 0.99
#: one-sided 95% Wilson bound on the precision the upper threshold must reach
CONFIDENCE_Z = 1.645
PR_POINTS = 200
M_SOURCES = ("warm", "labels+em", "labels", "em")
PROXIES = ("live", "exact")
#: candidate pairs scored to estimate review loads (sampled deterministically beyond)
LOAD_MAX_PAIRS = 150_000


class TrainingError(RuntimeError):
    """Training cannot run (no contacts, a version that exists, ...)."""


# --- scoring labelled pairs ------------------------------------------------------------


def score_pairs(scorer: Scorer, pairs: Sequence[LabelPair]) -> list[float]:
    return [scorer.score(p.left.features(), p.right.features()).match_probability for p in pairs]


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def wilson_lower(successes: int, n: int, z: float) -> float:
    """Wilson score lower bound of a proportion (the point estimate when ``z`` is 0)."""
    if n == 0:
        return 0.0
    p = successes / n
    if z <= 0:
        return p
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return (centre - spread) / (1 + z2 / n)


def choose_thresholds(
    scores: Sequence[float],
    is_match: Sequence[bool],
    target_precision: float = TARGET_PRECISION,
    lower_recall: float = LOWER_RECALL,
    *,
    z: float = 0.0,
    fallback_upper: float | None = None,
    lower_floor: Callable[[float], float] | None = None,
) -> dict[str, Any]:
    """Upper and lower thresholds from labelled scores (see the module doc).

    ``z`` > 0 asks the upper cut's Wilson lower bound of precision (not just its point
    estimate) to reach the target; when no cut qualifies, ``fallback_upper`` (the active
    model's) is kept rather than guessed. ``lower_floor(upper)``, when given, is the
    lowest lower threshold that keeps the review load within budget.
    """
    ranked = sorted(zip(scores, is_match), key=lambda t: -t[0])
    matches = sum(is_match)
    non_matches = len(ranked) - matches
    if not ranked:
        upper = 1.0 if fallback_upper is None else fallback_upper
        return {"upper": upper, "lower": upper, "basis": "no labels: the active model's upper, nothing else decided"}
    # precision of score >= t at each distinct score, highest first
    cuts: list[tuple[float, int, int]] = []  # (t, tp, n)
    tp = fp = 0
    i = 0
    while i < len(ranked):
        t = ranked[i][0]
        while i < len(ranked) and ranked[i][0] == t:
            tp += ranked[i][1]
            fp += not ranked[i][1]
            i += 1
        cuts.append((t, tp, tp + fp))
    upper = None
    for t, tp_t, n_t in cuts:  # descending t: stop at the first cut whose precision fails
        if tp_t / n_t < target_precision:
            break
        if wilson_lower(tp_t, n_t, z) >= target_precision:
            upper = t
    confidence = f" (Wilson lower bound, z={z:g})" if z > 0 else ""
    if upper is not None:
        upper_basis = f"lowest score whose every higher cut has precision >= {target_precision}{confidence}"
    elif fallback_upper is not None:
        rejected_above = [s for s, m in ranked if not m and s >= fallback_upper]
        if all(tp_t / n_t >= target_precision for t, tp_t, n_t in cuts if t >= fallback_upper):
            upper = fallback_upper
            upper_basis = f"no cut reaches precision {target_precision}{confidence}: the active model's upper threshold"
        else:
            upper = min(1.0, math.nextafter(max(rejected_above), math.inf))
            upper_basis = (
                f"no cut reaches precision {target_precision}{confidence} and the active model's upper does not either: "
                "just above the highest-scored rejected pair"
            )
    else:
        top_rejected = max(s for s, m in ranked if not m)
        upper = min(1.0, math.nextafter(top_rejected, math.inf))
        upper_basis = f"no cut reaches precision {target_precision}: just above the highest-scored rejected pair"
    match_scores = sorted((s for s, m in ranked if m), reverse=True)
    if match_scores:
        keep = max(1, math.ceil(lower_recall * len(match_scores)))
        lower = match_scores[keep - 1]
        lower_basis = f"highest score keeping {lower_recall:.0%} of confirmed pairs at or above it"
    else:
        lower = upper
        lower_basis = "no confirmed pairs: lower = upper"
    if lower_floor is not None:
        floor = lower_floor(upper)
        if floor > lower:
            lower = floor
            lower_basis = "review load capped at the active model's (estimated on candidate pairs of the contact table)"
    lower = min(lower, upper)
    return {
        "upper": upper,
        "lower": lower,
        "target_precision": target_precision,
        "lower_recall": lower_recall,
        "confidence_z": z,
        "basis": {"upper": upper_basis, "lower": lower_basis},
        **decision_metrics(scores, is_match, upper, lower),
        "labels": {"pairs": len(ranked), "confirmed": matches, "rejected": non_matches},
    }


def decision_metrics(scores: Sequence[float], is_match: Sequence[bool], upper: float, lower: float) -> dict[str, Any]:
    """How thresholds decide labelled pairs: link (>= upper), review, drop (< lower)."""
    matches = sum(is_match)
    non_matches = len(is_match) - matches
    linked_tp = sum(1 for s, m in zip(scores, is_match) if s >= upper and m)
    linked_fp = sum(1 for s, m in zip(scores, is_match) if s >= upper and not m)
    dropped_fn = sum(1 for s, m in zip(scores, is_match) if s < lower and m)
    dropped_tn = sum(1 for s, m in zip(scores, is_match) if s < lower and not m)
    kept_tp = matches - dropped_fn
    kept_fp = non_matches - dropped_tn
    precision = linked_tp / (linked_tp + linked_fp) if linked_tp + linked_fp else 1.0
    recall = linked_tp / matches if matches else 1.0
    kept_precision = kept_tp / (kept_tp + kept_fp) if kept_tp + kept_fp else 1.0
    kept_recall = kept_tp / matches if matches else 1.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "linked": linked_tp + linked_fp,
        "review": len(is_match) - (linked_tp + linked_fp) - (dropped_fn + dropped_tn),
        "dropped": dropped_fn + dropped_tn,
        "false_match_rate": linked_fp / non_matches if non_matches else 0.0,
        "false_non_match_rate": dropped_fn / matches if matches else 0.0,
        "at_lower": {"precision": kept_precision, "recall": kept_recall, "f1": _f1(kept_precision, kept_recall)},
    }


def pr_curve(scores: Sequence[float], is_match: Sequence[bool], points: int = PR_POINTS) -> list[dict[str, float]]:
    """Precision and recall of ``score >= t`` at each distinct score (thinned to ``points``)."""
    ranked = sorted(zip(scores, is_match), key=lambda t: -t[0])
    matches = sum(is_match)
    out = []
    tp = fp = 0
    i = 0
    while i < len(ranked):
        t = ranked[i][0]
        while i < len(ranked) and ranked[i][0] == t:
            tp += ranked[i][1]
            fp += not ranked[i][1]
            i += 1
        out.append({"threshold": t, "precision": tp / (tp + fp), "recall": tp / matches if matches else 1.0})
    if len(out) > points:
        step = len(out) / points
        out = [out[int(k * step)] for k in range(points)] + [out[-1]]
    return out


def ranking_metrics(weights: Sequence[float], is_match: Sequence[bool]) -> dict[str, float | None]:
    """Threshold-free: average precision and ROC AUC of the match weight over labelled
    pairs (ties share their rank). None when a class is absent."""
    matches = sum(is_match)
    if matches == 0 or matches == len(is_match):
        return {"average_precision": None, "roc_auc": None}
    ranked = sorted(zip(weights, is_match), key=lambda t: -t[0])
    ap = 0.0
    tp = seen = 0
    i = 0
    while i < len(ranked):  # a group of tied weights enters at once
        j = i
        group_tp = 0
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            group_tp += ranked[j][1]
            j += 1
        tp += group_tp
        seen += j - i
        ap += group_tp / matches * (tp / seen)
        i = j
    # AUC by ranks (Mann-Whitney), ascending, midranks for ties
    ascending = sorted(zip(weights, is_match), key=lambda t: t[0])
    rank_sum = 0.0
    i = 0
    while i < len(ascending):
        j = i
        while j < len(ascending) and ascending[j][0] == ascending[i][0]:
            j += 1
        midrank = (i + 1 + j) / 2
        rank_sum += midrank * sum(1 for k in range(i, j) if ascending[k][1])
        i = j
    non_matches = len(is_match) - matches
    auc = (rank_sum - matches * (matches + 1) / 2) / (matches * non_matches)
    return {"average_precision": ap, "roc_auc": auc}


# --- the active model ------------------------------------------------------------------


@dataclass
class ModelRef:
    version: str
    path: Path
    upper: float
    lower: float


def active_reference(store: Any, settings: Settings) -> ModelRef:
    """The registry's active version, else the configured default model and thresholds."""
    from ..store.models import active_model

    try:
        record = active_model(store)
    except Exception:  # noqa: BLE001 - no registry table yet: the configured default
        record = None
    if record is not None:
        path = Path(record.path)
        path = path if path.is_absolute() else PROJECT_ROOT / path
        if path.is_dir():
            path = path / MODEL_FILE
        upper = record.upper_threshold if record.upper_threshold is not None else settings.upper_threshold
        lower = record.lower_threshold if record.lower_threshold is not None else settings.lower_threshold
        return ModelRef(record.version, path, upper, lower)
    path = Path(settings.model_path)
    return ModelRef(path.name[: -len(".json")] if path.name.endswith(".json") else path.stem, path, settings.upper_threshold, settings.lower_threshold)


def stored_path(path: Path) -> str:
    """Relative to the project when inside it (as the registry records paths), else absolute."""
    path = path.resolve()
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


# --- pending merges ---------------------------------------------------------------------


def pending_pairs(store: Any) -> tuple[list[tuple[dict, dict]], int]:
    """Feature records of each pending scored pair; also how many pending items have no
    scored pair (guard items, decided by people whatever the model says)."""
    from ..store.reviews import pending_pair_records

    rows = pending_pair_records(store)
    pairs = [(features(r[0], r[1], r[2]), features(r[3], r[4], r[5])) for r in rows if r[6] is not None]
    return pairs, len(rows) - len(pairs)


def pending_decisions(scorer: Scorer, pairs: Sequence[tuple[dict, dict]], upper: float, lower: float) -> dict[str, int]:
    link = drop = 0
    for fa, fb in pairs:
        p = scorer.score(fa, fb).match_probability
        link += p >= upper
        drop += p < lower
    return {"link": link, "drop": drop, "review": len(pairs) - link - drop, "scored_pending": len(pairs)}


# --- the contact table: live groups, candidate pairs, review load -----------------------


def live_rows(database_url: str, default_region: str = "US") -> tuple[list[base_train.Row], int]:
    """De-duplicated live contacts, each with its LIVE GROUP (``COALESCE(linkedId, id)``)
    as its cluster: the service's own grouping (exact links, confident probabilistic
    links, confirmed reviews; rejected pairs are kept apart by cannot-link). Never the
    stream's truth: the table has none."""
    from ..store.exports import live_contacts_with_group

    raw = [(email, phone, name, f"group{group}") for email, phone, name, group in live_contacts_with_group(database_url)]
    return base_train._dedupe(raw, default_region)


def clusters_of(rows: Sequence[base_train.Row], proxy: str) -> list[str]:
    """Person proxy for u, TF tables and the prior: ``live`` groups, or ``exact`` (records
    sharing an exact email or phone, :func:`reconcile.training.train.proxy_clusters`)."""
    if proxy == "live":
        return [r.person or f"row{i}" for i, r in enumerate(rows)]
    if proxy == "exact":
        return base_train.proxy_clusters(list(rows))
    raise ValueError(f"proxy must be one of {PROXIES}")


def candidate_pairs(rows: Sequence[base_train.Row], per_key: int, max_pairs: int = LOAD_MAX_PAIRS) -> list[tuple[dict, dict]]:
    """Pairs of records of DIFFERENT live groups sharing a blocking key, at most
    ``per_key`` partners per record and key (as candidate retrieval caps them): the kind
    of pair the probabilistic stage scores. Deterministically thinned to ``max_pairs``."""
    feats = [features(r.email, r.phone, r.name) for r in rows]
    buckets: dict[tuple[str, str], list[int]] = {}
    for i, f in enumerate(feats):
        for key in model_spec.BLOCKING_KEYS:
            if f.get(key):
                buckets.setdefault((key, f[key]), []).append(i)
    seen: set[tuple[int, int]] = set()
    for members in buckets.values():
        for pos, i in enumerate(members):
            partners = [j for j in members[max(0, pos - per_key) : pos] if rows[j].person != rows[i].person]
            seen.update((j, i) for j in partners)
    ordered = sorted(seen)
    if len(ordered) > max_pairs:
        step = len(ordered) / max_pairs
        ordered = [ordered[int(k * step)] for k in range(max_pairs)]
    return [(feats[i], feats[j]) for i, j in ordered]


def review_load(probabilities: Sequence[float], upper: float, lower: float) -> int:
    return sum(1 for p in probabilities if lower <= p < upper)


def load_floor(candidate_probabilities: Sequence[float], budget: int) -> Callable[[float], float]:
    """``upper -> the lowest lower threshold`` whose review load (candidate pairs scored
    in ``[lower, upper)``) is at most ``budget``."""
    ranked = sorted(candidate_probabilities, reverse=True)

    def floor(upper: float) -> float:
        inside = [p for p in ranked if p < upper]
        if len(inside) <= budget:
            return 0.0
        # the (budget+1)-th highest below upper must fall out: just above it
        return math.nextafter(inside[budget], math.inf)

    return floor


# --- progress ---------------------------------------------------------------------------


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


# --- training -----------------------------------------------------------------------------


@dataclass
class Result:
    version: str
    directory: Path
    summary: dict[str, Any]
    thresholds: dict[str, Any]
    evaluation: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    registered: bool = False


def _levels(settings: dict) -> Iterator[tuple[int, int, dict]]:
    for ci, comparison in enumerate(settings["comparisons"]):
        for li, level in enumerate(comparison["comparison_levels"]):
            if not level.get("is_null_level"):
                yield ci, li, level


def _m_from_labels(
    con: Any, settings: dict, tf_tables: dict, confirmed: Sequence[LabelPair]
) -> tuple[dict[tuple[int, int], float], list[int]]:
    """Splink's ``estimate_m_from_pairwise_labels`` over the confirmed pairs' records;
    also, per comparison, how many pairs had it non-null."""
    from splink import DuckDBAPI, Linker

    records = []
    for p in confirmed:
        for side in (p.left, p.right):
            records.append({"unique_id": len(records), "person": None, **side.features()})
    schema = pa.schema([("unique_id", pa.int64()), ("person", pa.string())] + [(c, pa.string()) for c in base_train.COLUMNS])
    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register(pa.Table.from_pylist(records, schema=schema))
    linker = Linker(sdf, settings, log_level=logging.WARNING)
    base_train.register_tf_tables(linker, db_api, tf_tables)
    pairs_table = pa.table(
        {
            "unique_id_l": pa.array(range(0, len(records), 2), pa.int64()),
            "unique_id_r": pa.array(range(1, len(records), 2), pa.int64()),
        }
    )
    labels_sdf = db_api.register(pairs_table)
    linker.training.estimate_m_from_pairwise_labels(labels_sdf)
    trained = linker._settings_obj.as_dict()
    m = {(ci, li): level["m_probability"] for ci, li, level in _levels(trained) if "m_probability" in level}
    non_null = []
    for comparison in settings["comparisons"]:
        nulls = [compile_condition(lv["sql_condition"]) for lv in comparison["comparison_levels"] if lv.get("is_null_level")]
        count = 0
        for k in range(0, len(records), 2):
            a, b = records[k], records[k + 1]
            if not any(cond(a, b, {}) for cond in nulls):
                count += 1
        non_null.append(count)
    return m, non_null


def _m_from_em(con: Any, settings: dict, rows: list, tf_tables: dict) -> dict[tuple[int, int], float]:
    """EM (u fixed) over the contact table, as :func:`reconcile.training.train.train` does."""
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register(base_train.feature_table(rows))
    linker = Linker(sdf, settings, log_level=logging.WARNING)
    base_train.register_tf_tables(linker, db_api, tf_tables)
    for rule in model_spec.em_blocking_rules():
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    trained = linker._settings_obj.as_dict()
    return {(ci, li): level["m_probability"] for ci, li, level in _levels(trained) if "m_probability" in level}


def combine_m(
    settings: dict,
    m_em: dict[tuple[int, int], float] | None,
    m_labels: dict[tuple[int, int], float] | None,
    non_null: Sequence[int] | None,
    pseudo_pairs: float = EM_PSEUDO_PAIRS,
) -> dict[str, Any]:
    """Write each level's m into ``settings`` (see the module doc); returns per-level sources."""
    detail = []
    for ci, comparison in enumerate(settings["comparisons"]):
        levels = [(li, lv) for li, lv in enumerate(comparison["comparison_levels"]) if not lv.get("is_null_level")]
        n = non_null[ci] if (m_labels is not None and non_null is not None) else 0
        values = {}
        for li, _ in levels:
            em = m_em.get((ci, li)) if m_em is not None else None
            lab = m_labels.get((ci, li), 0.0) if m_labels is not None else None
            if m_em is None:
                values[li] = lab if lab else None
            elif m_labels is None or n == 0:
                values[li] = em
            else:
                values[li] = (n * lab + pseudo_pairs * (em or 0.0)) / (n + pseudo_pairs)
        total = sum(v for v in values.values() if v)
        for li, level in levels:
            v = values[li]
            if v:
                level["m_probability"] = v / total if total else v
            level["fix_m_probability"] = False
            detail.append(
                {
                    "comparison": comparison["output_column_name"],
                    "level": level.get("label_for_charts"),
                    "m_em": m_em.get((ci, li)) if m_em is not None else None,
                    "m_labels": m_labels.get((ci, li), 0.0) if m_labels is not None else None,
                    "labelled_pairs": n,
                    "m": level.get("m_probability"),
                }
            )
    return {"levels": detail, "em_pseudo_pairs": pseudo_pairs}


def train_from_labels(
    store: Any,
    settings: Settings,
    models_dir: Path,
    version: str | None = None,
    *,
    target_precision: float = TARGET_PRECISION,
    m_source: str = "warm",
    proxy: str = "live",
    confidence_z: float = CONFIDENCE_Z,
    register: bool = True,
    progress: bool = False,
    heldout_fraction: float = HELDOUT_FRACTION,
    log: Callable[[str], None] = lambda message: None,
) -> Result:
    """Train, evaluate and write ``models_dir/<version>/``; register unless told not to."""
    if m_source not in M_SOURCES:
        raise ValueError(f"m_source must be one of {M_SOURCES}")
    if proxy not in PROXIES:
        raise ValueError(f"proxy must be one of {PROXIES}")
    if not 0 < target_precision <= 1:
        raise ValueError("target precision must be in (0, 1]")
    started = time.perf_counter()
    version = version or "labels-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    if not version or len(version) > 64 or "/" in version or version.startswith("."):
        raise TrainingError(f"bad version {version!r}: 1 to 64 characters, no '/'")
    directory = Path(models_dir) / version
    if directory.exists():
        raise TrainingError(f"{directory} exists already: choose another --version")
    notes: list[str] = []
    warm = m_source == "warm"
    steps = Steps(STEPS_FIRST + (STEPS_WARM if warm else STEPS_SCRATCH) + STEPS_LAST, progress)
    with _quiet_splink(), steps.run():
        with steps.step(STEPS_FIRST[0]):
            pairs, skipped = load_labels(store, settings.default_region)
            training, heldout = split(pairs, heldout_fraction)
            confirmed = [p for p in training if p.is_match]
            rows, invalid = live_rows(settings.database_url, settings.default_region)
            if len(rows) < 3:
                raise TrainingError(f"the contact table has {len(rows)} distinct valid records: too few to train on")
            if skipped:
                notes.append(f"{len(skipped)} label(s) skipped: " + "; ".join(skipped[:5]))
            active = active_reference(store, settings)
            try:
                active_scorer: Scorer | None = Scorer.load(active.path)
            except Exception as exc:  # noqa: BLE001 - reported; warm start cannot run without it
                active_scorer = None
                active_error = f"cannot load {active.path}: {exc}"
                if warm:
                    raise TrainingError(f"warm start needs the active model: {active_error}") from None
        clusters = clusters_of(rows, proxy)
        if warm:
            model, tf_tables, parameters = _warm_parameters(steps, active, active_scorer, training)
        else:
            model, tf_tables, parameters = _scratch_parameters(steps, rows, clusters, confirmed, m_source, notes)

        with steps.step(STEPS_LAST[0]):
            filled_m = base_train.fill_unobserved_m(model)
            model["linker_uid"] = None
            directory.mkdir(parents=True)
            model_path = directory / MODEL_FILE
            model_path.write_text(json.dumps(model, indent=2) + "\n")
            tf_path_for(model_path).write_text(json.dumps(tf_tables, sort_keys=True, separators=(",", ":")) + "\n")
            candidate = Scorer.load(model_path)

        with steps.step(STEPS_LAST[1]):
            threshold_pairs = [p for p in training if p.kind != "guard"]
            basis = "training labels of scored and imported pairs"
            if not threshold_pairs:
                threshold_pairs, basis = training, "all training labels (no scored pairs)"
            train_scores = score_pairs(candidate, threshold_pairs)
            # the review load of each model on candidate pairs of the contact table
            pairs_for_load = candidate_pairs(rows, settings.candidates_per_key)
            candidate_probs = [candidate.score(a, b).match_probability for a, b in pairs_for_load]
            floor = None
            budget = None
            if active_scorer is not None:
                active_probs = [active_scorer.score(a, b).match_probability for a, b in pairs_for_load]
                budget = review_load(active_probs, active.upper, active.lower)
                floor = load_floor(candidate_probs, budget)
            thresholds = choose_thresholds(
                train_scores, [p.is_match for p in threshold_pairs], target_precision,
                z=confidence_z, fallback_upper=active.upper if active_scorer is not None else None, lower_floor=floor,
            )
            thresholds["labels_used"] = basis
            thresholds["review_load"] = {
                "candidate_pairs": len(pairs_for_load),
                "active": budget,
                "candidate": review_load(candidate_probs, thresholds["upper"], thresholds["lower"]),
                "basis": "pairs of different live groups sharing a blocking key, scored in [lower, upper)",
            }
            if not threshold_pairs:
                notes.append("no training labels: thresholds of the active model")
            all_train = score_pairs(candidate, training)
            thresholds["all_training_labels"] = decision_metrics(
                all_train, [p.is_match for p in training], thresholds["upper"], thresholds["lower"]
            )
            (directory / "thresholds.json").write_text(
                json.dumps({"upper": thresholds["upper"], "lower": thresholds["lower"], **thresholds}, indent=2) + "\n"
            )

        with steps.step(STEPS_LAST[2]):
            evaluation: dict[str, Any] = {"heldout_labels": _label_counts(heldout)}
            truth = [p.is_match for p in heldout]
            curves: dict[str, list] = {}
            markers: dict[str, dict] = {}
            blocks = {}
            for name, ref, scorer in (
                ("candidate", ModelRef(version, model_path, thresholds["upper"], thresholds["lower"]), candidate),
                ("active", active, active_scorer),
            ):
                block: dict[str, Any] = {"version": ref.version, "model": stored_path(ref.path), "upper": ref.upper, "lower": ref.lower}
                if scorer is None:
                    block["error"] = active_error
                    blocks[name] = (block, None)
                    continue
                results = [scorer.score(p.left.features(), p.right.features()) for p in heldout]
                scores = [r.match_probability for r in results]
                block.update(decision_metrics(scores, truth, ref.upper, ref.lower))
                block.update(ranking_metrics([r.match_weight for r in results], truth))
                block["pr_curve"] = pr_curve(scores, truth)
                curves[f"{name} ({ref.version})"] = block["pr_curve"]
                markers[f"{name} ({ref.version})"] = {"precision": block["precision"], "recall": block["recall"]}
                blocks[name] = (block, scorer)
            if len(heldout) == 0:
                notes.append("no held-out labels: the evaluation has nothing to measure")

        with steps.step(STEPS_LAST[3]):
            pending, unscored = pending_pairs(store)
            for name, (block, scorer) in blocks.items():
                if scorer is not None:
                    block["pending_merges"] = {**pending_decisions(scorer, pending, block["upper"], block["lower"]), "unscored_pending": unscored}
                evaluation[name] = block

        with steps.step(STEPS_LAST[4]):
            (directory / "pr_curve.svg").write_text(
                charts.pr_curve_svg(curves, markers, title=f"Held-out labels ({len(heldout)} pairs): precision-recall")
            )
            (directory / "match_weights.svg").write_text(charts.match_weights_svg(model, title=f"Match weights: {version}"))

    summary = {
        "version": version,
        "trained_at": datetime.now(timezone.utc).isoformat(),
        "database": _redact(settings.database_url),
        "labels": {
            "total": len(pairs),
            "skipped": len(skipped),
            "training": _label_counts(training),
            "heldout": _label_counts(heldout),
            "heldout_fraction": heldout_fraction,
            "split": "sha256 of the normalised pair (sides in canonical order)",
        },
        "contacts": {"distinct_records": len(rows), "invalid_or_empty": invalid, "proxy": proxy, "proxy_clusters": len(set(clusters))},
        "parameters": {
            "m_source_requested": m_source,
            "active": {"version": active.version, "model": stored_path(active.path)},
            "target_precision": target_precision,
            "confidence_z": confidence_z,
            "lower_recall": LOWER_RECALL,
            "probability_two_random_records_match": model["probability_two_random_records_match"],
            **parameters,
            "m_filled_unobserved": filled_m,
            "levels": base_train._parameter_summary(model),
        },
        "thresholds": {k: thresholds[k] for k in ("upper", "lower", "false_match_rate", "false_non_match_rate", "basis", "review_load")},
        "notes": notes,
        "seconds": {**steps.timings, "total": round(time.perf_counter() - started, 3)},
    }
    (directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (directory / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n")
    result = Result(version, directory, summary, thresholds, evaluation, notes)
    if register:
        from ..store.models import register_model

        register_model(
            store,
            version,
            stored_path(model_path),
            metrics=evaluation,
            upper_threshold=thresholds["upper"],
            lower_threshold=thresholds["lower"],
        )
        result.registered = True
    return result


def _warm_parameters(
    steps: Steps, active: ModelRef, active_scorer: Scorer, training: Sequence[LabelPair]
) -> tuple[dict, dict, dict[str, Any]]:
    """The active model's settings and TF tables with m and the prior fitted to the
    training labels (:mod:`reconcile.training.warm_start`)."""
    with steps.step(STEPS_WARM[0]):
        settings = json.loads(Path(active.path).read_text())
        tf_path = tf_path_for(active.path)
        tf_tables = json.loads(tf_path.read_text()) if tf_path.exists() else {}
        m = warm_start.level_m(settings)
        items = [warm_start.pair_levels(active_scorer, p.left.features(), p.right.features()) for p in training]
        truth = [p.is_match for p in training]
    with steps.step(STEPS_WARM[1]):
        if training:
            strength, cv = warm_start.choose_strength(m, items, truth, [p.split_key() for p in training])
        else:
            strength, cv = warm_start.DEFAULT_STRENGTH, {"basis": "no training labels"}
        fitted = warm_start.fit(m, items, truth, strength)
        model = warm_start.apply(settings, fitted)
    shifts = [
        {"comparison": c["output_column_name"], "level": lv.get("label_for_charts"), "bits": a}
        for c, aj in zip(settings["comparisons"], fitted.shifts)
        for lv, a in zip([lv for lv in c["comparison_levels"] if not lv.get("is_null_level")], aj)
    ]
    return model, tf_tables, {
        "method": "warm start: the active model's u and TF tables; m and prior fitted to the training labels",
        "strength": strength,
        "strength_choice": cv,
        "prior_shift_bits": fitted.prior_shift,
        "m_shifts_bits": shifts,
        "fit_iterations": fitted.iterations,
        "training_log_likelihood": {
            "active": warm_start.log_likelihood(items, truth, [[0.0] * len(mj) for mj in m], 0.0),
            "candidate_penalised": fitted.objective,
        },
    }


def _scratch_parameters(
    steps: Steps, rows: list, clusters: list[str], confirmed: Sequence[LabelPair], m_source: str, notes: list[str]
) -> tuple[dict, dict, dict[str, Any]]:
    """u by sampling over one record per proxy cluster, exact-level u and TF tables from
    value frequencies, m from EM and/or the confirmed pairs (the module doc, 2-3)."""
    use_labels = m_source in ("labels+em", "labels")
    if use_labels and len(confirmed) < MIN_CONFIRMED:
        notes.append(
            f"only {len(confirmed)} confirmed training pair(s) (< {MIN_CONFIRMED}): too few to estimate m "
            "from labels; m comes from EM over the contact table instead"
        )
        use_labels = False
    use_em = m_source in ("labels+em", "em") or not use_labels
    with steps.step(STEPS_SCRATCH[0]):
        feats = [base_train.features(r.email, r.phone, r.name) for r in rows]
        exact_u: dict[str, float] = {}
        tf_tables: dict[str, dict[str, float]] = {}
        diagnostics: dict[str, Any] = {}
        for column in model_spec.TF_COLUMNS:
            identifier = column in model_spec.IDENTIFIER_COLUMNS
            exact_u[column], tf_tables[column], diagnostics[column] = base_train.value_frequencies(
                feats, clusters, column, identifier
            )
        prior = base_train.prior_from_clusters(clusters)
        con = base_train.connect()
        base = model_spec.settings_creator(prior).get_settings("duckdb").as_dict()
        first_of: dict[str, int] = {}
        for i, c in enumerate(clusters):
            first_of.setdefault(c, i)
        trained_u, u_pairs = base_train._estimate_u(con, base_train.feature_table(rows, sorted(first_of.values())), base)
        model, filled_u = base_train.fixed_u_settings(base, trained_u, exact_u, u_pairs)
    with steps.step(STEPS_SCRATCH[1]):
        m_em = _m_from_em(con, model, rows, tf_tables) if use_em else None
    with steps.step(STEPS_SCRATCH[2]):
        m_labels, non_null = _m_from_labels(con, model, tf_tables, confirmed) if use_labels else (None, None)
    con.close()
    m_detail = combine_m(model, m_em, m_labels, non_null)
    model["probability_two_random_records_match"] = prior
    return model, tf_tables, {
        "method": "from scratch: u by sampling, m from " + ("labels and EM" if use_labels and use_em else "labels" if use_labels else "EM"),
        "m_from_labels": use_labels,
        "m_from_em": use_em,
        "min_confirmed": MIN_CONFIRMED,
        "em_pseudo_pairs": EM_PSEUDO_PAIRS,
        "u_sampling_pairs": u_pairs,
        "exact_levels": diagnostics,
        "u_filled_by_rule_of_three": filled_u,
        "m_combination": m_detail,
    }


@contextmanager
def _quiet_splink() -> Iterator[None]:
    """Splink logs every sampling chunk and EM iteration at INFO (and each Linker resets
    its logger's level); training reports through its own summary, so INFO and below
    are off while it runs, and restored after."""
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.INFO))
    try:
        yield
    finally:
        logging.disable(previous)


def _label_counts(pairs: Sequence[LabelPair]) -> dict[str, Any]:
    kinds: dict[str, int] = {}
    for p in pairs:
        kinds[p.kind] = kinds.get(p.kind, 0) + 1
    confirmed = sum(p.is_match for p in pairs)
    return {"pairs": len(pairs), "confirmed": confirmed, "rejected": len(pairs) - confirmed, "by_kind": kinds}


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
