"""lm-evaluation-harness tasks (the `bench` extra) on a Hugging Face model and its adapter,
through the harness's own peft support: the body of one Ray task (grid/bench.py). The
built-in tasks are scored by the generator pool instead (actors/engines.py `logliks`).
"""
from __future__ import annotations

import torch


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
