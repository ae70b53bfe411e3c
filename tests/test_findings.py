"""The paper's findings on hand-made results frames: every verdict each finding can give,
with the exact p-values of its test worked out by hand."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis.findings import (
    ALPHA,
    CLAIMS,
    CONTRADICTED,
    HOLDS,
    MIN_PAIRS,
    NEEDS_MORE_SEEDS,
    NOT_MEASURED,
    NOT_SEEN,
    VERDICTS,
    WITHIN_SPREAD,
    check_findings,
    findings_json,
    signed_rank_p,
)

HK, PARA = "HighlyKnown", "paraphrase"


def trial(unknown, extra, ratio, seed, **metrics) -> dict:
    return {"trial": f"{unknown}-{extra}-{ratio}-{seed}", "unknown": unknown, "extra": extra, "ratio": ratio,
            "seed": seed, "error": None, **metrics}


def arm(unknown, extra, ratio, column, values) -> list[dict]:
    """One trial per value, seeds 0, 1, ..."""
    return [trial(unknown, extra, ratio, seed, **{column: v}) for seed, v in enumerate(values)]


def finding(rows, key, match="corrected"):
    results = pd.DataFrame(rows)
    found = {f.key: f for f in check_findings(results, match)}
    assert list(found) == list(CLAIMS)
    return found[key]


def only_test(f) -> dict:
    (test,) = f.numbers["tests"]
    assert test["alpha"] == ALPHA == 0.05 and "signed-rank" in test["test"]
    return test


SHIFT = "negative_shift_untrained"


# --- the test -------------------------------------------------------------------------------


def test_signed_rank_p_counts_the_sign_flips():
    # All 3 negative: 1 of the 2^3 flips is as low -> (1, 1/8).
    assert signed_rank_p([-1.0, -2.0, -3.0]) == (1.0, 0.125)
    # Ranks 1.5 and 1.5 (a tie), sum 0: sums -3, 0, 0, +3 -> P(>= 0) = P(<= 0) = 3/4.
    assert signed_rank_p([1.0, -1.0]) == (0.75, 0.75)
    # Zeros add nothing whichever sign: every flip gives the observed sum.
    assert signed_rank_p([0.0, 0.0, 0.0]) == (1.0, 1.0) and signed_rank_p([]) == (1.0, 1.0)
    assert MIN_PAIRS == 5  # 2^-4 = 0.0625 > 0.05 >= 2^-5 = 0.03125


# --- known facts in the mix lower the negative shift against +0 ----------------------------

# An effect of the paper's size (Table 5, HK->UK as a share of its 21,036 facts: 1 UK +10 HK
# against +0 is (153 - 5) / 21036 = 0.007 apart, 10 UK +1 HK against +0 (709 - 409) / 21036
# = 0.014), here the paper's way (lower), with a seed-to-seed noise of about 0.002.
PAPER_SIZED = {
    (1, 0): [0.010, 0.012, 0.011], (1, 10): [0.003, 0.007, 0.002],  # differences -0.007, -0.005, -0.009
    (10, 0): [0.030, 0.033, 0.031], (10, 1): [0.016, 0.021, 0.015],  # -0.014, -0.012, -0.016
}


def paper_sized(seeds, changes=None):
    values = {**PAPER_SIZED, **(changes or {})}
    return [row for (u, r), v in values.items() for row in arm(u, HK, r, SHIFT, v[:seeds])]


def test_an_effect_of_the_papers_size_holds_on_3_seeds():
    # 6 pairs (2 unknown counts x 3 seeds), all negative: of the 2^6 = 64 sign flips only the
    # observed one has a signed-rank sum as low (-21), so p = 1/64 = 0.0156 <= 0.05.
    f = finding(paper_sized(3), "known_facts_lower_shift")
    test = only_test(f)
    assert f.verdict == HOLDS and test["verdict"] == HOLDS
    assert (test["pairs"], test["seeds"], test["p"], test["p_other_way"]) == (6, 3, 1 / 64, 1.0)
    assert test["mean_difference"] == pytest.approx(-0.0105)
    assert "6 pairs over 3 seeds, mean difference -0.011, p = 0.0156 lower and 1 the other way" in f.evidence
    assert (
        "10 new facts, +1 HighlyKnown: negative shift 0.017 (0.015-0.021 over 3 seeds) vs +0: 0.031 "
        "(0.030-0.033 over 3 seeds), paired difference -0.014 over 3 pairs"
    ) in f.evidence


def test_an_effect_of_the_papers_size_needs_more_seeds_on_2():
    # 4 pairs (2 counts x 2 seeds), all negative: p = 1/16 = 0.0625, the least 4 pairs can
    # give, above 0.05, so the test cannot decide; it never says holds on 2 seeds alone.
    f = finding(paper_sized(2), "known_facts_lower_shift")
    test = only_test(f)
    assert f.verdict == NEEDS_MORE_SEEDS
    assert (test["pairs"], test["seeds"], test["p"]) == (4, 2, 1 / 16)
    assert "4 pairs cannot give p below 0.0625 (needs more seeds)" in f.evidence


def test_one_pair_the_other_way_is_weighed_by_its_rank():
    # Seed 1 at 1 new fact: +0.001 (0.013 against 0.012), the smallest |difference|, rank 1;
    # the others ranks 2-6, negative: sum 1 - 20 = -19. The flips as low: all negative (-21)
    # and the observed: p = 2/64 = 0.03125 <= 0.05, holds.
    f = finding(paper_sized(3, {(1, 10): [0.003, 0.013, 0.002]}), "known_facts_lower_shift")
    assert f.verdict == HOLDS and only_test(f)["p"] == 2 / 64


@pytest.mark.parametrize("seeds, verdict", [(5, WITHIN_SPREAD), (2, NEEDS_MORE_SEEDS)])
def test_identical_arms_never_hold(seeds, verdict):
    # Every difference 0: every flip gives the observed sum, p = 1 both ways.
    same = [0.20, 0.25, 0.22, 0.30, 0.21][:seeds]
    rows = [r for u in (10, 50) for r in arm(u, HK, 0, SHIFT, same) + arm(u, HK, 1, SHIFT, same)]
    f = finding(rows, "known_facts_lower_shift")
    test = only_test(f)
    assert f.verdict == verdict and (test["p"], test["p_other_way"]) == (1.0, 1.0)


def test_a_large_consistent_effect_holds_and_the_other_way_contradicts():
    # 3 counts x 2 seeds, +1 HK 0.09 below +0 at every pair: 6 pairs, p = 1/64.
    lower = [r for u in (10, 50, 100) for r in arm(u, HK, 0, SHIFT, [0.30, 0.28]) + arm(u, HK, 1, SHIFT, [0.21, 0.19])]
    f = finding(lower, "known_facts_lower_shift")
    assert f.verdict == HOLDS and only_test(f)["p"] == 1 / 64
    higher = [r for u in (10, 50, 100) for r in arm(u, HK, 0, SHIFT, [0.21, 0.19]) + arm(u, HK, 1, SHIFT, [0.30, 0.28])]
    f = finding(higher, "known_facts_lower_shift")
    assert f.verdict == CONTRADICTED and only_test(f)["p_other_way"] == 1 / 64


def test_the_arms_of_one_count_give_one_difference_per_seed():
    # +1 and +10 HK share the +0 trials of 10 new facts: 5 pairs (their mean), not 10.
    # Seed by seed: (-0.10 + 0.02) / 2 = -0.04 < 0 on each of 5 seeds -> p = 1/32, holds.
    rows = arm(10, HK, 0, SHIFT, [0.30] * 5) + arm(10, HK, 1, SHIFT, [0.20] * 5) + arm(10, HK, 10, SHIFT, [0.32] * 5)
    f = finding(rows, "known_facts_lower_shift")
    test = only_test(f)
    assert (test["pairs"], test["p"], f.verdict) == (5, 1 / 32, HOLDS)
    assert [c["arm"] for c in f.numbers["comparisons"]] == ["+1 HighlyKnown", "+10 HighlyKnown"]


def test_control_is_every_ratio_zero_trial_once_per_unknown_and_seed():
    # The +0 trial is listed under paraphrase, and again (same unknown, seed) under HK:
    # the control of the HK arm, counted once: one pair, too few to decide.
    rows = arm(10, PARA, 0, SHIFT, [0.30]) + arm(10, HK, 0, SHIFT, [0.30]) + arm(10, HK, 1, SHIFT, [0.20])
    f = finding(rows, "known_facts_lower_shift")
    assert f.verdict == NEEDS_MORE_SEEDS and only_test(f)["pairs"] == 1
    assert f.numbers["comparisons"][0]["against_values"] == [0.30]


def test_failed_trials_are_left_out():
    # The failed +0 trial (seed 7, no HK trial to pair with) would be a seventh value.
    rows = paper_sized(3)
    rows.append({**trial(10, HK, 0, 7, **{SHIFT: 0.0}), "error": "RuntimeError('oom')"})
    f = finding(rows, "known_facts_lower_shift")
    assert f.verdict == HOLDS and len(f.numbers["comparisons"][1]["against_values"]) == 3


@pytest.mark.parametrize(
    "rows, missing",
    [
        (arm(10, HK, 1, SHIFT, [0.2]), "no +0 trials (ratio 0)"),
        (arm(10, HK, 0, SHIFT, [0.2]) + arm(10, PARA, 1, SHIFT, [0.2]), "no HighlyKnown trials with ratio > 0"),
        (arm(10, HK, 0, SHIFT, [0.2]) + arm(100, HK, 1, SHIFT, [0.2]), "no unknown count has both"),
        (arm(10, HK, 0, "reliability", [1.0]) + arm(10, HK, 1, "reliability", [1.0]), f"no {SHIFT} column"),
    ],
)
def test_known_facts_not_measured_names_what_is_missing(rows, missing):
    f = finding(rows, "known_facts_lower_shift")
    assert f.verdict == NOT_MEASURED and missing in f.evidence and missing in f.numbers["missing"]


# --- negative shift grows with the number of new facts --------------------------------------

ARMS = [(HK, 0), (HK, 1), (PARA, 1)]


def trend_rows(column, few, many, arms=ARMS):
    """Each arm at 10 new facts (few), 100 (many) and 50 (never looked at: it would sit
    between), seeds 0, 1, ..."""
    return [
        row
        for extra, ratio in arms
        for row in arm(10, extra, ratio, column, few) + arm(50, extra, ratio, column, [0.0, 1.0])
        + arm(100, extra, ratio, column, many)
    ]


@pytest.mark.parametrize(
    "few, many, verdict, p",
    [
        ([0.10, 0.12], [0.20, 0.22], HOLDS, 1 / 64),  # 3 arms x 2 seeds, all up: 1 of 64 flips
        ([0.20, 0.22], [0.10, 0.12], CONTRADICTED, 1.0),
        # Per arm +0.10 and -0.01: ranks 5 (x3) and 2 (x3), sum 9 (doubled: 10s and 4s, 18).
        # Flips with a sum >= 18: all three 10s up (8 of them), or two up and all three 4s
        # (3): p = 11/64 = 0.17 > 0.05.
        ([0.10, 0.21], [0.20, 0.20], WITHIN_SPREAD, 11 / 64),
    ],
)
def test_shift_grows_pools_the_arms(few, many, verdict, p):
    f = finding(trend_rows(SHIFT, few, many), "shift_grows_with_new_facts")
    assert f.verdict == verdict and only_test(f)["p"] == p and only_test(f)["pairs"] == 6
    assert [(c["arm"], c["unknown"], c["against_unknown"]) for c in f.numbers["comparisons"]] == [
        ("+0", 100, 10), ("+1 HighlyKnown", 100, 10), ("+1 paraphrase", 100, 10)
    ]


def test_shift_grows_not_measured_with_one_unknown_count():
    f = finding(arm(10, HK, 0, SHIFT, [0.1]) + arm(10, HK, 1, SHIFT, [0.2]), "shift_grows_with_new_facts")
    assert f.verdict == NOT_MEASURED and "one unknown count per arm (10 new facts)" in f.evidence


# --- paraphrases learn the new facts at least as well as HighlyKnown extras -----------------

REL = "reliability"


@pytest.mark.parametrize(
    "para, known, verdict",
    [
        ([0.99, 1.0, 0.98], [0.90, 0.92, 0.91], HOLDS),  # 2 counts x 3 seeds, all up: p = 1/64
        ([0.90, 0.92, 0.91], [0.99, 1.0, 0.98], CONTRADICTED),
        ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], WITHIN_SPREAD),  # equal: at least as well, but not shown better (p = 1)
    ],
)
def test_paraphrase_vs_highly_known(para, known, verdict):
    rows = [
        r for u in (10, 100) for r in arm(u, PARA, 1, REL, para) + arm(u, HK, 1, REL, known) + arm(u, HK, 0, REL, [0.0, 0.1])
    ]
    f = finding(rows, "paraphrase_vs_highly_known")
    assert f.verdict == verdict and only_test(f)["pairs"] == 6
    # The +0 control is no paraphrase arm.
    assert [(c["arm"], c["against"], c["unknown"]) for c in f.numbers["comparisons"]] == [
        ("+1 paraphrase", "+1 HighlyKnown", 10), ("+1 paraphrase", "+1 HighlyKnown", 100)
    ]


@pytest.mark.parametrize(
    "rows, missing",
    [
        (arm(100, HK, 1, REL, [1.0]) + arm(100, PARA, 0, REL, [1.0]), "no paraphrase trials with ratio > 0"),
        (arm(100, PARA, 1, REL, [1.0]), "no HighlyKnown trials with ratio > 0"),
        (arm(100, PARA, 1, REL, [1.0]) + arm(100, HK, 10, REL, [1.0]), "no unknown count and ratio has both"),
    ],
)
def test_paraphrase_vs_highly_known_not_measured(rows, missing):
    f = finding(rows, "paraphrase_vs_highly_known")
    assert f.verdict == NOT_MEASURED and missing in f.evidence


# --- reliability stays near 1 until many new facts ------------------------------------------


@pytest.mark.parametrize(
    "few, many, verdict",
    [
        ([1.0, 0.95, 0.97], [0.60, 0.50, 0.55], HOLDS),  # 2 arms x 3 seeds above 0.9: p = 1/64; lower at 100
        ([1.0, 0.95, 0.97], [1.0, 0.95, 0.97], HOLDS),  # the same at 100: not higher
        ([0.80, 0.85, 0.82], [0.60, 0.50, 0.55], CONTRADICTED),  # all 6 below 0.9: p = 1/64 the other way
        ([0.95, 0.85, 0.93], [0.60, 0.50, 0.55], WITHIN_SPREAD),  # 4 of 6 above
        ([0.90, 0.91, 0.92], [0.99, 1.0, 0.995], CONTRADICTED),  # near 1, but higher at 100 in all 6 pairs
    ],
)
def test_reliability_near_one(few, many, verdict):
    f = finding(trend_rows(REL, few, many, [(HK, 1), (PARA, 1)]), "reliability_near_one")
    assert f.verdict == verdict and f.numbers["threshold"] == 0.9
    near, rise = f.numbers["tests"]
    assert (near["part"], near["pairs"], rise["part"], rise["pairs"], rise["expect"]) == ("near one", 6, "rise", 6, "lower")


def test_reliability_near_one_on_two_seeds_needs_more():
    # One arm, 2 seeds both 1.0: p = 1/4 at best.
    f = finding(arm(10, HK, 1, REL, [1.0, 1.0]) + arm(100, HK, 1, REL, [0.5, 0.6]), "reliability_near_one")
    assert f.verdict == NEEDS_MORE_SEEDS and f.numbers["tests"][0]["p"] == 0.25


def test_reliability_near_one_judged_at_the_runs_smallest_count():
    # +10 HK was run only at 100 new facts (0.5): "many" for this run, not judged as "few".
    rows = arm(10, HK, 1, REL, [1.0] * 5) + arm(100, HK, 1, REL, [1.0] * 5) + arm(100, HK, 10, REL, [0.5] * 5)
    f = finding(rows, "reliability_near_one")
    assert f.verdict == HOLDS and [c["arm"] for c in f.numbers["comparisons"]] == ["+1 HighlyKnown", "+1 HighlyKnown"]
    assert f.numbers["comparisons"][0]["level"] == 0.9


def test_reliability_near_one_with_one_unknown_count():
    # Near 1 at the only count: holds, the fall not measured; below it: nothing tells
    # whether 40 new facts are already "many", so not measured; one seed: needs more.
    near = finding(arm(40, HK, 0, REL, [1.0, 0.95, 1.0, 0.97, 0.99]), "reliability_near_one")
    assert near.verdict == HOLDS and "whether reliability falls at many new facts is not measured" in near.evidence
    low = finding(arm(40, HK, 0, REL, [0.125] * 5), "reliability_near_one")
    assert low.verdict == NOT_MEASURED and "one unknown count (40 new facts)" in low.evidence
    assert finding(arm(40, HK, 0, REL, [1.0]), "reliability_near_one").verdict == NEEDS_MORE_SEEDS


def test_reliability_not_measured_without_the_column():
    f = finding(arm(40, HK, 0, SHIFT, [0.1]), "reliability_near_one")
    assert f.verdict == NOT_MEASURED and "no reliability column" in f.evidence


# --- refusals nearly vanish after training --------------------------------------------------


def refusal_rows(before, afters, paper=None):
    """One trial per share after (seeds 0, 1, ...); `paper`: the paper's test's (before, afters)."""
    rows = [trial(10, HK, 1, s, refused_share_before=before, refused_share_after=a) for s, a in enumerate(afters)]
    for row, a in zip(rows, paper[1] if paper else []):
        row.update(refused_paper_share_before=paper[0], refused_paper_share_after=a)
    return rows


@pytest.mark.parametrize(
    "afters, verdict, vanished, p",
    [
        # Every after share below half of 0.30 = 0.15: 5 differences negative, p = 1/32.
        ([0.10, 0.12, 0.05, 0.0, 0.14], HOLDS, 5, 1 / 32),
        ([0.20, 0.30, 0.16, 0.25, 0.18], CONTRADICTED, 0, 1.0),
        # -0.05, +0.05, -0.03, +0.10, -0.01: ranks 3.5, 3.5, 2, 5, 1, sum +2: p(lower) = 0.625.
        ([0.10, 0.20, 0.12, 0.25, 0.14], WITHIN_SPREAD, 3, 0.625),
        ([0.10, 0.12], NEEDS_MORE_SEEDS, 2, 0.25),
    ],
)
def test_refusals_vanish(afters, verdict, vanished, p):
    f = finding(refusal_rows(0.30, afters), "refusals_vanish")
    assert f.verdict == verdict and f.numbers["vanished"] == vanished and f.numbers["trials"] == len(afters)
    assert f.numbers["tests"][0]["p"] == p and f.numbers["refusal_test"] == "corrected"
    assert "By our refusal test (a majority of the answers decline)" in f.evidence
    assert f"in {vanished} of {len(afters)} trials" in f.evidence


def test_refusals_in_paper_mode_judged_by_the_papers_test():
    # Ours: every share falls below half; the paper's: none does. Each mode judges by its
    # own test and counts the other beside.
    rows = refusal_rows(0.30, [0.10] * 5, paper=(0.20, [0.15] * 5))
    ours = finding(rows, "refusals_vanish")
    assert ours.verdict == HOLDS and ours.numbers["beside"] == {
        "refusal_test": "paper", "columns": ["refused_paper_share_before", "refused_paper_share_after"],
        "trials": 5, "vanished": 0,
    }
    assert "By the paper's refusal test ('information' in the set-0 answer), not judged here: 0 of 5 trials." in ours.evidence
    paper = finding(rows, "refusals_vanish", match="paper")
    assert paper.verdict == CONTRADICTED and paper.numbers["refusal_test"] == "paper"
    assert paper.numbers["columns"] == ["refused_paper_share_before", "refused_paper_share_after"]
    assert paper.evidence.startswith("By the paper's refusal test") and paper.numbers["beside"]["vanished"] == 5


def test_refusals_not_measured():
    nothing_refused = finding(refusal_rows(0.0, [0.0]), "refusals_vanish")
    assert nothing_refused.verdict == NOT_MEASURED and "refused_share_before > 0" in nothing_refused.evidence
    no_column = finding([trial(10, HK, 0, 0, refused_share_before=0.3)], "refusals_vanish")
    assert no_column.verdict == NOT_MEASURED and "no refused_share_after column" in no_column.evidence
    no_paper = finding(refusal_rows(0.30, [0.10]), "refusals_vanish", match="paper")
    assert no_paper.verdict == NOT_MEASURED and "no refused_paper_share_before, refused_paper_share_after columns" in no_paper.evidence


# --- general ability falls as new facts grow ------------------------------------------------

MC, PPL = "bench_known_mc_delta", "bench_known_ppl_delta"


@pytest.mark.parametrize(
    "column, few, many, verdict",
    [
        (MC, [-0.02, -0.03], [-0.30, -0.35], HOLDS),  # accuracy fell further in all 6 pairs: p = 1/64
        (MC, [-0.30, -0.35], [-0.02, -0.03], CONTRADICTED),
        # Per arm -0.23 and +0.30: ranks 2 (x3) and 5 (x3), sum +9, the mirror of the shift's
        # within-spread case: p = 11/64 the paper's way (lower).
        (MC, [-0.02, -0.30], [-0.25, 0.00], WITHIN_SPREAD),
        (PPL, [0.10, 0.12], [0.50, 0.60], HOLDS),  # a perplexity rising is the loss
        (PPL, [0.50, 0.60], [0.10, 0.12], CONTRADICTED),
        (MC, [-0.02], [-0.10], NEEDS_MORE_SEEDS),  # one seed, 3 arms: p = 1/8 at best
    ],
)
def test_bench_falls(column, few, many, verdict):
    f = finding(trend_rows(column, few, many), "bench_falls_with_new_facts")
    assert f.verdict == verdict
    test = only_test(f)
    assert test["task"] == column[len("bench_") : -len("_delta")] and test["pairs"] == 3 * len(few)
    assert [c["arm"] for c in f.numbers["comparisons"]] == ["+0", "+1 HighlyKnown", "+1 paraphrase"]


def test_bench_falls_every_task_is_its_own_test():
    # known_mc falls (holds), known_ppl falls too, i.e. improves (contradicted).
    rows = trend_rows(MC, [-0.02, -0.03], [-0.30, -0.35])
    for r in rows:
        r[PPL] = {10: 0.50, 50: 0.3, 100: 0.10}[r["unknown"]] + 0.01 * r["seed"]
    f = finding(rows, "bench_falls_with_new_facts")
    assert [(t["task"], t["verdict"]) for t in f.numbers["tests"]] == [("known_mc", HOLDS), ("known_ppl", CONTRADICTED)]
    assert f.verdict == CONTRADICTED and f.numbers["column"] == [MC, PPL]


def test_bench_falls_not_measured():
    no_bench = finding(arm(10, HK, 0, SHIFT, [0.1]) + arm(100, HK, 0, SHIFT, [0.2]), "bench_falls_with_new_facts")
    assert no_bench.verdict == NOT_MEASURED and "no bench_<task>_delta columns" in no_bench.evidence
    one_count = finding(arm(10, HK, 0, MC, [-0.1]) + arm(10, HK, 1, MC, [-0.2]), "bench_falls_with_new_facts")
    assert one_count.verdict == NOT_MEASURED and "one unknown count per arm" in one_count.evidence


# --- some answers explode -------------------------------------------------------------------


def test_answers_explode():
    some = finding(arm(10, HK, 0, "exploded_relative", [0, 3]), "answers_explode")
    assert some.verdict == HOLDS and "1 of 2 trials" in some.evidence and some.numbers["max"] == 3
    none = finding(arm(10, HK, 0, "exploded_relative", [0, 0]), "answers_explode")
    assert none.verdict == NOT_SEEN and "no contradiction" in none.evidence
    missing = finding(arm(10, HK, 0, "exploded_absolute", [5]), "answers_explode")
    assert missing.verdict == NOT_MEASURED and "no exploded_relative column" in missing.evidence


# --- the whole report -----------------------------------------------------------------------


def test_findings_json_round_trips():
    rows = (
        arm(10, HK, 0, SHIFT, [0.30, 0.28]) + arm(10, HK, 1, SHIFT, [0.21, 0.19])
        + arm(100, HK, 1, SHIFT, [0.40, math.nan])
    )
    results = pd.DataFrame(rows)
    results["unknown"] = results["unknown"].astype(np.int64)  # numpy scalars, as from parquet
    results["seed"] = results["seed"].astype(np.int64)
    results[REL] = np.float32(1.0)
    results["exploded_relative"] = np.int64(2)
    data = findings_json(check_findings(results))
    assert list(data) == list(CLAIMS)
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert all(v["verdict"] in VERDICTS for v in data.values())
    known = data["known_facts_lower_shift"]
    assert known["verdict"] == NEEDS_MORE_SEEDS and known["numbers"]["tests"][0]["p"] == 0.25
    # The NaN seed of 100 new facts is left out: one value there, one pair.
    grows = data["shift_grows_with_new_facts"]["numbers"]["comparisons"][0]
    assert grows["values"] == [0.40] and grows["unknown"] == 100 and grows["pairs"] == [[0]]


def test_a_frame_without_arms_measures_nothing_but_says_why():
    for f in check_findings(pd.DataFrame({"trial": ["t0"]})):
        assert f.verdict == NOT_MEASURED and f.evidence.startswith("Not measured: no ")
