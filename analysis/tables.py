"""The paper-style tables (docs/protocol.md §5-6) from results.parquet: mean and min-max over seeds.

A table is a numeric frame: the setting columns, then per number its mean (`name`),
`name_min` and `name_max` over the seeds of the setting. That is what the CSV holds;
`to_markdown` shows each triple as one cell, "mean (min–max)", and `page_cells` the
table's key columns (`Table.shown`) under short headers, for the report's page.

The "+0" control (ratio 0) is one setting per unknown count: a mix without extra facts is
the same mix for either extra kind (the paper lists +0 once). Its rows carry the extra
NO_EXTRA and read "+0", once per (unknown, seed), however many times a run holds it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from analysis.behaviour import PAPER_REASON_KEYS
from analysis.benchmarks import base_scores, bench_tasks
from analysis.schema import BENCH_PREFIX
from analysis.paper import PAPER_FACTS, paper_results
from analysis.trial_analysis import SCOPES

# What makes a setting: the grid's mix, and the LoRA settings a search varies.
SETTING = ("unknown", "extra", "ratio", "rank", "lr")
STATS = {"mean": "", "min": "_min", "max": "_max"}
CONTROL = "+0"  # the label of the ratio-0 setting
NO_EXTRA = "none"  # the control's extra in the tables: its mix holds no extra facts
MIX = "mix"  # the shown column of extra and ratio: "+0", "+1 HighlyKnown"
MISSING = "—"  # a number that is not there

SHIFTS = [
    f"{direction}{name}_{scope}"
    for scope in SCOPES
    for name in ("", "_shift", "_shift_possible")
    for direction in ("positive", "negative")
]
BEHAVIOUR = [
    f"{name}_{when}"
    for name in (
        "refused_share",
        "refused_paper_share",
        "distinct_answers",
        "answer_count_mean",
        "answer_count_std",
        "distinct_answers_paper",  # the notebook's count (analysis/behaviour.py paper_diversity)
        "answer_count_mean_paper",
        "answer_count_std_paper",
    )
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
    *(f"paper_reason_{key}" for key in PAPER_REASON_KEYS),
]
# Shares, never counts: a run's corpus is not the paper's 21,036 facts.
PAPER = ["reliability", "unknown_to_highly_known_share", "highly_known_to_unknown_share"]
# Cells of these columns read "not measured" in a row whose `domains` is 0: no fact has a
# domain (the paper's released dataset), so the domain reason was not measured.
NOT_MEASURED = tuple(c for c in (*REASONS, *PAPER_REASONS) if "_domain" in c)

# How a number reads (`number`): counts as integers, these shares of a whole corpus as
# percentages (the paper's are a few in ten thousand), everything else with 2 decimals.
COUNTS = frozenset(
    {
        "trials",
        "count",  # categories/base_distribution.csv
        *(f"{d}_{scope}" for scope in SCOPES for d in ("positive", "negative")),
        "distinct_answers_before",
        "distinct_answers_after",
        "distinct_answers_paper_before",
        "distinct_answers_paper_after",
        "exploded_absolute",
        "exploded_relative",
        "unknown_to_highly_known",
        "highly_known_to_unknown",
        "domains",
        "unknown",
        "ratio",
        "rank",
    }
)
PERCENTS = frozenset(f"{m}{s}" for m in PAPER[1:] for s in ("", "_paper"))
# Short headers of the setting columns on the page.
SETTING_HEADERS = {"unknown": "new facts", MIX: "mix", "extra": "extra", "rank": "rank", "lr": "lr", "trials": "trials"}


def setting_columns(results: pd.DataFrame) -> list[str]:
    return [c for c in SETTING if c in results.columns]


def control_once(results: pd.DataFrame) -> pd.DataFrame:
    """The trials with the "+0" control (ratio 0) carrying the extra NO_EXTRA, kept once per
    (unknown, seed, and rank and lr where the results have them): a grid may train it once
    or once per extra kind. Without a seed column every control trial is kept."""
    if "ratio" not in results.columns:
        return results
    if "seed" in results.columns:
        keys = ["unknown", "seed", *(c for c in ("rank", "lr") if c in results.columns)]
        twice = results[results["ratio"] == 0].duplicated(keys)
        results = results.drop(twice[twice].index)
    control = results["ratio"] == 0
    return results.assign(extra=results["extra"].where(~control, NO_EXTRA)) if "extra" in results.columns else results


def _setting_order(column: pd.Series) -> pd.Series:
    return column.replace(NO_EXTRA, "") if column.name == "extra" else column  # +0 first


def over_seeds(results: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per setting (the +0 control once per unknown count): its finished `trials`
    (one per seed in a grid) and each metric's mean, min and max over them.
    Metrics the results lack (a run stored before evaluation) are left out."""
    keys = setting_columns(results)
    done = control_once(results[results["error"].isna()] if "error" in results.columns else results)
    groups = done.groupby(keys, dropna=False)
    table = groups.size().rename("trials").to_frame()
    for metric in (m for m in metrics if m in done.columns):
        stats = groups[metric].agg(list(STATS))
        for stat, suffix in STATS.items():
            table[metric + suffix] = stats[stat]
    table = table.reset_index()
    order = [c for c in ("unknown", "extra", "ratio", "rank", "lr") if c in keys]
    return table.sort_values(order, key=_setting_order, kind="stable").reset_index(drop=True) if order else table


def reliability_table(results: pd.DataFrame) -> pd.DataFrame:
    """Table 2: reliability, one row per setting but the ratio, one column per ratio ("+r");
    the +0 control fills the "+0" column of every extra kind at its unknown count."""
    summary = over_seeds(results, ["reliability"])
    if summary.empty:  # no trial finished
        return summary
    kinds = sorted(set(summary["extra"]) - {NO_EXTRA}) or [NO_EXTRA]
    control = summary["extra"] == NO_EXTRA
    summary = pd.concat([summary[~control], *(summary[control].assign(extra=kind) for kind in kinds)])
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
    paper = control_once(paper_results()).drop_duplicates(["unknown", "extra", "ratio"])  # +0 is listed per kind
    both = ours.merge(paper.rename(columns={m: f"{m}_paper" for m in PAPER}), on=["unknown", "extra", "ratio"])
    metrics = [m for m in PAPER if m in ours.columns]
    columns = setting_columns(results) + ["trials"] + [m + s for m in metrics for s in (*STATS.values(), "_paper")]
    return both[columns]


def bench_table(results: pd.DataFrame) -> pd.DataFrame:
    """Table 7: per benchmark, the base model on the setting's items (`bench_<task>_base`),
    the adapters, and the delta; empty if the run measured none."""
    tasks = bench_tasks(results)
    frame = results.assign(**{f"{c}_base": v for c, v in base_scores(results).items()})
    return over_seeds(frame, [f"{BENCH_PREFIX}{t}{s}" for t in tasks for s in ("_base", "", "_delta")]) if tasks else pd.DataFrame()


@dataclass(frozen=True)
class Table:
    title: str
    make: Callable[[pd.DataFrame], pd.DataFrame]
    # The page's columns beside the setting: column -> short header. The CSV and Markdown
    # hold every column; None shows every column, its name made readable (`header`).
    shown: dict[str, str] | None = None


# Table 3's page: the facts outside the mix, the number the paper's harm is measured on.
SHIFTS_SHOWN = {
    "negative_untrained": "moved down",
    "negative_shift_untrained": "neg. shift",
    "negative_shift_possible_untrained": "neg. shift of those that could fall",
    "positive_untrained": "moved up",
    "positive_shift_untrained": "pos. shift",
    "positive_shift_possible_untrained": "pos. shift of those that could rise",
    "negative_shift_all": "neg. shift, all facts",
}
BEHAVIOUR_SHOWN = {
    "refused_share_before": "refused before",
    "refused_share_after": "refused after",
    "refused_paper_share_before": "refused before (paper's match)",
    "refused_paper_share_after": "refused after (paper's match)",
    "distinct_answers_before": "distinct answers before",
    "distinct_answers_after": "distinct answers after",
    "distinct_answers_paper_before": "distinct answers before (paper's count)",
    "distinct_answers_paper_after": "distinct answers after (paper's count)",
    "exploded_relative": "exploded answers",
    "exploded_absolute": "exploded (paper's threshold)",
}
_MOVES = {"unknown_to_highly_known": "UK→HK", "highly_known_to_unknown": "HK→UK"}
_REASON_HEADERS = {"non_refusal": "non-refusal", "exploded": "exploded", "target_based": "target-based", "domain": "same domain"}
REASONS_SHOWN = {
    **_MOVES,
    **{f"reason_{r}": h for r, h in _REASON_HEADERS.items()},
    "reason_domain_expected": "same domain by chance",
    "reason_unexplained": "unexplained",
}
PAPER_REASONS_SHOWN = {
    **_MOVES,
    **{
        f"paper_reason_{r}_{move}": f"{_MOVES[m]}: {h}"
        for move, m in (("positive", "unknown_to_highly_known"), ("negative", "highly_known_to_unknown"))
        for r, h in _REASON_HEADERS.items()
    },
}
PAPER_SHOWN = {
    "reliability": "reliability",
    "reliability_paper": "reliability, paper",
    "unknown_to_highly_known_share": "UK→HK, % of facts",
    "unknown_to_highly_known_share_paper": "UK→HK, paper",
    "highly_known_to_unknown_share": "HK→UK, % of facts",
    "highly_known_to_unknown_share_paper": "HK→UK, paper",
}

# File name: Table, in the report's order. Titles name the paper's table each follows.
TABLES = {
    "table2_reliability": Table("Reliability on the new facts (the paper's Table 2)", reliability_table),
    "table3_shifts": Table(
        "Knowledge shifts: counts, and fractions of all facts in scope and of those that could move (the paper's Table 3)",
        shift_table,
        SHIFTS_SHOWN,
    ),
    "table4_behaviour": Table("Refusals and answer diversity (the paper's Table 4)", behaviour_table, BEHAVIOUR_SHOWN),
    "table5_reasons": Table(
        "Shift counts and the share of shifts outside the mix each reason explains (the paper's Table 5; "
        "same domain beside its share by chance; unexplained: no answer-based reason)",
        reason_table,
        REASONS_SHOWN,
    ),
    "table5_paper_reasons": Table(
        "The paper's Table 5, counted its way: UK→HK and HK→UK over all facts, trained ones included, and the share "
        "of each move each reason flags in the raw output of prompt set 0",
        paper_reason_table,
        PAPER_REASONS_SHOWN,
    ),
    "table7_benchmarks": Table(
        "Benchmarks of the base model and the adapters, and the change, on the facts outside each mix (the paper's Table 7)",
        bench_table,
    ),
    "paper": Table(
        f"This run beside the paper (Llama-3.1-8B-Instruct, {PAPER_FACTS:,} facts), where the settings match; "
        "shifts as shares of the facts evaluated",
        paper_table,
        PAPER_SHOWN,
    ),
}


# --- numbers for people ---------------------------------------------------------------


def number(x, kind: str = "share") -> str:
    """One number as people read it: "count" an integer with thousands separators (a mean
    of counts with one decimal), "percent" a share as "1.94%", "setting" as given, anything
    else 2 decimals; a Python or NumPy integer is a count; NaN reads MISSING; never
    scientific notation."""
    if x is None or isinstance(x, str):
        return MISSING if x is None else x
    if isinstance(x, float) and math.isnan(x):
        return MISSING
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        kind = "count" if kind != "setting" else kind
    if kind == "setting":
        return f"{x:,}" if float(x).is_integer() and abs(x) >= 1 else np.format_float_positional(x, trim="-")
    if kind == "count":
        text = f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"
    elif kind == "percent":
        text = f"{100 * x:,.2f}%"
    else:
        text = f"{x:,.2f}"
    return text.replace("-", "", 1) if text.startswith("-") and not text.strip("-0.,%") else text  # no "-0.00"


def cell(mean, lo=None, hi=None, kind: str = "share") -> str:
    """"mean (min–max)", the mean alone where min = max or there is no range."""
    if lo is None or pd.isna(lo) or lo == hi:
        return number(mean, kind)
    return f"{number(mean, kind)} ({number(lo, kind)}–{number(hi, kind)})"


def kind_of(column: str) -> str:
    """How `number` reads a column's values."""
    if column in ("unknown", "ratio", "rank", "lr", "extra"):
        return "setting"
    if column in COUNTS:
        return "count"
    return "percent" if column in PERCENTS else "share"


def mix_label(extra, ratio) -> str:
    """"+0" for the control, "+1 HighlyKnown" otherwise."""
    return CONTROL if ratio == 0 else f"+{number(ratio, 'setting')} {extra}"


def header(column: str) -> str:
    """A column's name made readable: breakable at spaces, the bench prefix off."""
    return SETTING_HEADERS.get(column) or column.removeprefix(BENCH_PREFIX).replace("_", " ")


def display(table: pd.DataFrame) -> pd.DataFrame:
    """Cells as text, each (mean, min, max) triple as "mean (min–max)"; min = max shows the
    mean alone; extra and ratio as one MIX column; a NOT_MEASURED column reads "not
    measured" where the row's `domains` is 0, any other missing number MISSING."""
    out = {}
    unmeasured = table["domains"].eq(0) if "domains" in table.columns else pd.Series(False, index=table.index)
    for column in table.columns:
        if column.endswith(("_min", "_max")) and column[:-4] in table.columns:
            continue
        if column == "ratio" and "extra" in table.columns:
            continue
        if column == "extra" and "ratio" in table.columns:
            out[MIX] = [mix_label(e, r) for e, r in zip(table["extra"], table["ratio"])]
            continue
        kind = kind_of(column)
        if f"{column}_min" in table.columns:
            triples = zip(table[column], table[f"{column}_min"], table[f"{column}_max"])
            cells = [cell(*triple, kind=kind) for triple in triples]
        else:
            cells = [cell(x, kind=kind) for x in table[column].astype(object)]
        if column in NOT_MEASURED:
            cells = ["not measured" if no else c for c, no in zip(cells, unmeasured)]
        out[column] = cells
    return pd.DataFrame(out, columns=list(out))


def page_cells(table: pd.DataFrame, shown: dict[str, str] | None) -> pd.DataFrame:
    """What the report's page shows of a table: the setting columns and the `shown` ones
    (every column where None), under short headers."""
    cells = display(table)
    columns = {c: header(c) for c in cells.columns if c in SETTING_HEADERS}
    if shown is None:
        columns |= {c: header(c) for c in cells.columns if c not in columns}
    else:
        columns |= {c: h for c, h in shown.items() if c in cells.columns}
    return cells[list(columns)].rename(columns=columns)


def to_markdown(table: pd.DataFrame) -> str:
    cells = display(table)
    lines = ["| " + " | ".join(cells.columns) + " |", "|" + "---|" * len(cells.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines) + "\n"
