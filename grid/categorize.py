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

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from tqdm.auto import tqdm

from actors.engines import Decoding, EngineConfig
from analysis.scoring import ScoringConfig, score_generations
from analysis.scoring import categorize as categorize_scored
from grid.cache import digest, frame_fingerprint, path_fingerprint
from grid.prompts import PromptConfig, build_prompts, protocol_key


class CategorizeConfig(BaseModel):
    """How the categorization is spread over the cluster."""

    model_config = ConfigDict(extra="forbid")
    engine: EngineConfig = EngineConfig()
    actors: int | None = Field(None, ge=1, description="pool size; default one per GPU, or one per CPU")
    actors_per_gpu: int = Field(1, ge=1)
    # On CPU an actor takes a fraction of a CPU: a pool that claims every CPU starves
    # Ray Data's other stages and hangs (RAY_NOTES.md).
    cpus_per_actor: float = Field(0.5, gt=0)
    threads_per_actor: int = Field(1, ge=1)
    # Larger batches hold more prompts of each exemplar set, which the engine decodes
    # together (docs/performance.md: 2,048 is 1.3x faster than 512 on the default world).
    prompts_per_batch: int = Field(2048, ge=1, description="prompts per Ray Data batch; also the unit of kept work")


@dataclass
class Categorization:
    generations: pd.DataFrame  # scored: fact_id, prompt_set, sample, output, answer, correct, refused
    categories: pd.DataFrame
    key: str
    cached: bool  # the raw generations were read from the cache


GENERATION_COLUMNS = ["fact_id", "prompt_set", "sample", "output"]


def resolved_engine(engine: EngineConfig) -> dict:
    """The engine kind and dtype the generator actors will use, `auto` resolved as they
    resolve it (actors.engines.pick_engine: vLLM where there is a GPU and vllm is
    installed; the transformers engine loads bfloat16 on a GPU, float32 on a CPU; vLLM's
    `auto` is the model's own dtype, which the model's fingerprint covers). Read on the
    driver: the cluster's GPUs, and vllm as installed here (the cluster runs one image)."""
    import ray

    gpus = ray.cluster_resources().get("GPU", 0) > 0
    kind = engine.kind
    if kind == "auto":
        kind = "vllm" if gpus and importlib.util.find_spec("vllm") is not None else "transformers"
    dtype = engine.dtype
    if dtype == "auto" and kind == "transformers":
        dtype = "bfloat16" if gpus else "float32"
    return {"kind": kind, "dtype": dtype}


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
    cfg: CategorizeConfig,
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
    return Categorization(gens, categorize_scored(gens), key, cached)


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


def read_shards(shards: Path) -> pd.DataFrame:
    """Every generation row written so far under `shards`: fact_id, prompt_set, sample, output."""
    parts = sorted(shards.glob("part-*.parquet"))
    if not parts:
        return pd.DataFrame(columns=GENERATION_COLUMNS)
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def finished_facts(done: pd.DataFrame, per_fact: int) -> set[str]:
    """Facts with all `per_fact` of their rows in `done`: a resumed run skips them."""
    return set(done.groupby("fact_id").size().loc[lambda n: n == per_fact].index) if len(done) else set()


def generate_shards(
    table: pd.DataFrame,
    model: str,
    decoding: Decoding,
    cfg: CategorizeConfig,
    shards: Path,
    adapter: str | None = None,
    trust_remote_code: bool = False,
    progress: bool = True,
    desc: str = "generate",
) -> None:
    """Answer chat prompts (table: fact_id, prompt_set, messages) with a pool of Generator
    actors as a Ray Data job; each finished batch becomes a shard part-*.parquet of rows
    fact_id, prompt_set, sample, output. Shared by every job that generates (categorize,
    paraphrase), so they spread over the cluster and resume the same way."""
    import ray

    from actors.generator import Generator

    table = pd.DataFrame(
        {
            "fact_id": table["fact_id"],
            "prompt_set": table["prompt_set"],
            "messages": [json.dumps(list(m)) for m in table["messages"]],
        }
    )
    cpus, gpus = ray.cluster_resources().get("CPU", 1), ray.cluster_resources().get("GPU", 0)
    on_gpu = gpus > 0  # the actor then picks its engine (`auto`: vLLM if installed) on the GPU
    if on_gpu:
        size = cfg.actors or int(gpus) * cfg.actors_per_gpu
        resources = {"num_gpus": cfg.engine.tensor_parallel_size / cfg.actors_per_gpu}
    else:
        size = cfg.actors or max(1, int(cpus))
        resources = {"num_cpus": cfg.cpus_per_actor}
    # At least one batch per actor, so a small job still keeps the whole pool busy.
    blocks = max(size, -(-len(table) // cfg.prompts_per_batch))
    per_batch = -(-len(table) // blocks)
    ds = ray.data.from_pandas(table).repartition(blocks).map_batches(
        Generator,
        fn_constructor_kwargs=dict(
            model=model,
            engine=cfg.engine,
            decoding=decoding,
            adapter=adapter,
            trust_remote_code=trust_remote_code,
            threads=None if on_gpu else cfg.threads_per_actor,
        ),
        batch_size=per_batch,
        batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=size),
        **resources,
    )
    facts = table["fact_id"].nunique()
    per_fact = len(table) / facts * (1 + decoding.samples)  # output rows per fact
    start = len(list(shards.glob("part-*.parquet")))
    bar = tqdm(total=facts, unit="fact", desc=desc, disable=not progress)
    for i, batch in enumerate(ds.iter_batches(batch_size=None, batch_format="pandas")):
        # Each finished batch is on disk before the next: a kill loses at most one batch.
        batch.to_parquet(shards / f"part-{start + i:06d}.parquet", index=False)
        bar.update(len(batch) / per_fact)
    bar.close()
