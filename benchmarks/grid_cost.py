"""What a grid config costs in GPU-hours: its work counted exactly from the config, turned into
hours by rates, each labelled "measured" (from a gpu_check.json) or "estimate".

    python benchmarks/grid_cost.py [configs/paper.yaml] [--measured DIR/gpu_check.json] [--adapters-per-pass N] [--pool 16]

Prints Markdown (docs/cluster.md, "What the paper grid costs", is written from it). The work:
the trials of grid.trials.grid_points (the +0 control once per unknown count and seed), each
with its training rows, its per-epoch probe evaluations (epoch 0 included) and its adapter's
evaluation on the whole corpus, in passes of `generators.adapters_per_pass` adapters: every
generator actor of the pool (--pool, one per GPU) loads the model once per pass, not once
per adapter; the built-in benchmark tasks are scored in those passes (no load of their
own), an lm-eval task loads its model per adapter. The corpus counts
are the paper's (FACTS, HIGHLY_KNOWN). A trial whose mix needs more HighlyKnown facts than
the corpus has fails at once and costs nothing.

The estimate (docs/cluster.md's, kept): FLOPs and weight reads at assumed sustained rates.
Training: TOKENS_PER_EXAMPLE tokens per row at 4 x PARAMS FLOPs per token. Evaluation:
TOKENS_PER_PROMPT tokens per prompt after the shared few-shot prefix at 2 x PARAMS, plus one
read of the weights per decoding step (the trial's engine: max_new_tokens steps per batch;
vLLM: VLLM_TOKENS_PER_ANSWER steps per answer, spread over its batch). A model load: LOAD_S.
Measured, where gpu_check.json has them: the training step's tokens/s (so seconds per row =
TOKENS_PER_EXAMPLE / tokens/s) and the transformers engine's seconds per batch at the trials'
batch size (probe evaluation). vLLM, model loads and benchmarks stay estimates.
"""
from __future__ import annotations

import argparse
import inspect
import json
import math
from dataclasses import dataclass
from pathlib import Path

from actors.trial import train_adapter
from grid.config import ExperimentConfig, load_config
from grid.trials import grid_points

# The paper's reference distribution for Llama-3.1-8B-Instruct (docs/protocol.md): its DBpedia
# questions, and those HighlyKnown (our own categorization may count a few more or fewer).
FACTS = 21_036
HIGHLY_KNOWN = 2_732
# The trials' engine batch: train_adapter's eval_batch_size, which grid/trials.py leaves as is.
TRIAL_BATCH = inspect.signature(train_adapter).parameters["eval_batch_size"].default

# The estimate's assumptions (docs/cluster.md).
PARAMS = 8e9  # Llama-3.1-8B
WEIGHT_BYTES = 2 * PARAMS  # bf16
TOKENS_PER_EXAMPLE = 80  # the Llama-3.1 chat template with its system header, the question, "Answer: ..."
TOKENS_PER_PROMPT = 30  # per evaluation prompt after the shared few-shot prefix (both engines reuse it)
VLLM_TOKENS_PER_ANSWER = 10
LOAD_S = 120
# lm-eval: MMLU's 14,042 questions at ~700 tokens (5-shot), TruthfulQA's 817 at ~12 choices of
# ~270 tokens over MC1 and MC2; one forward per prompt.
BENCH_TOKENS = 14_042 * 700 + 817 * 12 * 270
# The A100's assumed sustained rates (120 TFLOP/s, 1.6 TB/s) as shares of its datasheet
# (312 TFLOP/s bf16 dense, 2.0 TB/s); the same shares make the estimate for other GPUs.
FLOPS_SHARE, BANDWIDTH_SHARE = 120 / 312, 1.6 / 2.0


@dataclass(frozen=True)
class Trial:
    point: dict  # unknown, extra, ratio, seed
    feasible: bool  # its mix can be composed from the corpus
    rows: int  # training rows per epoch
    examples: int  # rows x epochs
    steps: int  # optimizer steps
    answers: int  # greedy answers of its probe evaluations, epoch 0 included
    batches: int  # generate calls of those


@dataclass(frozen=True)
class Work:
    trials: list[Trial]
    prompts: int  # prompt sets per fact
    base_answers: int
    adapters: int
    adapter_answers: int
    adapters_per_pass: int
    pool: int  # generator actors of a categorization pass, each loading the model once
    lm_eval: bool  # the bench tasks include lm-eval ones, which load a model per adapter

    @property
    def feasible(self) -> list[Trial]:
        return [t for t in self.trials if t.feasible]

    @property
    def passes(self) -> int:
        return math.ceil(self.adapters / self.adapters_per_pass)

    @property
    def loads(self) -> int:
        """Model loads outside the benchmarks: every actor of the base categorization and of
        each evaluation pass, and each trial."""
        return self.pool * (1 + self.passes) + len(self.feasible)

    @property
    def bench_tasks(self) -> int:
        """Benchmark Ray tasks, one model load each: one per model for lm-eval (grid/bench.py);
        the built-in tasks ride on the evaluation passes."""
        return self.adapters + 1 if self.lm_eval else 0


def count_work(cfg: ExperimentConfig, pool: int, facts: int = FACTS, highly_known: int = HIGHLY_KNOWN, adapters_per_pass: int | None = None) -> Work:
    sets, epochs, probe = cfg.prompts.sets, cfg.lora.epochs, cfg.grid.probe_size
    trials = []
    for p in grid_points(cfg.grid):
        n, r = p["unknown"], p["ratio"]
        rows = n * (1 + r)
        watched = n + (probe if probe is not None else facts - rows)
        evaluations = epochs + 1
        trials.append(
            Trial(
                point=p,
                feasible=not (p["extra"] == "HighlyKnown" and n * r > highly_known),
                rows=rows,
                examples=rows * epochs,
                steps=math.ceil(rows / cfg.lora.batch_size) * epochs,
                answers=watched * sets * evaluations,
                # Batches never straddle two prompt sets (actors/engines.py prefix_batches).
                batches=sets * math.ceil(watched / TRIAL_BATCH) * evaluations,
            )
        )
    adapters = sum(t.feasible for t in trials)
    per_pass = adapters_per_pass or cfg.generators.adapters_per_pass
    lm_eval = bool(cfg.bench.enabled and cfg.bench.lm_eval_tasks)
    return Work(trials, sets, facts * sets, adapters, adapters * facts * sets, per_pass, pool, lm_eval)


class Estimate:
    """Seconds of work on one GPU from assumed sustained rates."""

    def __init__(self, name: str, flops: float, bandwidth: float):
        self.name, self.flops, self.bandwidth = name, flops, bandwidth
        self.sources = dict.fromkeys(("training", "probe evaluation"), "estimate")

    @classmethod
    def from_datasheet(cls, name: str, peak_flops: float, hbm: float) -> Estimate:
        return cls(name, FLOPS_SHARE * peak_flops, BANDWIDTH_SHARE * hbm)

    def training(self, t: Trial) -> float:
        return t.examples * TOKENS_PER_EXAMPLE * 4 * PARAMS / self.flops

    def probe(self, t: Trial, steps: int) -> float:
        return t.answers * TOKENS_PER_PROMPT * 2 * PARAMS / self.flops + t.batches * steps * WEIGHT_BYTES / self.bandwidth

    def vllm(self, answers: int, batch: int) -> float:
        decode_steps = answers * VLLM_TOKENS_PER_ANSWER / batch
        return answers * TOKENS_PER_PROMPT * 2 * PARAMS / self.flops + decode_steps * WEIGHT_BYTES / self.bandwidth

    def bench(self, models: int, loads: int) -> float:
        return models * BENCH_TOKENS * 2 * PARAMS / self.flops + loads * LOAD_S


class Measured(Estimate):
    """The GPU that gpu_check.json ran on: its measured rates where the check has them, the
    estimate from its datasheet figures elsewhere."""

    def __init__(self, check: dict):
        if check["dry_run"]:
            raise ValueError("a --dry-run gpu_check.json measures no GPU")
        sheet = check["datasheet"]
        if not (sheet["bf16_flops"] and sheet["hbm_bytes_per_s"]):
            raise ValueError(f"{check['device']}: no datasheet figures in the check (gpu_check.py --hbm-tbps, --peak-tflops)")
        base = Estimate.from_datasheet(check["device"], sheet["bf16_flops"], sheet["hbm_bytes_per_s"])
        super().__init__(f"{check['device']}, measured {check['date']}", base.flops, base.bandwidth)
        parts = check["parts"]
        training, categorize = parts["training"], parts["categorize"]
        self.tokens_per_s = training["tokens_per_s"] if training["status"] == "ok" else None
        row = next((r for r in categorize.get("rows", []) if r["batch"] == TRIAL_BATCH), None) if categorize["status"] == "ok" else None
        self.batch = (row["seconds_per_batch"], categorize["new_tokens"]) if row else None
        if self.tokens_per_s:
            self.sources["training"] = "measured"
        if self.batch:
            self.sources["probe evaluation"] = "measured"

    def training(self, t: Trial) -> float:
        return t.examples * TOKENS_PER_EXAMPLE / self.tokens_per_s if self.tokens_per_s else super().training(t)

    def probe(self, t: Trial, steps: int) -> float:
        if not self.batch:
            return super().probe(t, steps)
        seconds, measured_steps = self.batch
        return t.batches * seconds * steps / measured_steps  # decoding dominates: time goes with the steps


ESTIMATES = (
    Estimate("A10G 24 GB (g5.2xlarge)", 35e12, 600e9),
    Estimate("L4 24 GB (g6.2xlarge)", 40e12, 300e9),
    Estimate("A100 (p4d, per GPU)", 120e12, 1.6e12),
    Estimate.from_datasheet("H200 (per GPU)", 989e12, 4.8e12),
)


def hours(cfg: ExperimentConfig, work: Work, gpu: Estimate) -> dict:
    """GPU-hours per item of the work, and the longest trial's hours."""
    steps, vllm_batch = cfg.prompts.max_new_tokens, cfg.generators.engine.batch_size
    per_trial = [gpu.training(t) + gpu.probe(t, steps) + LOAD_S for t in work.feasible]
    seconds = {
        "training": sum(gpu.training(t) for t in work.feasible),
        "probe evaluation": sum(gpu.probe(t, steps) for t in work.feasible),
        "base categorization": gpu.vllm(work.base_answers, vllm_batch),
        "adapter evaluation": gpu.vllm(work.adapter_answers, vllm_batch),
        "model loads": work.loads * LOAD_S,
    }
    seconds["total"] = sum(seconds.values())
    seconds["longest trial"] = max(per_trial)
    seconds["benchmarks (not in the total)"] = gpu.bench(work.adapters + 1, work.bench_tasks)
    return {k: v / 3600 for k, v in seconds.items()}


def source(gpu: Estimate, item: str) -> str:
    if item in gpu.sources:
        return gpu.sources[item]
    if item in ("total", "longest trial") and "measured" in gpu.sources.values():
        return "measured + estimate"
    return "estimate"


def markdown(cfg: ExperimentConfig, config: str, work: Work, gpus: list[Estimate]) -> str:
    feasible, failing = work.feasible, [t for t in work.trials if not t.feasible]
    rows = sum(t.rows for t in feasible)
    failed = ", ".join(f"{n} x {r}" for n, r in sorted({(t.point["unknown"], t.point["ratio"]) for t in failing}))
    lines = [
        f"Work of `{config}`, counted from the config:",
        "",
        "| step | work (exact) |",
        "| --- | --- |",
        f"| trials | {len(work.trials)} grid points (the +0 control once per unknown count and seed); {len(failing)} of them"
        f" fail at once, needing more than the corpus's {HIGHLY_KNOWN:,} HighlyKnown facts ({failed} HighlyKnown,"
        f" {len(cfg.grid.seeds)} seeds each) |",
        f"| base categorization | {FACTS:,} facts x {work.prompts} prompts = {work.base_answers:,} greedy answers (vLLM) |",
        f"| LoRA training | {len(feasible)} trials: {rows:,} rows per epoch, **{sum(t.examples for t in feasible):,} training examples**"
        f" in {cfg.lora.epochs} epochs ({sum(t.steps for t in feasible):,} steps of batch {cfg.lora.batch_size}) |",
        f"| per-epoch probe evaluation | (n + {cfg.grid.probe_size:,} probe facts) x {work.prompts} prompts x {cfg.lora.epochs + 1}"
        f" evaluations (epoch 0 and every epoch) per trial = **{sum(t.answers for t in feasible):,} greedy answers**,"
        f" {sum(t.batches for t in feasible):,} batches of up to {TRIAL_BATCH} (transformers engine) |",
        f"| adapter evaluation | {work.adapters} adapters x {work.base_answers:,} = **{work.adapter_answers:,} greedy answers** (vLLM),"
        f" in {work.passes} passes of up to {work.adapters_per_pass} adapters |",
        f"| model loads | {work.loads:,}: {work.pool} generator actors for the base categorization and for each evaluation pass,"
        f" one per trial |",
        f"| benchmarks (`bench:`) | {work.adapters + 1} models (base + adapters) x MMLU 5-shot and TruthfulQA MC1/MC2 (lm-eval),"
        f" in {work.bench_tasks} Ray tasks, one model load each"
        + (" (lm-eval loads a model per adapter)" if work.lm_eval else f" (up to {work.adapters_per_pass} models per task)")
        + " |",
        "",
        f"The failing trials would have held {sum(t.rows for t in failing) / sum(t.rows for t in work.trials):.0%} of the grid's training rows.",
        "",
        "| GPU-hours | " + " | ".join(g.name + ("" if isinstance(g, Measured) else " (estimate)") for g in gpus) + " |",
        "| --- |" + " ---: |" * len(gpus),
    ]
    table = [hours(cfg, work, g) for g in gpus]
    for item in table[0]:
        cells = []
        for g, h in zip(gpus, table):
            text = f"{h[item]:,.0f} h" if h[item] >= 10 else f"{h[item]:.1f} h"
            text = f"**{text}**" if item == "total" else text
            cells.append(f"{text} ({source(g, item)})" if isinstance(g, Measured) else text)
        lines.append(f"| {item} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config", nargs="?", default="configs/paper.yaml")
    p.add_argument("--measured", type=Path, help="a GPU run's gpu_check.json (benchmarks/gpu_check.py): its rates, beside the estimates")
    p.add_argument("--adapters-per-pass", type=int, help="adapters one evaluation pass answers; default the config's generators.adapters_per_pass")
    p.add_argument("--pool", type=int, default=16, help="generator actors of a pass, one per GPU (cluster.yaml: 16 GPU workers)")
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    gpus = list(ESTIMATES)
    if args.measured:
        gpus.append(Measured(json.loads(args.measured.read_text())))
    print(markdown(cfg, args.config, count_work(cfg, args.pool, adapters_per_pass=args.adapters_per_pass), gpus), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
