"""A run: the resolved config, its inputs (model, facts, exemplars), its folder on disk
(grid/run_folder.py) and its cache, handed whole to every stage (docs/design.md).
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
from grid.run_folder import RunFolder
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
        paths = RunFolder(cfg.run_dir)
        dump_config(cfg, paths.config)
        world = None
        if cfg.model.name == "world" or cfg.corpus.source == "world":
            world = build(cfg.world, progress=progress)  # every `world:` knob reaches the build
        model = str(world) if cfg.model.name == "world" else cfg.model.name
        if cfg.corpus.source == "world":
            facts, exemplars = read_facts(world / "facts.parquet"), read_facts(world / "exemplars.parquet")
            write_facts(facts, paths.facts)
        else:
            import_facts(cfg.corpus, paths.facts)
            facts, exemplars = read_facts(paths.facts), load_exemplars(cfg.corpus)
        return cls(cfg, model, facts, exemplars, progress)

    @property
    def paths(self) -> RunFolder:
        return RunFolder(self.cfg.run_dir)

    @property
    def cache(self) -> Path:
        """`<storage>/cache/`: shared by every experiment in the same storage, so no two runs
        compute the same thing (categorizations, paraphrases, benchmarks)."""
        return storage_cache(self.cfg.run_dir.parent)

    @property
    def trust_remote_code(self) -> bool:
        return self.cfg.model.trust_remote_code

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
        paths = self.paths
        base.generations.to_parquet(paths.generations("base"), index=False)
        base.categories.to_parquet(paths.categories("base"), index=False)
        category_distribution(base.categories).to_csv(paths.base_distribution)
        agreement = reference_agreement(base.categories, self.facts)
        if agreement is not None:
            agreement.to_csv(paths.base_reference_agreement)
        return base
