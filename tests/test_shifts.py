"""Shifts and reliability on hand-made category frames; expected numbers worked out
by hand in the comments."""
import math

import pandas as pd
import pytest

from analysis.shifts import reliability, shift_summary, transition_matrix

HK, MK, WK, UK = "HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown"


def frame(categories: dict, p_greedy: dict | None = None) -> pd.DataFrame:
    p_greedy = p_greedy or {}
    return pd.DataFrame(
        {
            "fact_id": list(categories),
            "category": list(categories.values()),
            "p_greedy": [p_greedy.get(f, 0.0) for f in categories],
        }
    )


# Ten facts, three categories (the paper's setting).
MOVES = {
    "f1": (UK, UK),
    "f2": (UK, MK),  # +
    "f3": (UK, HK),  # + (trained, new)
    "f4": (MK, HK),  # +
    "f5": (MK, MK),
    "f6": (MK, UK),  # -
    "f7": (HK, HK),  # (trained, extra HighlyKnown)
    "f8": (HK, MK),  # -
    "f9": (HK, UK),  # -
    "f10": (HK, HK),
}
BEFORE = frame({f: b for f, (b, _) in MOVES.items()})
AFTER = frame({f: a for f, (_, a) in MOVES.items()}, p_greedy={"f2": 0.6, "f3": 1.0})
TRAINED = {"f3", "f7"}


def test_transition_matrix_counts_every_category_in_order():
    m = transition_matrix(BEFORE, AFTER)
    assert list(m.index) == [HK, MK, WK, UK] and list(m.columns) == [HK, MK, WK, UK]
    assert m.loc[HK].tolist() == [2, 1, 0, 1]  # f7 f10 | f8 | - | f9
    assert m.loc[MK].tolist() == [1, 1, 0, 1]  # f4 | f5 | - | f6
    assert m.loc[WK].tolist() == [0, 0, 0, 0]
    assert m.loc[UK].tolist() == [1, 1, 0, 1]  # f3 | f2 | - | f1
    assert m.to_numpy().sum() == 10


def test_transition_matrix_per_row_and_without_trained():
    shares = transition_matrix(BEFORE, AFTER, per_row=True)
    assert shares.loc[HK].tolist() == [0.5, 0.25, 0.0, 0.25]  # of 4 HighlyKnown facts
    assert shares.loc[UK].tolist() == pytest.approx([1 / 3, 1 / 3, 0.0, 1 / 3])
    assert shares.loc[WK].isna().all()  # no WeaklyKnown fact could move
    untrained = transition_matrix(BEFORE, AFTER, exclude=TRAINED)
    assert untrained.loc[UK, HK] == 0 and untrained.loc[HK, HK] == 1  # f3, f7 gone


def test_shift_summary_both_denominators():
    s = shift_summary(BEFORE, AFTER)
    # positive: f2 f3 f4; negative: f6 f8 f9
    assert (s["facts"], s["positive"], s["negative"]) == (10, 3, 3)
    assert s["positive_of_all"] == pytest.approx(3 / 10)
    assert s["negative_of_all"] == pytest.approx(3 / 10)
    # could rise: not HighlyKnown before = f1..f6 (6); could fall: not Unknown = f4..f10 (7)
    assert s["positive_of_possible"] == pytest.approx(3 / 6)
    assert s["negative_of_possible"] == pytest.approx(3 / 7)


def test_shifts_with_and_without_trained_facts():
    table = {"all": shift_summary(BEFORE, AFTER), "untrained": shift_summary(BEFORE, AFTER, exclude=TRAINED)}
    assert list(table) == ["all", "untrained"]
    assert table["all"]["positive"] == 3
    u = table["untrained"]
    # without f3, f7: 8 facts; positive f2 f4; negative f6 f8 f9
    assert (u["facts"], u["positive"], u["negative"]) == (8, 2, 3)
    assert u["positive_of_all"] == pytest.approx(2 / 8)
    assert u["negative_of_all"] == pytest.approx(3 / 8)
    # could rise: f1 f2 f4 f5 f6 (5); could fall: f4 f5 f6 f8 f9 f10 (6)
    assert u["positive_of_possible"] == pytest.approx(2 / 5)
    assert u["negative_of_possible"] == pytest.approx(3 / 6)


def test_negative_shift_is_over_facts_outside_the_mix():
    assert shift_summary(BEFORE, AFTER, exclude=TRAINED)["negative_of_all"] == pytest.approx(3 / 8)


def test_weakly_known_sits_between_maybe_known_and_unknown():
    moves = {
        "g1": (UK, WK),  # +
        "g2": (WK, MK),  # +
        "g3": (WK, UK),  # -
        "g4": (MK, WK),  # -
        "g5": (WK, WK),
        "g6": (HK, WK),  # -
        "g7": (WK, HK),  # +
        "g8": (UK, UK),
    }
    before = frame({f: b for f, (b, _) in moves.items()})
    after = frame({f: a for f, (_, a) in moves.items()})
    s = shift_summary(before, after)
    assert (s["positive"], s["negative"]) == (3, 3)
    assert s["positive_of_all"] == pytest.approx(3 / 8)
    # could rise: all but g6 (7); could fall: all but g1 and g8 (6)
    assert s["positive_of_possible"] == pytest.approx(3 / 7)
    assert s["negative_of_possible"] == pytest.approx(3 / 6)
    assert transition_matrix(before, after).loc[WK].tolist() == [1, 1, 1, 1]  # g7 g2 g5 g3


def test_probe_set_uses_only_the_evaluated_facts():
    # `after` holds only a probe set: f6 (MK->UK) and f9 (HK->UK) fall, f1 stays.
    probe = AFTER[AFTER["fact_id"].isin(["f1", "f6", "f9"])]
    s = shift_summary(BEFORE, probe)
    assert (s["facts"], s["negative"]) == (3, 2)
    assert s["negative_of_possible"] == pytest.approx(2 / 2)  # f1 was Unknown already


def test_empty_scope_gives_nan_fractions():
    s = shift_summary(BEFORE, AFTER, exclude=list(MOVES))
    assert s["facts"] == 0 and math.isnan(s["negative_of_all"]) and math.isnan(s["positive_of_possible"])


def test_reliability_mean_and_strict():
    # new facts f2 (P_greedy 0.6, MaybeKnown) and f3 (1.0, HighlyKnown)
    r = reliability(AFTER, ["f2", "f3"])
    assert r["reliability"] == pytest.approx(0.8)
    assert r["reliability_strict"] == pytest.approx(0.5)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="not evaluated"):
        reliability(AFTER, ["f2", "nope"])
    with pytest.raises(ValueError, match="no `before` category"):
        shift_summary(BEFORE.iloc[1:], AFTER)
    with pytest.raises(ValueError, match="more than once"):
        shift_summary(pd.concat([BEFORE, BEFORE]), AFTER)
    with pytest.raises(ValueError, match="unknown categories"):
        shift_summary(BEFORE, AFTER.assign(category="Known"))


def test_every_shift_fraction_by_hand():
    """Ten facts in all four categories, two of them trained (k3 new, k8 extra HighlyKnown):
    each fraction shifts.py computes, written as the fraction counted by hand."""
    moves = {
        "k1": (UK, UK),
        "k2": (UK, MK),  # +
        "k3": (UK, HK),  # + trained
        "k4": (WK, MK),  # +
        "k5": (WK, UK),  # -
        "k6": (MK, HK),  # +
        "k7": (MK, UK),  # -
        "k8": (HK, HK),  # trained
        "k9": (HK, WK),  # -
        "k10": (HK, HK),
    }
    before = frame({f: b for f, (b, _) in moves.items()})
    after = frame({f: a for f, (_, a) in moves.items()})
    trained = {"k3", "k8"}
    table = {"all": shift_summary(before, after), "untrained": shift_summary(before, after, exclude=trained)}
    expected = {
        # all 10 facts: positive k2 k3 k4 k6 (4), negative k5 k7 k9 (3);
        # could rise (not HK before): k1..k7 (7); could fall (not UK before): k4..k10 (7)
        "all": {"facts": 10, "positive": 4, "negative": 3, "positive_of_all": 4 / 10, "negative_of_all": 3 / 10,
                "positive_of_possible": 4 / 7, "negative_of_possible": 3 / 7},
        # without k3, k8: 8 facts; positive k2 k4 k6 (3), negative k5 k7 k9 (3);
        # could rise: k1 k2 k4 k5 k6 k7 (6); could fall: k4 k5 k6 k7 k9 k10 (6)
        "untrained": {"facts": 8, "positive": 3, "negative": 3, "positive_of_all": 3 / 8, "negative_of_all": 3 / 8,
                      "positive_of_possible": 3 / 6, "negative_of_possible": 3 / 6},
    }
    for scope, numbers in expected.items():
        assert table[scope] == pytest.approx(numbers), scope
    assert shift_summary(before, after, exclude=trained)["negative_of_all"] == pytest.approx(3 / 8)

    # Per before-category row (the facts that could make each move), columns HK MK WK UK.
    rows = transition_matrix(before, after, per_row=True)
    assert rows.loc[HK].tolist() == pytest.approx([2 / 3, 0, 1 / 3, 0])  # k8 k10 | - | k9 | -
    assert rows.loc[MK].tolist() == pytest.approx([1 / 2, 0, 0, 1 / 2])  # k6 | - | - | k7
    assert rows.loc[WK].tolist() == pytest.approx([0, 1 / 2, 0, 1 / 2])  # - | k4 | - | k5
    assert rows.loc[UK].tolist() == pytest.approx([1 / 3, 1 / 3, 0, 1 / 3])  # k3 | k2 | - | k1
    rows = transition_matrix(before, after, exclude=trained, per_row=True)
    assert rows.loc[HK].tolist() == pytest.approx([1 / 2, 0, 1 / 2, 0])  # k10 | - | k9 | -
    assert rows.loc[UK].tolist() == pytest.approx([0, 1 / 2, 0, 1 / 2])  # - | k2 | - | k1
