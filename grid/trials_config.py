"""The `grid:`, `search:` and `resources:` sections of grid/trials.py, kept apart from the
trials' code, which takes the Run, so that grid/config.py composes them without importing a
stage (docs/design.md)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from grid.data.mixes import Extra, Selection


class GridConfig(BaseModel):
    """The `grid:` section: every combination is one trial, the +0 control (ratio 0) once
    per (unknown, seed) (grid_points; docs/protocol.md §3)."""

    model_config = ConfigDict(extra="forbid")
    unknown: list[int] = Field([1, 10, 50], min_length=1)
    extra: list[Extra] = ["HighlyKnown", "paraphrase"]
    ratio: list[int] = [0, 1, 10]
    seeds: list[int] = [42, 1337, 10824]
    # random (ours): a seeded draw; first (the authors' code): corpus order, only facts
    # with paraphrases (grid/data/mixes.py compose_mix).
    selection: Selection = "random"
    full_paraphrases: int = Field(100, ge=1, description="paraphrases that make a full set, for selection first (the authors': 100)")
    probe_size: int | None = Field(
        None, ge=1, description="facts outside the mix watched per epoch, sampled stratified by category; None: all of them"
    )

    @model_validator(mode="after")
    def _positive(self) -> GridConfig:
        if min(self.unknown) < 1 or min(self.ratio) < 0:
            raise ValueError("unknown counts must be >= 1 and ratios >= 0")
        return self


class SearchConfig(BaseModel):
    """The `search:` section of `kgrid tune`: Optuna over LoRA rank and the mix."""

    model_config = ConfigDict(extra="forbid")
    trials: int = Field(20, ge=1)
    unknown: int = Field(50, ge=1)
    rank: tuple[int, int] = (1, 64)
    ratio: tuple[int, int] = (0, 10)
    extra: list[Extra] = ["HighlyKnown", "paraphrase"]
    lr: tuple[float, float] | None = None
    reliability_floor: float = Field(0.95, ge=0, le=1)
    # What a single-objective search minimizes among the trials that meet the floors: the
    # negative shift, or the drop of known_mc accuracy (grid/bench.py) against the base.
    objective: Literal["negative_shift", "bench_drop"] = "negative_shift"
    bench_max_drop: float | None = Field(None, ge=0, le=1, description="a trial whose known_mc accuracy falls by more misses the floor")
    multi_objective: bool = False
    asha: bool = False
    seed: int = 0

    @property
    def uses_bench(self) -> bool:
        """Trials then measure known_mc after every epoch."""
        return self.objective == "bench_drop" or self.bench_max_drop is not None


class ResourcesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cpus_per_trial: float = Field(1, gt=0)
    gpus_per_trial: float = Field(0, ge=0, description="fractions pack several trials on one GPU")
    trials_per_gpu: int | None = Field(None, ge=1, description="the same packing said the other way: gpus_per_trial = 1 / trials_per_gpu")
    max_concurrent_trials: int | None = Field(None, ge=1)
    max_failures: int = Field(2, ge=0, description="retries of a failed trial, from its last checkpoint")

    @model_validator(mode="after")
    def _one_gpu_share(self) -> ResourcesConfig:
        # gpus_per_trial stays the one value Tune reads; trials_per_gpu only sets it.
        if self.trials_per_gpu is not None:
            share = 1 / self.trials_per_gpu
            if "gpus_per_trial" in self.model_fields_set and self.gpus_per_trial != share:
                raise ValueError(
                    f"gpus_per_trial {self.gpus_per_trial:g} and trials_per_gpu {self.trials_per_gpu} disagree: set one of them"
                )
            self.gpus_per_trial = share
        return self
