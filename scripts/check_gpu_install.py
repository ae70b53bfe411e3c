"""What `pip install -e '.[gpu]'` gives a GPU user, asked of pip's resolver without installing
anything (`pip install --dry-run --report`); .ci/run runs it on every submission.

    python scripts/check_gpu_install.py

Prints the resolved vLLM, torch and transformers and how long the resolution took; fails
if pip cannot resolve the extra, or resolves a vLLM other than the one pyproject.toml pins
(a loose pin once let pip backtrack to an old vLLM with another torch). On a CPU machine
whose pip finds the CPU build of torch 2.13.0 locally the torch line says +cpu: the version is
the one vLLM pins, the build is the one pip finds (on a GPU machine, PyPI's CUDA build).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOWN = ("vllm", "torch", "transformers", "peft", "ray")


def pinned_vllm() -> str:
    """The vLLM version of pyproject.toml's `gpu` extra."""
    found = re.search(r'^gpu = \["vllm==([^"]+)"\]', (ROOT / "pyproject.toml").read_text(), re.M)
    if not found:
        raise SystemExit("pyproject.toml: the gpu extra is not a single vllm==X pin")
    return found.group(1)


def resolve() -> tuple[dict[str, str], float]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        start = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report), f"{ROOT}[gpu]"],
            capture_output=True, text=True,
        )
        seconds = time.monotonic() - start
        if done.returncode:
            raise SystemExit(f"pip cannot resolve .[gpu] ({seconds:.0f} s):\n{done.stderr[-3000:]}")
        installs = json.loads(report.read_text())["install"]
    return {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in installs}, seconds


def main() -> int:
    versions, seconds = resolve()
    print(f".[gpu] resolves in {seconds:.0f} s to " + ", ".join(f"{name} {versions.get(name)}" for name in SHOWN))
    if versions.get("vllm") != pinned_vllm():
        print(f"expected vllm {pinned_vllm()} (pyproject.toml), got {versions.get('vllm')}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
