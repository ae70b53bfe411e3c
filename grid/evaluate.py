"""After the trials: every finished adapter re-categorizes the whole corpus, then one Ray
task per trial turns the two categorizations into findings (analysis/trial_analysis.py).

Stored in the run folder, per trial:
    categories/<trial>.parquet     the adapter's categories (generations/<trial>.parquet: its answers)
    analysis/<trial>/transitions.parquet, reasons.parquet, paper_reasons.parquet, exploded.parquet
The trial's record (trial_analysis.py names each number) joins its row of the results.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from analysis.trial_analysis import analyze_trial, merge_records
from grid.categorize import Categorization
from grid.trials import Trials

if TYPE_CHECKING:
    from grid.run import Run

# An analysis is pandas on one core; half a CPU leaves room for the Ray Data pipeline of
# the next adapter's categorization, which runs beside it (docs/design.md, "Ray facts": starved stages hang).
ANALYSIS_CPUS = 0.5


def evaluate_trials(run: Run, base: Categorization, trials: Trials) -> pd.DataFrame:
    """The trials' results with every finished trial's analysis record added.

    Each trial's mix is the one the trial composed (trials.mixes). Adapters are categorized
    one after the other, each by a Ray Data pool of generator actors over the cluster, and
    cached by adapter like the base model. With the vLLM engine the pool's engines are
    loaded once per adapter too; serving several adapters per pass (VLLMEngine.generate
    takes the adapter per call) would save those loads.
    """
    import ray

    analyze = ray.remote(num_cpus=ANALYSIS_CPUS)(analyze_trial)
    shared = [ray.put(x) for x in (run.facts, base.categories, base.generations)]

    pending = {}
    results = trials.results
    finished = results[results["adapter"].notna() & results["error"].isna()]
    for trial in finished.itertuples():
        adapted = run.categorize(adapter=trial.adapter)
        adapted.categories.to_parquet(run.table("categories", trial.trial), index=False)
        adapted.generations.to_parquet(run.table("generations", trial.trial), index=False)
        # Analyzed while the next adapter generates.
        pending[trial.trial] = analyze.remote(*shared, adapted.categories, adapted.generations, trials.mixes[trial.trial])

    records = {}
    for trial, ref in pending.items():
        found = ray.get(ref)
        folder = run.folder / "analysis" / trial
        folder.mkdir(parents=True, exist_ok=True)
        found.transitions.to_parquet(folder / "transitions.parquet", index=False)
        found.reasons.reset_index().to_parquet(folder / "reasons.parquet", index=False)
        found.paper_reasons.reset_index().to_parquet(folder / "paper_reasons.parquet", index=False)
        found.exploded.to_parquet(folder / "exploded.parquet", index=False)
        records[trial] = found.record

    # The re-measured reliability replaces the last epoch's: same adapter, same prompts.
    return merge_records(results, records)
