"""One trial's findings (docs/protocol.md §5), from the base model's and the adapter's
categorization of the whole corpus. Pure pandas: grid/evaluate.py runs it in Ray tasks.

`analyze_trial` returns a record of numbers, added to the trial's row of
results.parquet, and the frames behind them, stored in <run>/analysis/<trial>/.
Its keys, and what each holds, are analysis/schema.py's RESULTS (the patterns with {scope},
{when} and {reason}).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analysis.behaviour import (
    PAPER_EXPLODED_SHARE,
    diversity,
    domain_chance,
    domain_count,
    exploded_answers,
    paper_diversity,
    paper_reason_shares,
    paper_shift_reasons,
    reason_shares,
    refusals,
    shift_reasons,
)
from analysis.scoring import HIGHLY_KNOWN, UNKNOWN
from analysis.shifts import reliability, shift_summary, transition_matrix

# Base-relative threshold: an answer given more than this many times as often as under
# the base model (which an absolute count misses when the corpus is small).
EXPLODED_RATIO = 10.0

SCOPES = ("all", "untrained")


@dataclass
class TrialAnalysis:
    record: dict  # the numbers above
    transitions: pd.DataFrame  # scope, before, after, count: both scopes' full transition matrix
    reasons: pd.DataFrame  # one row per shifted fact outside the mix (behaviour.shift_reasons)
    paper_reasons: pd.DataFrame  # one row per UK->HK or HK->UK fact (behaviour.paper_shift_reasons)
    exploded: pd.DataFrame  # exploded answers: threshold (absolute | relative), answer, count, share, ...


def _shift_record(summary: dict, scope: str) -> dict:
    return {
        f"facts_{scope}": summary["facts"],
        f"positive_{scope}": summary["positive"],
        f"negative_{scope}": summary["negative"],
        f"positive_shift_{scope}": summary["positive_of_all"],
        f"negative_shift_{scope}": summary["negative_of_all"],
        f"positive_shift_possible_{scope}": summary["positive_of_possible"],
        f"negative_shift_possible_{scope}": summary["negative_of_possible"],
    }


def _when(metrics: dict, when: str) -> dict:
    return {f"{key}_{when}": value for key, value in metrics.items()}


def analyze_trial(
    facts: pd.DataFrame,
    before: pd.DataFrame,
    before_generations: pd.DataFrame,
    after: pd.DataFrame,
    after_generations: pd.DataFrame,
    mix: pd.DataFrame,
) -> TrialAnalysis:
    """before/after: categories frames of the base model and the adapter over the same
    facts; *_generations: their scored generations (with the raw `output`, which the
    paper's reasons read); mix: fact_id, role ("new" for the Unknown facts learned, else
    the extra kind) of the training mix."""
    trained = set(mix["fact_id"])
    new = mix.loc[mix["role"] == "new", "fact_id"].unique()
    exclude = {"all": (), "untrained": trained}

    record = dict(reliability(after, new))
    transitions = []
    for scope in SCOPES:
        record.update(_shift_record(shift_summary(before, after, exclude[scope]), scope))
        matrix = transition_matrix(before, after, exclude[scope])
        transitions.append(matrix.stack().rename("count").reset_index().assign(scope=scope))
    transitions = pd.concat(transitions, ignore_index=True)[["scope", "before", "after", "count"]]
    every = transitions[transitions["scope"] == "all"].set_index(["before", "after"])["count"]
    record["unknown_to_highly_known"] = int(every[UNKNOWN, HIGHLY_KNOWN])
    record["highly_known_to_unknown"] = int(every[HIGHLY_KNOWN, UNKNOWN])
    for move in ("unknown_to_highly_known", "highly_known_to_unknown"):
        record[f"{move}_share"] = record[move] / record["facts_all"] if record["facts_all"] else float("nan")

    for when, categories, generations in (("before", before, before_generations), ("after", after, after_generations)):
        record.update(_when(refusals(categories), when))
        record.update(_when(diversity(generations), when))
        record.update(_when(paper_diversity(generations), when))

    # The paper's threshold, counted as its notebook does: answers that differ in case differ.
    absolute = exploded_answers(after_generations, before_generations, share_above=PAPER_EXPLODED_SHARE, keep_case=True)
    relative = exploded_answers(after_generations, before_generations, ratio_above=EXPLODED_RATIO)
    record["exploded_absolute"], record["exploded_relative"] = len(absolute), len(relative)
    exploded = pd.concat(
        [absolute.reset_index().assign(threshold="absolute"), relative.reset_index().assign(threshold="relative")],
        ignore_index=True,
    )

    # Reasons use the base-relative threshold: an answer already common before training
    # (an absolute count catches those) did not collapse the adapter's answers onto it.
    reasons = shift_reasons(before, after, after_generations, facts, trained, relative.index)
    shares = reason_shares(reasons)
    record.update({f"reason_{key}": value for key, value in shares.items() if key != "shifts"})
    record["reason_domain_expected"] = domain_chance(after, facts, trained)
    record["domains"] = domain_count(facts)
    # The paper's reasons, with its absolute threshold for exploded answers.
    paper = paper_shift_reasons(before, after, after_generations, facts, trained, new, absolute.index)
    record.update({f"paper_reason_{key}": value for key, value in paper_reason_shares(paper).items()})
    return TrialAnalysis(record, transitions, reasons, paper, exploded)


def merge_records(results: pd.DataFrame, records: dict[str, dict]) -> pd.DataFrame:
    """`results` (one row per trial) with each trial's record (trial -> {column: value})
    merged in; a record's columns replace those of the same name."""
    if not records:
        return results
    found = pd.DataFrame.from_dict(records, orient="index").rename_axis("trial").reset_index()
    results = results.drop(columns=[c for c in found.columns if c != "trial" and c in results.columns])
    return results.merge(found, on="trial", how="left")
