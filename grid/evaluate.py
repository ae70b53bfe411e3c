"""After the trials: every finished adapter re-categorizes the whole corpus, then one Ray
task per trial turns the two categorizations into findings (analysis/trial_analysis.py).

Stored in the run folder, per trial:
    mixes/<trial>.parquet          fact_id, role: the trial's training mix
    categories/<trial>.parquet     the adapter's categories (generations/<trial>.parquet: its answers)
    analysis/<trial>/transitions.parquet, reasons.parquet, paper_reasons.parquet, exploded.parquet
and results.parquet again, with the trial's record (trial_analysis.py names each number).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.scoring import categorize as categorize_scored
from analysis.trial_analysis import analyze_trial, merge_records
from grid.categorize import Categorization, categorize
from grid.config import ExperimentConfig
from grid.mix import compose_mix

# An analysis is pandas on one core; half a CPU leaves room for the Ray Data pipeline of
# the next adapter's categorization, which runs beside it (RAY_NOTES.md: starved stages hang).
ANALYSIS_CPUS = 0.5


def trial_mix(cfg: ExperimentConfig, facts: pd.DataFrame, base_greedy: pd.DataFrame, trial) -> pd.DataFrame:
    """The mix the trial trained on, composed again: compose_mix is deterministic in its inputs."""
    grid = cfg.grid
    mix = compose_mix(facts, base_greedy, trial.unknown, trial.extra, trial.ratio, trial.seed, grid.selection, grid.full_paraphrases)
    return mix.train[["fact_id", "role"]].drop_duplicates(ignore_index=True)


def evaluate_trials(
    cfg: ExperimentConfig, inputs, base: Categorization, results: pd.DataFrame, cache: Path, progress: bool = True
) -> pd.DataFrame:
    """`results` with every finished trial's analysis record added, stored as results.parquet.

    `inputs` is the run's grid.experiment.Inputs; `cache` the categorization cache.
    Adapters are categorized one after the other, each by a Ray Data pool of generator
    actors over the cluster, and cached by adapter like the base model. With the vLLM
    engine the pool's engines are loaded once per adapter too; serving several adapters
    per pass (VLLMEngine.generate takes the adapter per call) would save those loads.
    """
    import ray

    run = cfg.run_dir
    # The trials composed their mixes from the greedy answers' categories (grid.experiment.run_trials).
    base_greedy = categorize_scored(base.generations[base.generations["sample"] == 0])
    analyze = ray.remote(num_cpus=ANALYSIS_CPUS)(analyze_trial)
    shared = [ray.put(x) for x in (inputs.facts, base.categories, base.generations)]
    for name in ("mixes", "categories", "generations"):
        (run / name).mkdir(parents=True, exist_ok=True)

    pending = {}
    finished = results[results["adapter"].notna() & results["error"].isna()]
    for trial in finished.itertuples():
        mix = trial_mix(cfg, inputs.facts, base_greedy, trial)
        mix.to_parquet(run / "mixes" / f"{trial.trial}.parquet", index=False)
        adapted = categorize(
            inputs.facts,
            inputs.exemplars,
            inputs.model,
            cfg.prompts,
            cfg.categorize,
            cache,
            adapter=trial.adapter,
            trust_remote_code=cfg.model.trust_remote_code,
            progress=progress,
            scoring=cfg.scoring,
        )
        adapted.categories.to_parquet(run / "categories" / f"{trial.trial}.parquet", index=False)
        adapted.generations.to_parquet(run / "generations" / f"{trial.trial}.parquet", index=False)
        # Analyzed while the next adapter generates.
        pending[trial.trial] = analyze.remote(*shared, adapted.categories, adapted.generations, mix)

    records = {}
    for trial, ref in pending.items():
        found = ray.get(ref)
        folder = run / "analysis" / trial
        folder.mkdir(parents=True, exist_ok=True)
        found.transitions.to_parquet(folder / "transitions.parquet", index=False)
        found.reasons.reset_index().to_parquet(folder / "reasons.parquet", index=False)
        found.paper_reasons.reset_index().to_parquet(folder / "paper_reasons.parquet", index=False)
        found.exploded.to_parquet(folder / "exploded.parquet", index=False)
        records[trial] = found.record

    # The re-measured reliability replaces the last epoch's: same adapter, same prompts.
    results = merge_records(results, records)
    results.to_parquet(run / "results.parquet", index=False)
    return results
