"""After the trials: every finished adapter re-categorizes the whole corpus, several adapters
per pass of one generator pool (`generators.adapters_per_pass`), and the same pass scores
their built-in benchmarks (grid/bench.py BuiltinScoring); each adapter's answers are
checked against the base model's (analysis/verdicts.py changed_answers: an engine that
dropped the adapter fails the run); then one Ray task per trial turns the two
categorizations into findings (analysis/trial_analysis.py).

Stored in the run folder, per trial:
    categories/<trial>.parquet     the adapter's categories (generations/<trial>.parquet: its answers)
    analysis/<trial>/transitions.parquet, reasons.parquet, paper_reasons.parquet, exploded.parquet
The trial's record (trial_analysis.py names each number) joins its row of the results.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from analysis.trial_analysis import analyze_trial, merge_records
from analysis.verdicts import changed_answers
from grid.bench import Bench, BuiltinScoring, Keys
from grid.categorize import Categorization
from grid.trials import Trials

if TYPE_CHECKING:
    from grid.run import Run

# An analysis is pandas on one core; half a CPU leaves room for the Ray Data pipeline of
# the next adapter's categorization, which runs beside it (docs/design.md, "Ray facts": starved stages hang).
ANALYSIS_CPUS = 0.5


def evaluate_trials(run: Run, base: Categorization, trials: Trials, bench: Bench | None = None) -> pd.DataFrame:
    """The trials' results with every finished trial's analysis record added.

    Each trial's mix is the one the trial composed (trials.mixes). The adapters are
    categorized in passes of `generators.adapters_per_pass`, each pass one Ray Data pool over
    the cluster whose actors load the base model once; each adapter is cached like the base
    model, and so are the built-in benchmarks of `bench`, which the same pass scores
    (bench_trials then finds them in the cache). A pass's trials are analyzed while the
    next pass generates.
    """
    import ray

    analyze = ray.remote(num_cpus=ANALYSIS_CPUS)(analyze_trial)
    shared = [ray.put(x) for x in (run.facts, base.categories, base.generations)]

    results = trials.results
    finished = results[results["adapter"].notna() & results["error"].isna()]
    trial_of = dict(zip(finished["adapter"], finished.itertuples()))
    categorizer = run.categorizer
    # The built-in benchmarks of the same adapters (and the base model's) are scored in the
    # same passes, by the actors that hold each adapter.
    jobs = [categorizer] + ([BuiltinScoring(bench, Keys.of(run, bench))] if bench else [])
    pending = {}
    for ready in run.pool.passes(jobs, [None, *trial_of]):
        adapted = categorizer.read([a for a in ready if a is not None])
        for adapter, found in adapted.items():
            trial = trial_of[adapter]
            mix = trials.mixes[trial.trial]
            new = set(mix.loc[mix["role"] == "new", "fact_id"])
            changed_answers(trial.trial, found.generations, base.generations, new, trial.last_epoch_reliability)
            found.categories.to_parquet(run.paths.categories(trial.trial), index=False)
            found.generations.to_parquet(run.paths.generations(trial.trial), index=False)
            pending[trial.trial] = analyze.remote(*shared, found.categories, found.generations, mix)

    records = {}
    for trial, ref in pending.items():
        found = ray.get(ref)
        found.transitions.to_parquet(run.paths.analysis(trial, "transitions"), index=False)
        found.reasons.reset_index().to_parquet(run.paths.analysis(trial, "reasons"), index=False)
        found.paper_reasons.reset_index().to_parquet(run.paths.analysis(trial, "paper_reasons"), index=False)
        found.exploded.to_parquet(run.paths.analysis(trial, "exploded"), index=False)
        records[trial] = found.record

    # Beside the last epoch's (last_epoch_*, the trainer's engine and the probe), the
    # whole corpus's numbers, re-measured by the categorization engine.
    return merge_records(results, records)
