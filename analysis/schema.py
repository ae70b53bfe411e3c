"""The run's tables, column by column: history.parquet, results.parquet and benchmarks.parquet
(grid/run_folder.py says where they live). Every module that writes or reads one of their
columns by name takes the name from here, and `describe` says what any column holds.

A pattern's {scope} is `all` (every fact) or `untrained` (every fact outside the trial's
mix); {when} is `before` (the base model) or `after` (the adapter); {task} a benchmark task.
"""
from __future__ import annotations

import re

# The trial and its settings (grid/trials.py: the grid point or the search's sample).
TRIAL = "trial"
UNKNOWN_COUNT = "unknown"  # the config key grid.unknown: how many new (Unknown) facts; not the category
EXTRA = "extra"
RATIO = "ratio"
SEED = "seed"
ADAPTER = "adapter"
ERROR = "error"

# What each epoch's report holds (grid/trials.py TrialWatch.evaluate).
EPOCH = "epoch"
RELIABILITY = "reliability"
RELIABILITY_STRICT = "reliability_strict"
PROBE_NEGATIVE = "probe_negative_shift"
PROBE_POSITIVE = "probe_positive_shift"
OBJECTIVE = "objective"

# The headline numbers, re-measured on the whole corpus after training (analysis/trial_analysis.py).
NEGATIVE_SHIFT = "negative_shift_untrained"
POSITIVE_SHIFT = "positive_shift_untrained"
FACTS_UNTRAINED = "facts_untrained"

BENCH_PREFIX, DELTA_SUFFIX = "bench_", "_delta"


def bench_score(task: str) -> str:
    return f"{BENCH_PREFIX}{task}"


def bench_delta(task: str) -> str:
    return f"{BENCH_PREFIX}{task}{DELTA_SUFFIX}"


KNOWN_MC_DELTA = bench_delta("known_mc")  # what a search may minimize or bound, per epoch

# The last epoch's numbers that the evaluation re-measures on the whole corpus (and the
# benchmarks with the trial's mix held out) carry LAST_EPOCH in results.parquet, so that
# `reliability` and the bench deltas there are only ever the re-measured ones.
LAST_EPOCH = "last_epoch_"
REMEASURED = (RELIABILITY, RELIABILITY_STRICT, KNOWN_MC_DELTA)

HISTORY = {
    EPOCH: "0 before the first step (the adapter still the base model), then each epoch trained",
    "loss": "the epoch's mean training loss (NaN at epoch 0)",
    RELIABILITY: "mean over the new facts of P_greedy, the share of their M greedy answers that are correct",
    RELIABILITY_STRICT: "share of the new facts that are HighlyKnown",
    PROBE_NEGATIVE: "share of the probe's facts (a stratified sample outside the mix) that moved down a category since epoch 0",
    PROBE_POSITIVE: "share of the probe's facts that moved up a category since epoch 0",
    "probe_facts": "facts in the probe",
    "train_rows": "rows of the training mix (paraphrases included)",
    OBJECTIVE: "the search's objective (analysis/verdicts.py objective): lower is better",
    KNOWN_MC_DELTA: "known_mc accuracy minus the base model's, the mix held out; only when the search uses it",
    "time_this_iter_s": "Tune: seconds of this epoch",
    "time_total_s": "Tune: seconds since the trial started",
    TRIAL: "the Tune trial (its folder's name)",
}
HISTORY_COLUMNS = tuple(c for c in HISTORY if c != TRIAL)  # what a trial reports
# A trial's row of results.parquet takes its last report, and how often the two engines
# agreed on the base model's categories (the same at every epoch).
RESULT_COLUMNS = (*HISTORY_COLUMNS, "engine_agreement")

RESULTS = {
    TRIAL: HISTORY[TRIAL],
    UNKNOWN_COUNT: "new (Unknown) facts in the mix",
    EXTRA: "the kind of extra facts: HighlyKnown or paraphrase",
    RATIO: "extra facts per new fact (0: the +0 control)",
    SEED: "seeds the mix and the training",
    "rank": "LoRA rank (a search's sample)",
    "lr": "learning rate (a search's sample)",
    ADAPTER: "the adapter's folder: the trial's last checkpoint",
    ERROR: "the trial's error, if it failed",
    **{k: f"{v} (at the last epoch)" for k, v in HISTORY.items() if k not in (TRIAL, *REMEASURED)},
    **{LAST_EPOCH + k: f"{HISTORY[k]}, at the last epoch, by the trainer's engine" for k in REMEASURED},
    "engine_agreement": "share of the watched facts whose epoch-0 category equals their base categorization's",
    RELIABILITY: HISTORY[RELIABILITY] + ", re-measured on the whole corpus",
    RELIABILITY_STRICT: HISTORY[RELIABILITY_STRICT] + ", re-measured on the whole corpus",
    "facts_{scope}": "facts in scope",
    "positive_{scope}": "facts in scope that moved up a category, count",
    "negative_{scope}": "facts in scope that moved down a category, count",
    "positive_shift_{scope}": "facts that moved up, as a share of the facts in scope",
    "negative_shift_{scope}": "facts that moved down, as a share of the facts in scope (untrained: the headline)",
    "positive_shift_possible_{scope}": "facts that moved up, as a share of those that could",
    "negative_shift_possible_{scope}": "facts that moved down, as a share of those that could",
    "unknown_to_highly_known": "facts that moved from Unknown to HighlyKnown, all facts (the paper's Table 5)",
    "highly_known_to_unknown": "facts that moved from HighlyKnown to Unknown, all facts",
    "unknown_to_highly_known_share": "the same over facts_all: what compares with the paper",
    "highly_known_to_unknown_share": "the same over facts_all",
    "refused_{when}": "facts refused by our test (a majority of the M greedy answers decline), count",
    "refused_share_{when}": "the same as a share of the facts",
    "refused_paper_{when}": "facts refused by the paper's test ('information' in the set-0 raw output), count",
    "refused_paper_share_{when}": "the same as a share of the facts",
    "distinct_answers_{when}": "distinct greedy answers",
    "answer_count_mean_{when}": "mean count of a distinct answer",
    "answer_count_std_{when}": "population standard deviation of those counts",
    "distinct_answers_paper_{when}": "distinct greedy answers as the paper's notebook counts them: the raw text after "
    "'Answer: ', case kept, refusals included (behaviour.paper_diversity)",
    "answer_count_mean_paper_{when}": "mean count of a distinct answer, the notebook's way",
    "answer_count_std_paper_{when}": "population standard deviation of those counts, the notebook's way",
    "exploded_absolute": "answers exploded under the paper's rule (a share of all answers)",
    "exploded_relative": "answers exploded under ours (10 times the base model's count)",
    "reason_{reason}": "share of the shifts outside the mix that the reason (non_refusal, exploded, target_based, domain, "
    "unexplained) explains, ours (behaviour.shift_reasons; domain NaN when no fact has a domain)",
    "reason_domain_expected": "share of the facts outside the mix in a trained domain: reason_domain by chance",
    "domains": "distinct relation domains of the facts (0: the domain reasons are not measured)",
    "paper_reason_{reason}_positive": "the notebook's reason (behaviour.paper_shift_reasons): share of the UK->HK moves "
    "of all facts, trained included, that it flags",
    "paper_reason_{reason}_negative": "the same of the HK->UK moves (the notebook asks no non-refusal of them)",
    "bench_{task}": "the adapter's benchmark score, its mix held out for a built-in task",
    "bench_{task}_delta": "that score minus the base model's on the same items",
}

BENCHMARKS = {
    TRIAL: "the trial whose adapter was scored, or base",
    "task": "the benchmark task",
    "score": "the score on all the task's items",
    ADAPTER: "the adapter's folder (None: the base model)",
    "key": "the cache key of the result",
    "kind": "builtin or lm_eval",
    "count": "items scored (built-in tasks)",
    "lm_eval": "lm-eval's version (lm-eval tasks)",
    "num_fewshot": "shots (lm-eval tasks)",
    "limit": "bench.limit",
    "metric": "lm-eval's metric that is the score",
    "version": "the task's version (lm-eval tasks)",
    "scored_by": "the engine that scored a built-in task, or lm-eval",
}
# benchmarks.parquet's columns taken from a result's record (grid/bench.py), scored_by besides.
BENCHMARK_LOG_COLUMNS = tuple(c for c in BENCHMARKS if c not in (TRIAL, "scored_by"))

TABLES = {"history": HISTORY, "results": RESULTS, "benchmarks": BENCHMARKS}
_SLOTS = {"scope": "all|untrained", "when": "before|after", "task": r"\w+?", "reason": r"\w+?"}


def _pattern(column: str) -> re.Pattern:
    return re.compile(re.sub(r"\\\{(\w+)\\\}", lambda m: f"(?:{_SLOTS[m.group(1)]})", re.escape(column)) + "$")


def describe(table: str, column: str) -> str | None:
    """What `column` of `table` (history, results, benchmarks) holds; None: not in the schema."""
    columns = TABLES[table]
    if column in columns:
        return columns[column]
    # The most specific pattern first: bench_{task}_delta before bench_{task}.
    patterns = sorted((name for name in columns if "{" in name), key=lambda n: -len(re.sub(r"\{\w+\}", "", n)))
    return next((columns[name] for name in patterns if _pattern(name).match(column)), None)
