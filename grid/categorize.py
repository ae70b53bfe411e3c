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
from grid.generate import (
    GENERATION_COLUMNS,
    PASS_COLUMNS,
    GeneratorsConfig,
    Work,
    finished_facts,
    pass_rows,
    read_shards,
    resolved_engine,
    run_pass,
)


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
    adapters: tuple[str | None, ...] | list[str | None] = (None,),
    trust_remote_code: bool = False,
    progress: bool = True,
    scoring: ScoringConfig = ScoringConfig(),
    alongside: Work | None = None,
) -> dict[str | None, Categorization]:
    """Every fact's answers for the model with each of `adapters` loaded (None: the base
    model alone), generated or read from the cache, scored with `scoring` and categorized;
    each adapter is cached under its own key. What the cache lacks is generated in passes
    of `cfg.adapters_per_pass` adapters: one Ray Data job per pass, whose actors load the
    base model once and answer every adapter's prompts. `alongside`: another job's rows
    (the benchmarks' chats of the same adapters) that join the first pass, so the actors
    that hold an adapter also score it; its own pass if nothing is missing."""
    engine = resolved_engine(cfg.engine)
    folders = {
        a: Path(cache) / "categorize" / categorization_key(model, a, facts, exemplars, prompts, engine)
        for a in dict.fromkeys(adapters)
    }
    cached = {a for a, folder in folders.items() if (folder / "generations.parquet").exists()}
    missing = [a for a in folders if a not in cached]
    groups = [missing[i : i + cfg.adapters_per_pass] for i in range(0, len(missing), cfg.adapters_per_pass)]
    meta = {"model": model, "facts": len(facts), "prompts": prompts.model_dump(), "engine": engine}
    decoding = Decoding(prompts.max_new_tokens, prompts.samples, prompts.temperature, prompts.top_k, prompts.seed)
    for n, group in enumerate(groups or ([[]] if alongside else [])):
        works = [generation_work(facts, exemplars, prompts, {a: folders[a] for a in group}, meta)]
        works += [alongside] if alongside and n == 0 else []
        desc = "categorize" if group == [None] else f"categorize {len(group)} adapters" if group else "benchmarks"
        run_pass(works, model, decoding, cfg, trust_remote_code, progress, desc)
    out = {}
    for adapter, folder in folders.items():
        gens = score_generations(pd.read_parquet(folder / "generations.parquet"), facts, scoring.match)
        out[adapter] = Categorization(gens, categories_from_scores(gens), folder.name, adapter in cached)
    return out


def generation_work(facts, exemplars, prompts: PromptConfig, folders: dict[str | None, Path], meta: dict) -> Work:
    """The rows that generate every fact's answers for each adapter of `folders` (adapter ->
    its key's folder), but those of facts whose shards are all there (a killed pass
    resumes); finished, each adapter's generations.parquet, which marks its key finished,
    and beside it `meta` (what the key stands for, readable) as meta.json."""
    per_fact = prompts.sets * (1 + prompts.samples)
    table = build_prompts(facts, exemplars, prompts)  # the same prompts for every adapter
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
            (folder / "meta.json").write_text(json.dumps({**meta, "adapter": adapter}, indent=1))
            # Written last, and renamed into place: its presence marks the key as finished, so a
            # kill mid-write must not leave a half file under that name.
            gens.to_parquet(folder / "generations.parquet.tmp", index=False)
            (folder / "generations.parquet.tmp").replace(folder / "generations.parquet")

    return Work(pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=PASS_COLUMNS), finish)
