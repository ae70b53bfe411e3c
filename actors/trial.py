"""One LoRA trial: train a peft adapter on a mix, measure before the first step (epoch 0)
and after every epoch, checkpoint each.

Knows nothing of Ray Tune: the caller passes `evaluate` (metrics from an engine over
the adapter being trained, and the epoch) and `report` (metrics plus the checkpoint
folder), and a checkpoint to resume from. grid/trials.py wires these to Tune.
torch is imported inside the functions that train: LoraSettings is part of every config,
which `kgrid validate` reads without it.
"""
from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Callable

from pydantic import BaseModel, ConfigDict, Field

from actors.engines import TransformersEngine, attention_kwargs, collate, encode


class LoraSettings(BaseModel):
    """The `lora:` section. Defaults are the paper's (docs/protocol.md §4); the optimizer's
    are the Hugging Face Trainer's, which the authors' code trained with (§7)."""

    model_config = ConfigDict(extra="forbid")
    rank: int = Field(1, ge=1)
    alpha: float | None = Field(None, gt=0, description="default 2 x rank")
    dropout: float = Field(0.1, ge=0, lt=1)
    rslora: bool = True
    target_modules: list[str] = ["gate_proj", "up_proj", "down_proj"]
    lr: float = Field(1e-3, gt=0)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(16, ge=1)
    # The paper's code takes the loss over the whole sequence; masking the prompt
    # leaves only the answer tokens in the loss.
    mask_prompt: bool = False
    weight_decay: float = Field(0.0, ge=0, description="AdamW's decoupled weight decay")
    max_grad_norm: float | None = Field(1.0, ge=0, description="clip the gradients' global norm to this; None or 0: no clipping")
    group_by_length: bool = Field(True, description="batches of near-equal length, as the Trainer's LengthGroupedSampler makes them")


def epoch_order(lengths: list[int], batch_size: int, group_by_length: bool) -> list[int]:
    """The order of the examples in one epoch, from torch's global RNG (seeded per epoch).

    group_by_length is the HF Trainer's get_length_grouped_indices: a random permutation
    cut into megabatches of min(50, n // (4 x batch_size)) batches, each sorted by length,
    longest first, and the longest example of all moved to the front (out of memory early,
    if ever). Consecutive batches then pad little."""
    import torch

    order = torch.randperm(len(lengths)).tolist()
    if not group_by_length:
        return order
    size = max(1, min(len(lengths) // (batch_size * 4), 50)) * batch_size
    megabatches = [sorted(order[i : i + size], key=lambda i: lengths[i], reverse=True) for i in range(0, len(order), size)]
    top = max(range(len(megabatches)), key=lambda m: lengths[megabatches[m][0]])
    megabatches[0][0], megabatches[top][0] = megabatches[top][0], megabatches[0][0]
    return [i for megabatch in megabatches for i in megabatch]


def lora_config(settings: LoraSettings):
    """peft's LoraConfig for the `lora:` section (alpha defaults to 2 x rank)."""
    from peft import LoraConfig

    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha or 2 * settings.rank,
        lora_dropout=settings.dropout,
        use_rslora=settings.rslora,
        target_modules=settings.target_modules,
        task_type="CAUSAL_LM",
    )


def canonical_adapter_config(folder: Path) -> None:
    """peft writes target_modules, a set, in the process's string-hash order, which differs
    from run to run; sorted, the same adapter is the same bytes in every run, so the caches
    keyed by its folder's content (categorizations, benchmarks) find it again."""
    path = folder / "adapter_config.json"
    config = json.loads(path.read_text())
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    path.write_text(json.dumps(config, indent=2, sort_keys=True))


def make_optimizer(params, settings: LoraSettings) -> torch.optim.AdamW:
    import torch

    return torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)


def optimizer_step(optimizer, schedule, params: list, max_grad_norm: float | None) -> None:
    """Clip the gradients (the Trainer clips at 1.0), step, and clear them."""
    import torch

    if max_grad_norm:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    schedule.step()
    optimizer.zero_grad()


def train_adapter(
    model: str,
    chats: list[list[dict]],
    settings: LoraSettings,
    seed: int,
    evaluate: Callable[[TransformersEngine, int], dict],
    report: Callable[[dict, Path], None],
    resume: Path | None = None,
    eval_batch_size: int = 256,
    trust_remote_code: bool = False,
    attention: str | None = None,
) -> None:
    """Train `settings`' adapter on `chats`; the model is loaded with `attention`
    (EngineConfig.attention), as the categorization engine loads it."""
    import torch
    from peft import get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_linear_schedule_with_warmup

    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
    base = AutoModelForCausalLM.from_pretrained(
        model, dtype=dtype, trust_remote_code=trust_remote_code, **attention_kwargs(attention)
    ).to(device)
    net = get_peft_model(base, lora_config(settings))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    examples = encode(tokenizer, chats, settings.mask_prompt)
    steps = math.ceil(len(examples) / settings.batch_size)
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, settings)
    schedule = get_linear_schedule_with_warmup(optimizer, 0, steps * settings.epochs)
    start = 0
    if resume is not None:
        set_peft_model_state_dict(net, load_file(str(resume / "adapter_model.safetensors")))
        state = torch.load(resume / "trainer_state.pt", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        start = state["epoch"]
    engine = TransformersEngine(net, tokenizer, eval_batch_size)

    def checkpoint(metrics: dict) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            net.save_pretrained(tmp)  # safetensors
            canonical_adapter_config(Path(tmp))
            state = {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), "epoch": metrics["epoch"]}
            torch.save(state, Path(tmp) / "trainer_state.pt")
            report(metrics, Path(tmp))

    if resume is None:
        # Epoch 0: a fresh adapter (B = 0) is the base model, measured by the engine that
        # measures every later epoch; its loss is the base model's on the mix.
        net.eval()
        size = settings.batch_size
        with torch.no_grad():
            losses = [net(**collate(examples[i : i + size], pad_id, device)).loss.item() for i in range(0, len(examples), size)]
        checkpoint({"epoch": 0, "loss": sum(losses) / len(losses), **evaluate(engine, 0)})

    lengths = [len(ids) for ids, _ in examples]
    for epoch in range(start, settings.epochs):
        # Seeded per epoch, so a trial resumed from epoch e trains as if never stopped.
        torch.manual_seed(seed * 1000 + epoch)
        net.train()
        losses = []
        order = epoch_order(lengths, settings.batch_size, settings.group_by_length)
        for s in range(steps):
            batch = order[s * settings.batch_size : (s + 1) * settings.batch_size]
            loss = net(**collate([examples[i] for i in batch], pad_id, device)).loss
            loss.backward()
            optimizer_step(optimizer, schedule, params, settings.max_grad_norm)
            losses.append(loss.item())
        net.eval()
        checkpoint({"epoch": epoch + 1, "loss": sum(losses) / len(losses), **evaluate(engine, epoch + 1)})
