"""The per-adapter phases of a run, the way before and the way now, side by side.

(a) Evaluation: N adapters of a finished run re-categorize its whole corpus, first as one
    Ray Data job per adapter (`generators.adapters_per_pass: 1`: a pool started and the model
    loaded for every adapter, as before), then as one pass (`adapters_per_pass: N`), each
    from an empty cache. Reports the seconds and the share of identical answers.
(b) Benchmarks: the run's known_mc and known_ppl items scored for the same adapters, before:
    a fresh engine per adapter and whole chats; now: one engine with the adapters swapped in
    and the exemplar prefix all items share run once. In this process, one thread.

    python benchmarks/adapter_passes.py RUN_DIR [--adapters 4] [--out docs/performance.md]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace

import pandas as pd
import torch

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

import actors.benchmark as benchmark  # noqa: E402
from actors.engines import TransformersEngine  # noqa: E402
from docs_page import emit  # noqa: E402  (benchmarks/docs_page.py, beside this script)
from grid.bench import prepare  # noqa: E402
from grid.config import load_config  # noqa: E402
from grid.run import Run  # noqa: E402
from grid.runtime import connect  # noqa: E402


def evaluate(run: Run, adapters: list[str], per_pass: int) -> tuple[float, dict]:
    generators = run.cfg.generators.model_copy(update={"adapters_per_pass": per_pass})
    with tempfile.TemporaryDirectory() as cache:
        # An empty cache of its own: storage_cache(<storage>) is <storage>/cache.
        cfg = run.cfg.model_copy(update={"generators": generators, "storage": cache, "experiment": "bench"})
        timed = replace(run, cfg=cfg, progress=False)
        start = time.perf_counter()
        found = timed.categorize_adapters(adapters, max_rank=run.cfg.lora.rank)
        return time.perf_counter() - start, {a: c.generations for a, c in found.items()}


def score(model: str, adapters: list[str], chats: list, shared: bool) -> tuple[float, list]:
    """Seconds to score `chats` for every adapter; the scores."""
    saved = benchmark.MIN_SHARED_PREFIX
    benchmark.MIN_SHARED_PREFIX = saved if shared else 10**9
    start, scores = time.perf_counter(), []
    engine = TransformersEngine.load(model) if shared else None
    for adapter in adapters:
        engine = engine if shared else TransformersEngine.load(model)
        with engine.using(adapter):
            scores.append(benchmark.answer_logliks(engine.model, engine.tokenizer, chats, 32))
    benchmark.MIN_SHARED_PREFIX = saved
    return time.perf_counter() - start, scores


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--adapters", type=int, default=4)
    p.add_argument("--out", default=None, help="append the result as Markdown to this file")
    args = p.parse_args()
    cfg = load_config(f"{args.run_dir}/config.yaml")
    run = Run.open(cfg.model_copy(update={"storage": tempfile.mkdtemp()}), progress=False)
    results = pd.read_parquet(f"{args.run_dir}/results.parquet")
    adapters = list(results["adapter"].dropna())[: args.adapters]
    n = len(adapters)
    connect(num_cpus=os.cpu_count())

    jobs_s, jobs = evaluate(run, adapters, per_pass=1)
    pass_s, one = evaluate(run, adapters, per_pass=n)
    same = pd.concat([(jobs[a]["output"] == one[a]["output"]) for a in adapters]).mean()

    torch.set_num_threads(1)
    base = pd.read_parquet(f"{args.run_dir}/categories/base.parquet")
    bench = prepare(cfg.bench, run.facts, base, run.exemplars, cfg.prompts)
    chats = [c for frame in bench.items.values() for c in frame["chat"]]
    plain_s, plain = score(run.model, adapters, chats, shared=False)
    shared_s, shared = score(run.model, adapters, chats, shared=True)
    gap = max(abs(a[0] - b[0]) for p_, s_ in zip(plain, shared) for a, b in zip(p_, s_))

    lines = [
        f"### Per-adapter phases ({n} adapters of {args.run_dir}, {len(run.facts)} facts x {cfg.prompts.sets} prompts, "
        f"{os.cpu_count()} CPUs)",
        "",
        "| phase | before | now | ratio |",
        "| --- | ---: | ---: | ---: |",
        f"| evaluation: one Ray Data job per adapter -> one pass of {n} adapters | {jobs_s:.1f} s | {pass_s:.1f} s | "
        f"{jobs_s / pass_s:.2f}x |",
        f"| benchmarks ({len(chats)} items, 1 thread): an engine per adapter, whole chats -> one engine, shared prefix | "
        f"{plain_s:.1f} s | {shared_s:.1f} s | {plain_s / shared_s:.2f}x |",
        "",
        f"Identical greedy answers, one pass against one job per adapter: {same:.2%}. Largest difference of an item's "
        f"log-likelihood, shared prefix against whole chats: {gap:.1e}.",
        "",
    ]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
