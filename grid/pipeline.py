"""One experiment, stage by stage: `kgrid run` and `kgrid tune` (docs/design.md).

Each stage takes the Run and what the stages before it made, and returns what it made:

    Run.open              config -> model, facts, exemplars (config.yaml, facts.parquet)
    Run.categorize_base   the base model's categories: what mixes are made of
    paraphrase_unknown    (paraphrase: section) the Unknown facts' paraphrases filled
    run_trials            Ray Tune: each trial composes its mix once, trains, reports per epoch
    evaluate_trials       each adapter re-categorizes the corpus (and scores the built-in
                          benchmarks in the same pass); findings per trial
    bench_trials          (bench: section) benchmarks per adapter, the trial's mix held out
    results.parquet       written here, once, when the last stage is done; then the report
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from analysis.verdicts import pareto_front
from grid.bench import bench_trials, prepare, trial_bench
from grid.config import ExperimentConfig
from grid.evaluate import evaluate_trials
from grid.paraphrase import paraphrase_unknown
from grid.report import build_report
from grid.run import Run
from grid.trials import Mode, run_trials


def run_experiment(cfg: ExperimentConfig, mode: Mode, resume: bool = False, progress: bool = True) -> pd.DataFrame:
    """Base categories, the grid or the search on Ray Tune, every finished adapter
    evaluated on the whole corpus and benchmarked (the `bench:` section); results and the
    report stored in the run folder. Returns the results."""
    clock = Stopwatch()
    run = Run.open(cfg, progress)
    clock.lap("inputs")
    base = run.categorize_base()
    clock.lap("categorize_base")
    if cfg.paraphrase is not None:
        run = paraphrase_unknown(run, base.categories)
        clock.lap("paraphrase")
    bench = prepare(cfg.bench, run.facts, base.greedy, run.exemplars, cfg.prompts) if cfg.bench.enabled else None
    in_trials = trial_bench(run, bench) if cfg.search.uses_bench else None
    trials = run_trials(run, base, mode, in_trials, resume)
    clock.lap("trials")
    results = evaluate_trials(run, base, trials, bench)
    clock.lap("evaluate")
    if mode == "search" and cfg.search.multi_objective:
        # On the numbers re-measured over the whole corpus, not the search's probe estimates.
        pareto_front(results).to_parquet(run.paths.pareto, index=False)
    if bench is not None:
        results = bench_trials(run, bench, results, trials.mixes)
        clock.lap("benchmarks")
    results.to_parquet(run.paths.results, index=False)
    build_report(run.paths.root)
    clock.lap("report")
    clock.save(run.paths.timings)
    return results


class Stopwatch:
    """Wall seconds per phase of a run, stored as timings.json (docs/performance.md reads them)."""

    def __init__(self):
        self.last, self.laps = time.perf_counter(), {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name], self.last = round(now - self.last, 2), now

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.laps, indent=1))
