"""Categorize every fact for a model (or model + adapter) with Ray Data (docs/protocol.md §2).

facts -> few-shot prompts -> a pool of generator actors -> parquet shards -> scoring -> categories.
The adapters of a grid are categorized in passes: one pool answers several adapters' prompts.

The raw generations live in `<cache>/categorize/<key>/`, where the key covers what
changes the generated text: the model, the adapter, the facts' questions, the protocol
and the engine (its resolved kind and dtype). A finished key is read back instead of
generated again; an interrupted one keeps every shard it wrote and generates only the
facts that are missing. Scores and categories are never cached: they are computed from
the raw outputs every time (cheap pandas), so a change of the scoring code or of
`scoring.match` can never reuse a stale categorization.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from actors.engines import Decoding
from analysis.scoring import ScoringConfig, categories_from_scores, score_generations
from grid.cache import digest, frame_fingerprint, path_fingerprint
from grid.data.prompts import PromptConfig, build_prompts, protocol_key
from grid.generate import GENERATION_COLUMNS, PASS_COLUMNS, Pool, Work, finished_facts, pass_rows, read_shards, resolved_engine


@dataclass
class Categorization:
    generations: pd.DataFrame  # scored: fact_id, prompt_set, sample, output, answer, correct, refused
    categories: pd.DataFrame
    key: str
    cached: bool  # the raw generations were read from the cache

    @cached_property
    def greedy(self) -> pd.DataFrame:
        """Categories from the greedy answers (sample 0) alone: what a trial measures, so what
        its mix is composed from and its shifts are counted against."""
        return categories_from_scores(self.generations[self.generations["sample"] == 0])


def categorization_key(
    model: str, adapter: str | None, facts: pd.DataFrame, exemplars: pd.DataFrame, prompts: PromptConfig, engine: dict
) -> str:
    """The key of the raw generations; `engine` is resolved_engine's answer. The aliases
    are not part of it: they only score, and scoring happens on every read."""
    return digest(
        path_fingerprint(model),
        path_fingerprint(adapter),
        frame_fingerprint(facts[["fact_id", "question", "relation"]]),
        protocol_key(prompts, exemplars),
        engine,
    )


class Categorizer:
    """The categorization job (grid/generate.py Job): where each adapter's raw generations
    are cached, the rows a pass still needs for them, and their scored categories."""

    def __init__(self, facts, exemplars, prompts: PromptConfig, scoring: ScoringConfig, pool: Pool, cache: str | Path):
        self.facts, self.exemplars, self.prompts, self.scoring = facts, exemplars, prompts, scoring
        self.engine = resolved_engine(pool.cfg.engine)
        self.model, self.cache = pool.model, Path(cache)
        self.folders: dict[str | None, Path] = {}
        self.meta = {"model": pool.model, "facts": len(facts), "prompts": prompts.model_dump(), "engine": self.engine}
        self.decoding = Decoding(prompts.max_new_tokens, prompts.samples, prompts.temperature, prompts.top_k, prompts.seed)

    def folder(self, adapter: str | None) -> Path:
        if adapter not in self.folders:  # a key hashes the model's and the adapter's files: once each
            key = categorization_key(self.model, adapter, self.facts, self.exemplars, self.prompts, self.engine)
            self.folders[adapter] = self.cache / "categorize" / key
        return self.folders[adapter]

    def missing(self, adapters: list[str | None]) -> list[str | None]:
        return [a for a in adapters if not (self.folder(a) / "generations.parquet").exists()]

    def work(self, adapters: list[str | None]) -> Work:
        """The rows that generate every fact's answers for each of `adapters` the cache
        lacks, but those of facts whose shards are all there (a killed pass resumes);
        finished, each adapter's generations.parquet, which marks its key finished, and
        beside it what the key stands for, readable, as meta.json."""
        folders = {a: self.folder(a) for a in self.missing(adapters)}
        prompts = self.prompts
        per_fact = prompts.sets * (1 + prompts.samples)
        table = build_prompts(self.facts, self.exemplars, prompts)  # the same prompts for every adapter
        rows = []
        for adapter, folder in folders.items():
            shards = folder / "shards"
            shards.mkdir(parents=True, exist_ok=True)
            done = finished_facts(read_shards(shards), per_fact)
            rows.append(pass_rows(shards, adapter, "answer", table[~table["fact_id"].isin(done)]))

        def finish() -> None:
            for adapter, folder in folders.items():
                gens = read_shards(folder / "shards").drop_duplicates(["fact_id", "prompt_set", "sample"])
                gens = gens.sort_values(["fact_id", "prompt_set", "sample"], ignore_index=True)[GENERATION_COLUMNS]
                (folder / "meta.json").write_text(json.dumps({**self.meta, "adapter": adapter}, indent=1))
                # Written last, and renamed into place: its presence marks the key as finished, so a
                # kill mid-write must not leave a half file under that name.
                gens.to_parquet(folder / "generations.parquet.tmp", index=False)
                (folder / "generations.parquet.tmp").replace(folder / "generations.parquet")

        table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=PASS_COLUMNS)
        return Work(table, finish, "categorize", self.decoding)

    def read(self, adapters: list[str | None], cached: set = frozenset()) -> dict[str | None, Categorization]:
        """Each adapter's generations, scored with `scoring` and categorized (`cached`: those
        that the cache held before the pass)."""
        out = {}
        for adapter in dict.fromkeys(adapters):
            folder = self.folder(adapter)
            gens = score_generations(pd.read_parquet(folder / "generations.parquet"), self.facts, self.scoring.match)
            out[adapter] = Categorization(gens, categories_from_scores(gens), folder.name, adapter in cached)
        return out


def categorize(job: Categorizer, pool: Pool, adapters: tuple[str | None, ...] | list[str | None] = (None,)) -> dict[str | None, Categorization]:
    """Every fact's answers for the model with each of `adapters` loaded (None: the base
    model alone), read from the cache or generated in passes of the pool, scored and
    categorized; each adapter is cached under its own key."""
    cached = set(adapters) - set(job.missing(adapters))
    pool.run([job], adapters)
    return job.read(adapters, cached)
