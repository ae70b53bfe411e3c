"""External benchmarks of the base model and every finished adapter (docs/protocol.md §5): does
packing new facts cost general ability? The built-in tasks are scored by the generator pool
(grid/generate.py), in the same pass that re-categorizes the corpus with each adapter
(grid/evaluate.py), so the actors that hold an adapter also score it; lm-eval tasks run one
Ray task per model.

Tasks, each one column pair bench_<task>, bench_<task>_delta in the results
(analysis/benchmarks.py):

- a built-in task (analysis.benchmarks.BUILTIN: known_mc, known_ppl): its items come from
  the facts the base model knows (HighlyKnown in the base categories); each item's answer
  is scored by its log-likelihood as the assistant turn "Answer: <answer>" after its
  question in the categorization prompt of exemplar set 0 (grid/data/prompts.py).
- any other name: an lm-evaluation-harness task (the `bench` extra), e.g. mmlu 5-shot and
  truthfulqa_mc1 / truthfulqa_mc2 0-shot as in the paper, on the model with the adapter
  loaded through the harness's peft support; its score is `metric` (acc).

Held out: a trial's built-in scores leave out the facts of its own mix, and its delta
compares it with the base model on exactly the facts it kept. So each trial is measured
on as many known facts as possible, independently of the rest of the grid (a search adds
trials one by one); the base model is measured once on all of them.

Cached per (model, adapter, task) in <cache>/benchmarks/<key>/ (result.json, and for
built-in tasks items.parquet, one row per scored chat, and shards/, the scores a pass has
written so far: a killed pass resumes); the key covers the items and the engine, or the
lm-eval version, shots and limit. The run folder keeps benchmarks.parquet: per model or
trial and task, the score on all items and what produced it (the pinned task config).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from actors.engines import Engine
from analysis.benchmarks import BUILTIN, bench_record, held_out, mc_accuracy
from analysis.schema import BENCHMARK_LOG_COLUMNS
from analysis.scoring import HIGHLY_KNOWN
from analysis.trial_analysis import merge_records
from grid.bench_config import BenchConfig
from grid.cache import digest, path_fingerprint
from grid.data.prompts import PromptConfig, build_prompts, fact_rng, with_answer
from grid.generate import LOGLIK_COLUMNS, PASS_COLUMNS, Work, pass_rows, read_shards, resolved_engine

if TYPE_CHECKING:
    from grid.run import Run

# Bump when built-in items or their scoring change, so cached scores are not reused.
BENCH_FORMAT = 1


@dataclass
class Measured:
    info: dict  # task, score (on all items) and what produced it
    items: pd.DataFrame | None = None  # built-in tasks: one row per scored chat


@dataclass
class Bench:
    """A run's benchmarks: the config and the built-in tasks' items (with their chats)."""

    cfg: BenchConfig
    items: dict[str, pd.DataFrame]


def known_facts(facts: pd.DataFrame, base_greedy: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    """The facts the base model knows (HighlyKnown in its greedy categories), by fact_id."""
    known = set(base_greedy.loc[base_greedy["category"] == HIGHLY_KNOWN, "fact_id"])
    return facts[facts["fact_id"].isin(known)].sort_values("fact_id").head(limit)


def task_items(
    task: str, known: pd.DataFrame, facts: pd.DataFrame, exemplars: pd.DataFrame, prompts: PromptConfig, seed: int
) -> pd.DataFrame:
    """A built-in task's items (its `items`, distractors seeded by `seed`), each question and
    answer turned into the chat that is scored: the categorization prompt of exemplar set 0
    with the answer as the last turn (column chat, in place of question and answer)."""
    items = BUILTIN[task].items(known, facts, lambda fact_id: fact_rng(seed, fact_id))
    asked = items[["fact_id", "question"]]
    if "relation" in known.columns:  # slick mode draws exemplars by relation
        asked = asked.assign(relation=known.set_index("fact_id").loc[items["fact_id"], "relation"].values)
    table = build_prompts(asked, exemplars, prompts.model_copy(update={"sets": 1}))
    chats = [with_answer(m, a) for m, a in zip(table["messages"], items["answer"])]
    return items.drop(columns=["question", "answer"]).assign(chat=chats)


def prepare(
    cfg: BenchConfig, facts: pd.DataFrame, base_greedy: pd.DataFrame, exemplars: pd.DataFrame, prompts: PromptConfig
) -> Bench:
    """The built-in tasks' items for this corpus and base model; fails if a task has none."""
    known = known_facts(facts, base_greedy, cfg.limit)
    items = {task: task_items(task, known, facts, exemplars, prompts, cfg.seed) for task in cfg.tasks if task in BUILTIN}
    for task, frame in items.items():
        if frame.empty:
            raise ValueError(f"bench.tasks: {task} has no items ({len(known)} HighlyKnown facts, none with {BUILTIN[task].needs})")
    if cfg.lm_eval_tasks:
        lm_eval_version()  # fails now, before any trial, when the extra is missing
    return Bench(cfg, items)


def lm_eval_version() -> str:
    try:
        import lm_eval
    except ImportError:
        raise ValueError("bench.tasks names lm-eval tasks: install the harness with pip install -e '.[bench]'") from None
    return lm_eval.__version__


def _spec(bench: Bench, task: str, engine: dict) -> dict:
    """What a task's score depends on besides the model and adapter: its cache key and record.
    A built-in task's scores also depend on the engine that computes them (`engine`:
    resolved_engine's answer; vLLM and transformers differ in their last digits)."""
    if task in BUILTIN:
        chats = bench.items[task][["fact_id", "chat"]].values.tolist()
        return {"kind": "builtin", "format": BENCH_FORMAT, "items": digest(chats), "count": len(chats), "engine": engine}
    cfg = bench.cfg
    return {"kind": "lm_eval", "lm_eval": lm_eval_version(), "num_fewshot": cfg.num_fewshot.get(task), "limit": cfg.limit, "metric": cfg.metric}


@dataclass
class Keys:
    """Where each (model, adapter, task) result lives in the cache, and what it records."""

    run: Run
    specs: dict[str, dict]  # task -> _spec
    model: str  # the model's fingerprint, taken once

    @classmethod
    def of(cls, run: Run, bench: Bench) -> Keys:
        engine = resolved_engine(run.cfg.generators.engine)
        return cls(run, {task: _spec(bench, task, engine) for task in bench.cfg.tasks}, path_fingerprint(run.model))

    def folder(self, adapter: str | None, task: str) -> Path:
        return self.run.cache / "benchmarks" / digest(self.model, path_fingerprint(adapter), task, self.specs[task])

    def info(self, adapter: str | None, task: str) -> dict:
        return {"task": task, "model": self.run.model, "adapter": adapter, "key": self.folder(adapter, task).name, **self.specs[task]}


def scored_by(info: dict) -> str:
    """The engine that scored a built-in task (vLLM on CPU hands its chats to the transformers
    engine: the engine's loglik_engine, actors/engines.py), or lm-eval, which loads its own model."""
    engine = info.get("engine")
    return engine.get("logliks", engine["kind"]) if engine else "lm-eval"


def _load(folder: Path) -> Measured:
    items = folder / "items.parquet"
    return Measured(json.loads((folder / "result.json").read_text()), pd.read_parquet(items) if items.exists() else None)


def _store(folder: Path, measured: Measured) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if measured.items is not None:
        measured.items.drop(columns="chat").to_parquet(folder / "items.parquet", index=False)
    # result.json is written last: its presence marks the key as finished.
    (folder / "result.json").write_text(json.dumps(measured.info, indent=1, default=str))


@dataclass
class BuiltinScoring:
    """The built-in tasks as a job of the generator pool (grid/generate.py Job): "loglik"
    rows for each (adapter, task) the cache lacks; finished, its items.parquet and result.json.
    evaluate_trials runs it in the pass that categorizes the same adapters."""

    bench: Bench
    keys: Keys

    def tasks(self) -> list[str]:
        return [t for t in self.bench.cfg.tasks if t in BUILTIN]

    def missing(self, adapters: list[str | None]) -> list[str | None]:
        return [a for a in adapters if any(not (self.keys.folder(a, t) / "result.json").exists() for t in self.tasks())]

    def work(self, adapters: list[str | None]) -> Work:
        """The rows of the (adapter, task) pairs not in the cache, but those a killed pass already scored."""
        bench, keys = self.bench, self.keys
        rows, todo = [], []
        for adapter in dict.fromkeys(adapters):
            for task in self.tasks():
                folder = keys.folder(adapter, task)
                if (folder / "result.json").exists():
                    continue
                shards = folder / "shards"
                shards.mkdir(parents=True, exist_ok=True)
                done = set(read_shards(shards, LOGLIK_COLUMNS)["item"])
                items = bench.items[task].assign(item=range(len(bench.items[task])), messages=bench.items[task]["chat"])
                rows.append(pass_rows(shards, adapter, "loglik", items[~items["item"].isin(done)]))
                todo.append((adapter, task, folder))

        def finish() -> None:
            for adapter, task, folder in todo:
                scored = read_shards(folder / "shards", LOGLIK_COLUMNS).drop_duplicates("item").set_index("item")
                items = bench.items[task]
                if len(scored) != len(items):
                    raise RuntimeError(f"{folder}/shards: {len(scored)} of {task}'s {len(items)} items scored after the pass")
                scored = scored.loc[range(len(items))]
                items = items.assign(loglik=scored["loglik"].to_numpy(), tokens=scored["tokens"].to_numpy())
                _store(folder, Measured({**keys.info(adapter, task), "score": BUILTIN[task].aggregate(items)}, items))

        table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=PASS_COLUMNS)
        return Work(table, finish, "benchmarks", loglik_batch_size=bench.cfg.batch_size)


def measure(run: Run, adapters: list[str | None], bench: Bench) -> dict[str | None, dict[str, Measured]]:
    """adapter (None: the base model) -> task -> its result. What the cache lacks is computed
    where the cluster has GPUs, if it has any: the built-in tasks by the generator pool
    (BuiltinScoring), `generators.adapters_per_pass` adapters per pass; lm-eval tasks one Ray
    task per model (the harness loads its own model, so a group would save nothing, and a
    kill would lose the whole group's GPU-hours). Results are written to the cache by the
    driver, so a cluster's workers need no shared disk."""
    import ray

    from actors.harness import run_lm_eval

    cfg, keys = bench.cfg, Keys.of(run, bench)
    adapters = list(dict.fromkeys(adapters))
    run.pool.run([BuiltinScoring(bench, keys)], adapters)
    out: dict[str | None, dict[str, Measured]] = {}
    pending = {}
    gpus = ray.cluster_resources().get("GPU", 0)
    remote = ray.remote(**({"num_gpus": 1} if gpus else {"num_cpus": 1}))(run_lm_eval)
    for adapter in adapters:
        folders = {t: keys.folder(adapter, t) for t in cfg.tasks}
        out[adapter] = {t: _load(f) for t, f in folders.items() if (f / "result.json").exists()}
        lm_tasks = {t: shots for t, shots in cfg.lm_eval_tasks.items() if t not in out[adapter]}
        if lm_tasks:
            ref = remote.remote(run.model, adapter, lm_tasks, cfg.limit, cfg.batch_size, run.trust_remote_code)
            pending[ref] = adapter
    while pending:
        # Each finished Ray task's results are in the cache before the next is waited for.
        [ref], _ = ray.wait(list(pending), num_returns=1)
        adapter = pending.pop(ref)
        for task, got in ray.get(ref).items():
            measured = Measured({**keys.info(adapter, task), "score": got["metrics"][cfg.metric], **got})
            _store(keys.folder(adapter, task), measured)
            out[adapter][task] = measured
    return out


@dataclass
class TrialBench:
    """known_mc inside a trial, after every epoch, for a search that minimizes or bounds
    its drop (grid/trials.py): the items and the base model's scored items."""

    items: pd.DataFrame
    base_items: pd.DataFrame
    batch_size: int

    def delta(self, engine: Engine, exclude: set[str]) -> float:
        """known_mc of the engine's model minus the base model's, on the facts outside `exclude` (the mix)."""
        kept = self.items[~self.items["fact_id"].isin(exclude)]
        scored = engine.logliks(list(kept["chat"]), batch_size=self.batch_size)
        return mc_accuracy(kept.assign(loglik=[s for s, _ in scored])) - held_out("known_mc", self.base_items, exclude)


def trial_bench(run: Run, bench: Bench) -> TrialBench:
    """What trials need to measure their known_mc drop; the base model is measured first (cached)."""
    base_model = measure(run, [None], bench)[None]["known_mc"]
    return TrialBench(bench.items["known_mc"], base_model.items, bench.cfg.batch_size)


def bench_trials(run: Run, bench: Bench, results: pd.DataFrame, mixes: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """`results` with bench_<task> and bench_<task>_delta of every finished trial, the facts
    of its mix (`mixes`, as the trial composed it) held out; benchmarks.parquet records
    every score and its task config."""
    finished = results[results["adapter"].notna() & results["error"].isna()]
    measured = measure(run, [None, *finished["adapter"]], bench)
    base_model = measured[None]
    records = {}
    for trial in finished.itertuples():
        exclude = set(mixes[trial.trial]["fact_id"])
        scores = {}
        for task in bench.cfg.tasks:
            got = measured[trial.adapter][task]
            if task in BUILTIN:
                scores[task] = (held_out(task, got.items, exclude), held_out(task, base_model[task].items, exclude))
            else:
                scores[task] = (got.info["score"], base_model[task].info["score"])
        records[trial.trial] = bench_record(scores)
    trial_of = dict(zip(finished["adapter"], finished["trial"]))
    log = pd.DataFrame(
        [
            {"trial": trial_of.get(adapter, "base"), **{c: m.info.get(c) for c in BENCHMARK_LOG_COLUMNS}, "scored_by": scored_by(m.info)}
            for adapter, tasks in measured.items()
            for m in tasks.values()
        ]
    )
    log.astype({"version": str}).to_parquet(run.paths.benchmarks, index=False)
    return merge_records(results, records)
