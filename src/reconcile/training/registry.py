"""Model versions as the data or ML owner handles them: register a model made elsewhere,
decide whether a version may go live (:func:`activation_decision`, pure), activate it,
roll back, and register the shipped default when the registry is empty.

The registry itself (a table and its queries) is :mod:`reconcile.store.models`; the
serving side, which picks the active version up in every worker, is
:mod:`reconcile.engine.active_model`.

A model version is either a directory ``models/<version>/`` holding ``model.json``
(Splink settings), ``model.tf.json``, ``thresholds.json`` ``{"upper", "lower"}``,
``evaluation.json`` (held-out metrics, ``{"candidate": {...}, "active": {...}}``) and
charts, or a bare ``<name>.json`` with ``<name>.tf.json`` and optionally
``<name>.metrics.json`` / ``<name>.thresholds.json`` beside it (the shipped default).
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import MIN_HELDOUT_PAIRS_DEFAULT, PROJECT_ROOT, Settings
from ..scoring.documents import MODEL_FILE, resolve_path
from ..store import Store
from ..store import models as registry
from ..store.models import ModelRecord, UnknownModel

log = logging.getLogger(__name__)

#: precision on held-out labels may drop by at most this much (absolute) on activation
PRECISION_TOLERANCE = 0.005
#: non-inferiority margin: the lower end of the paired interval of (candidate F1 - active
#: F1) on the same held-out labels may not fall below minus this
F1_MARGIN = 0.01
#: decided held-out pairs an activation needs by default (RECONCILE_MIN_HELDOUT_PAIRS):
#: below it one pair moves precision or recall by several points, so "not worse" means nothing
MIN_HELDOUT_PAIRS = MIN_HELDOUT_PAIRS_DEFAULT
#: chart files served from a registered model's directory, and nothing else
CHART_FILES = ("pr_curve.svg", "match_weights.svg")


class ActivationRefused(Exception):
    """The policy (or the model's files) do not allow this activation."""

    def __init__(self, message: str, code: str = "activation_refused", decision: "ActivationDecision | None" = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.decision = decision


# --- the policy (pure) ---------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class ActivationDecision:
    """Whether ``candidate`` may replace ``active``, why, and on which numbers."""

    allowed: bool
    forceable: bool
    reason: str
    candidate_scores: Scores | None = None
    active_scores: Scores | None = None
    basis: str | None = None  # where the numbers came from
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        def scores(s: Scores | None) -> dict | None:
            return None if s is None else {"precision": s.precision, "recall": s.recall, "f1": s.f1}

        return {
            "allowed": self.allowed,
            "forceable": self.forceable,
            "reason": self.reason,
            "basis": self.basis,
            "candidate": scores(self.candidate_scores),
            "active": scores(self.active_scores),
        }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _scores(block: Any) -> Scores | None:
    """Precision, recall and F1 from a metrics block; None when any is absent or
    undefined (written as null: not measurable)."""
    if not isinstance(block, dict):
        return None
    precision, recall, f1 = _number(block.get("precision")), _number(block.get("recall")), _number(block.get("f1"))
    if precision is None or recall is None or f1 is None:
        return None
    return Scores(precision, recall, f1)


def own_scores(metrics: dict[str, Any] | None) -> Scores | None:
    """A version's own held-out scores: ``metrics["candidate"]``, else top-level keys."""
    if not isinstance(metrics, dict):
        return None
    return _scores(metrics.get("candidate")) or _scores(metrics)


def _compared_block(metrics: dict[str, Any] | None) -> tuple[dict | None, str | None]:
    """The block of ``metrics`` that scored another version on the same labels, and
    which version that was (None when the block does not say)."""
    if not isinstance(metrics, dict) or not isinstance(metrics.get("active"), dict):
        return None, None
    block = metrics["active"]
    version = block.get("version") or metrics.get("activeVersion")
    return block, version if isinstance(version, str) else None


def _difference_interval(metrics: dict[str, Any] | None, candidate: str, active: str) -> tuple[float, float, float] | None:
    """(difference, lower, upper) of candidate F1 minus active F1 from the paired bootstrap
    an evaluation recorded (``comparison.f1_difference``), turned round when the evaluation
    is the active model's (a rollback); None when there is none for these two versions."""
    comparison = metrics.get("comparison") if isinstance(metrics, dict) else None
    if not isinstance(comparison, dict) or not isinstance(comparison.get("f1_difference"), dict):
        return None
    numbers = [_number(comparison["f1_difference"].get(k)) for k in ("difference", "lower", "upper")]
    if any(x is None for x in numbers):
        return None
    d, lo, hi = numbers  # type: ignore[misc]
    if (comparison.get("candidate"), comparison.get("active")) == (candidate, active):
        return d, lo, hi
    if (comparison.get("candidate"), comparison.get("active")) == (active, candidate):
        return -d, -hi, -lo
    return None


def heldout_pairs(metrics: dict[str, Any] | None) -> int | None:
    """How many decided held-out pairs an evaluation was measured on (None: it does not say)."""
    if not isinstance(metrics, dict):
        return None
    counts = metrics.get("heldout_labels")
    pairs = counts.get("pairs") if isinstance(counts, dict) else None
    if isinstance(pairs, bool) or not isinstance(pairs, int):
        return None
    return pairs


def _unmeasurable(version: str, metrics: dict[str, Any] | None, block: str = "candidate") -> str | None:
    """Why ``version``'s metrics in ``metrics[block]`` (or top level) are not measurable,
    when they say so (a metric written as null: no linked pair, no held-out match)."""
    if not isinstance(metrics, dict):
        return None
    scores = metrics.get(block) if isinstance(metrics.get(block), dict) else metrics
    undefined = [k for k in ("precision", "recall", "f1") if k in scores and scores[k] is None]
    if undefined:
        return f"{version}'s held-out {', '.join(undefined)} not measurable ({scores.get('not_measurable') or 'undefined'})"
    return None


def activation_decision(
    candidate_version: str,
    candidate_metrics: dict[str, Any] | None,
    active_version: str | None,
    active_metrics: dict[str, Any] | None,
    *,
    precision_tolerance: float = PRECISION_TOLERANCE,
    min_heldout_pairs: int = MIN_HELDOUT_PAIRS,
) -> ActivationDecision:
    """May ``candidate_version`` replace ``active_version``? Pure: numbers in, verdict out.

    A candidate is worse when its held-out F1 is lower than the active model's, or its
    precision lower by more than ``precision_tolerance``, or, when the evaluation scored
    both on the same labels with a paired bootstrap of the F1 difference, when the lower
    end of that interval falls below ``-F1_MARGIN``: a non-inferiority test, so a model
    that looks better on a few dozen labels by chance is not taken for one that is. The numbers come, in order of
    preference, from an evaluation that scored both versions on the same held-out labels
    (the ``active`` block of one version's evaluation naming the other version), then
    from each version's own evaluation, then from a candidate's ``active`` block that
    does not name the version it scored (assumed to be the model active at training).

    Numbers that cannot carry the decision refuse too (forceable, saying why): missing
    metrics; a metric that is undefined for either model (no pair linked: precision; no
    held-out match: recall; written as null by the evaluation, never as 1.0); fewer
    than ``min_heldout_pairs`` decided held-out pairs behind the comparison (or an
    evaluation that does not say how many); a candidate that links none of the held-out
    matches (recall 0) is never "not worse".
    """
    if active_version is None:
        return ActivationDecision(True, True, "no model is active: nothing to compare with")
    if candidate_version == active_version:
        return ActivationDecision(True, True, f"{candidate_version} is already active")
    force = "; use --force to activate anyway"

    cand: Scores | None = None
    act: Scores | None = None
    basis = None
    pairs: int | None = None
    interval: tuple[float, float, float] | None = None
    block, named = _compared_block(candidate_metrics)
    if block is not None and named == active_version and own_scores(candidate_metrics) and _scores(block):
        cand, act = own_scores(candidate_metrics), _scores(block)
        basis = f"{candidate_version}'s evaluation, both versions on the same held-out labels"
        pairs = heldout_pairs(candidate_metrics)
        interval = _difference_interval(candidate_metrics, candidate_version, active_version)
    if cand is None:
        block, named = _compared_block(active_metrics)
        if block is not None and named == candidate_version and own_scores(active_metrics) and _scores(block):
            cand, act = _scores(block), own_scores(active_metrics)
            basis = f"{active_version}'s evaluation, both versions on the same held-out labels"
            pairs = heldout_pairs(active_metrics)
            interval = _difference_interval(active_metrics, candidate_version, active_version)
    if cand is None and own_scores(candidate_metrics) and own_scores(active_metrics):
        cand, act = own_scores(candidate_metrics), own_scores(active_metrics)
        basis = "each version's own held-out evaluation (the label sets may differ)"
        counts = [heldout_pairs(candidate_metrics), heldout_pairs(active_metrics)]
        pairs = None if None in counts else min(counts)  # type: ignore[type-var]
    if cand is None:
        block, named = _compared_block(candidate_metrics)
        if block is not None and named is None and own_scores(candidate_metrics) and _scores(block):
            cand, act = own_scores(candidate_metrics), _scores(block)
            basis = f"{candidate_version}'s evaluation against the model active when it was trained"
            pairs = heldout_pairs(candidate_metrics)
    if cand is None or act is None:
        undefined = [
            why
            for why in (
                _unmeasurable(candidate_version, candidate_metrics),
                _unmeasurable(active_version, active_metrics),
                _unmeasurable(active_version, candidate_metrics, "active"),
            )
            if why
        ]
        if undefined:
            return ActivationDecision(False, True, f"cannot compare {candidate_version} with the active {active_version}: "
                                      f"{'; '.join(undefined)}{force}")
        missing = [
            v
            for v, m in ((candidate_version, candidate_metrics), (active_version, active_metrics))
            if own_scores(m) is None
        ]
        return ActivationDecision(
            False,
            True,
            f"cannot compare {candidate_version} with the active {active_version}: "
            f"no held-out metrics for {' and '.join(missing) or 'a common label set'}{force}",
        )
    if pairs is None or pairs < min_heldout_pairs:
        counted = "an unknown number of" if pairs is None else f"only {pairs}"
        return ActivationDecision(
            False,
            True,
            f"cannot compare {candidate_version} with the active {active_version}: the held-out set has {counted} "
            f"decided pair(s), fewer than the {min_heldout_pairs} needed to measure either model "
            f"(RECONCILE_MIN_HELDOUT_PAIRS; {basis}){force}",
            cand,
            act,
            basis,
        )
    problems = []
    if cand.recall == 0:
        problems.append("it links none of the held-out matches (recall 0)")
    if cand.f1 < act.f1:
        problems.append(f"held-out F1 {cand.f1:.4f} < {act.f1:.4f}")
    if interval is not None and interval[1] < -F1_MARGIN:
        d, lo, hi = interval
        problems.append(
            f"the held-out labels cannot rule out that it is worse: F1 difference {d:+.4f}, interval "
            f"[{lo:+.4f}, {hi:+.4f}] (paired bootstrap), whose lower end is below -{F1_MARGIN:g}"
        )
    if cand.precision < act.precision - precision_tolerance:
        problems.append(
            f"held-out precision {cand.precision:.4f} is more than {precision_tolerance:g} below {act.precision:.4f}"
        )
    if problems:
        return ActivationDecision(
            False,
            True,
            f"{candidate_version} is worse than the active {active_version}: {'; '.join(problems)} "
            f"({basis}, {pairs} held-out pairs){force}",
            cand,
            act,
            basis,
        )
    return ActivationDecision(
        True,
        True,
        f"{candidate_version} is not worse than {active_version}: F1 {cand.f1:.4f} vs {act.f1:.4f}"
        + ("" if interval is None else f" (difference interval [{interval[1]:+.4f}, {interval[2]:+.4f}])")
        + f", precision {cand.precision:.4f} vs {act.precision:.4f} ({basis}, {pairs} held-out pairs)",
        cand,
        act,
        basis,
    )


# --- files -----------------------------------------------------------------------------


def stored_path(path: Path) -> str:
    """How a model path is recorded: relative to the project when inside it (so a moved
    checkout keeps working), absolute otherwise."""
    path = path.resolve()
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None


@dataclass(frozen=True)
class ModelFiles:
    version: str
    model_path: Path
    metrics: dict[str, Any] | None
    upper: float | None
    lower: float | None


def read_model_files(path: str | Path, version: str | None = None) -> ModelFiles:
    """What to register for a model directory or model JSON (raises ValueError)."""
    path = Path(path)
    if path.is_dir():
        model = path / MODEL_FILE
        if not model.is_file():
            raise ValueError(f"{path} has no {MODEL_FILE}")
        metrics = _read_json(path / "evaluation.json")
        thresholds = _read_json(path / "thresholds.json")
        default_version = path.resolve().name
    elif path.is_file():
        model = path
        stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.stem
        metrics = _read_json(path.with_name(stem + ".evaluation.json")) or _read_json(path.with_name(stem + ".metrics.json"))
        thresholds = _read_json(path.with_name(stem + ".thresholds.json"))
        default_version = stem
    else:
        raise ValueError(f"{path} is neither a model directory nor a model JSON file")
    if metrics is not None and not isinstance(metrics, dict):
        raise ValueError(f"the metrics beside {model} are not a JSON object")
    upper = lower = None
    if isinstance(thresholds, dict):
        upper, lower = _number(thresholds.get("upper")), _number(thresholds.get("lower"))
        if upper is not None and lower is not None and not 0 <= lower <= upper <= 1:
            raise ValueError(f"thresholds beside {model} must satisfy 0 <= lower <= upper <= 1")
    version = version or default_version
    if not version or len(version) > 64:
        raise ValueError("a model version is 1 to 64 characters")
    return ModelFiles(version, model, metrics, upper, lower)


def check_loads(path: str | Path) -> str:
    """Load the model as the service would; returns its content digest version or raises."""
    from ..scoring.scorer import Scorer

    return Scorer.load(resolve_path(str(path))).version


def register_path(store: Store, path: str | Path, version: str | None = None) -> ModelRecord:
    """Register a model directory or JSON (inactive); it must load."""
    files = read_model_files(path, version)
    try:
        check_loads(files.model_path)
    except Exception as exc:  # noqa: BLE001 - any load failure refuses the registration
        raise ValueError(f"{files.model_path} does not load as a model: {exc}") from None
    return registry.register_model(
        store,
        files.version,
        stored_path(files.model_path),
        metrics=files.metrics,
        upper_threshold=files.upper,
        lower_threshold=files.lower,
    )


def ensure_default_registered(store: Store, settings: Settings, by: str = "bootstrap") -> ModelRecord | None:
    """When the registry is empty, register the configured model (the shipped default)
    under its file name and make it active, so it is listed and rollback can return
    to it. Safe when several workers start together. Returns what it registered."""
    from sqlalchemy.exc import IntegrityError

    if registry.list_models(store):
        return None
    path = Path(settings.model_path)
    if not path.is_file():
        log.warning("model registry empty and %s does not exist: nothing registered", path)
        return None
    try:
        record = register_path(store, path)
        if registry.active_model(store) is None:
            record = registry.set_active(store, record.version, by)
    except IntegrityError:  # another worker registered it first
        return None
    log.info("registered the configured model %s as version %r (active)", path, record.version)
    return record


# --- activation --------------------------------------------------------------------------


def decide(
    store: Store, version: str, min_heldout_pairs: int = MIN_HELDOUT_PAIRS
) -> tuple[ActivationDecision, ModelRecord, ModelRecord | None]:
    target = registry.get_model(store, version)
    current = registry.active_model(store)
    decision = activation_decision(
        target.version,
        target.metrics,
        current.version if current else None,
        current.metrics if current else None,
        min_heldout_pairs=min_heldout_pairs,
    )
    return decision, target, current


def activate(
    store: Store, version: str, *, force: bool = False, by: str | None = None, min_heldout_pairs: int = MIN_HELDOUT_PAIRS
) -> tuple[ModelRecord, ActivationDecision]:
    """Make ``version`` active when the policy allows it (or ``force``); its files must load."""
    decision, target, _current = decide(store, version, min_heldout_pairs)
    if not decision.allowed and not force:
        raise ActivationRefused(decision.reason, decision=decision)
    try:
        check_loads(target.path)
    except Exception as exc:  # noqa: BLE001
        raise ActivationRefused(
            f"model {version} does not load from {target.path}: {exc}", code="model_unloadable", decision=decision
        ) from None
    return registry.set_active(store, version, by), decision


def rollback(
    store: Store, *, force: bool = False, by: str | None = None, min_heldout_pairs: int = MIN_HELDOUT_PAIRS
) -> tuple[ModelRecord, ActivationDecision]:
    """Re-activate the version the active one replaced (the same policy applies)."""
    current = registry.active_model(store)
    if current is None:
        raise ActivationRefused("no model is active: nothing to roll back", code="nothing_to_roll_back")
    if not current.previous_version:
        raise ActivationRefused(
            f"{current.version} replaced no other version: nothing to roll back to", code="nothing_to_roll_back"
        )
    return activate(store, current.previous_version, force=force, by=by, min_heldout_pairs=min_heldout_pairs)


# --- presentation ------------------------------------------------------------------------


def _chart_file(record: ModelRecord, name: str) -> Path | None:
    model = resolve_path(record.path)
    if model.name != MODEL_FILE:
        return None  # a bare <name>.json (the shipped default) has no directory of its own
    path = model.parent / name
    return path if path.is_file() else None


def shipped_curve(metrics: dict[str, Any] | None) -> list[dict[str, float]]:
    """The precision-recall points of a shipped model's metrics file
    (``heldout.thresholds``: threshold -> precision, recall, f1), by threshold."""
    table = metrics.get("heldout", {}).get("thresholds") if isinstance(metrics, dict) else None
    if not isinstance(table, dict):
        return []
    points = []
    for key, row in table.items():
        try:
            threshold = float(key)
        except ValueError:
            continue
        if isinstance(row, dict) and _number(row.get("precision")) is not None and _number(row.get("recall")) is not None:
            points.append({"threshold": threshold, "precision": row["precision"], "recall": row["recall"], "f1": _number(row.get("f1"))})
    return sorted(points, key=lambda p: p["threshold"])


def shipped_scores(metrics: dict[str, Any] | None, upper: float | None) -> dict[str, Any] | None:
    """A shipped model's held-out scores at its upper threshold (the listed cut nearest
    to it), for display only: they come from the synthetic stream it was trained on,
    not from reviewers' labels, so the activation policy never compares them."""
    points = shipped_curve(metrics)
    if not points:
        return None
    target = upper if upper is not None else points[-1]["threshold"]
    point = min(points, key=lambda p: abs(p["threshold"] - target))
    return {**point, "basis": f"shipped metrics, held-out synthetic records, threshold {point['threshold']:g}"}


def chart_files(record: ModelRecord) -> list[str]:
    """The charts of a registered version: the files in its directory, else drawn from
    what it has (the model's weights always; a shipped model's listed cuts)."""
    names = []
    for name in CHART_FILES:
        if _chart_file(record, name) is not None or name == "match_weights.svg" or shipped_curve(record.metrics):
            names.append(name)
    return names


def chart_path(record: ModelRecord, name: str) -> Path | None:
    """The file to serve for a chart of a registered model; None when there is none
    (:func:`drawn_chart` may still draw it)."""
    return _chart_file(record, name) if name in CHART_FILES else None


def drawn_chart(record: ModelRecord, name: str) -> str | None:
    """An SVG chart drawn now for a version that has no file for it; None when it has
    nothing to draw it from."""
    from . import charts

    if name == "match_weights.svg":
        source = resolve_path(record.path)
        if not source.is_file():  # the model's file was moved or deleted since it was registered
            return None
        model = json.loads(source.read_text())
        return charts.match_weights_svg(model, title=f"Match weights: {record.version}")
    if name == "pr_curve.svg":
        points = shipped_curve(record.metrics)
        if points:
            title = f"Precision-recall, held-out synthetic records ({len(points)} cuts)"
            return charts.pr_curve_svg({record.version: points}, title=title)
    return None


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None and hasattr(value, "isoformat") else value


def summary(record: ModelRecord, default_upper: float | None = None) -> dict[str, Any]:
    """A version as the admin API shows it; ``default_upper`` is the upper threshold a
    version without its own serves with (the settings'), where its shipped scores are read."""
    scores = own_scores(record.metrics)
    shipped = None if scores is not None else shipped_scores(record.metrics, record.upper_threshold or default_upper)
    block, named = _compared_block(record.metrics)
    compared = _scores(block)
    return {
        "version": record.version,
        "path": record.path,
        "active": record.active,
        "createdAt": _when(record.created_at),
        "activatedAt": _when(record.activated_at),
        "activatedBy": record.activated_by,
        "previousVersion": record.previous_version,
        "thresholds": {"upper": record.upper_threshold, "lower": record.lower_threshold},
        "heldout": (
            {"precision": scores.precision, "recall": scores.recall, "f1": scores.f1, "basis": "held-out labels"}
            if scores is not None
            else shipped
        ),
        "comparedWith": None
        if compared is None
        else {"version": named, "precision": compared.precision, "recall": compared.recall, "f1": compared.f1},
        "charts": chart_files(record),
        "metrics": record.metrics,
    }


__all__ = [
    "ActivationDecision",
    "ActivationRefused",
    "Scores",
    "UnknownModel",
    "activate",
    "activation_decision",
    "chart_path",
    "drawn_chart",
    "shipped_scores",
    "ensure_default_registered",
    "register_path",
    "rollback",
    "summary",
]
