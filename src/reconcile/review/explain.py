"""Why an item is in the queue, said plainly: the model was unsure (its score between the
thresholds), or a guard held a link the model may well have made (the guard, its numbers,
and the model's score beside it; or, drawn at random, one the model scores as a clear
non-match), or a reviewer had rejected these groups before.

Pure: it reads an item as :mod:`reconcile.review.queue` shows it (evidence rendered) and
the thresholds of the model version that scored it, when those are known.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: (lower, upper) thresholds per model version
Bands = Mapping[str, tuple[float, float]]

GUARD_TITLES = {
    "group-size": "group size limit",
    "large-merge": "two large groups",
    "shared-identifier": "shared identifier",
    "cannot-link": "rejected before",
    "placeholder": "placeholder value",
    "role-mailbox": "role mailbox",
    "shared-value": "value shared by many groups",
}


def format_score(value: float, places: int = 3) -> str:
    """``places`` decimals, more when that would round it to a certainty the model did
    not state (0.99995 reads 0.99995, not 1.000); beyond six, a bound."""
    if value in (0.0, 1.0):
        return f"{value:.{places}f}"
    for shown in range(places, 7):
        text = f"{value:.{shown}f}"
        if float(text) not in (0.0, 1.0):
            return text
    return "> 0.999999" if value > 0.5 else "< 0.000001"


_score = format_score


def explain(item: Mapping[str, Any], bands: Bands) -> dict[str, Any]:
    """``{"kind": "model" | "guard" | "conflict", "title": ..., "text": ..., "band": [lower, upper] | None}``."""
    score, reason, guard = item.get("score"), item.get("reason"), item.get("guard")
    band = bands.get(item.get("modelVersion") or "")
    evidence = item.get("evidence") if isinstance(item.get("evidence"), Mapping) else {}
    held = evidence.get("reason") if isinstance(evidence.get("reason"), str) else None
    beside = f" The model scored the pair {_score(score)}." if score is not None else " The model has not scored it."
    if reason == "conflict":
        return {
            "kind": "conflict",
            "title": "rejected before",
            "text": "A reviewer rejected joining these groups before (a cannot-link); new evidence connects them again." + beside,
            "band": list(band) if band else None,
        }
    if reason == "guard" or guard:
        title = GUARD_TITLES.get(guard or "", guard or "guard")
        why = f": {held}" if held else ""
        drawn = ""
        if item.get("audit") == "held":
            drawn = (
                " Drawn at random to measure the guard: the model scores the pair below its lower threshold, so"
                " such pairs stay apart without a review; the decisions estimate the matches the guard keeps apart."
            )
        return {
            "kind": "guard",
            "title": title,
            "text": f"Held by the {guard} guard{why}." + beside + drawn,
            "band": list(band) if band else None,
        }
    if item.get("audit") in ("link", "near"):
        # the same title for both kinds, so blind mode does not tell a reviewer which one
        made = "linked automatically" if item["audit"] == "link" else "scored just below the lower threshold and not linked"
        text = (
            f"Drawn at random to measure the model: this pair was {made}." + beside
            + " Decide it as any other; the decisions estimate the precision of automatic links and the matches missed."
        )
        return {"kind": "model", "title": "random sample", "text": text, "band": list(band) if band else None}
    if score is None:
        return {"kind": "model", "title": "unscored", "text": "Opened without a score.", "band": None}
    if band is not None and score >= band[1]:
        text = (
            f"The model is sure ({_score(score)}, at or above the upper threshold {_score(band[1])}), but another group "
            "scored higher for the same contact and only the best group links automatically."
        )
        return {"kind": "model", "title": "second match", "text": text, "band": list(band)}
    if band is not None:
        text = f"The model is unsure: {_score(score)} is between the thresholds {_score(band[0])} and {_score(band[1])}."
    else:
        text = f"The model is unsure: it scored the pair {_score(score)}, between its thresholds."
    return {"kind": "model", "title": "uncertain score", "text": text, "band": list(band) if band else None}


__all__ = ["Bands", "explain", "format_score", "GUARD_TITLES"]
