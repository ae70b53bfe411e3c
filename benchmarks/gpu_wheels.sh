#!/usr/bin/env bash
# The wheels benchmarks/gpu_check.py needs on the GPU machine beyond what its image holds,
# saved in .wheels/ (gitignored). That machine has no network and runs CPython 3.12 on
# x86-64 Linux; what travels there with the working tree is 64 MiB in all.
#
#   bash benchmarks/gpu_wheels.sh [--optuna]     # here, where pip reaches PyPI
#   bash benchmarks/gpu_check.sh                 # there, with .wheels carried: installs them, runs the check
#
# What and why (versions: constraints.txt's):
#   ray                     repacked without ray/jars (Java workers), ray/rllib and the
#                           dashboard's web client (no dashboard is started): 75 -> ~40 MiB
#   jsonschema, jsonschema-specifications, referencing, rpds-py
#                           what Ray needs that the image lacks (it has click, filelock,
#                           msgpack, protobuf, pyyaml, requests, pandas, pyarrow, fsspec)
#   pydantic, pydantic_core, annotated-types, typing-inspection, typing_extensions (pydantic asks >= 4.16)
#                           every config section; the image has no pydantic
#   peft                    the version the tests ran with
# Not transformers: the image's 5.17 is inside pyproject.toml's range (actors/engines.py runs
# on 5.16.1-5.39), so it stays; were it not, gpu_check.py's engine_problem would say to add it.
# Nor vllm: its wheel and its CUDA libraries are far over 64 MiB.
#   --optuna: optuna, alembic, SQLAlchemy, Mako, colorlog. Only `kgrid tune`'s search
#   imports optuna; the check runs a grid, so they stay out unless asked for.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.wheels
PY=${PYTHON:-python3}
PACKAGES=(ray jsonschema jsonschema-specifications referencing rpds-py pydantic pydantic_core annotated-types typing-inspection typing_extensions peft)
if [[ "${1:-}" == --optuna ]]; then
  PACKAGES+=(optuna alembic SQLAlchemy Mako colorlog)
fi

pins=()
for name in "${PACKAGES[@]}"; do
  version=$(grep -i "^$name==" constraints.txt | cut -d= -f3)
  [[ -n "$version" ]] || { echo "gpu_wheels: $name is not in constraints.txt" >&2; exit 1; }
  pins+=("$name==$version")
done

rm -rf "$DEST"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$DEST" "${pins[@]}"

# The ray wheel without what a local Ray running Tune never loads; its RECORD loses those
# lines too. Each kept entry keeps its mode bits: the raylet and the GCS server are executables.
"$PY" - "$DEST"/ray-*.whl <<'EOF'
import sys
import zipfile
from pathlib import Path

DROP = ("ray/jars/", "ray/rllib/", "ray/dashboard/client/build/")
wheel = Path(sys.argv[1])
slim = wheel.with_suffix(".slim")
with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
    for item in src.infolist():
        if item.filename.startswith(DROP):
            continue
        data = src.read(item)
        if item.filename.startswith("ray-") and item.filename.endswith(".dist-info/RECORD"):
            data = b"".join(line for line in data.splitlines(keepends=True) if not line.decode().startswith(DROP))
        out.writestr(item, data)
slim.replace(wheel)
EOF

ls -l "$DEST" | awk 'NR > 1 {printf "%8.1f MiB  %s\n", $5 / 1048576, $9}'
wheels=$(du -cb "$DEST"/*.whl | tail -1 | cut -f1)
tree=$(git ls-files -co --exclude-standard -z | xargs -0 du -cb | tail -1 | cut -f1)
awk -v w="$wheels" -v t="$tree" 'BEGIN {
  printf "wheels %.1f MiB + working tree %.1f MiB = %.1f MiB of the 64 MiB that travel\n", w / 1048576, t / 1048576, (w + t) / 1048576
  if (w + t > 64 * 1048576) { print "gpu_wheels: over 64 MiB" > "/dev/stderr"; exit 1 }
}'
