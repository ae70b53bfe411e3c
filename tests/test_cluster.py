"""The cluster path: both cluster files against Ray's own schema (offline), `kgrid launch`
and its dry run, the scale knobs, URI storage; and the same config run on a Ray head
started here on this machine gives the same categories as local mode.

This module never calls ray.init in-process: the Ray runs are subprocesses, and the head
is stopped by its process group, so no other Ray on the machine is touched.
"""
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from grid import runtime
from grid.config import ConfigError, parse_config
from grid.launch import LaunchError, load_cluster, plan, project_mount, startup_gpus
from grid.trials_config import ResourcesConfig

pytestmark = pytest.mark.usefixtures("no_local_ray")  # these tests start Ray in subprocesses

PROJECT = Path(__file__).resolve().parent.parent
CLUSTER = PROJECT / "cluster.yaml"
LOCAL_CLUSTER = PROJECT / "docs" / "cluster-local.yaml"
RAY = str(Path(sys.executable).parent / "ray")


# ---------------------------------------------------------------- cluster files


@pytest.mark.parametrize("path", [CLUSTER, LOCAL_CLUSTER], ids=["aws", "local"])
def test_cluster_file_passes_rays_schema_and_syncs_the_project(path):
    cluster = load_cluster(path)
    assert project_mount(cluster, path) == "~/knowledge-grid"
    text = path.read_text().lower()
    assert not re.search(r"aws_access_key|aws_secret|hf_token|begin [a-z ]*private key", text)


def test_aws_cluster_is_a_cpu_head_and_autoscaling_one_gpu_workers_at_the_pinned_ray():
    cluster = load_cluster(CLUSTER)
    types = cluster["available_node_types"]
    assert types[cluster["head_node_type"]]["resources"]["GPU"] == 0
    (gpu,) = [t for t in types.values() if t["resources"].get("GPU")]
    assert gpu["resources"]["GPU"] == 1 and gpu["max_workers"] > gpu["min_workers"] >= 1
    assert startup_gpus(cluster) == gpu["min_workers"]
    pinned = re.search(r'"ray\[[a-z,]+\]==([0-9.]+)"', (PROJECT / "pyproject.toml").read_text()).group(1)
    docker = cluster["docker"]
    assert docker["head_image"] == f"rayproject/ray:{pinned}-py311" and docker["worker_image"] == f"rayproject/ray:{pinned}-py311-gpu"
    # The head runs the driver: the CPU build of torch, no vLLM; the GPU workers the gpu extra.
    head, workers = " ".join(cluster["head_setup_commands"]), " ".join(cluster["worker_setup_commands"])
    assert "whl/cpu" in head and "[gpu" not in head and "vllm" not in head
    assert "[gpu,bench]" in workers


@pytest.mark.parametrize("path", [CLUSTER, LOCAL_CLUSTER], ids=["aws", "local"])
def test_config_keys_the_cluster_files_name_exist(path):
    from grid.config import ExperimentConfig

    named = set(re.findall(r"\b((?:generators|resources|lora|grid|prompts|bench)\.[a-z_]+)", path.read_text()))
    assert named or path == LOCAL_CLUSTER
    for key in named:
        section, field = key.split(".")
        assert field in type(getattr(ExperimentConfig.model_fields[section], "default")).model_fields, f"{path.name} names {key}"


def _variant(tmp_path, change) -> Path:
    data = yaml.safe_load(CLUSTER.read_text())
    change(data)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda d: d.update(head_nodes=1), "'head_nodes' was unexpected"),
        (lambda d: d["available_node_types"]["gpu"]["resources"].update(GPU=0.5), "gpu.resources.GPU: 0.5 is not of type 'integer'"),
        (lambda d: d["available_node_types"]["gpu"].pop("node_config"), "'node_config' is a required property"),
        (lambda d: d.pop("head_start_ray_commands"), "dashboard binds 0.0.0.0"),  # Ray's AWS default
        (lambda d: d.update(file_mounts={}), "file_mounts must sync the project"),
    ],
    ids=["unknown key", "fractional GPU", "no node_config", "public dashboard", "no project"],
)
def test_bad_cluster_file_is_refused_with_its_reason(tmp_path, change, reason):
    path = _variant(tmp_path, change)
    with pytest.raises(LaunchError, match=re.escape(reason)):
        cluster = load_cluster(path)
        project_mount(cluster, path)


# ---------------------------------------------------------------- the launch script


def launch_sh(*args, env=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    script = str(PROJECT / "scripts" / "launch.sh")
    return subprocess.run([script, *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def fake_ray(tmp_path):
    """A `ray` first on PATH that only records its arguments: nothing reaches a cloud."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "ray-calls"
    bin_dir.mkdir()
    (bin_dir / "ray").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / "ray").chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}, calls


def test_dry_run_prints_the_commands_for_a_good_config():
    out = launch_sh("configs/paper.yaml", "--dry-run")
    assert out.returncode == 0, out.stderr
    up, submit, *after = out.stdout.splitlines()
    assert up == f"$ ray up -y {CLUSTER}"
    assert submit.startswith(
        f"$ ray exec {CLUSTER} 'cd ~/knowledge-grid && ray job submit --address http://127.0.0.1:8265 --submission-id paper-"
    )
    assert submit.endswith(" --working-dir . -- python -m grid run configs/paper.yaml --min-gpus 1'")
    after = "\n".join(after)
    assert "aws s3 sync s3://knowledge-grid-runs/paper runs/paper" in after
    assert f"ray down -y {CLUSTER}" in after and f"ray dashboard {CLUSTER}" in after


def test_launch_runs_exactly_the_commands_the_dry_run_prints(fake_ray):
    env, calls = fake_ray
    out = launch_sh("configs/paper.yaml", "--resume", "--min-gpus", "2", env=env)
    assert out.returncode == 0, out.stderr
    printed = [shlex.split(line[2:]) for line in out.stdout.splitlines() if line.startswith("$ ")]
    assert [" ".join(argv[1:]) for argv in printed] == calls.read_text().splitlines()
    assert printed[1][-1].endswith("run configs/paper.yaml --resume --min-gpus 2")


def test_launch_refuses_a_bad_config_before_running_anything(tmp_path, fake_ray):
    env, calls = fake_ray
    out = launch_sh(_config(tmp_path, {"experiment": "x", "storage": "s3://b", "lora": {"rank": 0}}), env=env)
    assert out.returncode == 2 and "lora.rank: Input should be greater than or equal to 1" in out.stderr
    assert "$ ray" not in out.stdout and not calls.exists()


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda tmp: (_config(tmp, {"experiment": "x", "storage": "s3://b", "bogus": 1}), None), "bogus: unknown key"),
        (lambda tmp: (PROJECT / "configs" / "local.yaml", None), "is a folder on one machine"),
        (lambda tmp: (_config(tmp, {"experiment": "x", "storage": "s3://b"}), None), "not inside"),
        (lambda tmp: ("configs/paper.yaml", _variant(tmp, lambda d: d.update(bogus=1))), "not a valid Ray cluster file"),
    ],
    ids=["unknown key", "local storage", "config outside the project", "bad cluster file"],
)
def test_launch_plan_refuses(tmp_path, make, reason):
    with pytest.raises(ValueError, match=reason):
        plan(*make(tmp_path))


def _config(folder: Path, data: dict) -> str:
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


# ---------------------------------------------------------------- scale knobs and storage


def test_trials_per_gpu_sets_the_gpu_share_and_refuses_a_conflicting_one():
    assert ResourcesConfig(trials_per_gpu=4).gpus_per_trial == 0.25
    assert ResourcesConfig(trials_per_gpu=2, gpus_per_trial=0.5).gpus_per_trial == 0.5
    with pytest.raises(ConfigError, match="resources: .*gpus_per_trial 1 and trials_per_gpu 2 disagree"):
        parse_config({"experiment": "x", "resources": {"trials_per_gpu": 2, "gpus_per_trial": 1}})
    # The resolved config that a run writes (both keys) reads back the same.
    written = yaml.safe_load(yaml.safe_dump(ResourcesConfig(trials_per_gpu=3).model_dump(mode="json")))
    assert ResourcesConfig.model_validate(written).gpus_per_trial == 1 / 3


def test_uri_storage_stages_the_run_folder_here_and_publishes_it_beside_tune(tmp_path, monkeypatch):
    monkeypatch.setenv("KGRID_CACHE", str(tmp_path / "cache"))
    bucket = tmp_path / "bucket"
    cfg = parse_config({"experiment": "paper", "storage": f"file://{bucket}"})
    assert cfg.run_dir == tmp_path / "cache" / "runs" / "paper"
    assert cfg.storage_uri == f"file://{bucket}/paper"
    (cfg.run_dir / "report").mkdir(parents=True)
    (cfg.run_dir / "report" / "index.html").write_text("<h1>report</h1>")
    pd.DataFrame({"trial": ["a"]}).to_parquet(cfg.run_dir / "results.parquet")
    assert runtime.publish(cfg) == cfg.storage_uri
    assert (bucket / "paper" / "report" / "index.html").read_text() == "<h1>report</h1>"
    assert pd.read_parquet(bucket / "paper" / "results.parquet")["trial"].tolist() == ["a"]

    local = parse_config({"experiment": "x", "storage": str(tmp_path / "runs")})
    assert local.run_dir == tmp_path / "runs" / "x" and runtime.publish(local) is None


def test_wait_for_gpus_returns_once_they_joined_and_times_out_otherwise(monkeypatch):
    seen = iter([(8.0, 0.0), (8.0, 0.0), (16.0, 1.0)])
    monkeypatch.setattr(runtime, "cluster_resources", lambda: next(seen))
    runtime.wait_for_gpus(1, timeout_s=60, poll_s=0)
    monkeypatch.setattr(runtime, "cluster_resources", lambda: (8.0, 0.0))
    with pytest.raises(TimeoutError, match="0 of 2 GPUs"):
        runtime.wait_for_gpus(2, timeout_s=0, poll_s=0)


# ---------------------------------------------------------------- a Ray head on this machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return {**env, **runtime.LOCAL_ENV, **extra}


@pytest.fixture(scope="module")
def ray_head():
    """`ray start --head` on loopback with 2 CPUs and no dashboard, in its own process group
    and temp dir (so `ray.init()` elsewhere never finds it); stopped by that group, since
    `ray stop` would stop every Ray on the machine."""
    port = _free_port()
    temp = Path(tempfile.mkdtemp(prefix="kg-ray-", dir="/tmp"))  # short: Ray's sockets live under it
    log = temp / "head.log"
    with log.open("w") as out:
        head = subprocess.Popen(
            [RAY, "start", "--head", "--block", f"--port={port}", "--num-cpus=2", "--node-ip-address=127.0.0.1",
             "--include-dashboard=false", f"--temp-dir={temp}"],
            env=_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while subprocess.run([RAY, "status", f"--address=127.0.0.1:{port}"], env=_env(), capture_output=True).returncode:
            assert head.poll() is None and time.monotonic() < deadline, f"the Ray head did not start:\n{log.read_text()[-3000:]}"
            time.sleep(1)
        yield f"127.0.0.1:{port}", temp
    finally:
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, None)):  # KILL: what ignored TERM
            try:
                os.killpg(head.pid, sig)
                head.wait(timeout=wait)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(temp, ignore_errors=True)


def _categorize(config: Path, *args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "grid", "categorize", str(config), *args]
    out = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def test_run_on_a_ray_head_gives_the_same_categories_as_local_mode(ray_head, tiny_config, tmp_path):
    address, temp = ray_head
    on_head = tiny_config("cluster-head", storage=str(tmp_path / "head"))
    local = tiny_config("cluster-local", storage=str(tmp_path / "local"))
    _categorize(on_head, "--address", address)
    _categorize(local)
    # The first run's driver really joined the head started here.
    assert list(temp.glob("session_*/logs/python-core-driver-*.log"))
    for table in ("categories", "generations"):
        head_frame = pd.read_parquet(tmp_path / "head" / "cluster-head" / table / "base.parquet")
        local_frame = pd.read_parquet(tmp_path / "local" / "cluster-local" / table / "base.parquet")
        pd.testing.assert_frame_equal(head_frame, local_frame)
