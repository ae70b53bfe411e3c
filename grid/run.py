"""A run: the resolved config, its inputs (model, facts, exemplars), its folder on disk and
its cache, handed whole to every stage (docs/design.md).

The run folder, `<storage>/<experiment>/`:

    config.yaml                  the resolved config (every default filled in)
    facts.parquet                the fact table the run studies (with LLM paraphrases, if asked)
    generations/<name>.parquet   scored answers: base (the base model) or a trial's adapter
    categories/<name>.parquet    categories of the same; base_distribution.csv, base_reference_agreement.csv
    mixes/<trial>.parquet        fact_id, role: the mix the trial trained on, as the trial composed it
    analysis/<trial>/            the trial's findings (grid/evaluate.py)
    history.parquet              one row per trial and epoch
    results.parquet              one row per trial: written once, by the last stage (grid/pipeline.py)
    benchmarks.parquet, pareto.parquet, timings.json, report/
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.scoring import category_distribution, reference_agreement
from grid.cache import storage_cache
from grid.categorize import Categorization, Categorizer, categorize
from grid.config import ExperimentConfig, dump_config
from grid.data.facts import read_facts, write_facts
from grid.data.sources import import_facts, load_exemplars
from grid.generate import Pool
from grid.world.graph import build


@dataclass(frozen=True)
class Run:
    cfg: ExperimentConfig
    model: str  # the model folder (the micro-world's, when model.name is "world") or a hub id
    facts: pd.DataFrame
    exemplars: pd.DataFrame
    progress: bool = True

    @classmethod
    def open(cls, cfg: ExperimentConfig, progress: bool = True) -> Run:
        """The model, fact table and exemplar pool the config names; the resolved config and
        the facts (with their load summary) go into the run folder."""
        folder = cfg.run_dir
        dump_config(cfg, folder / "config.yaml")
        world = None
        if cfg.model.name == "world" or cfg.corpus.source == "world":
            world = build(cfg.world, progress=progress)  # every `world:` knob reaches the build
        model = str(world) if cfg.model.name == "world" else cfg.model.name
        if cfg.corpus.source == "world":
            facts, exemplars = read_facts(world / "facts.parquet"), read_facts(world / "exemplars.parquet")
            write_facts(facts, folder / "facts.parquet")
        else:
            import_facts(cfg.corpus, folder / "facts.parquet")
            facts, exemplars = read_facts(folder / "facts.parquet"), load_exemplars(cfg.corpus)
        return cls(cfg, model, facts, exemplars, progress)

    @property
    def folder(self) -> Path:
        return self.cfg.run_dir

    @property
    def cache(self) -> Path:
        """`<storage>/cache/`: shared by every experiment in the same storage, so no two runs
        compute the same thing (categorizations, paraphrases, benchmarks)."""
        return storage_cache(self.folder.parent)

    @property
    def trust_remote_code(self) -> bool:
        return self.cfg.model.trust_remote_code

    def table(self, kind: str, name: str) -> Path:
        """`<run>/<kind>/<name>.parquet` (kind: generations, categories, mixes), its folder made."""
        folder = self.folder / kind
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{name}.parquet"

    @property
    def pool(self) -> Pool:
        """The generator pool every generating job of the run runs on (grid/generate.py)."""
        return Pool(self.model, self.cfg.generators, self.trust_remote_code, self.progress)

    @property
    def categorizer(self) -> Categorizer:
        """The run's categorization job, for any adapter of its model (grid/categorize.py)."""
        cfg = self.cfg
        return Categorizer(self.facts, self.exemplars, cfg.prompts, cfg.scoring, self.pool, self.cache)

    def categorize_base(self) -> Categorization:
        """The base model's categories, stored as generations/ and categories/base.parquet with
        their distribution (and the agreement with reference labels, where the facts have them)."""
        base = categorize(self.categorizer, self.pool)[None]
        base.generations.to_parquet(self.table("generations", "base"), index=False)
        base.categories.to_parquet(self.table("categories", "base"), index=False)
        category_distribution(base.categories).to_csv(self.folder / "categories" / "base_distribution.csv")
        agreement = reference_agreement(base.categories, self.facts)
        if agreement is not None:
            agreement.to_csv(self.folder / "categories" / "base_reference_agreement.csv")
        return base
