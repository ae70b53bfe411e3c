"""The `bench:` section of grid/bench.py, kept apart from the benchmarks' code, which takes
the Run, so that grid/config.py composes it without importing a stage (docs/design.md)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# The built-in tasks: analysis/benchmarks.py BUILTIN.
from analysis.benchmarks import BUILTIN

# The paper's shots (docs/protocol.md §5); a task not named here takes its own default.
PAPER_SHOTS = {"mmlu": 5, "truthfulqa_mc1": 0, "truthfulqa_mc2": 0}


class BenchConfig(BaseModel):
    """The `bench:` section: which benchmarks measure the base model and every adapter."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    tasks: list[str] = Field(["known_mc", "known_ppl"], min_length=1, description="built-in tasks or lm-eval task names")
    num_fewshot: dict[str, int] = Field(PAPER_SHOTS, description="shots per lm-eval task")
    metric: str = Field("acc,none", description="the lm-eval metric that is a task's score")
    limit: int | None = Field(
        None, ge=1, description="for a quick look: the first N known facts of a built-in task; lm-eval's limit (per subtask of mmlu)"
    )
    batch_size: int = Field(32, ge=1, description="chats per forward of a built-in task; lm-eval's batch size")
    seed: int = Field(0, ge=0, description="seeds the draws of built-in tasks (known_mc's distractors)")

    @property
    def lm_eval_tasks(self) -> dict[str, int | None]:
        """The lm-eval tasks and their shots (None: the task's own default)."""
        return {t: self.num_fewshot.get(t) for t in self.tasks if t not in BUILTIN}
