"""Experiment tracking: MLflow runs per trial, W&B offline runs, TensorBoard files, the section's checks."""
import importlib.util
import json
import struct
import sys

import pandas as pd
import pytest

from grid.config import ConfigError, load_config, parse_config
from grid.tracking import tracking_callbacks

# One trial of two epochs: reports for epochs 0 (before training), 1 and 2.
ONE_TRIAL = {"grid": {"ratio": [0]}, "lora": {"epochs": 2}, "bench": {"enabled": False}}
EPOCHS = [0, 1, 2]


def run(tiny_config, name: str, tracking: dict):
    from grid.pipeline import run_experiment

    cfg = load_config(tiny_config(name, tracking=tracking, **ONE_TRIAL))
    run_experiment(cfg, "grid", progress=False)
    return cfg


@pytest.fixture(scope="module")
def mlflow_run(ray_runtime, tiny_config):
    with pytest.MonkeyPatch.context() as env:
        env.delenv("MLFLOW_TRACKING_URI", raising=False)  # so the store is the default one
        return run(tiny_config, "tracked", {"mlflow": {}})


def test_mlflow_run_per_trial_with_settings_and_epochs(mlflow_run):
    from mlflow import MlflowClient

    cfg = mlflow_run
    store = f"sqlite:///{cfg.run_dir.resolve() / 'mlflow.db'}"  # the default: the run folder
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name(cfg.experiment)
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    params = runs[0].data.params
    # The trial's config, and the lora section it does not vary.
    assert {k: params[k] for k in ("unknown", "extra", "ratio", "seed")} == {"unknown": "6", "extra": "HighlyKnown", "ratio": "0", "seed": "0"}
    assert {k: params[k] for k in ("rank", "lr", "epochs", "mask_prompt")} == {"rank": "4", "lr": "0.01", "epochs": "2", "mask_prompt": "True"}
    history = pd.read_parquet(cfg.run_dir / "history.parquet").sort_values("epoch")
    for metric in ("reliability", "probe_negative_shift", "loss"):
        logged = client.get_metric_history(runs[0].info.run_id, metric)
        assert [m.step for m in logged] == EPOCHS
        assert [m.value for m in logged] == pytest.approx(list(history[metric]))


def test_tensorboard_files_per_trial(mlflow_run):
    trials = [p for p in (mlflow_run.run_dir / "tune").iterdir() if p.is_dir()]
    assert len(trials) == 1
    assert list(trials[0].glob("events.out.tfevents.*"))


BLOCK = 32768  # the W&B run file's block size


def wandb_records(path):
    """The records of a W&B run file: a LevelDB log (32 KiB blocks, 7-byte record headers)
    of protobuf Records after the file's own 7-byte header."""
    from wandb.proto.wandb_internal_pb2 import Record

    data, pos, chunks = path.read_bytes(), 7, b""
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        chunks, pos = chunks + data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = Record()
            record.ParseFromString(chunks)
            yield record
            chunks = b""


# A mark rather than importorskip, so that a missing wandb skips before the tiny run's fixtures.
@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed")
def test_wandb_offline_run_per_trial(ray_runtime, tiny_config):
    cfg = run(tiny_config, "tracked-wandb", {"wandb": {"mode": "offline", "project": "kgrid-test"}})
    (offline,) = list((cfg.run_dir / "wandb").glob("offline-run-*"))
    records = list(wandb_records(next(offline.glob("*.wandb"))))
    (start,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    config = {item.key: json.loads(item.value_json) for item in start.config.update}
    assert {k: config[k] for k in ("unknown", "extra", "ratio", "seed", "rank", "lr")} == {
        "unknown": 6, "extra": "HighlyKnown", "ratio": 0, "seed": 0, "rank": 4, "lr": 0.01
    }
    history = [r.history for r in records if r.WhichOneof("record_type") == "history"]
    epochs = [json.loads(i.value_json) for h in history for i in h.item if (i.key or "/".join(i.nested_key)) == "epoch"]
    assert epochs == EPOCHS


def test_no_section_no_callbacks():
    assert tracking_callbacks(parse_config({"experiment": "x"})) == []


def test_unknown_key_named():
    with pytest.raises(ConfigError, match=r"tracking\.mlflow\.uri: unknown key"):
        parse_config({"experiment": "x", "tracking": {"mlflow": {"uri": "sqlite:///m.db"}}})
    with pytest.raises(ConfigError, match=r"tracking\.wandb\.mode"):
        parse_config({"experiment": "x", "tracking": {"wandb": {"mode": "sometimes"}}})


def test_no_password_in_the_tracking_uri():
    with pytest.raises(ConfigError, match=r"tracking\.mlflow: .*MLFLOW_TRACKING_PASSWORD"):
        parse_config({"experiment": "x", "tracking": {"mlflow": {"tracking_uri": "https://me:secret@mlflow.example.org"}}})
    assert parse_config({"experiment": "x", "tracking": {"mlflow": {"tracking_uri": "https://mlflow.example.org"}}})


@pytest.mark.parametrize("tracker", ["mlflow", "wandb"])
def test_missing_package_names_the_extra(tracker, monkeypatch):
    monkeypatch.setitem(sys.modules, tracker, None)  # as if not installed
    with pytest.raises(ConfigError, match=rf"tracking\.{tracker}: .*the {tracker} package is not installed: pip install -e '\.\[{tracker}\]'"):
        parse_config({"experiment": "x", "tracking": {tracker: {}}})
