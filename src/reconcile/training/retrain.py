"""``reconcile train --from-labels``: a new model version from reviewers' decisions.

Recipe (the parameters; see ../shared/SPLINK5-NOTES.md pitfall 1 and
:mod:`reconcile.training.train`, whose functions this reuses):

1. Labels from the store as pairs of records (:mod:`reconcile.review.labels`), split
   deterministically into training (~75%) and held-out (~25%) parts. Contacts from the
   live table, each with its live group (``COALESCE(linkedId, id)``): the person proxy
   (``proxy="live"``; ``"exact"`` is the older shared-email/phone union).
2. ``m_source="weighted"`` (default): as ``warm`` below, but every training label,
   confirmed or rejected, counts ``1 / inclusion probability`` times (an audit item
   drawn with chance 1/50 stands for 50 pairs; the band's items for one each) and the
   prior on each level is a Beta centred on the active model with a pseudo-count
   (:mod:`reconcile.training.weighted`); the thresholds are then chosen on the weighted
   HELD-OUT labels (the Wilson bound at Kish's effective size), which the fit never saw.
   ``m_source="warm"``: the ACTIVE model's settings, u and TF tables, with m
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
   together with the confirmed ones (:func:`reconcile.training.thresholds.choose_thresholds`), on the training
   labels of scored pairs (guard items are held by guards whatever their score):

   * upper: the lowest score ``t`` such that precision of ``score >= t'`` is at least
     the target for EVERY ``t' >= t`` (a plain "lowest t with precision >= target"
     can sit in a lucky dip with few labels) AND the one-sided 95% Wilson lower bound
     of precision at ``t`` reaches the target (``CONFIDENCE_Z``); when no cut
     qualifies, the active model's upper (labels too few to justify another), or just
     above the highest-scored rejected pair when the labels contradict that one too;
   * lower: the highest score that keeps ``LOWER_RECALL`` (99%) of the confirmed pairs
     at or above it, raised if needed so that the review load stays within the active
     model's: the items the contact table's records would have opened, arriving in
     order, each scored against earlier records sharing a blocking key outside its exact
     group (:mod:`reconcile.training.review_load`); never above upper: when guard-held
     pairs alone exceed the budget, upper and lower rise together. The budget, the
     natural lower cut and the loads are in ``thresholds.json`` and as
     ``review_budget`` in ``evaluation.json``;
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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..config import PROJECT_ROOT, Settings
from ..review.labels import HELDOUT_FRACTION, LabelPair, load_labels, split
from ..scoring import model_spec
from ..scoring.documents import MODEL_FILE
from ..scoring.scorer import Scorer, tf_path_for
from . import charts, warm_start, weighted
from . import train as base_train
from .label_metrics import decision_metrics, paired_f1_difference, pr_curve, ranking_metrics, score_pairs
from .m_estimation import EM_PSEUDO_PAIRS, combine_m, m_from_em, m_from_labels
from .progress import STEPS_FIRST, STEPS_LAST, STEPS_SCRATCH, STEPS_WARM, Steps, library_messages
from .review_load import (
    PROXIES,
    candidate_pairs,
    clusters_of,
    live_rows,
    load_floor,
    pending_decisions,
    pending_pairs,
    review_load,
)
from .thresholds import CONFIDENCE_Z, LOWER_RECALL, TARGET_PRECISION, choose_thresholds

MIN_CONFIRMED = 10
M_SOURCES = ("weighted", "warm", "labels+em", "labels", "em")


class TrainingError(RuntimeError):
    """Training cannot run (no contacts, a version that exists, ...)."""


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


def train_from_labels(
    store: Any,
    settings: Settings,
    models_dir: Path,
    version: str | None = None,
    *,
    target_precision: float = TARGET_PRECISION,
    m_source: str = "weighted",
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
    warm = m_source in ("warm", "weighted")
    steps = Steps(STEPS_FIRST + (STEPS_WARM if warm else STEPS_SCRATCH) + STEPS_LAST, progress)
    with library_messages(), steps.run():
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
        if m_source == "weighted":
            model, tf_tables, parameters = _weighted_parameters(steps, active, active_scorer, training)
        elif warm:
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
            if m_source == "weighted":
                # m was fitted on the training part; the cut is chosen on pairs it never saw
                threshold_pairs = [p for p in heldout if p.kind != "guard"]
                basis = "held-out labels of scored and imported pairs, weighted by 1 / inclusion probability"
            if not threshold_pairs:
                threshold_pairs, basis = training, "all training labels (no scored pairs)"
            train_scores = score_pairs(candidate, threshold_pairs)
            # the review items the table's records would have opened under each model
            arrivals = candidate_pairs(rows, settings.candidates_per_key)
            candidate_probs = [candidate.score(a, b).match_probability for a, b in arrivals.pairs]
            floor = None
            budget = None
            if active_scorer is not None:
                active_probs = [active_scorer.score(a, b).match_probability for a, b in arrivals.pairs]
                budget = review_load(arrivals, active_probs, active.upper, active.lower)
                floor = load_floor(arrivals, candidate_probs, budget)
            label_weights = [p.weight for p in threshold_pairs] if m_source == "weighted" else None
            floor_precision = None
            if label_weights is not None and active_scorer is not None:
                # the active model's precision on the same labels: the candidate is not held
                # to the active's cut (its scores moved) but must link at least as precisely
                floor_precision = decision_metrics(
                    score_pairs(active_scorer, threshold_pairs), [p.is_match for p in threshold_pairs],
                    active.upper, active.lower, label_weights,
                )["precision"]
            thresholds = choose_thresholds(
                train_scores, [p.is_match for p in threshold_pairs], target_precision,
                z=confidence_z, fallback_upper=active.upper if active_scorer is not None else None, lower_floor=floor,
                weights=label_weights, floor_precision=floor_precision,
            )
            thresholds["labels_used"] = basis
            natural = review_load(arrivals, candidate_probs, thresholds["natural_upper"], thresholds["natural_lower"])
            chosen = review_load(arrivals, candidate_probs, thresholds["upper"], thresholds["lower"])
            thresholds["review_load"] = {
                "records": arrivals.records,
                "scored_pairs": len(arrivals.pairs),
                "budget": budget,
                "budget_source": None if budget is None else f"the active model's ({active.version}) load on the same records",
                "candidate_at_natural_thresholds": natural,
                "candidate": chosen,
                # a guard-held pair scored at or above upper is an item at any lower <= upper
                "within_budget": None if budget is None else chosen <= budget,
                "lower_raised_from": thresholds["natural_lower"] if thresholds["lower"] > thresholds["natural_lower"] else None,
                "upper_raised_from": thresholds["natural_upper"] if thresholds["upper"] > thresholds["natural_upper"] else None,
                "per_1000_records": {"budget": _per_1000(budget, arrivals.records), "candidate": _per_1000(chosen, arrivals.records)},
                "basis": "each live record against the earlier records sharing a blocking key outside its exact group, in table "
                "order: items where a group scores in [lower, upper), or a guard-held pair scores at or above lower",
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
            # weighted: each held-out label counts as the pairs it stands for (1 / inclusion probability)
            heldout_weights = [p.weight for p in heldout] if m_source == "weighted" else None
            if heldout_weights is not None:
                evaluation["weighted"] = "each label counts 1 / its inclusion probability (audit items stand for the links and close non-links they were drawn from)"
            curves: dict[str, list] = {}
            markers: dict[str, dict] = {}
            blocks = {}
            decided: dict[str, tuple[list[float], float]] = {}
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
                decided[name] = (scores, ref.upper)
                block.update(decision_metrics(scores, truth, ref.upper, ref.lower, heldout_weights))
                block.update(ranking_metrics([r.match_weight for r in results], truth))
                block["pr_curve"] = pr_curve(scores, truth)
                curves[f"{name} ({ref.version})"] = block["pr_curve"]
                if block["precision"] is not None and block["recall"] is not None:
                    markers[f"{name} ({ref.version})"] = {"precision": block["precision"], "recall": block["recall"]}
                blocks[name] = (block, scorer)
            if len(decided) == 2:
                # what the activation gate reads: the F1 difference with its paired interval
                evaluation["comparison"] = {
                    "candidate": version,
                    "active": active.version,
                    "f1_difference": paired_f1_difference(decided["candidate"], decided["active"], truth, heldout_weights),
                }
            if len(heldout) == 0:
                notes.append("no held-out labels: the evaluation has nothing to measure")
            elif len(heldout) < settings.min_heldout_pairs:
                notes.append(
                    f"{len(heldout)} held-out label(s), fewer than RECONCILE_MIN_HELDOUT_PAIRS "
                    f"({settings.min_heldout_pairs}): activation will be refused without --force"
                )

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
        "thresholds": {
            k: thresholds[k] for k in ("upper", "lower", "natural_upper", "natural_lower", "false_match_rate", "false_non_match_rate", "basis", "review_load")
        },
        "notes": notes,
        "seconds": {**steps.timings, "total": round(time.perf_counter() - started, 3)},
    }
    (directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    evaluation["review_budget"] = thresholds["review_load"]
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


def _weighted_parameters(
    steps: Steps, active: ModelRef, active_scorer: Scorer, training: Sequence[LabelPair]
) -> tuple[dict, dict, dict[str, Any]]:
    """The active model's settings, u and TF tables, with m and the prior updated by
    every training label weighted by 1 / its inclusion probability, under a Beta prior
    centred on the active model (:mod:`reconcile.training.weighted`)."""
    with steps.step(STEPS_WARM[0]):
        settings = json.loads(Path(active.path).read_text())
        tf_path = tf_path_for(active.path)
        tf_tables = json.loads(tf_path.read_text()) if tf_path.exists() else {}
        m = warm_start.level_m(settings)
        items = [warm_start.pair_levels(active_scorer, p.left.features(), p.right.features()) for p in training]
    with steps.step(STEPS_WARM[1]):
        fitted = weighted.fit(m, items, [p.is_match for p in training], [p.weight for p in training])
        model = warm_start.apply(settings, fitted)
    return model, tf_tables, {
        "method": "weighted: the active model's u and TF tables; m and prior updated by every training label "
        "weighted by 1 / inclusion probability, Beta prior centred on the active model",
        "pseudo_pairs": fitted.pseudo_pairs,
        "weighted_labels": sum(p.weight for p in training),
        "prior_shift_bits": fitted.prior_shift,
        "levels": weighted.summary(settings, fitted),
        "fit_iterations": fitted.iterations,
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
        m_em = m_from_em(con, model, rows, tf_tables) if use_em else None
    with steps.step(STEPS_SCRATCH[2]):
        m_labels, non_null = m_from_labels(con, model, tf_tables, confirmed) if use_labels else (None, None)
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


def _per_1000(items: int | None, records: int) -> float | None:
    return None if items is None or not records else round(1000 * items / records, 2)


def _label_counts(pairs: Sequence[LabelPair]) -> dict[str, Any]:
    kinds: dict[str, int] = {}
    for p in pairs:
        kinds[p.kind] = kinds.get(p.kind, 0) + 1
    confirmed = sum(p.is_match for p in pairs)
    return {"pairs": len(pairs), "confirmed": confirmed, "rejected": len(pairs) - confirmed, "by_kind": kinds}


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
