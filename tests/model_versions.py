"""Model versions for the registry tests: the shipped default's Splink settings and TF
tables copied into ``<dir>/<version>/model.json`` + ``model.tf.json`` (where
``Scorer.load`` looks for them), with the thresholds, evaluation and charts a training
run writes beside them."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from reconcile.config import PROJECT_ROOT

DEFAULT_JSON = PROJECT_ROOT / "models" / "default.json"
DEFAULT_TF = PROJECT_ROOT / "models" / "default.tf.json"

SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'


def scores(precision: float, f1: float, version: str | None = None) -> dict:
    block = {"precision": precision, "recall": round(f1 * 0.9, 4), "f1": f1}
    if version is not None:
        block["version"] = version
    return block


def make_version(
    root: Path,
    version: str,
    *,
    candidate: dict | None = None,
    active: dict | None = None,
    thresholds: tuple[float, float] | None = (0.999, 0.9),
    charts: bool = True,
    heldout_pairs: int = 200,
) -> Path:
    """A model directory as ``reconcile train --from-labels`` writes it (its evaluation
    measured on ``heldout_pairs`` decided held-out pairs)."""
    folder = root / version
    folder.mkdir(parents=True)
    shutil.copyfile(DEFAULT_JSON, folder / "model.json")
    shutil.copyfile(DEFAULT_TF, folder / "model.tf.json")
    if thresholds is not None:
        (folder / "thresholds.json").write_text(json.dumps({"upper": thresholds[0], "lower": thresholds[1]}))
    if candidate is not None:
        evaluation = {"candidate": candidate, "heldout_labels": {"pairs": heldout_pairs}}
        if active is not None:
            evaluation["active"] = active
        (folder / "evaluation.json").write_text(json.dumps(evaluation))
    if charts:
        (folder / "pr_curve.svg").write_text(SVG)
        (folder / "match_weights.svg").write_text(SVG)
    return folder
