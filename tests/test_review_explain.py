"""Why an item is queued, in plain words: a score between the thresholds, a score above
the upper one that lost to another group, a guard with its numbers and the model's
score beside, a rejected pair seen again."""
from __future__ import annotations

from reconcile.review.explain import explain

BANDS = {"v1": (0.9, 0.999)}


def test_a_score_between_the_thresholds_is_the_models_doubt():
    said = explain({"reason": "score", "score": 0.95, "modelVersion": "v1"}, BANDS)
    assert said["kind"] == "model" and said["title"] == "uncertain score"
    assert "0.950 is between the thresholds 0.900 and 0.999" in said["text"]


def test_a_score_above_the_upper_threshold_is_a_second_match_not_doubt():
    said = explain({"reason": "score", "score": 0.99995, "modelVersion": "v1"}, BANDS)
    assert said["title"] == "second match" and "0.99995" in said["text"] and "another group scored higher" in said["text"]


def test_a_guard_says_its_numbers_and_the_models_score_beside():
    item = {"reason": "guard", "guard": "group-size", "score": 0.42, "modelVersion": "v1",
            "evidence": {"reason": "the merged group would hold 41 contacts (limit 40)"}}
    said = explain(item, BANDS)
    assert said["kind"] == "guard" and said["title"] == "group size limit"
    assert "group-size guard: the merged group would hold 41 contacts (limit 40)" in said["text"]
    assert "scored the pair 0.420" in said["text"] and said["band"] == [0.9, 0.999]


def test_an_unscored_guard_and_a_conflict_say_so():
    assert "has not scored it" in explain({"reason": "guard", "guard": "shared-identifier", "score": None}, {})["text"]
    assert explain({"reason": "conflict", "guard": "cannot-link", "score": 0.97}, {})["kind"] == "conflict"
