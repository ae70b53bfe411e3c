"""Generator engines: one small protocol, a transformers engine and a vLLM engine.

An engine turns chat prompts into answers: for each prompt one greedy answer and,
when asked, `samples` sampled answers. The transformers engine runs anywhere (CPU,
CUDA, bf16 on GPU); the vLLM engine needs CUDA and the `gpu` extra and is imported
only on that path. torch is imported inside the functions that run an engine: the
settings classes here are part of every config, which `kgrid validate` reads without it.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

# peft 0.21 (the newest release) still reads transformers' deprecated
# `is_gradient_checkpointing` whenever it wraps a model; our own calls use the new names.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)

# Below this many shared tokens, computing the prefix once is not worth a cache copy.
MIN_SHARED_PREFIX = 8
# A Ray Data batch of 2,048 paper-mode prompts holds ~205 rows of each of the M=10 sets;
# smaller batches (or more sets) still split at sets of this many rows.
MIN_PREFIX_BATCH = 16


@dataclass(frozen=True)
class Decoding:
    """How to decode: always one greedy answer, plus `samples` sampled ones."""

    max_new_tokens: int = 32
    samples: int = 0
    temperature: float = 0.5
    top_k: int = 40
    seed: int = 0


class Engine(Protocol):
    def generate(
        self, prompts: list[list[dict]], decoding: Decoding, adapter: str | None = None
    ) -> list[list[str]]:
        """For each chat prompt, [greedy answer, sample 1, ..., sample N]."""


def pick_engine(engine: str) -> str:
    """`auto` is vLLM where CUDA and vllm are present, transformers otherwise."""
    import torch

    if engine != "auto":
        return engine
    if torch.cuda.is_available():
        try:
            import vllm  # noqa: F401

            return "vllm"
        except ImportError:
            pass
    return "transformers"


class EngineConfig(BaseModel):
    """The `generators.engine` settings: which engine, and how it batches and fits."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["auto", "transformers", "vllm"] = "auto"
    batch_size: int = Field(256, ge=1)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1)
    max_lora_rank: int = Field(64, ge=1)


def make_engine(
    cfg: EngineConfig, model: str, adapters: tuple[str, ...] = (), trust_remote_code: bool = False, threads: int | None = None
) -> Engine:
    if pick_engine(cfg.kind) == "vllm":
        return VLLMEngine(model, cfg, trust_remote_code=trust_remote_code)
    return TransformersEngine.load(
        model, adapters, batch_size=cfg.batch_size, dtype=cfg.dtype, trust_remote_code=trust_remote_code, threads=threads
    )


def prefix_batches(ids: list[list[int]], order: list[int], size: int) -> list[tuple[int, list[int]]]:
    """Cut `order` (prompts sorted by token ids) into batches of at most `size` that do not
    straddle two prompt sets: a batch whose rows share only the system message would
    prefill every exemplar again for every row. A batch of at least MIN_PREFIX_BATCH
    rows ends early where the prefix its rows share would halve (the floor keeps batches
    large when prompts share little, as in SliCK mode). Returns (start, batch) pairs."""
    batches, start, least = [], 0, min(MIN_PREFIX_BATCH, size)
    while start < len(order):
        end, shared = start + 1, None
        while end < min(start + size, len(order)):
            common = len(os.path.commonprefix([ids[order[end - 1]], ids[order[end]]]))
            if shared is not None and end - start >= least and common < shared / 2:
                break
            shared, end = common if shared is None else min(shared, common), end + 1
        batches.append((start, order[start:end]))
        start = end
    return batches


class TransformersEngine:
    """Batched `generate` with left padding and batches grouped by prompt length.

    Sorting prompts by length before batching keeps padding (wasted compute) low;
    answers are returned in the caller's order.
    """

    def __init__(self, model, tokenizer, batch_size: int = 256):
        """Wrap a loaded model (plain or peft) and its tokenizer; `load` reads them from disk."""
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.device = next(model.parameters()).device
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token

    @classmethod
    def load(
        cls,
        model: str,
        adapters: tuple[str, ...] = (),
        batch_size: int = 256,
        dtype: str = "auto",
        trust_remote_code: bool = False,
        threads: int | None = None,
    ) -> "TransformersEngine":
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype == "auto":
            dtype = "bfloat16" if device == "cuda" else "float32"
        tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
        net = AutoModelForCausalLM.from_pretrained(
            model, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code
        ).to(device)
        if adapters:
            from peft import PeftModel

            # Each adapter is loaded once, named by its path; generate() switches between them.
            net = PeftModel.from_pretrained(net, adapters[0], adapter_name=adapters[0])
            for path in adapters[1:]:
                net.load_adapter(path, adapter_name=path)
        return cls(net.eval(), tokenizer, batch_size)

    def encode(self, prompts: list[list[dict]]) -> list[list[int]]:
        texts = self.tokenizer.apply_chat_template(prompts, tokenize=False, add_generation_prompt=True)
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def generate(
        self, prompts: list[list[dict]], decoding: Decoding, adapter: str | None = None
    ) -> list[list[str]]:
        import torch

        with torch.inference_mode():
            if adapter is not None:
                self.model.set_adapter(adapter)
            ids = self.encode(prompts)
            # Sorted token lists put the prompts that share a few-shot prefix side by side.
            order = sorted(range(len(ids)), key=lambda i: ids[i])
            runs = [(1, dict(do_sample=False))]
            if decoding.samples:
                runs.append((decoding.samples, dict(do_sample=True, temperature=decoding.temperature, top_k=decoding.top_k)))
            out: list[list[str]] = [[] for _ in ids]
            for start, batch in prefix_batches(ids, order, self.batch_size):
                for copies, run in runs:
                    # Seeded per batch, so a rerun over the same prompts samples the same answers.
                    torch.manual_seed(decoding.seed + start)
                    texts = self._generate([ids[i] for i in batch for _ in range(copies)], decoding.max_new_tokens, run)
                    for j, i in enumerate(batch):
                        out[i].extend(t.strip() for t in texts[j * copies : (j + 1) * copies])
            return out

    def _generate(self, rows: list[list[int]], max_new_tokens: int, run: dict) -> list[str]:
        """Generate for token lists. The prefix they all share (the system message and
        the exemplars of one prompt set) runs once and its KV cache serves every row:
        on the micro-world that is most of the prompt, and five times less compute."""
        import torch
        from transformers import DynamicCache, StaticCache

        # Keep one token of every row uncached: generate needs a new position to start from.
        shared = min(len(os.path.commonprefix(rows)), min(map(len, rows)) - 1)
        if shared < MIN_SHARED_PREFIX:
            shared = 0
        # Pads sit between the shared prefix and each row's own tail (plain left padding
        # when nothing is shared); the mask hides them and position ids skip them.
        tails = [r[shared:] for r in rows]
        width = max(map(len, tails))
        cache = None
        if shared:
            prefix = DynamicCache()
            self.model(input_ids=torch.tensor([rows[0][:shared]], device=self.device), cache=prefix, use_cache=True)
            # A preallocated cache, written in place: a DynamicCache copies the whole
            # batch-repeated prefix at every step (as costly as the linear layers here).
            cache = StaticCache(config=self.model.config, max_cache_len=shared + width + max_new_tokens)
            for layer, done in zip(cache.layers, prefix.layers):
                layer.update(done.keys.expand(len(rows), -1, -1, -1), done.values.expand(len(rows), -1, -1, -1))
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([r[:shared] + [pad] * (width - len(t)) + t for r, t in zip(rows, tails)])
        mask = torch.tensor([[1] * shared + [0] * (width - len(t)) + [1] * len(t) for t in tails])
        gen = self.model.generate(
            input_ids=input_ids.to(self.device),
            attention_mask=mask.to(self.device),
            cache=cache,
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            **run,
        )
        return self.tokenizer.batch_decode(gen[:, input_ids.shape[1] :], skip_special_tokens=True)


class VLLMEngine:
    """vLLM with prefix caching (the few-shot exemplars are shared by every prompt of a
    set) and several LoRA adapters served by one engine."""

    def __init__(self, model: str, cfg: EngineConfig, trust_remote_code: bool = False):
        from vllm import LLM

        self.llm = LLM(
            model,
            enable_prefix_caching=True,
            enable_lora=True,
            max_lora_rank=cfg.max_lora_rank,
            max_loras=4,
            dtype="auto" if cfg.dtype == "auto" else cfg.dtype,
            tensor_parallel_size=cfg.tensor_parallel_size,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            trust_remote_code=trust_remote_code,
            seed=0,
        )
        self.adapter_ids: dict[str, int] = {}

    def generate(
        self, prompts: list[list[dict]], decoding: Decoding, adapter: str | None = None
    ) -> list[list[str]]:
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest

        lora = None
        if adapter is not None:
            lora_id = self.adapter_ids.setdefault(adapter, len(self.adapter_ids) + 1)
            lora = LoRARequest(f"adapter-{lora_id}", lora_id, adapter)
        greedy = SamplingParams(temperature=0.0, max_tokens=decoding.max_new_tokens)
        results = self.llm.chat(prompts, greedy, lora_request=lora, use_tqdm=False)
        out = [[r.outputs[0].text.strip()] for r in results]
        if decoding.samples:
            sampled = SamplingParams(
                n=decoding.samples,
                temperature=decoding.temperature,
                top_k=decoding.top_k,
                max_tokens=decoding.max_new_tokens,
                seed=decoding.seed,
            )
            for answers, r in zip(out, self.llm.chat(prompts, sampled, lora_request=lora, use_tqdm=False)):
                answers.extend(o.text.strip() for o in r.outputs)
        return out
