"""The paper-style tables (docs/protocol.md §5-6) from results.parquet: mean and min-max over seeds.

A table is a numeric frame: the setting columns, then per number its mean (`name`),
`name_min` and `name_max` over the seeds of the setting. That is what the CSV holds;
`to_markdown` shows each triple as one cell, "mean (min–max)".
"""
from __future__ import annotations

import math

import pandas as pd

from analysis.behaviour import PAPER_MOVES, REASONS as REASON_NAMES
from analysis.benchmarks import PREFIX, base_scores, bench_tasks
from analysis.paper import PAPER_FACTS, paper_results
from analysis.trial_analysis import SCOPES

# What makes a setting: the grid's mix, and the LoRA settings a search varies.
SETTING = ("unknown", "extra", "ratio", "rank", "lr")
STATS = {"mean": "", "min": "_min", "max": "_max"}

SHIFTS = [
    f"{direction}{name}_{scope}"
    for scope in SCOPES
    for name in ("", "_shift", "_shift_possible")
    for direction in ("positive", "negative")
]
BEHAVIOUR = [
    f"{name}_{when}"
    for name in ("refused_share", "refused_paper_share", "distinct_answers", "answer_count_mean", "answer_count_std")
    for when in ("before", "after")
] + ["exploded_absolute", "exploded_relative"]
REASONS = [
    "unknown_to_highly_known",
    "highly_known_to_unknown",
    "domains",
    *(f"reason_{r}" for r in ("non_refusal", "exploded", "target_based", "domain", "domain_expected", "unexplained")),
]
PAPER_REASONS = [
    "unknown_to_highly_known",
    "highly_known_to_unknown",
    "domains",
    *(f"paper_reason_{r}_{move}" for move in PAPER_MOVES for r in REASON_NAMES),
]
# Shares, never counts: a run's corpus is not the paper's 21,036 facts.
PAPER = ["reliability", "unknown_to_highly_known_share", "highly_known_to_unknown_share"]
# Cells of these columns read "not measured" in a row whose `domains` is 0: no fact has a
# domain (the paper's released dataset), so the domain reason was not measured.
NOT_MEASURED = tuple(c for c in (*REASONS, *PAPER_REASONS) if "_domain" in c)


def setting_columns(results: pd.DataFrame) -> list[str]:
    return [c for c in SETTING if c in results.columns]


def over_seeds(results: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per setting: its finished `trials` (one per seed in a grid) and each metric's
    mean, min and max over them.
    Metrics the results lack (a run stored before evaluation) are left out."""
    keys = setting_columns(results)
    done = results[results["error"].isna()] if "error" in results.columns else results
    groups = done.groupby(keys, dropna=False)
    table = groups.size().rename("trials").to_frame()
    for metric in (m for m in metrics if m in done.columns):
        stats = groups[metric].agg(list(STATS))
        for stat, suffix in STATS.items():
            table[metric + suffix] = stats[stat]
    return table.reset_index()


def reliability_table(results: pd.DataFrame) -> pd.DataFrame:
    """Table 2: reliability, one row per setting but the ratio, one column per ratio ("+r")."""
    summary = over_seeds(results, ["reliability"])
    if summary.empty:  # no trial finished
        return summary
    rows = [k for k in setting_columns(results) if k != "ratio"]
    wide = summary.pivot(index=rows, columns="ratio", values=["reliability" + s for s in STATS.values()])
    table = pd.DataFrame(index=wide.index)
    for ratio in sorted(summary["ratio"].unique()):
        for suffix in STATS.values():
            table[f"+{ratio}{suffix}"] = wide["reliability" + suffix, ratio]
    return table.reset_index()


def shift_table(results: pd.DataFrame) -> pd.DataFrame:
    """Table 3: positive and negative shifts, counts and both fractions, all facts and untrained."""
    return over_seeds(results, SHIFTS)


def behaviour_table(results: pd.DataFrame) -> pd.DataFrame:
    """Table 4: refusals and answer diversity before and after training, exploded answers."""
    return over_seeds(results, BEHAVIOUR)


def reason_table(results: pd.DataFrame) -> pd.DataFrame:
    """Table 5: UK->HK and HK->UK counts, and the share of shifts outside the mix each reason
    explains (reason_domain beside reason_domain_expected, its share by chance)."""
    return over_seeds(results, REASONS)


def paper_reason_table(results: pd.DataFrame) -> pd.DataFrame:
    """Table 5 as the paper's notebook counts it: UK->HK and HK->UK counts over all facts,
    and the share of each move (positive: UK->HK, negative: HK->UK) each reason flags."""
    return over_seeds(results, PAPER_REASONS)


def paper_table(results: pd.DataFrame) -> pd.DataFrame:
    """The run beside the paper (`name_paper`), for the settings both have; empty if none.
    Shift counts are compared as shares of the facts evaluated (the paper's: of PAPER_FACTS)."""
    ours = over_seeds(results, PAPER)
    both = ours.merge(paper_results().rename(columns={m: f"{m}_paper" for m in PAPER}), on=["unknown", "extra", "ratio"])
    metrics = [m for m in PAPER if m in ours.columns]
    columns = setting_columns(results) + ["trials"] + [m + s for m in metrics for s in (*STATS.values(), "_paper")]
    return both[columns]


def bench_table(results: pd.DataFrame) -> pd.DataFrame:
    """Table 7: per benchmark, the base model on the setting's items (`bench_<task>_base`),
    the adapters, and the delta; empty if the run measured none."""
    tasks = bench_tasks(results)
    frame = results.assign(**{f"{c}_base": v for c, v in base_scores(results).items()})
    return over_seeds(frame, [f"{PREFIX}{t}{s}" for t in tasks for s in ("_base", "", "_delta")]) if tasks else pd.DataFrame()


# File name: (title, table function), in the report's order.
TABLES = {
    "table2_reliability": ("Table 2: reliability on the new facts", reliability_table),
    "table3_shifts": (
        "Table 3: knowledge shifts (counts; fractions of all facts in scope and of those that could move)",
        shift_table,
    ),
    "table4_behaviour": ("Table 4: refusals and answer diversity", behaviour_table),
    "table5_reasons": (
        "Table 5: shift counts and the share of shifts outside the mix each reason explains "
        "(domain: beside domain_expected, the share by chance; unexplained: no answer-based reason)",
        reason_table,
    ),
    "table5_paper_reasons": (
        "Table 5, the paper's way: UK->HK and HK->UK over all facts, trained ones included, and the share "
        "of each move (positive UK->HK, negative HK->UK) each reason flags in the raw output of prompt set 0",
        paper_reason_table,
    ),
    "table7_benchmarks": (
        "Table 7: benchmarks of the base model and the adapters, and the change (on the facts outside each mix)",
        bench_table,
    ),
    "paper": (
        f"This run beside the paper (Llama-3.1-8B-Instruct, {PAPER_FACTS:,} facts), where the settings match; "
        "shifts as shares of the facts evaluated",
        paper_table,
    ),
}


def _number(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, str):
        return x
    if float(x).is_integer():
        return f"{x:.0f}"
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.3g}"


def _cell(mean, lo=None, hi=None) -> str:
    """"mean (min–max)", the mean alone where min = max or there is no range."""
    if lo is None or pd.isna(lo) or lo == hi:
        return _number(mean)
    return f"{_number(mean)} ({_number(lo)}–{_number(hi)})"


def display(table: pd.DataFrame) -> pd.DataFrame:
    """Cells as text, each (mean, min, max) triple as "mean (min–max)"; min = max shows the
    mean alone; a NOT_MEASURED column reads "not measured" where the row's `domains` is 0."""
    out = {}
    unmeasured = table["domains"].eq(0) if "domains" in table.columns else pd.Series(False, index=table.index)
    for column in table.columns:
        if column.endswith(("_min", "_max")) and column[:-4] in table.columns:
            continue
        if f"{column}_min" in table.columns:
            cells = [_cell(*triple) for triple in zip(table[column], table[f"{column}_min"], table[f"{column}_max"])]
        else:
            cells = [_cell(x) for x in table[column]]
        if column in NOT_MEASURED:
            cells = ["not measured" if no else cell for cell, no in zip(cells, unmeasured)]
        out[column] = cells
    return pd.DataFrame(out, columns=list(out))


def to_markdown(table: pd.DataFrame) -> str:
    cells = display(table)
    lines = ["| " + " | ".join(cells.columns) + " |", "|" + "---|" * len(cells.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines) + "\n"
