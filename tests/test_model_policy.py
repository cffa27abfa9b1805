"""The activation policy (pure): a version goes live only when it is not worse than the
active one on held-out labels, and missing numbers refuse (forceably), saying so; so do
numbers that cannot carry a decision (too few held-out pairs, undefined metrics)."""
from reconcile.training.label_metrics import decision_metrics, paired_f1_difference
from reconcile.training.registry import F1_MARGIN, MIN_HELDOUT_PAIRS, PRECISION_TOLERANCE, activation_decision


def evaluation(
    p: float, f1: float, active_version: str | None = None, active_p: float = 0.0, active_f1: float = 0.0,
    pairs: int = 200,
):
    metrics = {"candidate": {"precision": p, "recall": 0.5, "f1": f1}, "heldout_labels": {"pairs": pairs}}
    if active_version is not None:
        metrics["active"] = {"version": active_version, "precision": active_p, "recall": 0.5, "f1": active_f1}
    return metrics


def test_a_better_model_is_allowed_on_same_label_comparison():
    d = activation_decision("v2", evaluation(0.97, 0.85, "v1", 0.96, 0.80), "v1", None)
    assert d.allowed and d.candidate_scores.f1 == 0.85 and d.active_scores.f1 == 0.80
    assert "same held-out labels" in d.basis


def test_lower_f1_is_refused_but_forceable():
    d = activation_decision("v2", evaluation(0.99, 0.79, "v1", 0.96, 0.80), "v1", None)
    assert not d.allowed and d.forceable
    assert "F1 0.7900 < 0.8000" in d.reason and "--force" in d.reason


def test_precision_may_drop_only_within_the_tolerance():
    within = activation_decision("v2", evaluation(0.96 - PRECISION_TOLERANCE / 2, 0.85, "v1", 0.96, 0.80), "v1", None)
    beyond = activation_decision("v2", evaluation(0.96 - PRECISION_TOLERANCE * 2, 0.85, "v1", 0.96, 0.80), "v1", None)
    assert within.allowed
    assert not beyond.allowed and "precision" in beyond.reason


def test_equal_scores_are_not_worse():
    assert activation_decision("v2", evaluation(0.9, 0.8, "v1", 0.9, 0.8), "v1", None).allowed


def test_missing_metrics_refuse_and_name_the_version_without_them():
    d = activation_decision("v2", None, "v1", evaluation(0.9, 0.8))
    assert not d.allowed and d.forceable and "no held-out metrics for v2" in d.reason
    d = activation_decision("v2", evaluation(0.9, 0.8), "v1", {"heldout": {}})
    assert not d.allowed and "no held-out metrics for v1" in d.reason


def test_own_evaluations_are_compared_when_no_common_labels():
    d = activation_decision("v3", evaluation(0.95, 0.70, "v1", 0.9, 0.6), "v2", evaluation(0.95, 0.75))
    assert not d.allowed and "own held-out evaluation" in d.basis


def test_the_active_models_evaluation_of_the_candidate_counts_for_rollback():
    # v2 was evaluated against v1 on the same labels; rolling back to v1 compares those numbers
    d = activation_decision("v1", None, "v2", evaluation(0.97, 0.85, "v1", 0.96, 0.80))
    assert not d.allowed and d.candidate_scores.f1 == 0.80 and d.active_scores.f1 == 0.85
    assert "v2's evaluation" in d.basis


def test_a_comparison_with_another_version_is_not_used_for_this_one():
    # v3 was evaluated against v1, but v2 is active now and has no metrics of its own
    d = activation_decision("v3", evaluation(0.97, 0.9, "v1", 0.5, 0.5), "v2", None)
    assert not d.allowed and "no held-out metrics for v2" in d.reason


def test_an_unnamed_comparison_is_the_last_resort():
    metrics = {
        "candidate": {"precision": 0.97, "recall": 0.8, "f1": 0.9},
        "active": {"precision": 0.96, "recall": 0.7, "f1": 0.8},
        "heldout_labels": {"pairs": 100},
    }
    d = activation_decision("v2", metrics, "v1", None)
    assert d.allowed and "active when it was trained" in d.basis


def test_nothing_active_or_already_active_is_allowed():
    assert activation_decision("v1", None, None, None).allowed
    assert activation_decision("v1", None, "v1", None).allowed


def test_non_numeric_metrics_do_not_count():
    bad = {"candidate": {"precision": "0.9", "f1": float("nan")}}
    d = activation_decision("v2", bad, "v1", evaluation(0.9, 0.8))
    assert not d.allowed and "no held-out metrics for v2" in d.reason


# --- an honest gate: numbers that cannot carry the decision refuse -----------------------


def test_an_evaluation_over_zero_held_out_pairs_is_not_measurable_and_refused():
    # one label, none held out: the evaluation writes null, never 1.0
    block = decision_metrics([], [], 0.999, 0.9)
    assert block["pairs"] == 0 and block["precision"] is None and block["recall"] is None and block["f1"] is None
    assert "no labelled pairs" in block["not_measurable"]
    metrics = {"candidate": block, "active": {**block, "version": "v1"}, "heldout_labels": {"pairs": 0}}
    d = activation_decision("v2", metrics, "v1", None)
    assert not d.allowed and d.forceable and "not measurable" in d.reason and "--force" in d.reason


def test_fewer_held_out_pairs_than_the_minimum_refuse_forceably():
    few = activation_decision("v2", evaluation(0.99, 0.9, "v1", 0.9, 0.8, pairs=MIN_HELDOUT_PAIRS - 1), "v1", None)
    assert not few.allowed and few.forceable
    assert f"only {MIN_HELDOUT_PAIRS - 1} decided pair(s)" in few.reason and "RECONCILE_MIN_HELDOUT_PAIRS" in few.reason
    enough = activation_decision("v2", evaluation(0.99, 0.9, "v1", 0.9, 0.8, pairs=MIN_HELDOUT_PAIRS), "v1", None)
    assert enough.allowed
    configured = activation_decision("v2", evaluation(0.99, 0.9, "v1", 0.9, 0.8, pairs=10), "v1", None, min_heldout_pairs=5)
    assert configured.allowed


def test_an_evaluation_that_does_not_say_how_many_pairs_is_refused():
    metrics = evaluation(0.99, 0.9, "v1", 0.9, 0.8)
    del metrics["heldout_labels"]
    d = activation_decision("v2", metrics, "v1", None)
    assert not d.allowed and "an unknown number of decided pair(s)" in d.reason


def test_a_model_that_links_no_pair_has_undefined_precision_and_is_refused():
    # held-out matches exist, but nothing reaches the candidate's upper threshold
    scores, truth = [0.5] * 60 + [0.1] * 40, [True] * 60 + [False] * 40
    block = decision_metrics(scores, truth, 0.999, 0.9)
    assert block["precision"] is None and block["recall"] == 0.0 and block["f1"] is None
    active = {**decision_metrics(scores, truth, 0.4, 0.2), "version": "v1"}
    d = activation_decision("v2", {"candidate": block, "active": active, "heldout_labels": {"pairs": 100}}, "v1", None)
    assert not d.allowed and "precision, f1 not measurable" in d.reason


def test_the_active_models_undefined_metric_refuses_too():
    scores, truth = [0.5] * 60, [False] * 60  # no held-out match: recall undefined for both
    block = decision_metrics(scores, truth, 0.4, 0.2)
    assert block["recall"] is None and "recall undefined" in block["not_measurable"]
    d = activation_decision("v2", evaluation(0.9, 0.8), "v1", {"candidate": block, "heldout_labels": {"pairs": 60}})
    assert not d.allowed and "v1's held-out recall" in d.reason


def test_recall_zero_is_never_not_worse():
    # both models link only wrong pairs: F1 0 = 0, precision 0 = 0, yet no match is found
    metrics = {
        "candidate": {"precision": 0.0, "recall": 0.0, "f1": 0.0},
        "active": {"version": "v1", "precision": 0.0, "recall": 0.0, "f1": 0.0},
        "heldout_labels": {"pairs": 100},
    }
    d = activation_decision("v2", metrics, "v1", None)
    assert not d.allowed and d.forceable and "recall 0" in d.reason


def with_interval(metrics: dict, candidate: str, active: str, difference: float, lower: float, upper: float) -> dict:
    metrics["comparison"] = {
        "candidate": candidate,
        "active": active,
        "f1_difference": {"difference": difference, "lower": lower, "upper": upper},
    }
    return metrics


def test_a_better_point_f1_whose_interval_reaches_a_real_loss_is_refused():
    metrics = with_interval(evaluation(0.97, 0.85, "v1", 0.96, 0.80), "v2", "v1", 0.05, -0.04, 0.14)
    d = activation_decision("v2", metrics, "v1", None)
    assert not d.allowed and d.forceable
    assert "cannot rule out that it is worse" in d.reason and "[-0.0400, +0.1400]" in d.reason


def test_an_interval_within_the_margin_is_allowed_and_quoted():
    metrics = with_interval(evaluation(0.97, 0.85, "v1", 0.96, 0.80), "v2", "v1", 0.05, -F1_MARGIN / 2, 0.1)
    d = activation_decision("v2", metrics, "v1", None)
    assert d.allowed and "difference interval" in d.reason


def test_a_rollback_reads_the_interval_turned_round():
    # v2's evaluation says v2 is better than v1 by [0.03, 0.2]: going back to v1 is a sure loss
    metrics = with_interval(evaluation(0.97, 0.90, "v1", 0.97, 0.80), "v2", "v1", 0.10, 0.03, 0.2)
    d = activation_decision("v1", None, "v2", metrics)
    assert not d.allowed and "[-0.2000, -0.0300]" in d.reason


def test_an_interval_for_other_versions_is_ignored():
    metrics = with_interval(evaluation(0.97, 0.85, "v1", 0.96, 0.80), "v9", "v1", 0.05, -0.5, 0.1)
    assert activation_decision("v2", metrics, "v1", None).allowed


def test_the_paired_difference_is_zero_for_one_model_and_wide_on_few_labels():
    truth = [True, False] * 20
    scores = [0.999 if i % 3 else 0.5 for i in range(40)]
    same = paired_f1_difference((scores, 0.99), (scores, 0.99), truth)
    assert same["difference"] == same["lower"] == same["upper"] == 0.0
    other = [0.999 if i % 4 else 0.5 for i in range(40)]
    few = paired_f1_difference((other, 0.99), (scores, 0.99), truth)
    assert few["lower"] < few["difference"] < few["upper"]
    many = paired_f1_difference((other * 25, 0.99), (scores * 25, 0.99), truth * 25)
    assert abs(many["difference"] - few["difference"]) < 1e-9
    assert many["upper"] - many["lower"] < (few["upper"] - few["lower"]) / 2


def test_the_paired_difference_point_is_the_difference_of_decision_metrics():
    truth = [True, True, False, True, False, False, True]
    cand = [0.9991, 0.2, 0.9995, 0.9999, 0.1, 0.3, 0.9993]
    act = [0.9991, 0.9992, 0.1, 0.2, 0.1, 0.9999, 0.1]
    weights = [1, 2, 5, 1, 1, 3, 2]
    d = paired_f1_difference((cand, 0.999), (act, 0.999), truth, weights)
    expected = decision_metrics(cand, truth, 0.999, 0.99, weights)["f1"] - decision_metrics(act, truth, 0.999, 0.99, weights)["f1"]
    assert abs(d["difference"] - expected) < 1e-12
