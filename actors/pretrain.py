"""Pretraining a causal LM on chats, and its greedy replies: the micro-world's model is
trained here (grid/world/graph.py builds the chats, grid/world/model.py the untrained model),
on the GPU where there is one."""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm


def encode_chats(tokenizer, chats: list[list[dict]]) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids through the real chat template, and labels that keep only the assistant
    turns (their text and closing <|end|>): the loss on answers is what teaches facts fast."""
    texts = tokenizer.apply_chat_template(chats, tokenize=False)
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    assistant, end = tokenizer.convert_tokens_to_ids(["<|assistant|>", tokenizer.eos_token])
    labels = []
    for seq in ids:
        inside, lab = False, []
        for t in seq:
            lab.append(t if inside else -100)
            if t == assistant:
                inside = True
            elif t == end:
                inside = False
        labels.append(lab)
    return ids, labels


def seed(value: int) -> None:
    """Seed torch's generator: the model's initial weights."""
    torch.manual_seed(value)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


LENGTH_BUCKET = 8  # tokens; chats whose lengths differ by less share a bucket


def batches(lengths: list[int], batch_size: int, seed: int) -> list[np.ndarray]:
    """Batches of chats of about the same length (padding was nearly half the compute),
    in random order. A stable sort keeps the given order within a length bucket, so
    chats placed side by side (conflicting pairs) mostly share a batch."""
    order = np.argsort(np.asarray(lengths) // LENGTH_BUCKET, kind="stable")
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [chunks[i] for i in np.random.default_rng(seed).permutation(len(chunks))]


def train(model, tokenizer, chats: list[list[dict]], batch_size: int, lr: float, seed: int, progress: bool = True):
    """One pass over `chats` (repetitions are already in the list), AdamW with a
    one-cycle schedule, loss on the assistant turns only."""
    ids, labels = encode_chats(tokenizer, chats)
    plan = batches([len(i) for i in ids], batch_size, seed)
    dev = device()
    model.to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=len(plan), pct_start=0.1)
    bar = tqdm(plan, desc="world: pretraining", disable=not progress)
    for batch in bar:
        width = max(len(ids[i]) for i in batch)
        x = torch.full((len(batch), width), tokenizer.pad_token_id)
        y = torch.full((len(batch), width), -100)
        for row, i in enumerate(batch):
            x[row, : len(ids[i])] = torch.tensor(ids[i])
            y[row, : len(ids[i])] = torch.tensor(labels[i])
        loss = model(input_ids=x.to(dev), attention_mask=(x != tokenizer.pad_token_id).to(dev), labels=y.to(dev)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return model.eval()
