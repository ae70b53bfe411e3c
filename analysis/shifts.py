"""Knowledge shifts and reliability: how the categories of facts move after training
(docs/protocol.md §5).

Inputs are categories frames, one row per fact (fact_id, p_greedy, category, ...):
`before` from the base model, `after` from a trained adapter. The evaluated facts are
the facts of `after` (the whole corpus, or a probe set during training); each of them
must have a `before` category.

Categories are ordered by how well the model knows a fact: Unknown < WeaklyKnown <
MaybeKnown < HighlyKnown (WeaklyKnown sits between Unknown and MaybeKnown). A positive
shift moves a fact up that order, a negative shift moves it down; with the paper's
three categories these are exactly UK->MK, UK->HK, MK->HK and HK->MK, HK->UK, MK->UK.

Scope: `exclude` takes fact ids to leave out; the trained facts (everything in the
training mix, extra HighlyKnown facts included) are left out for the "untrained" view.
"""
from __future__ import annotations

import pandas as pd

from analysis.scoring import CATEGORIES, HIGHLY_KNOWN, UNKNOWN

# CATEGORIES runs from the most to the least known category.
RANK = {category: len(CATEGORIES) - 1 - i for i, category in enumerate(CATEGORIES)}


def _categories(frame: pd.DataFrame, name: str) -> pd.Series:
    """The category of each fact, indexed by fact_id, after checking the frame."""
    categories = frame.set_index("fact_id")["category"]
    if categories.index.has_duplicates:
        dup = categories.index[categories.index.duplicated()][0]
        raise ValueError(f"{name}: fact_id {dup!r} appears more than once")
    unknown = set(categories) - set(CATEGORIES)
    if unknown:
        raise ValueError(f"{name}: unknown categories {sorted(unknown)} (known: {CATEGORIES})")
    return categories


def paired(before: pd.DataFrame, after: pd.DataFrame, exclude=()) -> pd.DataFrame:
    """One row per evaluated fact, indexed by fact_id: its `before` and `after` category."""
    b, a = _categories(before, "before"), _categories(after, "after")
    missing = a.index.difference(b.index)
    if len(missing):
        raise ValueError(f"{len(missing)} facts of `after` have no `before` category, e.g. {missing[0]!r}")
    pairs = pd.DataFrame({"before": b.reindex(a.index), "after": a})
    return pairs[~pairs.index.isin(list(exclude))]


def direction(pairs: pd.DataFrame) -> pd.Series:
    """+1 for a positive shift, -1 for a negative one, 0 for none, per row of `paired`."""
    # astype(int): an empty column keeps its string dtype through map.
    up = pairs["after"].map(RANK).astype(int) - pairs["before"].map(RANK).astype(int)
    return up.clip(-1, 1)


def transition_matrix(before, after, exclude=(), per_row: bool = False) -> pd.DataFrame:
    """Counts of facts per (before, after) category; all categories, in CATEGORIES order.

    per_row=True divides each row by the facts in that `before` category, which is the
    fraction of the facts that could make each move (NaN for an empty row).
    """
    pairs = paired(before, after, exclude)
    index = pd.Index(CATEGORIES, name="before")
    matrix = pd.DataFrame(0, index=index, columns=pd.Index(CATEGORIES, name="after"))
    for (b, a), n in pairs.value_counts(["before", "after"]).items():
        matrix.loc[b, a] = n
    if per_row:
        return matrix.div(matrix.sum(axis=1).replace(0, float("nan")), axis=0)
    return matrix


def _share(count: int, total: int) -> float:
    return count / total if total else float("nan")


def shift_summary(before, after, exclude=()) -> dict:
    """Positive and negative shifts as counts and as fractions under both denominators.

    `*_of_all`: over all evaluated facts in scope. `*_of_possible`: over the facts that
    could make that move, i.e. not already HighlyKnown (positive) or not already
    Unknown (negative) before training.
    """
    pairs = paired(before, after, exclude)
    moved = direction(pairs)
    positive, negative = int((moved > 0).sum()), int((moved < 0).sum())
    could_rise = int((pairs["before"] != HIGHLY_KNOWN).sum())
    could_fall = int((pairs["before"] != UNKNOWN).sum())
    return {
        "facts": len(pairs),
        "positive": positive,
        "negative": negative,
        "positive_of_all": _share(positive, len(pairs)),
        "negative_of_all": _share(negative, len(pairs)),
        "positive_of_possible": _share(positive, could_rise),
        "negative_of_possible": _share(negative, could_fall),
    }


def reliability(after: pd.DataFrame, new) -> dict:
    """How well the new (trained Unknown) facts were learned.

    `reliability`: mean over the new facts of P_greedy (share of the M greedy answers
    that are correct). `reliability_strict`: share of the new facts now HighlyKnown.
    `new` holds only the Unknown facts being learned, not the extra HighlyKnown ones.
    """
    facts = after.set_index("fact_id")
    new = pd.Index(list(new)).unique()
    missing = new.difference(facts.index)
    if len(missing):
        raise ValueError(f"{len(missing)} new facts were not evaluated, e.g. {missing[0]!r}")
    learned = facts.loc[new]
    return {
        "reliability": float(learned["p_greedy"].mean()),
        "reliability_strict": float((learned["category"] == HIGHLY_KNOWN).mean()),
    }
