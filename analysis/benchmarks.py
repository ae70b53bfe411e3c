"""Benchmark scores and their deltas against the base model (docs/protocol.md §5), on frames.

The built-in tasks keep one row per scored chat ("items": fact_id, loglik, tokens, and
for known_mc option and is_answer), so a trial's score can leave out the facts of its own
mix and the base model be scored on exactly the same facts. An lm-evaluation-harness task
is one number per model.

Columns of results.parquet, per task: bench_<task> (the adapter's score) and
bench_<task>_delta (adapter minus base on the same items: negative is a loss for
accuracies, positive is a loss for known_ppl, a perplexity).
"""
from __future__ import annotations

import math

import pandas as pd

from analysis.schema import BENCH_PREFIX, DELTA_SUFFIX, bench_delta, bench_score


def mc_accuracy(items: pd.DataFrame) -> float:
    """Share of questions whose most likely option is the true answer (ties: the first
    option, in the question's seeded option order)."""
    if items.empty:
        return math.nan
    picked = items.loc[items.groupby("fact_id", sort=False)["loglik"].idxmax()]
    return float(picked["is_answer"].mean())


def perplexity(items: pd.DataFrame) -> float:
    """exp of the mean negative log-likelihood per token, over every scored turn."""
    tokens = items["tokens"].sum()
    return math.exp(-items["loglik"].sum() / tokens) if tokens else math.nan


# Built-in task -> how its items become one score.
AGGREGATE = {"known_mc": mc_accuracy, "known_ppl": perplexity}


def held_out(task: str, items: pd.DataFrame, exclude: set[str]) -> float:
    """The score of a built-in task over the items whose fact is not in `exclude` (a mix)."""
    return AGGREGATE[task](items[~items["fact_id"].isin(exclude)])


def bench_record(scores: dict[str, tuple[float, float]]) -> dict[str, float]:
    """task -> (adapter, base) as the columns bench_<task> and bench_<task>_delta."""
    record = {}
    for task, (score, base) in scores.items():
        record[bench_score(task)] = score
        record[bench_delta(task)] = score - base
    return record


def bench_tasks(results: pd.DataFrame) -> list[str]:
    """The tasks a results frame holds, in column order."""
    return [
        c[len(BENCH_PREFIX) : -len(DELTA_SUFFIX)] for c in results.columns if c.startswith(BENCH_PREFIX) and c.endswith(DELTA_SUFFIX)
    ]


def base_scores(results: pd.DataFrame) -> pd.DataFrame:
    """Per trial and task, the base model's score on that trial's items (score - delta):
    the same for every trial for an lm-eval task, nearly so for a built-in one."""
    return pd.DataFrame(
        {bench_score(t): results[bench_score(t)] - results[bench_delta(t)] for t in bench_tasks(results)}
    )
