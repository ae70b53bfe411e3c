"""Verdicts on trials (analysis/verdicts.py): the objective, the best trial, the Pareto front."""
import pandas as pd
import pytest

from analysis.schema import KNOWN_MC_DELTA as BENCH_DELTA
from analysis.verdicts import INFEASIBLE, best_trial, objective, pareto_front


def test_objective_bounds_or_minimizes_the_known_mc_drop():
    metrics = {"reliability": 0.9, "probe_negative_shift": 0.2, BENCH_DELTA: -0.3}
    assert objective(metrics, 0.8) == 0.2
    assert objective(metrics, 0.8, target="bench_drop") == pytest.approx(0.3)
    assert objective(metrics, 0.8, bench_max_drop=0.1) == pytest.approx(INFEASIBLE + 0.2)
    assert objective(metrics, 0.95, bench_max_drop=0.5) == pytest.approx(INFEASIBLE + 0.05)


def test_pareto_front_keeps_only_undominated_trials():
    results = pd.DataFrame(
        {
            "trial": list("abcd"),
            "negative_shift_untrained": [0.1, 0.2, 0.1, 0.3],
            "reliability": [0.9, 1.0, 0.8, 0.95],
            "probe_negative_shift": [0.5, 0.0, 0.0, 0.0],  # the probe's estimate: not what the front ranks
        }
    )
    assert list(pareto_front(results)["trial"]) == ["a", "b"]  # c loses to a; d loses to b


def test_best_trial_is_the_least_objective_and_ties_go_to_the_first_name():
    results = pd.DataFrame({"trial": ["b", "a", "c", "d"], "objective": [0.1, 0.1, 0.05 + INFEASIBLE, None]})
    assert best_trial(results)["trial"] == "a"
    assert best_trial(results.iloc[3:]) is None
