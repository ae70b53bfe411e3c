"""The report of a run, from its stored files alone (`kgrid report RUN_DIR`).

    report/index.html               every table and figure on one page
    report/tables/<name>.md|csv     analysis/tables.py: Markdown cells "mean (min–max)", CSV numbers
    report/figures/<name>.png       analysis/figures.py

The page and every Markdown table name the protocol switches the run used (PROTOCOL_SWITCHES,
read from the run's config.yaml): the places where this system and the authors' code can
differ (docs/protocol.md §7).
"""
from __future__ import annotations

import html
import shutil
from pathlib import Path

import pandas as pd
import yaml

from analysis import figures
from analysis.benchmarks import bench_tasks
from analysis.tables import TABLES, display, to_markdown


# Config keys (dotted paths) that pick between the paper code's behaviour and ours, or
# otherwise change what a number means; those present in config.yaml are named.
PROTOCOL_SWITCHES = (
    "scoring.match",
    "prompts.mode",
    "prompts.exemplar_answer",
    "grid.selection",
    "grid.full_paraphrases",
    "lora.mask_prompt",
    "lora.batch_size",
    "lora.weight_decay",
    "lora.max_grad_norm",
    "lora.group_by_length",
    "generators.engine.kind",
    "generators.engine.dtype",
)


_ABSENT = object()


def protocol_line(cfg: dict) -> str:
    """ "Protocol: key = value; ..." for each PROTOCOL_SWITCHES key the config holds."""
    found = []
    for key in PROTOCOL_SWITCHES:
        value = cfg
        for part in key.split("."):
            value = value.get(part, _ABSENT) if isinstance(value, dict) else _ABSENT
        if value is not _ABSENT:
            found.append(f"{key} = {value}")
    return "Protocol: " + ("; ".join(found) if found else "no config.yaml switches found") + "."


def _transitions(run: Path) -> pd.DataFrame | None:
    parts = [pd.read_parquet(p).assign(trial=p.parent.name) for p in sorted(run.glob("analysis/*/transitions.parquet"))]
    return pd.concat(parts, ignore_index=True) if parts else None


def _figures(run: Path, results: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """The figures the stored files allow, by title."""
    out = {}
    history = pd.read_parquet(run / "history.parquet") if (run / "history.parquet").exists() else None
    if history is not None and len(history):
        path = folder / "reliability_per_epoch.png"
        out["Reliability per epoch (Figure 2)"] = figures.reliability_per_epoch(history, results, path)
    if "negative_shift_untrained" in results.columns:
        path = folder / "shifts_by_unknown.png"
        out["Shifts against the number of new facts"] = figures.shifts_by_unknown(results, path)
    if bench_tasks(results):
        path = folder / "bench_by_unknown.png"
        out["Benchmarks against the number of new facts (Figures 1 and 3)"] = figures.bench_by_unknown(results, path)
    transitions = _transitions(run)
    if transitions is not None:
        out["Category transitions of the facts outside the mix"] = figures.transition_heatmaps(
            transitions, results, folder / "transitions.png"
        )
    if (run / "pareto.parquet").exists():
        front = pd.read_parquet(run / "pareto.parquet")
        out["Pareto front"] = figures.pareto_front_plot(results, front, folder / "pareto_front.png")
    if "rank" in results.columns:  # only a search varies the rank
        out["Optimization history"] = figures.optimization_history(results, folder / "optimization_history.png")
    return out


def build_report(run_dir: str | Path) -> Path:
    """Write the report of the run stored in `run_dir`; return its index.html."""
    run = Path(run_dir)
    if not (run / "results.parquet").exists():
        raise FileNotFoundError(f"{run}: no results.parquet (is it a run folder of `kgrid run` or `kgrid tune`?)")
    results = pd.read_parquet(run / "results.parquet")
    report = run / "report"
    shutil.rmtree(report, ignore_errors=True)  # nothing left from an earlier build
    for sub in ("tables", "figures"):
        (report / sub).mkdir(parents=True, exist_ok=True)

    cfg = yaml.safe_load((run / "config.yaml").read_text()) if (run / "config.yaml").exists() else {}
    failed = int(results["error"].notna().sum()) if "error" in results.columns else 0
    protocol = protocol_line(cfg)
    body = [
        f"<h1>{html.escape(str(cfg.get('experiment', run.name)))}</h1>",
        f"<p>model {html.escape(str(cfg.get('model', {}).get('name', '?')))}; {len(results)} trials, {failed} failed. "
        "Cells: mean (min–max) over the trials of a setting (its seeds).</p>",
        "<h2>Protocol</h2>",
        f"<p>{html.escape(protocol)}</p>",
    ]
    distribution = run / "categories" / "base_distribution.csv"
    if distribution.exists():
        body += ["<h2>Base model categories</h2>", pd.read_csv(distribution).to_html(index=False, float_format="{:.3f}".format)]

    for name, (title, make) in TABLES.items():
        table = make(results)
        if table.empty:
            continue  # e.g. no setting of this run is one of the paper's
        table.to_csv(report / "tables" / f"{name}.csv", index=False)
        (report / "tables" / f"{name}.md").write_text(f"## {title}\n\n{protocol}\n\n{to_markdown(table)}")
        body += [
            f"<h2>{html.escape(title)}</h2>",
            f'<p><a href="tables/{name}.md">Markdown</a> · <a href="tables/{name}.csv">CSV</a></p>',
            display(table).to_html(index=False),
        ]

    for title, path in _figures(run, results, report / "figures").items():
        body += [f"<h2>{html.escape(title)}</h2>", f'<img src="figures/{path.name}" alt="{html.escape(title)}">']

    page = report / "index.html"
    page.write_text(
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>knowledge-grid report</title>'
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:small}"
        "td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    return page
