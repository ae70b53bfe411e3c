"""Shared fixtures: one tiny micro-world per test session, quiet local Ray, small configs."""
import os

import pytest
import yaml

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# A config small enough for 2 CPUs: the tiny world, few prompt sets, a few epochs of a
# LoRA with a high learning rate so that the new facts are learned within them.
TINY = {
    "world": {"size": "tiny", "seed": 0},
    "prompts": {"sets": 4, "shots": 4, "max_new_tokens": 16},
    "generators": {"engine": {"kind": "transformers"}},
    "lora": {"rank": 4, "lr": 1.0e-2, "epochs": 4, "batch_size": 4, "mask_prompt": True, "dropout": 0.0},
    "grid": {"unknown": [6], "extra": ["HighlyKnown"], "ratio": [0, 1], "seeds": [0], "probe_size": 20},
    "search": {"trials": 3, "unknown": 6, "rank": [1, 8], "ratio": [0, 1], "extra": ["HighlyKnown"], "reliability_floor": 0.5},
    "resources": {"cpus_per_trial": 1, "max_concurrent_trials": 2},
}


@pytest.fixture(scope="session")
def world_cache(tmp_path_factory):
    """A cache folder shared by the session (and its subprocesses), so the tiny world is built once."""
    path = tmp_path_factory.mktemp("kgrid-cache")
    os.environ["KGRID_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_world(world_cache):
    from grid.world.graph import build_world

    return build_world("tiny", 0, cache_dir=world_cache, progress=False)


@pytest.fixture(scope="session")
def storage(tmp_path_factory):
    """One storage for the session: its categorization cache is shared by every test."""
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory, tiny_world, storage):
    """Write a tiny-world config (TINY, its sections updated by `changes`) and return its path."""
    folder = tmp_path_factory.mktemp("configs")

    def write(name="tiny", **changes):
        data = {"experiment": name, "storage": str(storage), **TINY}
        for key, value in changes.items():
            data[key] = {**data[key], **value} if isinstance(value, dict) and key in data else value
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    return write


def local_ray():
    """The in-process local Ray on 2 CPUs as in CI: started once, kept for the modules after."""
    from grid.runtime import connect

    return connect(num_cpus=2)


@pytest.fixture(scope="module")
def ray_runtime(world_cache):
    return local_ray()


@pytest.fixture(scope="module")
def no_local_ray():
    """For modules that start Ray in subprocesses: stop the in-process one to free its CPUs."""
    import ray

    ray.shutdown()


@pytest.fixture(scope="session")
def grid_run(world_cache, tiny_config):
    """The tiny grid (2 trials), run once: trials, adapter evaluation and report."""
    from grid.config import load_config
    from grid.pipeline import run_experiment

    local_ray()
    cfg = load_config(tiny_config("grid"))
    return cfg, run_experiment(cfg, "grid", progress=False)
