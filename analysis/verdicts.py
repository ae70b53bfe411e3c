"""Verdicts on trials: the search's objective, the best trial, the Pareto front and the
recommended recipe per number of new facts (pure).

A trial's metrics are one epoch's (grid/trials.py reports them); results.parquet holds one
row per trial, with the numbers re-measured on the whole corpus (grid/evaluate.py).
"""
from __future__ import annotations

import pandas as pd

from analysis.schema import FACTS_UNTRAINED, KNOWN_MC_DELTA, NEGATIVE_SHIFT, POSITIVE_SHIFT, PROBE_NEGATIVE, RELIABILITY, RELIABILITY_STRICT
from analysis.tables import over_seeds

# Where a trial lands when it misses the reliability floor: above every trial that met it.
INFEASIBLE = 1.0
def objective(metrics: dict, floor: float, bench_max_drop: float | None = None, target: str = "negative_shift") -> float:
    """Least negative shift (or known_mc drop) among the adapters that learned the new facts
    (reliability >= floor) and, with bench_max_drop, lost at most that much known_mc accuracy.
    The others rank above every such adapter, by how far they missed."""
    missed = max(0.0, floor - metrics["reliability"])
    if bench_max_drop is not None:
        missed += max(0.0, -metrics[KNOWN_MC_DELTA] - bench_max_drop)
    if missed > 0:
        return INFEASIBLE + missed
    return -metrics[KNOWN_MC_DELTA] if target == "bench_drop" else metrics[PROBE_NEGATIVE]


def best_trial(results: pd.DataFrame) -> pd.Series | None:
    """The adapter with the least objective (least negative shift, or known_mc drop, among those that met the floors)."""
    done = results.dropna(subset=["objective"])
    return None if done.empty else done.sort_values(["objective", "trial"]).iloc[0]


def pareto_front(results: pd.DataFrame) -> pd.DataFrame:
    """Trials no other trial beats on both the negative shift of the facts outside the mix
    (lower) and reliability (higher), as re-measured on the whole corpus after training
    (grid/evaluate.py): the numbers of record, not the per-epoch probe's estimate."""
    done = results.dropna(subset=[NEGATIVE_SHIFT, "reliability"])
    shift, rel = done[NEGATIVE_SHIFT], done["reliability"]
    keep = [not ((shift <= a) & (rel >= b) & ((shift < a) | (rel > b))).any() for a, b in zip(shift, rel)]
    return done[keep].sort_values(NEGATIVE_SHIFT)


# What a recommendation shows of its setting, each as mean, min and max over the seeds.
RECOMMENDED = [RELIABILITY, RELIABILITY_STRICT, NEGATIVE_SHIFT, POSITIVE_SHIFT, FACTS_UNTRAINED]


def recommendations(results: pd.DataFrame, floor: float) -> pd.DataFrame:
    """Per number of new facts (the question "I have N facts: which recipe?"), the setting
    with the least mean negative shift of the facts outside its mix, among the settings whose
    mean reliability over their seeds reaches `floor`; where none does, the one of highest
    mean reliability. A setting is judged on its mean over seeds, not its best seed, and
    reads beside its spread. One row per unknown count: analysis/tables.py over_seeds's
    columns for RECOMMENDED (mean, _min, _max; `trials`: the seeds it rests on) and `met`,
    whether it reached the floor. Empty where no finished trial has both numbers."""
    if not {"reliability", NEGATIVE_SHIFT} <= set(results.columns):
        return pd.DataFrame()
    summary = over_seeds(results.dropna(subset=["reliability", NEGATIVE_SHIFT]), RECOMMENDED)
    rows = []
    for _, group in summary.groupby("unknown", sort=True):
        learned = group[group["reliability"] >= floor]
        if len(learned):
            pick = learned.sort_values(NEGATIVE_SHIFT, kind="stable").iloc[0]
        else:
            pick = group.sort_values("reliability", ascending=False, kind="stable").iloc[0]
        rows.append({**pick.to_dict(), "met": bool(len(learned))})
    return pd.DataFrame(rows)


class AdapterNotApplied(RuntimeError):
    """An engine answered as the base model where the adapter must answer otherwise."""


def changed_answers(trial: str, adapter_gens: pd.DataFrame, base_gens: pd.DataFrame, new: set[str], trained: float) -> float:
    """Share of the greedy answers to the new facts' prompts that differ from the base model's.

    The new facts are Unknown to the base model (no correct greedy answer), and the trial
    measured `trained` reliability on them with the adapter it trained. So when `trained` is
    above 0 some answer must differ; if none does, the engine served the base model (as
    ray.data.llm did when it dropped per-row LoRA requests, ray PR #62609) and every number
    after it would be the base model's: fail loudly instead."""
    keys = ["fact_id", "prompt_set"]
    pick = [frame[(frame["sample"] == 0) & frame["fact_id"].isin(new)].set_index(keys)["output"] for frame in (adapter_gens, base_gens)]
    after, before = pick[0], pick[1].reindex(pick[0].index)
    share = float((after != before).mean()) if len(after) else 0.0
    if trained > 0 and share == 0:
        raise AdapterNotApplied(
            f"trial {trial}: the evaluation engine gave the base model's answer to all {len(after)} prompts of the "
            f"{len(new)} new facts, though the trial measured reliability {trained:.2f} on them: the adapter was not applied"
        )
    return share
