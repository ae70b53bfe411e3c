"""Where the wall time of a grid run goes: seconds per trial and per epoch, and the share
of the trial phase spent outside trials (Ray and Tune overhead).

Runs the config (or reads a finished run with --read) and prints a Markdown table:

    python benchmarks/grid_timings.py configs/local.yaml [--read] [--out docs/performance.md]
"""
from __future__ import annotations

import argparse
import json
import os

import pandas as pd

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from grid.config import load_config  # noqa: E402
from grid.run_folder import RunFolder  # noqa: E402
from docs_page import emit  # noqa: E402  (benchmarks/docs_page.py, beside this script)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--read", action="store_true", help="read the stored run instead of running it")
    p.add_argument("--out", default=None, help="append the result as Markdown to this file")
    args = p.parse_args()
    cfg = load_config(args.config)
    if not args.read:
        from grid.pipeline import run_experiment
        from grid.runtime import connect

        connect()
        run_experiment(cfg, "grid", progress=False)

    run = RunFolder(cfg.run_dir)
    laps = json.loads(run.timings.read_text())
    results = pd.read_parquet(run.results)
    history = pd.read_parquet(run.history)
    cpus = os.cpu_count()
    concurrency = min(len(results), cfg.resources.max_concurrent_trials or len(results), int(cpus // cfg.resources.cpus_per_trial))
    busy = results["time_total_s"].sum() / concurrency  # trial seconds per slot
    overhead = 1 - busy / laps["trials"]
    lines = [
        f"### Grid run timings ({args.config}: {len(results)} trials, {cfg.lora.epochs} epochs, {cpus} CPUs, "
        f"{concurrency} trials at a time)",
        "",
        "| phase | seconds |",
        "| --- | ---: |",
        *[f"| {name} | {seconds:.1f} |" for name, seconds in laps.items()],
        f"| **total** | {sum(laps.values()):.1f} |",
        "",
        f"- seconds per trial: mean {results['time_total_s'].mean():.1f} (min {results['time_total_s'].min():.1f}, "
        f"max {results['time_total_s'].max():.1f})",
        f"- seconds per epoch (training + probe evaluation): mean {history['time_this_iter_s'].mean():.2f}",
        f"- share of the trial phase spent outside trials (Ray and Tune overhead): {overhead:.0%}",
        "",
    ]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
