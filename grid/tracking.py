"""Experiment tracking: the `tracking:` section turned into Ray Tune's logger callbacks.

Every trial becomes one MLflow run and/or one Weights & Biases run holding its settings
(the trial's config beside the `lora:` section) and every epoch's metrics. TensorBoard
event files need no section: Tune writes them into each trial's folder under `tune/`.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Literal, Protocol
from unittest import mock
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, model_validator


def _require(package: str, extra: str) -> None:
    if importlib.util.find_spec(package) is None:
        raise ValueError(f"the {package} package is not installed: pip install -e '.[{extra}]'")


class MlflowConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # None: $MLFLOW_TRACKING_URI, else an SQLite store in the run folder (<run>/mlflow.db).
    # A server's credentials come from MLflow's environment variables, never from here.
    tracking_uri: str | None = None
    experiment_name: str | None = None  # None: the config's `experiment`

    @model_validator(mode="after")
    def _usable(self) -> MlflowConfig:
        _require("mlflow", "mlflow")
        if self.tracking_uri and urlsplit(self.tracking_uri).password:
            # The config is dumped into the run folder as it ran.
            raise ValueError("tracking_uri holds a password: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD instead")
        return self


class WandbConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: str = "knowledge-grid"
    # online needs WANDB_API_KEY in the environment (or `wandb login`): never put the key here.
    mode: Literal["online", "offline"] = "online"
    group: str | None = None  # None: the config's `experiment`

    @model_validator(mode="after")
    def _usable(self) -> WandbConfig:
        _require("wandb", "wandb")
        return self


class TrackingConfig(BaseModel):
    """The `tracking:` section: each tracker is on when its sub-section is there."""

    model_config = ConfigDict(extra="forbid")
    mlflow: MlflowConfig | None = None
    wandb: WandbConfig | None = None


class Tracked(Protocol):
    """What tracking_callbacks reads of an experiment config (grid/config.py, which composes
    TrackingConfig and so cannot be imported here)."""

    experiment: str
    tracking: TrackingConfig
    lora: BaseModel

    @property
    def run_dir(self) -> Path: ...


def mlflow_callback(settings: dict, **kwargs):
    """Tune's MLflow logger, with the `lora:` settings the trial does not vary as params
    too, and the epoch (0: before training) as each metric's step."""
    # Imported here: ray.air's integrations load Ray Tune and Ray Data, which a config check must not.
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    class MlflowCallback(MLflowLoggerCallback):
        def __init__(self, settings: dict, **kwargs):
            super().__init__(**kwargs)
            self.settings = settings

        def log_trial_start(self, trial) -> None:
            super().log_trial_start(trial)
            fixed = {k: v for k, v in self.settings.items() if k not in trial.config}
            self.mlflow_util.log_params(run_id=self._trial_runs[trial], params_to_log=fixed)

        def log_trial_result(self, iteration: int, trial, result: dict) -> None:
            # Tune's default step, training_iteration, is the epoch + 1: epoch 0 is reported too.
            self.mlflow_util.log_metrics(run_id=self._trial_runs[trial], metrics_to_log=result, step=result["epoch"])

    return MlflowCallback(settings, **kwargs)


def wandb_callback(settings: dict, **kwargs):
    """Tune's W&B logger, with the `lora:` settings the trial does not vary in each run's config."""
    from ray.air.integrations.wandb import WandbLoggerCallback

    class WandbCallback(WandbLoggerCallback):
        def __init__(self, settings: dict, **kwargs):
            super().__init__(**kwargs)
            self.settings = settings

        def setup(self, *args, **kwargs) -> None:
            # Ray's API-key check skips offline runs only when WANDB_MODE says so.
            with mock.patch.dict(os.environ, WANDB_MODE=self.kwargs["mode"]):
                super().setup(*args, **kwargs)

        def _start_logging_actor(self, trial, exclude_results, **init) -> None:
            # The one place (ray 2.60) where the run's config is assembled before wandb.init.
            init["config"] = {**self.settings, **init["config"]}
            super()._start_logging_actor(trial, exclude_results, **init)

    return WandbCallback(settings, **kwargs)


def tracking_callbacks(cfg: Tracked) -> list:
    """The Tune callbacks of the `tracking:` section (none without one)."""
    tracking, settings, run_dir = cfg.tracking, cfg.lora.model_dump(), cfg.run_dir.resolve()
    callbacks = []
    if tracking.mlflow is not None:
        store = f"sqlite:///{run_dir / 'mlflow.db'}"
        callbacks.append(
            mlflow_callback(
                settings,
                tracking_uri=tracking.mlflow.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or store,
                experiment_name=tracking.mlflow.experiment_name or cfg.experiment,
            )
        )
    if tracking.wandb is not None:
        callbacks.append(
            wandb_callback(
                settings,
                project=tracking.wandb.project,
                group=tracking.wandb.group or cfg.experiment,
                mode=tracking.wandb.mode,
                # <run>/wandb/: Tune copies a trial's folder to storage before wandb has
                # finished writing there, which leaves offline runs truncated.
                dir=str(run_dir),
            )
        )
    return callbacks
