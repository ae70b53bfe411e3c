"""Connecting to Ray: a local single-node runtime, or an existing cluster."""
from __future__ import annotations

import os
import time

# Local runs need no token auth, usage stats or dashboard (docs/design.md, "Ray facts").
LOCAL_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def connect(address: str | None = None, num_cpus: int | None = None, min_gpus: int = 0):
    """Join `address` (or RAY_ADDRESS) when given, else start Ray on this machine's CPUs and GPUs;
    then wait until the cluster has `min_gpus` GPUs."""
    import ray

    if ray.is_initialized():
        return ray
    for key, value in LOCAL_ENV.items():
        os.environ.setdefault(key, value)
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        # "local": a new Ray of our own, never one that `ray start` left running on this machine.
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False)
    if min_gpus:
        wait_for_gpus(min_gpus)
    return ray


def wait_for_gpus(count: int, timeout_s: float = 3600, poll_s: float = 10) -> None:
    """Wait for `count` GPUs to join. An autoscaling cluster starts its GPU workers after the
    head, and work sized by cluster_resources() (the categorization pool) must not start
    before them, or it would take the CPU path."""
    deadline = time.monotonic() + timeout_s
    while (gpus := cluster_resources()[1]) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{gpus:g} of {count} GPUs joined within {timeout_s:g} s: see `ray status` on the head")
        time.sleep(poll_s)


def cluster_resources() -> tuple[float, float]:
    """(CPUs, GPUs) of the connected cluster."""
    import ray

    res = ray.cluster_resources()
    return res.get("CPU", 0.0), res.get("GPU", 0.0)


def publish(cfg) -> str | None:
    """With a URI storage, copy the driver's run folder to `<storage>/<experiment>/`, beside
    the Tune experiment that Tune writes there itself, so the run outlives the cluster.
    Returns that URI, or None when storage is a folder (nothing to copy)."""
    if not cfg.remote_storage:
        return None
    from pyarrow import fs

    fs.copy_files(str(cfg.run_dir.resolve()), cfg.storage_uri)
    return cfg.storage_uri
