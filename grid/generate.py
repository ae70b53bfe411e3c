"""The generator pool: chat prompts answered, and chats scored, by a pool of Generator actors
(actors/generator.py) as a Ray Data job, one parquet shard per finished batch. Every job that
generates or scores runs on it (grid/categorize.py, grid/paraphrase.py, grid/bench.py), so
they spread over the cluster and resume alike. One pass may serve several adapters and
several jobs (each row names its adapter and the folder its result goes to): they share the
pool, whose actors load the base model once for the whole pass."""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from tqdm.auto import tqdm

from actors.engines import ENGINES, Decoding, EngineConfig, Loras, pick_engine, platform
from actors.generator import BASE, Generator


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


# What a pass's rows carry (pass_rows), and what the shards of each kind of row hold.
PASS_COLUMNS = ["shards", "adapter", "kind", "fact_id", "prompt_set", "item", "messages"]
GENERATION_COLUMNS = ["fact_id", "prompt_set", "sample", "output"]
LOGLIK_COLUMNS = ["item", "fact_id", "loglik", "tokens"]
SHARD_COLUMNS = {"answer": GENERATION_COLUMNS, "loglik": LOGLIK_COLUMNS}


def pass_rows(shards: Path, adapter: str | None, kind: str, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame`'s rows as rows of a pass whose results go to the folder `shards`: kind
    "answer" asks each chat prompt of `messages` (rows fact_id, prompt_set), kind "loglik"
    scores each whole chat (rows fact_id, item: the row's place in its job's table)."""
    return pd.DataFrame(
        {
            "shards": str(shards),
            "adapter": adapter or BASE,
            "kind": kind,
            "fact_id": frame["fact_id"].to_numpy(),
            "prompt_set": frame["prompt_set"].to_numpy() if "prompt_set" in frame else -1,
            "item": frame["item"].to_numpy() if "item" in frame else -1,
            "messages": [json.dumps(list(m)) for m in frame["messages"]],
        },
        columns=PASS_COLUMNS,
    )


@dataclass
class Work:
    """One job's share of a pass: its rows (pass_rows) and what finishes the job once every
    row's result is on disk (e.g. the table that marks a cache key finished)."""

    table: pd.DataFrame
    finish: Callable[[], None]
    name: str  # for the pass's progress bar
    decoding: Decoding | None = None  # how its "answer" rows decode; None: it has none
    loglik_batch_size: int = 32  # chats per forward for its "loglik" rows


class Job(Protocol):
    """A job that runs on the pool: it knows which adapters (None: the base model) still lack
    its results, and makes the rows that give them their results."""

    def missing(self, adapters: list[str | None]) -> list[str | None]: ...

    def work(self, adapters: list[str | None]) -> Work: ...


def cut_passes(adapters: list[str | None], per_pass: int) -> list[list[str | None]]:
    """`adapters` in passes of `per_pass` LoRA adapters (what vLLM reserves memory for); the
    base model (None) takes no adapter's place and rides in the first pass."""
    loras = [a for a in dict.fromkeys(adapters) if a is not None]
    groups = [loras[i : i + per_pass] for i in range(0, len(loras), per_pass)] or [[]]
    if None in adapters:
        groups[0] = [None, *groups[0]]
    return [g for g in groups if g]


@dataclass(frozen=True)
class Pool:
    """The generator pool of a run: the model its actors load (once per pass) and their settings."""

    model: str
    cfg: GeneratorsConfig
    trust_remote_code: bool = False
    progress: bool = True

    def passes(self, jobs: list[Job], adapters: list[str | None]) -> Iterator[list[str | None]]:
        """Every job's rows for `adapters` in passes (cut_passes, of the adapters some job
        lacks), one Ray Data job each; yields the adapters whose results are all on disk:
        first those that lacked nothing, then each pass's once it is finished."""
        adapters = list(dict.fromkeys(adapters))
        lacking = set().union(*(job.missing(adapters) for job in jobs))
        if ready := [a for a in adapters if a not in lacking]:
            yield ready
        for group in cut_passes([a for a in adapters if a in lacking], self.cfg.adapters_per_pass):
            self.run_pass([job.work(group) for job in jobs], sum(a is not None for a in group))
            yield group

    def run(self, jobs: list[Job], adapters: list[str | None]) -> None:
        """`passes`, when nothing is to be done between them."""
        for _ in self.passes(jobs, adapters):
            pass

    def run_pass(self, works: list[Work], loras: int = 0) -> None:
        """The rows of several jobs in one pass of the pool (generate_shards), then each job finished."""
        works_with_rows = [w for w in works if len(w.table)]
        if works_with_rows:
            decodings = {w.decoding for w in works_with_rows if w.decoding is not None}
            if len(decodings) > 1:
                raise ValueError(f"one pass, {len(decodings)} decodings: {sorted(map(str, decodings))}")
            desc = " + ".join(w.name for w in works_with_rows) + (f" ({loras} adapters)" if loras else "")
            generate_shards(
                pd.concat([w.table for w in works_with_rows], ignore_index=True),
                self.model,
                decodings.pop() if decodings else Decoding(),
                self.cfg,
                self.trust_remote_code,
                self.progress,
                desc,
                min(w.loglik_batch_size for w in works_with_rows),
            )
        for work in works:
            work.finish()


@functools.cache
def actors_platform() -> dict:
    """actors.engines.platform() where the generator actors run: one small Ray task with a
    sliver of an actor's resources. On a cluster that is a GPU worker (the head installs
    no vllm or CUDA torch, cluster.yaml); locally, this machine. Asked once per process."""
    import ray

    gpus = ray.cluster_resources().get("GPU", 0) > 0
    task = ray.remote(platform).options(num_gpus=0.01 if gpus else 0, num_cpus=0)
    return ray.get(task.remote())


def resolved_engine(engine: EngineConfig) -> dict:
    """The engine the generator actors will use, `auto` resolved as they resolve it
    (actors.engines.pick_engine, on their platform; `vllm` where they have no vllm fails
    here, before any job), for cache keys: what its class puts there (its `resolve`: kind,
    dtype, and what else changes its numbers)."""
    found = actors_platform()
    return ENGINES[pick_engine(engine.kind, found)].resolve(engine, found)


def read_shards(shards: Path, columns: list[str] = GENERATION_COLUMNS) -> pd.DataFrame:
    """Every row written so far under `shards` (of GENERATION_COLUMNS, or LOGLIK_COLUMNS)."""
    parts = sorted(shards.glob("part-*.parquet"))
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def finished_facts(done: pd.DataFrame, per_fact: int) -> set[str]:
    """Facts with all `per_fact` of their rows in `done`: a resumed run skips them."""
    return set(done.groupby("fact_id").size().loc[lambda n: n == per_fact].index) if len(done) else set()


def generate_shards(
    table: pd.DataFrame,
    model: str,
    decoding: Decoding,
    cfg: GeneratorsConfig,
    trust_remote_code: bool = False,
    progress: bool = True,
    desc: str = "generate",
    loglik_batch_size: int = 32,
) -> None:
    """Answer or score the rows of a pass (pass_rows: each names its adapter, BASE for the
    base model, and its shards folder) with a pool of Generator actors as a Ray Data job.
    Each finished batch becomes, for each shards folder in it, a shard part-*.parquet of
    its kind's SHARD_COLUMNS. Shared by every job that generates (categorize, paraphrase,
    the built-in benchmarks), so they spread over the cluster and resume the same way."""
    import ray

    loras = Loras.serving(table["adapter"])
    if resolved_engine(cfg.engine)["kind"] == "vllm":
        loras.vllm_rank()  # an adapter vLLM cannot serve fails here, named, before the job
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
    ds = ray.data.from_pandas(table[PASS_COLUMNS]).repartition(blocks).map_batches(
        Generator,
        fn_constructor_kwargs=dict(
            model=model,
            engine=cfg.engine,
            decoding=decoding,
            trust_remote_code=trust_remote_code,
            threads=None if on_gpu else cfg.threads_per_actor,
            loras=loras,
            loglik_batch_size=loglik_batch_size,
        ),
        batch_size=per_batch,
        batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=size),
        **resources,
    )
    parts = {f: len(list(Path(f).glob("part-*.parquet"))) for f in table["shards"].unique()}
    bar = tqdm(total=len(table), unit="row", desc=desc, disable=not progress)
    for batch in ds.iter_batches(batch_size=None, batch_format="pandas"):
        # Each finished batch is on disk before the next: a kill loses at most one batch.
        for (folder, kind), rows in batch.groupby(["shards", "kind"], sort=False):
            rows[SHARD_COLUMNS[kind]].to_parquet(Path(folder) / f"part-{parts[folder]:06d}.parquet", index=False)
            parts[folder] += 1
        answered = (batch["kind"] == "answer").sum()
        bar.update(answered / (1 + decoding.samples) + len(batch) - answered)
    bar.close()
