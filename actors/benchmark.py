"""Benchmarks on a model (or model + peft adapter), run inside a Ray worker (grid/bench.py).

- `answer_logliks`: the log-likelihood of each chat's last turn given the turns before it,
  through the model's own chat template: the built-in tasks score options and text this way.
- `run_lm_eval`: lm-evaluation-harness tasks (the `bench` extra) on a Hugging Face model
  and its adapter, through the harness's own peft support.
- `run_benchmarks`: both for one model or adapter, the body of one Ray task.
"""
from __future__ import annotations

import torch

from actors.engines import TransformersEngine
from actors.trial import IGNORE, collate, encode


@torch.inference_mode()
def answer_logliks(model, tokenizer, chats: list[list[dict]], batch_size: int = 64) -> list[tuple[float, int]]:
    """(sum of log-probabilities, token count) of each chat's last message: the tokens the
    template renders for that turn, its closing token included, so that a prefix of an
    answer ("Varonel" for "Varonel Quist") does not score as the whole answer."""
    if not chats:
        return []
    examples = encode(tokenizer, chats, mask_prompt=True)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    # Batches of similar length pad little; results go back in the caller's order.
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    out: list[tuple[float, int]] = [(0.0, 0)] * len(examples)
    for start in range(0, len(order), batch_size):
        batch_ids = order[start : start + batch_size]
        batch = collate([examples[i] for i in batch_ids], pad_id, device)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
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
    adapter: str | None,
    chats: dict[str, list[list[dict]]],
    builtin: list[str],
    lm_tasks: dict[str, int | None],
    limit: int | None,
    batch_size: int,
    trust_remote_code: bool = False,
) -> dict[str, list | dict]:
    """The `builtin` tasks of `chats` -> [(log-likelihood, tokens)] per chat, and each
    lm-eval task -> its result, for one model or adapter."""
    out: dict[str, list | dict] = {}
    if builtin:
        engine = TransformersEngine.load(model, (adapter,) if adapter else (), trust_remote_code=trust_remote_code)
        for task in builtin:
            out[task] = answer_logliks(engine.model, engine.tokenizer, chats[task], batch_size)
        del engine  # frees the model before the harness loads its own copy
    if lm_tasks:
        out.update(run_lm_eval(model, adapter, lm_tasks, limit, batch_size, trust_remote_code))
    return out
