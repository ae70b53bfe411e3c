"""Categorize every fact for a model (or model + adapter) with Ray Data (docs/protocol.md §2).

facts -> few-shot prompts -> a pool of generator actors -> parquet shards -> scoring -> categories.

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
from grid.generate import GENERATION_COLUMNS, GeneratorsConfig, finished_facts, generate_shards, read_shards, resolved_engine


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


def categorize(
    facts: pd.DataFrame,
    exemplars: pd.DataFrame,
    model: str,
    prompts: PromptConfig,
    cfg: GeneratorsConfig,
    cache: str | Path,
    adapter: str | None = None,
    trust_remote_code: bool = False,
    progress: bool = True,
    scoring: ScoringConfig = ScoringConfig(),
) -> Categorization:
    """Generate (or read from the cache) every fact's answers, then score them with
    `scoring` and categorize."""
    engine = resolved_engine(cfg.engine)
    key = categorization_key(model, adapter, facts, exemplars, prompts, engine)
    folder = Path(cache) / "categorize" / key
    cached = (folder / "generations.parquet").exists()
    if cached:
        gens = pd.read_parquet(folder / "generations.parquet")
    else:
        meta = {"model": model, "adapter": adapter, "facts": len(facts), "prompts": prompts.model_dump(), "engine": engine}
        gens = generate(facts, exemplars, model, prompts, cfg, folder, meta, adapter, trust_remote_code, progress)
    gens = score_generations(gens, facts, scoring.match)
    return Categorization(gens, categories_from_scores(gens), key, cached)


def generate(
    facts, exemplars, model, prompts, cfg, folder: Path, meta: dict, adapter, trust_remote_code, progress
) -> pd.DataFrame:
    """The raw generations of every fact, generated into `folder`'s shards (those already
    there are kept) and stored as generations.parquet, which marks the key finished;
    `meta` (what the key stands for, readable) goes beside them as meta.json."""
    shards = folder / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    per_fact = prompts.sets * (1 + prompts.samples)
    todo = facts[~facts["fact_id"].isin(finished_facts(read_shards(shards), per_fact))]
    if len(todo):
        decoding = Decoding(prompts.max_new_tokens, prompts.samples, prompts.temperature, prompts.top_k, prompts.seed)
        table = build_prompts(todo, exemplars, prompts)
        generate_shards(table, model, decoding, cfg, shards, adapter, trust_remote_code, progress, desc="categorize")
    gens = read_shards(shards).drop_duplicates(["fact_id", "prompt_set", "sample"])
    gens = gens.sort_values(["fact_id", "prompt_set", "sample"], ignore_index=True)[GENERATION_COLUMNS]
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    # Written last, and renamed into place: its presence marks the key as finished, so a
    # kill mid-write must not leave a half file under that name.
    gens.to_parquet(folder / "generations.parquet.tmp", index=False)
    (folder / "generations.parquet.tmp").replace(folder / "generations.parquet")
    return gens


