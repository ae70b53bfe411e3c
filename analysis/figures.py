"""The report's figures as PNG files, from stored frames alone.

Drawn on matplotlib Figure objects (the Agg canvas) rather than pyplot, so nothing
depends on a display or on pyplot's global state.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from analysis.benchmarks import base_scores, bench_tasks
from analysis.schema import NEGATIVE_SHIFT, POSITIVE_SHIFT, bench_score
from analysis.scoring import CATEGORIES
from analysis.tables import CONTROL, NO_EXTRA, control_once, number, over_seeds, setting_columns

SHORT = {"HighlyKnown": "HK", "MaybeKnown": "MK", "WeaklyKnown": "WK", "Unknown": "UK", "paraphrase": "para"}


def mix_short(extra: str, ratio) -> str:
    """"+10 HK", or "+0" for the control (the same mix for either extra kind)."""
    return CONTROL if ratio == 0 else f"+{number(ratio, 'setting')} {SHORT[extra]}"


def setting_label(setting: dict) -> str:
    """"50 UK +10 HK", with a searched rank or learning rate after it."""
    label = f"{number(setting['unknown'], 'setting')} UK {mix_short(setting['extra'], setting['ratio'])}"
    extra = [f"{k} {number(setting[k], 'setting')}" for k in ("rank", "lr") if k in setting and pd.notna(setting[k])]
    return ", ".join([label, *extra])


def _arms(summary: pd.DataFrame):
    """(label, rows) per extra kind and ratio of an over_seeds summary, +0 first."""
    arms = sorted(summary.groupby(["extra", "ratio"]), key=lambda arm: (arm[0][1] != 0, arm[0]))
    return [(mix_short(*arm), part) for arm, part in arms]


def _control_first(frame: pd.DataFrame, keys: list[str]) -> list:
    """frame.groupby(keys) as a list, the +0 control first at each unknown count."""
    ratio = keys.index("ratio")
    return sorted(frame.groupby(keys), key=lambda group: (group[0][0], group[0][ratio] != 0, group[0]))


def _new_facts_axis(ax, counts) -> None:
    """Log x (the paper's counts span 1 to 3,000) ticked at the counts measured, and only there."""
    counts = sorted(set(counts))
    ax.set_xscale("log")
    ax.set_xticks(counts, [number(c, "setting") for c in counts])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(counts[0] / 1.5, counts[-1] * 1.5)
    ax.set_xlabel("new (Unknown) facts")


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=100)
    return path


def reliability_per_epoch(history: pd.DataFrame, results: pd.DataFrame, path: Path) -> Path:
    """Figure 2: reliability after each epoch, from epoch 0 (before the first step: the base
    model, measured by the trainer's engine), one line per setting (mean over seeds, band
    min-max), one panel per extra kind, the +0 control in each."""
    keys = setting_columns(results)
    frame = history.merge(control_once(results)[["trial", *keys]], on="trial")
    kinds = sorted(set(frame["extra"]) - {NO_EXTRA}) or [NO_EXTRA]
    fig = Figure(layout="constrained", figsize=(5 * len(kinds), 3.6))
    axes = fig.subplots(1, len(kinds), sharey=True, squeeze=False)[0]
    for ax, kind in zip(axes, kinds):
        panel = frame[frame["extra"].isin([kind, NO_EXTRA])]
        for setting, part in _control_first(panel, keys):
            stats = part.groupby("epoch")["reliability"].agg(["mean", "min", "max"])
            line = ax.plot(stats.index, stats["mean"], marker="o", label=setting_label(dict(zip(keys, setting))))[0]
            ax.fill_between(stats.index, stats["min"], stats["max"], color=line.get_color(), alpha=0.2)
        ax.set(title=f"extra: {kind}" if kind != NO_EXTRA else "+0 only", xlabel="epoch", ylim=(-0.02, 1.02))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize="small")
    axes[0].set_ylabel("reliability")
    return _save(fig, path)


def shifts_by_unknown(results: pd.DataFrame, path: Path) -> Path:
    """Negative and positive shift of the facts outside the mix against the number of new
    facts, one line per extra kind and ratio (mean over seeds, band min-max)."""
    metrics = (NEGATIVE_SHIFT, POSITIVE_SHIFT)
    summary = over_seeds(results, list(metrics))
    fig = Figure(layout="constrained", figsize=(10, 3.6))
    titles = ("negative shift (facts outside the mix)", "positive shift (facts outside the mix)")
    for ax, metric, title in zip(fig.subplots(1, 2), metrics, titles):
        for label, part in _arms(summary):
            part = part.groupby("unknown")[[metric, f"{metric}_min", f"{metric}_max"]].mean()
            line = ax.plot(part.index, part[metric], marker="o", label=label)[0]
            ax.fill_between(part.index, part[f"{metric}_min"], part[f"{metric}_max"], color=line.get_color(), alpha=0.2)
        ax.set(title=title, ylim=(0, 1.1 * max(summary[f"{metric}_max"].max(), 0.01)))
        _new_facts_axis(ax, summary["unknown"])
        ax.legend(fontsize="small")
    return _save(fig, path)


def bench_by_unknown(results: pd.DataFrame, path: Path) -> Path:
    """Figures 1 and 3: each benchmark's score against the number of new facts, one line per
    extra kind and ratio (mean over seeds, band min-max), the base model dashed."""
    tasks = bench_tasks(results)
    columns = [bench_score(t) for t in tasks]
    summary = over_seeds(results, columns)
    base = base_scores(results)
    fig = Figure(layout="constrained", figsize=(5 * len(tasks), 3.6))
    for ax, task, metric in zip(fig.subplots(1, len(tasks), squeeze=False)[0], tasks, columns):
        for label, part in _arms(summary):
            part = part.groupby("unknown")[[metric, f"{metric}_min", f"{metric}_max"]].mean()
            line = ax.plot(part.index, part[metric], marker="o", label=label)[0]
            ax.fill_between(part.index, part[f"{metric}_min"], part[f"{metric}_max"], color=line.get_color(), alpha=0.2)
        ax.axhline(base[metric].mean(), color="black", linestyle="--", label="base model")
        ax.set(title=task)
        _new_facts_axis(ax, summary["unknown"])
        ax.legend(fontsize="small")
    return _save(fig, path)


def transition_heatmaps(transitions: pd.DataFrame, results: pd.DataFrame, path: Path) -> Path:
    """Category before x after training of the facts outside the mix, one panel per
    setting: colour is the share of the row's facts, the number the count (mean over seeds)."""
    keys = setting_columns(results)
    frame = transitions[transitions["scope"] == "untrained"].merge(control_once(results)[["trial", *keys]], on="trial")
    # WeaklyKnown only shows where the protocol samples (SliCK mode).
    used = [c for c in CATEGORIES if frame.loc[(frame["before"] == c) | (frame["after"] == c), "count"].sum() > 0]
    settings = _control_first(frame, keys)
    cols = min(4, len(settings))
    rows = math.ceil(len(settings) / cols)
    fig = Figure(layout="constrained", figsize=(3.2 * cols, 3 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (setting, part) in zip(axes, settings):
        counts = part.groupby(["before", "after"])["count"].sum() / part["trial"].nunique()
        matrix = counts.unstack().reindex(index=used, columns=used, fill_value=0)
        shares = matrix.div(matrix.sum(axis=1).where(lambda s: s > 0), axis=0)
        ax.imshow(shares.fillna(0).to_numpy(), cmap="Blues", vmin=0, vmax=1)
        for i in range(len(used)):
            for j in range(len(used)):
                dark = shares.iat[i, j] >= 0.6
                ax.text(j, i, number(matrix.iat[i, j], "count"), ha="center", va="center", color="white" if dark else "black")
        ticks = [SHORT[c] for c in used]
        ax.set_xticks(range(len(used)), ticks)
        ax.set_yticks(range(len(used)), ticks)
        ax.set(title=setting_label(dict(zip(keys, setting))), xlabel="after", ylabel="before")
    for ax in axes[len(settings) :]:
        ax.set_axis_off()
    return _save(fig, path)


def pareto_front_plot(results: pd.DataFrame, front: pd.DataFrame, path: Path) -> Path:
    """A search's trials by negative shift of the facts outside the mix and reliability, both
    re-measured on the whole corpus after training (as grid/trials.py's pareto_front ranks
    them), the trials of the Pareto front joined."""
    shift = NEGATIVE_SHIFT
    fig = Figure(layout="constrained", figsize=(5, 4))
    ax = fig.subplots()
    ax.scatter(results[shift], results["reliability"], color="grey", label="trial")
    front = results[results["trial"].isin(front["trial"])].sort_values(shift)
    ax.plot(front[shift], front["reliability"], color="tab:red", marker="o", label="Pareto front")
    ax.set(xlabel="negative shift (facts outside the mix)", ylabel="reliability", title="negative shift against reliability")
    ax.legend(fontsize="small")
    return _save(fig, path)


def optimization_history(results: pd.DataFrame, path: Path) -> Path:
    """A search's objective per trial in the order the trials were made, and the best so far."""
    ordered = results.dropna(subset=["objective"]).sort_values("trial")  # Tune numbers trials in order
    fig = Figure(layout="constrained", figsize=(6, 3.6))
    ax = fig.subplots()
    steps = range(1, len(ordered) + 1)
    ax.scatter(steps, ordered["objective"], label="trial")
    ax.step(steps, ordered["objective"].cummin(), where="post", color="tab:red", label="best so far")
    ax.set(xlabel="trial", ylabel="objective (lower is better)", title="optimization history")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize="small")
    return _save(fig, path)
