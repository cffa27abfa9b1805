"""The Splink model: features, settings, training, and an exact in-process online scorer.

Independent of Flask and of the SQL store: the service passes feature records in and
gets scores and evidence out.
"""
from .features import COLUMNS, features
from .scorer import Scorer, ScoreResult, UnsupportedModel

__all__ = ["COLUMNS", "features", "Scorer", "ScoreResult", "UnsupportedModel"]
