"""Kill a running `kgrid run` and resume it: finished trials are kept, the killed one
continues from its last checkpoint. Runs the real CLI in subprocesses (its own Ray)."""
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from grid.config import load_config
from grid.trials import EPOCH0_FILE

pytestmark = pytest.mark.usefixtures("no_local_ray")  # these tests start Ray in subprocesses


def checkpoints(tune_dir):
    return sorted(tune_dir.glob("*/checkpoint_*"))


def test_killed_run_resumes_without_rerunning_finished_trials(tiny_config, world_cache):
    path = tiny_config("resume", resources={"max_concurrent_trials": 1})
    cfg = load_config(path)
    epochs, tune_dir = cfg.lora.epochs, cfg.run_dir / "tune"
    cmd = [sys.executable, "-m", "grid", "run", str(path)]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Kill once the first trial is done (epochs 0..E) and the second has trained an epoch.
        deadline = time.time() + 300
        while len(checkpoints(tune_dir)) < (epochs + 1) + 2:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.time() < deadline, "no checkpoints appeared"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finished = [t for t in tune_dir.iterdir() if len(list(t.glob("checkpoint_*"))) == epochs + 1]
    assert len(finished) == 1
    # The finished trial's checkpoints: never made again. (The killed trial's last epoch may
    # be: Tune resumes from the last checkpoint it recorded, and the kill can fall between a
    # checkpoint's write and its record.)
    killed = next(t for t in tune_dir.iterdir() if t.is_dir() and t not in finished and list(t.glob("checkpoint_*")))
    kept = list(finished[0].glob("checkpoint_*"))
    before = {p: p.stat().st_mtime_ns for p in kept}
    epoch0 = pd.read_parquet(killed / "checkpoint_000000" / EPOCH0_FILE)

    done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    results = pd.read_parquet(cfg.run_dir / "results.parquet")
    assert len(results) == 2 and results["error"].isna().all()
    history = pd.read_parquet(cfg.run_dir / "history.parquet")
    for trial, epochs_seen in history.groupby("trial")["epoch"]:
        # Resumed from its checkpoint: every epoch once in the history.
        assert sorted(epochs_seen) == list(range(0, epochs + 1)), (trial, list(epochs_seen))
    assert history["probe_negative_shift"].notna().all()
    # Every checkpoint carries the epoch-0 categories the shifts are counted against, the
    # killed trial's the same after the resume as before it, and its final adapter is in its
    # own folder: had Tune's experiment snapshot missed the trial, it would have been trained
    # again in a new one (grid/trials.py SNAPSHOT_S; with TUNE_GLOBAL_CHECKPOINT_S=60 it is).
    saved = [pd.read_parquet(c / EPOCH0_FILE) for c in sorted(finished[0].glob("checkpoint_*"))]
    assert len(saved) == epochs + 1 and all(s.equals(saved[0]) for s in saved)
    assert all(pd.read_parquet(c / EPOCH0_FILE).equals(epoch0) for c in killed.glob("checkpoint_*"))
    last = dict(zip(results["trial"], results["adapter"]))
    assert all(pd.read_parquet(f"{a}/{EPOCH0_FILE}").equals(epoch0 if killed.name in a else saved[0]) for a in last.values())
    for ckpt, mtime in before.items():
        assert ckpt.stat().st_mtime_ns == mtime  # the finished trial was not redone
