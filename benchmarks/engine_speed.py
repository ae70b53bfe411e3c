"""The transformers engine's greedy decoding, timed in this venv: for comparing two installs
(e.g. two transformers releases) side by side, run alternately from each venv.

    python benchmarks/engine_speed.py [--size tiny] [--facts 800] [--repeats 3]

Prints one JSON line: the transformers version, the best of `repeats` seconds for the
prompts (M=10 sets per fact, one thread), and a digest of the answers, which must match
across installs for their times to compare the same work.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time

import torch
import transformers

from actors.engines import Decoding, TransformersEngine
from grid.data.facts import read_facts
from grid.data.prompts import PromptConfig, build_prompts
from grid.world.graph import build_world


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="tiny")
    p.add_argument("--facts", type=int, default=800)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)  # as one generator actor runs (generators.threads_per_actor)
    world = build_world(args.size, 0, progress=False)
    prompts = PromptConfig()
    table = build_prompts(read_facts(world / "facts.parquet").head(args.facts), read_facts(world / "exemplars.parquet"), prompts)
    engine = TransformersEngine.load(str(world))
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        answers = engine.generate(list(table["messages"]), Decoding(max_new_tokens=prompts.max_new_tokens))
        times.append(time.perf_counter() - start)
    digest = hashlib.sha256(json.dumps(answers).encode()).hexdigest()[:12]
    print(json.dumps({"transformers": transformers.__version__, "prompts": len(table), "best_s": round(min(times), 2), "answers": digest}))


if __name__ == "__main__":
    main()
