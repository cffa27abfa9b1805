"""Where model documents live and how one becomes a :class:`Scorer`.

The registry records a model by path (relative to the project; a directory stands for
its ``model.json``). Both the online engine (the active-model holder) and the training
tools resolve paths here, so neither has to import the other.
"""
from __future__ import annotations

from pathlib import Path

from ..config import PROJECT_ROOT
from .scorer import Scorer

MODEL_FILE = "model.json"


class ModelUnavailable(RuntimeError):
    """The configured model cannot be loaded; the message says which file and why."""


def resolve_path(recorded: str) -> Path:
    """The model JSON a registry path names (relative to the project; a directory means
    its ``model.json``)."""
    path = Path(recorded)
    path = path if path.is_absolute() else PROJECT_ROOT / path
    return path / MODEL_FILE if path.is_dir() else path


def load_scorer(path: str) -> Scorer:
    """The scorer of the model file at ``path``; a missing file says how to fix it."""
    if not Path(path).is_file():
        raise ModelUnavailable(
            f"model file {path} does not exist: set RECONCILE_MODEL to a model JSON in models/, "
            "or RECONCILE_PROBABILISTIC=0 to run the exact rules only"
        )
    return Scorer.load(path)
