"""The report of a run, from its stored files alone (`kgrid report RUN_DIR`).

    report/index.html               what the run found, the recommended recipe per number of new facts, then every table and figure
    report/findings.json            analysis/findings.py: each of the paper's findings, checked on this run
    report/tables/<name>.md|csv     analysis/tables.py: every column; Markdown cells "mean (min–max)", CSV numbers
    report/figures/<name>.png       analysis/figures.py

The page shows each table's key columns under short headers (analysis/tables.py, `Table.shown`),
the full table one click away as CSV. The page and every Markdown table name the protocol
switches the run used (PROTOCOL_SWITCHES, read from the run's config.yaml): the places where
this system and the authors' code can differ (docs/protocol.md §7).
"""
from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import pandas as pd
import yaml

from analysis import figures
from analysis.benchmarks import bench_tasks
from analysis.findings import ALPHA, MIN_PAIRS, TEST, Finding, check_findings, findings_json
from analysis.tables import TABLES, cell, control_once, mix_label, number, page_cells, setting_columns, to_markdown
from analysis.schema import NEGATIVE_SHIFT
from analysis.verdicts import recommendations
from grid.run_folder import RunFolder


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
    "generators.engine.attention",
)


_ABSENT = object()

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;line-height:1.4;color:#1f2328}
h1{margin-bottom:.2em} h2{margin-top:1.6em;font-size:1.2em} p.note{color:#59636e;font-size:small;margin:.2em 0}
table{border-collapse:collapse;font-size:small;margin:.4em 0}
td,th{border:1px solid #d0d7de;padding:2px 6px} th{background:#f6f8fa;vertical-align:bottom;text-align:center}
td{text-align:right;font-variant-numeric:tabular-nums} td.text{text-align:left;white-space:nowrap}
td .range{color:#59636e;white-space:nowrap}
ul.found{list-style:none;padding:0} ul.found li{margin:.5em 0;display:grid;grid-template-columns:max-content 1fr;column-gap:.8em}
.verdict{align-self:start;width:11em;text-align:center;border-radius:1em;margin-top:.15em;
  font-size:small;font-weight:600;color:#fff;white-space:nowrap}
.holds{background:#1a7f37} .contradicted{background:#cf222e} .within-spread{background:#9a6700}
.needs-more-seeds,.not-measured,.not-seen{background:#6e7781}
.evidence{display:block;color:#59636e;font-size:small}
ul.switches{columns:3;font-size:small} code{overflow-wrap:anywhere}
img{max-width:100%}
"""


def protocol_switches(cfg: dict) -> list[str]:
    """ "key = value" for each PROTOCOL_SWITCHES key the config holds."""
    found = []
    for key in PROTOCOL_SWITCHES:
        value = cfg
        for part in key.split("."):
            value = value.get(part, _ABSENT) if isinstance(value, dict) else _ABSENT
        if value is not _ABSENT:
            found.append(f"{key} = {value}")
    return found


def protocol_line(cfg: dict) -> str:
    """ "Protocol: key = value; ..." for each PROTOCOL_SWITCHES key the config holds."""
    found = protocol_switches(cfg)
    return "Protocol: " + ("; ".join(found) if found else "no config.yaml switches found") + "."


def _share(x: float) -> str:
    return f"{100 * x:.0f}%"


def recipe(row: pd.Series) -> str:
    """ "+1 HighlyKnown", with a searched rank or lr: what to train N new facts with."""
    return ", ".join([mix_label(row["extra"], row["ratio"])] + [
        f"{k} {number(row[k], 'setting')}" for k in ("rank", "lr") if k in row and pd.notna(row[k])
    ])


def _spread(row: pd.Series, column: str) -> str:
    return cell(row[column], row.get(column + "_min"), row.get(column + "_max"))


def describe_recommendation(row: pd.Series) -> str:
    """One row of analysis/verdicts.py recommendations in words: what was measured, each
    number as mean (min–max) over the setting's seeds."""
    seeds = int(row["trials"])
    outside = f" of the {number(row['facts_untrained'], 'count')}" if pd.notna(row.get("facts_untrained")) else " of the"
    up = row.get("positive_shift_untrained")
    return (
        f"{number(row['unknown'], 'setting')} new facts: {recipe(row)} ({seeds} seed{'s' if seeds > 1 else ''}"
        f"{', mean (min–max) over them' if seeds > 1 else ', no spread to show'}). "
        f"The new facts were answered correctly in {_share(row['reliability'])} of their few-shot prompts "
        f"(reliability {_spread(row, 'reliability')}), and {_share(row['reliability_strict'])} of them in every "
        f"prompt (reliability_strict {_spread(row, 'reliability_strict')}); "
        f"{_share(row[NEGATIVE_SHIFT])}{outside} facts outside the mix moved down a category "
        f"(negative shift {_spread(row, NEGATIVE_SHIFT)})"
        + (f" and {_share(up)} up (positive shift {_spread(row, 'positive_shift_untrained')})." if pd.notna(up) else ".")
    )


def setting_trials(results: pd.DataFrame, row: pd.Series) -> pd.DataFrame:
    """The finished trials of a recommendation's setting (its seeds)."""
    done = control_once(results[results["error"].isna()] if "error" in results.columns else results)
    same = pd.Series(True, index=done.index)
    for key in setting_columns(results):
        same &= (done[key] == row[key]) | (done[key].isna() & pd.isna(row[key]))
    return done[same].sort_values("trial")


def reliability_floor(cfg: dict) -> tuple[float, str]:
    """The floor a recommendation's mean reliability must reach, and where it comes from."""
    floor = cfg.get("search", {}).get("reliability_floor")
    if floor is None:
        return 0.0, "config.yaml names no search.reliability_floor: every setting counts"
    return floor, f"mean reliability ≥ {number(floor)}, the search's reliability_floor in config.yaml"


def _recommendation(results: pd.DataFrame, cfg: dict) -> list[str]:
    floor, where = reliability_floor(cfg)
    found = recommendations(results, floor)
    out = ["<h2>Recommended recipe per number of new facts</h2>"]
    if found.empty:
        return out + ["<p>No finished trial has a reliability and a negative shift: nothing to recommend.</p>"]
    out.append(
        '<p class="note">For each number of new facts, the setting with the least mean negative shift over its '
        f"seeds among those that learned their new facts ({html.escape(where)}); the seeds' range beside each mean.</p>"
    )
    for _, row in found.iterrows():
        lead = "" if row["met"] else "No setting learned its new facts well enough; the closest. "
        trials = setting_trials(results, row)
        adapters = "".join(
            f"<br>trial <code>{html.escape(str(t.trial))}</code>"
            + (f" adapter <code>{html.escape(str(t.adapter))}</code>" if pd.notna(getattr(t, "adapter", None)) else "")
            for t in trials.itertuples()
        )
        out += [f"<p>{html.escape(lead + describe_recommendation(row))}</p>", f'<p class="note">{adapters[4:]}</p>']
    return out


def _findings(findings: list[Finding]) -> list[str]:
    items = [
        f'<li><span class="verdict {f.verdict.replace(" ", "-")}">{html.escape(f.verdict)}</span>'
        f"<div><strong>{html.escape(f.claim)}</strong>"
        f'<span class="evidence">{html.escape(f.evidence)}</span></div></li>'
        for f in findings
    ]
    return [
        "<h2>What this run found</h2>",
        '<p class="note">The paper\'s findings, checked on this run\'s trials (<a href="findings.json">findings.json</a>) '
        f"by a test on trials paired by seed, pooled over unknown counts and arms ({TEST}): holds or contradicted "
        f"where its p-value one way is at most {ALPHA}, within spread where neither is, needs more seeds where it "
        f"has fewer than {MIN_PAIRS} pairs, too few for any outcome to reach {ALPHA}.</p>",
        '<ul class="found">',
        *items,
        "</ul>",
    ]


def _transitions(run: RunFolder) -> pd.DataFrame | None:
    parts = [pd.read_parquet(p).assign(trial=p.parent.name) for p in run.analysis_tables("transitions")]
    return pd.concat(parts, ignore_index=True) if parts else None


def _figures(run: RunFolder, results: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """The figures the stored files allow, by title."""
    out = {}
    history = pd.read_parquet(run.history) if run.history.exists() else None
    if history is not None and len(history):
        path = folder / "reliability_per_epoch.png"
        out["Reliability per epoch (Figure 2)"] = figures.reliability_per_epoch(history, results, path)
    if NEGATIVE_SHIFT in results.columns:
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
    if run.pareto.exists():
        front = pd.read_parquet(run.pareto)
        out["Pareto front"] = figures.pareto_front_plot(results, front, folder / "pareto_front.png")
    if "rank" in results.columns:  # only a search varies the rank
        out["Optimization history"] = figures.optimization_history(results, folder / "optimization_history.png")
    return out


def _html_cell(text: str) -> str:
    """A cell of page_cells: numbers right-aligned, "mean (min–max)" with the range kept whole
    (so a narrow window breaks between mean and range), words left-aligned."""
    mean, _, rest = text.partition(" (")
    numeric = text[:1].isdigit() or text[:1] in "-—"
    if numeric and rest:
        return f'<td>{html.escape(mean)} <span class="range">({html.escape(rest)}</span></td>'
    return f"<td>{html.escape(text)}</td>" if numeric else f'<td class="text">{html.escape(text)}</td>'


def _html_table(cells: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cells.columns)
    rows = ["<tr>" + "".join(_html_cell(c) for c in row) + "</tr>" for row in cells.itertuples(index=False)]
    return f"<table><thead><tr>{head}</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"


def build_report(run_dir: str | Path) -> Path:
    """Write the report of the run stored in `run_dir`; return its index.html."""
    run = RunFolder(Path(run_dir))
    if not run.results.exists():
        raise FileNotFoundError(f"{run.results}: missing (is {run.root} a run folder of `kgrid run` or `kgrid tune`?)")
    results = pd.read_parquet(run.results)
    report = run.report
    shutil.rmtree(report, ignore_errors=True)  # nothing left from an earlier build
    for sub in ("tables", "figures"):
        (report / sub).mkdir(parents=True, exist_ok=True)

    cfg = yaml.safe_load(run.config.read_text()) if run.config.exists() else {}
    findings = check_findings(results, cfg.get("scoring", {}).get("match", "corrected"))
    (report / "findings.json").write_text(json.dumps(findings_json(findings), indent=2) + "\n")
    failed = int(results["error"].notna().sum()) if "error" in results.columns else 0
    protocol = protocol_line(cfg)
    switches = protocol_switches(cfg) or ["no config.yaml switches found"]
    body = [
        f"<h1>{html.escape(str(cfg.get('experiment', run.root.name)))}</h1>",
        f"<p>model {html.escape(str(cfg.get('model', {}).get('name', '?')))}; "
        f"{number(len(results))} trials, {number(failed)} failed.</p>",
        *_findings(findings),
        *_recommendation(results, cfg),
        "<h2>How to read the tables</h2>",
        '<p class="note">One row per setting: new facts (Unknown) and the mix, "+1 HighlyKnown" one extra known fact '
        'per new one; "+0" is the control trained on the new facts alone, one setting per unknown count, shared by '
        "both extra kinds. Cells: mean (min–max) over the trials of a setting (its seeds); shares of facts with 2 "
        "decimals, counts whole; — where there is no number. UK→HK: Unknown to HighlyKnown; neg. shift: the share of "
        "the facts outside the mix that moved down a category. The page shows each table's key columns; every column "
        "is in its CSV and Markdown.</p>",
        "<h2>Protocol</h2>",
        '<ul class="switches">' + "".join(f"<li>{html.escape(s)}</li>" for s in switches) + "</ul>",
    ]
    if run.base_distribution.exists():
        body += ["<h2>Base model categories</h2>", _html_table(page_cells(pd.read_csv(run.base_distribution), None))]

    for name, spec in TABLES.items():
        table = spec.make(results)
        if table.empty:
            continue  # e.g. no setting of this run is one of the paper's
        table.to_csv(report / "tables" / f"{name}.csv", index=False)
        (report / "tables" / f"{name}.md").write_text(f"## {spec.title}\n\n{protocol}\n\n{to_markdown(table)}")
        which = "every column" if spec.shown is None else "key columns"
        body += [
            f"<h2>{html.escape(spec.title)}</h2>",
            f'<p class="note">{which}; <a href="tables/{name}.csv">full table (CSV)</a> · '
            f'<a href="tables/{name}.md">Markdown</a></p>',
            _html_table(page_cells(table, spec.shown)),
        ]

    for title, path in _figures(run, results, report / "figures").items():
        body += [f"<h2>{html.escape(title)}</h2>", f'<img src="figures/{path.name}" alt="{html.escape(title)}">']

    page = report / "index.html"
    page.write_text(
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>knowledge-grid report</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    return page
