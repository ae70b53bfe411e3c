"""Build the micro-world presets from scratch and measure them; writes the measured part
of docs/world.md.

    python benchmarks/world_build.py [--sizes tiny default] [--doc docs/world.md]

For each size: build time (fresh cache folder), parameters, folder size, then the
categorization of every fact by the product's own instrument (grid.categorize, paper
protocol of docs/protocol.md §2: M=10 four-shot sets, greedy), split by how pretraining
exposed the fact and by popularity.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from analysis.scoring import ScoringConfig
from grid.cache import cache_root
from grid.categorize import Categorizer, categorize
from grid.data.facts import read_facts
from grid.data.prompts import PromptConfig
from grid.generate import GeneratorsConfig, Pool
from grid.runtime import connect
from grid.world.graph import build_world

BEGIN, END = "<!-- measured: begin -->", "<!-- measured: end -->"


def measure(size: str, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        world = build_world(size, seed, cache_dir=cache)
        build_s = time.perf_counter() - start
        info = json.loads((world / "world.json").read_text())
        mb = sum(f.stat().st_size for f in world.iterdir()) / 2**20
        facts, exemplars = read_facts(world / "facts.parquet"), read_facts(world / "exemplars.parquet")
        start = time.perf_counter()
        pool = Pool(str(world), GeneratorsConfig())
        cats = categorize(Categorizer(facts, exemplars, PromptConfig(), ScoringConfig(), pool, cache), pool)[None].categories
        eval_s = time.perf_counter() - start
        exposure = pd.read_parquet(world / "exposure.parquet")[["fact_id", "exposure"]]
        cats = cats.merge(facts[["fact_id", "popularity"]], on="fact_id").merge(exposure, on="fact_id")
        kept = cache_root() / "worlds" / world.name
        if not kept.exists():  # keep the fresh world for later runs rather than building it again
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(world, kept)
        return dict(size=size, build_s=build_s, eval_s=eval_s, mb=mb, info=info, cats=cats)


def shares(cats: pd.DataFrame, by: str) -> pd.DataFrame:
    table = pd.crosstab(cats[by], cats["category"], normalize="index").reindex(
        columns=["HighlyKnown", "MaybeKnown", "Unknown"], fill_value=0.0
    )
    table.insert(0, "facts", cats[by].value_counts())
    table.insert(1, "greedy accuracy", cats.groupby(by)["p_greedy"].mean())
    table["refused"] = cats.groupby(by)["refused"].mean()
    return table


def markdown(df: pd.DataFrame) -> str:
    df = df.reset_index()
    fmt = lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)  # noqa: E731
    rows = [" | ".join(map(str, df.columns)), " | ".join("---" for _ in df.columns)]
    rows += [" | ".join(fmt(v) for v in r) for r in df.itertuples(index=False)]
    return "\n".join(f"| {r} |" for r in rows)


def report(results: list[dict]) -> str:
    machine = f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), " + (
        torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    )
    out = [
        f"Measured by `python benchmarks/world_build.py` on {time.strftime('%Y-%m-%d')}: {machine}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads.",
        "",
        "| size | facts | exemplars | parameters | vocabulary | training chats | folder | build | categorize (M=10) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        i = r["info"]
        out.append(
            f"| {r['size']} | {i['facts']} | {i['exemplars']} | {i['parameters'] / 1e6:.2f}M | {i['vocab_size']} | "
            f"{i['training_chats']} | {r['mb']:.1f} MB | {r['build_s']:.0f} s | {r['eval_s']:.0f} s |"
        )
    for r in results:
        c = r["cats"]
        dist = c["category"].value_counts(normalize=True)
        out += [
            "",
            f"### {r['size']}",
            "",
            "Categories: " + ", ".join(f"{k} {dist.get(k, 0):.0%}" for k in ("HighlyKnown", "MaybeKnown", "Unknown"))
            + f"; refused {c['refused'].mean():.0%} of facts (majority of the 10 answers), "
            f"{c['refused_paper'].mean():.0%} by the paper's set-0 test.",
            "",
            "By exposure (greedy accuracy = mean P_greedy; refused = majority of answers):",
            "",
            markdown(shares(c, "exposure")),
            "",
            "By popularity:",
            "",
            markdown(shares(c, "popularity")),
        ]
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["tiny", "default"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--doc", default=str(Path(__file__).resolve().parents[1] / "docs" / "world.md"))
    args = p.parse_args()
    connect(num_cpus=os.cpu_count())
    results = [measure(size, args.seed) for size in args.sizes]
    text = report(results)
    print(text)
    doc = Path(args.doc)
    old = doc.read_text() if doc.exists() else f"# The micro-world\n\n{BEGIN}\n{END}\n"
    doc.write_text(re.sub(f"{BEGIN}.*{END}", lambda _: f"{BEGIN}\n{text}\n{END}", old, flags=re.S))


if __name__ == "__main__":
    main()
