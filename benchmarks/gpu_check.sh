#!/usr/bin/env bash
# The GPU check on the GPU machine, from a copy of this repository that carries .wheels/
# (made here by benchmarks/gpu_wheels.sh): install the wheels beside the image's packages,
# then run benchmarks/gpu_check.py into $OUT (or ./gpu-check); extra arguments go to it.
#
#   the device tool: run(command="bash benchmarks/gpu_check.sh", carry=[".wheels"], timeout_s=600)
#   then, here:      python benchmarks/gpu_check.py --docs FETCHED/gpu_check.json
#
# The wheels go to a folder of their own, first on PYTHONPATH, so that they shadow whatever
# version of them the image holds; transformers is the image's own (5.17, inside
# pyproject.toml's range; gpu_check.py's engine_problem says so if it ever is not). The
# project itself is on PYTHONPATH rather than pip-installed: offline, `pip install -e .`
# would need setuptools from PyPI for its build. Ray's workers inherit the variable. The
# image has no vllm (too big to carry), so the check's part (e) is skipped there.
set -euo pipefail
cd "$(dirname "$0")/.."
SITE=/tmp/kgrid-site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .wheels/*.whl
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import ray.tune, pydantic, transformers, peft, grid.run, grid.trials; print('gpu_check.sh: ray', ray.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)"
# 8 minutes for the check (its own --limit-s), a minute more before anything hung is killed.
timeout 540 python3 benchmarks/gpu_check.py --out "${OUT:-gpu-check}" "$@"
