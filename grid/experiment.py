"""From a config to the inputs of a run, and the run's folder on disk (DESIGN.md)."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from analysis.scoring import categorize as categorize_scored
from analysis.scoring import UNKNOWN, category_distribution, reference_agreement
from grid.benchmarks import benchmark_trials, prepare, trial_bench
from grid.categorize import Categorization, categorize
from grid.config import ExperimentConfig, dump_config
from grid.corpus import import_facts, load_exemplars
from grid.evaluate import evaluate_trials
from grid.facts import read_facts, write_facts
from grid.paraphrase import paraphrase, write_paraphrased
from grid.report import build_report
from grid.tune import Mode, TrialContext, collect, make_tuner, pareto_front
from grid.tracking import tracking_callbacks
from grid.world import build


@dataclass
class Inputs:
    model: str
    facts: pd.DataFrame
    exemplars: pd.DataFrame


def resolve_inputs(cfg: ExperimentConfig, progress: bool = True) -> Inputs:
    """The model folder (or hub id), the fact table and the exemplar pool a config names;
    the resolved config and the facts (with their load summary) go into the run folder."""
    run = cfg.run_dir
    dump_config(cfg, run / "config.yaml")
    world = None
    if cfg.model.name == "world" or cfg.corpus.source == "world":
        world = build(cfg.world, progress=progress)  # every `world:` knob reaches the build
    model = str(world) if cfg.model.name == "world" else cfg.model.name
    if cfg.corpus.source == "world":
        write_facts(read_facts(world / "facts.parquet"), run / "facts.parquet")
        exemplars = read_facts(world / "exemplars.parquet")
    else:
        import_facts(cfg.corpus, run / "facts.parquet")
        exemplars = load_exemplars(cfg.corpus)
    return Inputs(model, read_facts(run / "facts.parquet"), exemplars)


def cache_dir(cfg: ExperimentConfig) -> Path:
    """Shared by every experiment in the same storage, so no two runs compute the same thing."""
    return cfg.run_dir.parent / "cache"


def categorize_base(cfg: ExperimentConfig, inputs: Inputs, progress: bool = True) -> Categorization:
    """Categorize the corpus for the base model and store it in the run folder."""
    run = cfg.run_dir
    result = categorize(
        inputs.facts,
        inputs.exemplars,
        inputs.model,
        cfg.prompts,
        cfg.categorize,
        cache_dir(cfg),
        trust_remote_code=cfg.model.trust_remote_code,
        progress=progress,
        scoring=cfg.scoring,
    )
    for name, frame in (("generations", result.generations), ("categories", result.categories)):
        (run / name).mkdir(parents=True, exist_ok=True)
        frame.to_parquet(run / name / "base.parquet", index=False)
    summary = category_distribution(result.categories)
    summary.to_csv(run / "categories" / "base_distribution.csv")
    agreement = reference_agreement(result.categories, inputs.facts)
    if agreement is not None:
        agreement.to_csv(run / "categories" / "base_reference_agreement.csv")
    return result


def paraphrase_unknown(cfg: ExperimentConfig, inputs: Inputs, base: pd.DataFrame, progress: bool = True) -> Inputs:
    """Fill the paraphrases of the Unknown facts (the only ones a paraphrase mix draws) up
    to `paraphrase.per_question`; the run's facts.parquet is rewritten with them and the
    judging summary is stored beside it as paraphrase.summary.json."""
    para = cfg.paraphrase
    result = paraphrase(
        inputs.facts,
        para.model or inputs.model,
        para,
        cfg.categorize,
        cache_dir(cfg),
        trust_remote_code=para.trust_remote_code if para.model else cfg.model.trust_remote_code,
        progress=progress,
        among=base.loc[base["category"] == UNKNOWN, "fact_id"],
    )
    out = write_paraphrased(result, cfg.run_dir / "facts.parquet", cfg.run_dir / "paraphrase.summary.json")
    return replace(inputs, facts=read_facts(out))


def run_trials(cfg: ExperimentConfig, mode: Mode, resume: bool = False, progress: bool = True) -> pd.DataFrame:
    """Base categories, the grid or the search on Ray Tune, every finished adapter
    evaluated on the whole corpus and benchmarked (the `bench:` section); results and the
    report stored in the run folder."""
    clock = Stopwatch()
    inputs = resolve_inputs(cfg, progress)
    clock.lap("inputs")
    base = categorize_base(cfg, inputs, progress)
    clock.lap("categorize_base")
    greedy = base.generations[base.generations["sample"] == 0]
    categories = categorize_scored(greedy)
    if cfg.paraphrase is not None:
        inputs = paraphrase_unknown(cfg, inputs, categories, progress)
        clock.lap("paraphrase")
    bench = prepare(cfg.bench, inputs.facts, categories, inputs.exemplars, cfg.prompts) if cfg.bench.enabled else None
    ctx = TrialContext(
        model=inputs.model,
        facts=inputs.facts,
        exemplars=inputs.exemplars,
        base=categories,
        prompts=cfg.prompts,
        lora=cfg.lora,
        selection=cfg.grid.selection,
        full_paraphrases=cfg.grid.full_paraphrases,
        probe_size=cfg.grid.probe_size,
        reliability_floor=cfg.search.reliability_floor,
        match=cfg.scoring.match,
        trust_remote_code=cfg.model.trust_remote_code,
        objective=cfg.search.objective,
        bench_max_drop=cfg.search.bench_max_drop,
        bench=trial_bench(bench, inputs.model, cache_dir(cfg), cfg.model.trust_remote_code) if cfg.search.uses_bench else None,
    )
    storage = cfg.storage_uri
    tuner = make_tuner(ctx, mode, cfg.grid, cfg.search, cfg.resources, storage, resume, tracking_callbacks(cfg))
    results, history = collect(tuner.fit())
    clock.lap("trials")
    run = cfg.run_dir
    results.to_parquet(run / "results.parquet", index=False)
    history.to_parquet(run / "history.parquet", index=False)
    results = evaluate_trials(cfg, inputs, base, results, cache_dir(cfg), progress)
    clock.lap("evaluate")
    if mode == "search" and cfg.search.multi_objective:
        # On the numbers re-measured over the whole corpus, not the search's probe estimates.
        pareto_front(results).to_parquet(run / "pareto.parquet", index=False)
    if bench is not None:
        results = benchmark_trials(run, inputs.model, bench, results, cache_dir(cfg), cfg.model.trust_remote_code)
        clock.lap("benchmarks")
    build_report(run)
    clock.lap("report")
    clock.save(run / "timings.json")
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
