"""The per-adapter phases of a run, the way before and the way now, side by side.

(a) Evaluation: N adapters of a finished run re-categorize its whole corpus, first as one
    Ray Data job per adapter (`generators.adapters_per_pass: 1`: a pool started and the model
    loaded for every adapter, as before), then as one pass (`adapters_per_pass: N`), each
    from an empty cache. Reports the seconds and the share of identical answers.
(b) Benchmarks: the run's known_mc and known_ppl items scored for the same adapters, before:
    a fresh engine per adapter and whole chats; now: one engine with the adapters swapped in
    and the exemplar prefix all items share run once. In this process, one thread.
(c) Benchmarks beside evaluation: the same adapters categorized in one pass and then their
    built-in benchmarks (and the base model's) scored in a pass of their own, against one
    pass that does both (grid/evaluate.py), each from an empty cache. Reports the seconds
    and the largest difference of a score.

    python benchmarks/adapter_passes.py RUN_DIR [--adapters 4] [--parts abc] [--out docs/performance.md]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

import actors.engines as engines  # noqa: E402
from docs_page import emit  # noqa: E402  (benchmarks/docs_page.py, beside this script)
from grid.bench import BuiltinScoring, Keys, measure, prepare  # noqa: E402
from grid.categorize import categorize  # noqa: E402
from grid.config import load_config  # noqa: E402
from grid.run_folder import RunFolder  # noqa: E402
from grid.run import Run  # noqa: E402
from grid.runtime import connect  # noqa: E402


def emptied(run: Run, per_pass: int) -> Run:
    """`run` with an empty cache of its own (storage_cache(<storage>) is <storage>/cache)."""
    generators = run.cfg.generators.model_copy(update={"adapters_per_pass": per_pass})
    cfg = run.cfg.model_copy(update={"generators": generators, "storage": tempfile.mkdtemp(), "experiment": "bench"})
    return replace(run, cfg=cfg, progress=False)


def evaluate(run: Run, adapters: list[str], per_pass: int) -> tuple[float, dict]:
    timed = emptied(run, per_pass)
    start = time.perf_counter()
    found = categorize(timed.categorizer, timed.pool, adapters)
    return time.perf_counter() - start, {a: c.generations for a, c in found.items()}


def score(model: str, adapters: list[str], chats: list, shared: bool) -> tuple[float, list]:
    """Seconds to score `chats` for every adapter; the scores."""
    saved = engines.MIN_SHARED_PREFIX
    engines.MIN_SHARED_PREFIX = saved if shared else 10**9
    start, scores = time.perf_counter(), []
    engine = engines.TransformersEngine.load(model) if shared else None
    for adapter in adapters:
        engine = engine if shared else engines.TransformersEngine.load(model)
        scores.append(engine.logliks(chats, [adapter] * len(chats), 32))
    engines.MIN_SHARED_PREFIX = saved
    return time.perf_counter() - start, scores


def beside(run: Run, adapters: list[str], bench, together: bool) -> tuple[float, dict]:
    """Seconds to categorize `adapters` and score their built-in benchmarks (and the base
    model's), in one pass or in two; the scores."""
    timed = emptied(run, len(adapters))
    start = time.perf_counter()
    models = [None, *adapters]
    scoring = [BuiltinScoring(bench, Keys.of(timed, bench))] if together else []
    timed.pool.run([timed.categorizer, *scoring], models)
    found = measure(timed, models, bench)
    return time.perf_counter() - start, {(a, t): m.info["score"] for a, tasks in found.items() for t, m in tasks.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--adapters", type=int, default=4)
    p.add_argument("--parts", default="abc", help="which comparisons of the docstring to run")
    p.add_argument("--out", default=None, help="append the result as Markdown to this file")
    args = p.parse_args()
    paths = RunFolder(Path(args.run_dir))
    cfg = load_config(paths.config)
    run = Run.open(cfg.model_copy(update={"storage": tempfile.mkdtemp()}), progress=False)
    results = pd.read_parquet(paths.results)
    adapters = list(results["adapter"].dropna())[: args.adapters]
    n = len(adapters)
    connect(num_cpus=os.cpu_count())

    lines = [
        f"### Per-adapter phases ({n} adapters of {args.run_dir}, {len(run.facts)} facts x {cfg.prompts.sets} prompts, "
        f"{os.cpu_count()} CPUs)",
        "",
        "| phase | before | now | ratio |",
        "| --- | ---: | ---: | ---: |",
    ]
    notes = []
    if "a" in args.parts:
        jobs_s, jobs = evaluate(run, adapters, per_pass=1)
        pass_s, one = evaluate(run, adapters, per_pass=n)
        same = pd.concat([(jobs[a]["output"] == one[a]["output"]) for a in adapters]).mean()
        lines.append(
            f"| evaluation: one Ray Data job per adapter -> one pass of {n} adapters | {jobs_s:.1f} s | {pass_s:.1f} s | "
            f"{jobs_s / pass_s:.2f}x |"
        )
        notes.append(f"Identical greedy answers, one pass against one job per adapter: {same:.2%}.")
    base = pd.read_parquet(paths.categories("base"))
    bench = prepare(cfg.bench, run.facts, base, run.exemplars, cfg.prompts)
    if "b" in args.parts:
        torch.set_num_threads(1)
        chats = [c for frame in bench.items.values() for c in frame["chat"]]
        plain_s, plain = score(run.model, adapters, chats, shared=False)
        shared_s, shared = score(run.model, adapters, chats, shared=True)
        torch.set_num_threads(os.cpu_count())
        gap = max(abs(a[0] - b[0]) for p_, s_ in zip(plain, shared) for a, b in zip(p_, s_))
        lines.append(
            f"| benchmarks ({len(chats)} items, 1 thread): an engine per adapter, whole chats -> one engine, shared prefix | "
            f"{plain_s:.1f} s | {shared_s:.1f} s | {plain_s / shared_s:.2f}x |"
        )
        notes.append(f"Largest difference of an item's log-likelihood, shared prefix against whole chats: {gap:.1e}.")
    if "c" in args.parts:
        apart_s, apart = beside(run, adapters, bench, together=False)
        together_s, together = beside(run, adapters, bench, together=True)
        gap = max(abs(apart[k] - together[k]) for k in apart)
        lines.append(
            f"| evaluation and the built-in benchmarks of {n} adapters and the base model: two passes -> one pass | "
            f"{apart_s:.1f} s | {together_s:.1f} s | {apart_s / together_s:.2f}x |"
        )
        notes.append(f"Largest difference of a benchmark score, one pass against two: {gap:.1e}.")
    lines += ["", " ".join(notes), ""]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
