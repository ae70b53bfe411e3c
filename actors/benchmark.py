"""Benchmarks on a model (or model + peft adapter), run inside a Ray worker (grid/bench.py).

- `answer_logliks`: the log-likelihood of each chat's last turn given the turns before it,
  through the model's own chat template: the built-in tasks score options and text this way.
- `run_lm_eval`: lm-evaluation-harness tasks (the `bench` extra) on a Hugging Face model
  and its adapter, through the harness's own peft support.
- `run_benchmarks`: both for the base model and several adapters, the body of one Ray task:
  the base model is loaded once and the adapters are swapped in (actors/engines.py).
"""
from __future__ import annotations

import os

import torch

from actors.engines import MIN_SHARED_PREFIX, TransformersEngine
from actors.trial import IGNORE, collate, encode


@torch.inference_mode()
def answer_logliks(model, tokenizer, chats: list[list[dict]], batch_size: int = 64) -> list[tuple[float, int]]:
    """(sum of log-probabilities, token count) of each chat's last message: the tokens the
    template renders for that turn, its closing token included, so that a prefix of an
    answer ("Varonel" for "Varonel Quist") does not score as the whole answer.

    The tokens every chat starts with (the system message and the few-shot exemplars)
    run once; each batch reuses their KV cache and runs only its rows' own tails."""
    from transformers import DynamicCache

    if not chats:
        return []
    examples = encode(tokenizer, chats, mask_prompt=True)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    # Shared up to the token before the first scored one: its logits score that token.
    first_label = min(next(i for i, y in enumerate(labels) if y != IGNORE) for _, labels in examples)
    shared = min(len(os.path.commonprefix([ids for ids, _ in examples])), first_label - 1)
    prefix = None
    if shared >= MIN_SHARED_PREFIX:
        prefix = DynamicCache()
        model(input_ids=torch.tensor([examples[0][0][:shared]], device=device), cache=prefix, use_cache=True)
    else:
        shared = 0
    # Batches of similar length pad little; results go back in the caller's order.
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    out: list[tuple[float, int]] = [(0.0, 0)] * len(examples)
    for start in range(0, len(order), batch_size):
        batch_ids = order[start : start + batch_size]
        batch = collate([(ids[shared:], labels[shared:]) for ids, labels in (examples[i] for i in batch_ids)], pad_id, device)
        extra = {}
        if prefix is not None:
            rows = len(batch_ids)
            cache = DynamicCache()
            for layer, done in enumerate(prefix.layers):
                cache.update(done.keys.expand(rows, -1, -1, -1), done.values.expand(rows, -1, -1, -1), layer)
            width = batch["input_ids"].shape[1]
            extra = dict(
                cache=cache,
                attention_mask=torch.cat([torch.ones(rows, shared, dtype=torch.long, device=device), batch["attention_mask"]], 1),
                position_ids=torch.arange(shared, shared + width, device=device).expand(rows, -1),
            )
        logits = model(input_ids=batch["input_ids"], **{"attention_mask": batch["attention_mask"], **extra}).logits
        labels = batch["labels"][:, 1:]
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].float().transpose(1, 2), labels, ignore_index=IGNORE, reduction="none"
        )
        sums, counts = (-nll).sum(dim=1).tolist(), (labels != IGNORE).sum(dim=1).tolist()
        for i, s, n in zip(batch_ids, sums, counts):
            out[i] = (s, n)
    return out


def run_lm_eval(
    model: str,
    adapter: str | None,
    tasks: dict[str, int | None],
    limit: int | None,
    batch_size: int,
    trust_remote_code: bool = False,
) -> dict[str, dict]:
    """task -> {"metrics": the harness's numbers for it, "version", "n_samples"}, each task
    with its own number of shots (None: the task's default). The model is loaded once, as
    `simple_evaluate(model="hf", model_args=...)` would load it, and serves every task."""
    import lm_eval
    from lm_eval.api.registry import get_model
    from lm_eval.tasks import TaskManager

    args = {"pretrained": model, "trust_remote_code": trust_remote_code}
    if adapter:
        args["peft"] = adapter
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lm = get_model("hf").create_from_arg_obj(args, {"batch_size": batch_size, "device": device})
    manager = TaskManager()  # indexes the harness's task folders once for all tasks
    out = {}
    for task, shots in tasks.items():
        found = lm_eval.simple_evaluate(
            model=lm, tasks=[task], num_fewshot=shots, limit=limit, task_manager=manager, log_samples=False
        )
        out[task] = {
            "metrics": {k: v for k, v in found["results"][task].items() if isinstance(v, (int, float))},
            "version": found["versions"].get(task),
            "n_samples": found.get("n-samples", {}).get(task),
        }
    return out


def run_benchmarks(
    model: str,
    todo: dict[str | None, list[str]],
    chats: dict[str, list[list[dict]]],
    lm_shots: dict[str, int | None],
    limit: int | None,
    batch_size: int,
    trust_remote_code: bool = False,
) -> dict[str | None, dict[str, list | dict]]:
    """For each adapter of `todo` (None: the base model) and each of its tasks: a built-in
    task of `chats` -> [(log-likelihood, tokens)] per chat; an lm-eval task (shots in
    `lm_shots`) -> its result. The base model is loaded once for every built-in task."""
    out: dict[str | None, dict[str, list | dict]] = {adapter: {} for adapter in todo}
    if any(task in chats for tasks in todo.values() for task in tasks):
        engine = TransformersEngine.load(model, trust_remote_code=trust_remote_code)
        for adapter, tasks in todo.items():
            with engine.using(adapter):
                for task in (t for t in tasks if t in chats):
                    out[adapter][task] = answer_logliks(engine.model, engine.tokenizer, chats[task], batch_size)
        del engine  # frees the model before the harness loads its own copy
    for adapter, tasks in todo.items():
        lm_tasks = {t: lm_shots[t] for t in tasks if t not in chats}
        if lm_tasks:
            out[adapter].update(run_lm_eval(model, adapter, lm_tasks, limit, batch_size, trust_remote_code))
    return out
