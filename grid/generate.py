"""The generator pool: chat prompts answered by a pool of Generator actors (actors/generator.py)
as a Ray Data job, one parquet shard per finished batch. Every job that generates runs on it
(grid/categorize.py, grid/paraphrase.py), so they spread over the cluster and resume alike.
One job may ask several adapters (a row names its own): their prompts share the pool, whose
actors load the base model once for the whole job."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from tqdm.auto import tqdm

from actors.engines import Decoding, EngineConfig, Loras
from actors.generator import BASE


class GeneratorsConfig(BaseModel):
    """The `generators:` section: the pool of generator actors that every generating job
    (categorize, paraphrase) runs on, and their engine."""

    model_config = ConfigDict(extra="forbid")
    engine: EngineConfig = EngineConfig()
    actors: int | None = Field(None, ge=1, description="pool size; default one per GPU, or one per CPU")
    actors_per_gpu: int = Field(1, ge=1)
    # On CPU an actor takes a fraction of a CPU: a pool that claims every CPU starves
    # Ray Data's other stages and hangs (docs/design.md, "Ray facts").
    cpus_per_actor: float = Field(0.5, gt=0)
    threads_per_actor: int = Field(1, ge=1)
    # Larger batches hold more prompts of each exemplar set, which the engine decodes
    # together (docs/performance.md: 2,048 is 1.3x faster than 512 on the default world).
    prompts_per_batch: int = Field(2048, ge=1, description="prompts per Ray Data batch; also the unit of kept work")
    # One pass loads the base model once per actor and answers the prompts of this many
    # adapters; vLLM reserves GPU memory for as many at once (max_loras), so it is bounded.
    adapters_per_pass: int = Field(8, ge=1, description="adapters whose prompts share one generator pass")


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
    cfg: GeneratorsConfig,
    shards: dict[str, Path],
    trust_remote_code: bool = False,
    progress: bool = True,
    desc: str = "generate",
    loras: Loras = Loras(),
) -> None:
    """Answer chat prompts (table: fact_id, prompt_set, messages, and adapter: the folder to
    answer with, BASE for the base model; no column: all BASE) with a pool of Generator
    actors as a Ray Data job. Each finished batch becomes, for each adapter in it, a shard
    part-*.parquet of rows fact_id, prompt_set, sample, output in `shards[adapter]`.
    Shared by every job that generates (categorize, paraphrase), so they spread over the
    cluster and resume the same way."""
    import ray

    from actors.generator import Generator

    adapters = table["adapter"] if "adapter" in table.columns else [BASE] * len(table)
    table = pd.DataFrame(
        {
            "adapter": list(adapters),
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
    # At least one batch per actor, so a small job still keeps the whole pool busy. Blocks
    # are consecutive rows, so a batch mostly holds one adapter's prompts.
    blocks = max(size, -(-len(table) // cfg.prompts_per_batch))
    per_batch = -(-len(table) // blocks)
    ds = ray.data.from_pandas(table).repartition(blocks).map_batches(
        Generator,
        fn_constructor_kwargs=dict(
            model=model,
            engine=cfg.engine,
            decoding=decoding,
            trust_remote_code=trust_remote_code,
            threads=None if on_gpu else cfg.threads_per_actor,
            loras=loras,
        ),
        batch_size=per_batch,
        batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=size),
        **resources,
    )
    pairs = table[["adapter", "fact_id"]].drop_duplicates()
    per_pair = len(table) / len(pairs) * (1 + decoding.samples)  # output rows per (adapter, fact)
    parts = {a: len(list(folder.glob("part-*.parquet"))) for a, folder in shards.items()}
    bar = tqdm(total=len(pairs), unit="fact", desc=desc, disable=not progress)
    for batch in ds.iter_batches(batch_size=None, batch_format="pandas"):
        # Each finished batch is on disk before the next: a kill loses at most one batch.
        for adapter, rows in batch.groupby("adapter", sort=False):
            rows.drop(columns="adapter").to_parquet(shards[adapter] / f"part-{parts[adapter]:06d}.parquet", index=False)
            parts[adapter] += 1
        bar.update(len(batch) / per_pair)
    bar.close()
