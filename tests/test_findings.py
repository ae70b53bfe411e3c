"""The paper's findings on hand-made results frames: every verdict each finding can give."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis.findings import (
    CLAIMS,
    CONTRADICTED,
    HOLDS,
    NOT_MEASURED,
    NOT_SEEN,
    VERDICTS,
    WITHIN_SPREAD,
    check_findings,
    findings_json,
)

HK, PARA = "HighlyKnown", "paraphrase"


def trial(unknown, extra, ratio, seed, **metrics) -> dict:
    return {"trial": f"{unknown}-{extra}-{ratio}-{seed}", "unknown": unknown, "extra": extra, "ratio": ratio,
            "seed": seed, "error": None, **metrics}


def arm(unknown, extra, ratio, column, values) -> list[dict]:
    """One trial per value, seeds 0, 1, ..."""
    return [trial(unknown, extra, ratio, seed, **{column: v}) for seed, v in enumerate(values)]


def finding(rows, key):
    results = pd.DataFrame(rows)
    found = {f.key: f for f in check_findings(results)}
    assert list(found) == list(CLAIMS)
    return found[key]


SHIFT = "negative_shift_untrained"


# --- known facts in the mix lower the negative shift against +0 ----------------------------


def test_known_facts_holds_when_ranges_apart_and_lower():
    # +1 HK 0.19-0.21 (mean 0.20) lies wholly below +0 0.28-0.30 (mean 0.29).
    f = finding(arm(10, HK, 0, SHIFT, [0.30, 0.28]) + arm(10, HK, 1, SHIFT, [0.21, 0.19]), "known_facts_lower_shift")
    assert f.verdict == HOLDS
    assert (
        "10 new facts, +1 HighlyKnown: negative shift 0.200 (0.190-0.210 over 2 seeds) "
        "vs +0: 0.290 (0.280-0.300 over 2 seeds) (holds)"
    ) in f.evidence
    (c,) = f.numbers["comparisons"]
    assert c["arm"] == "+1 HighlyKnown" and c["against"] == "+0" and c["unknown"] == 10
    assert sorted(c["values"]) == [0.19, 0.21] and sorted(c["against_values"]) == [0.28, 0.30]


def test_known_facts_contradicted_when_ranges_apart_and_higher():
    f = finding(arm(10, HK, 0, SHIFT, [0.20, 0.19]) + arm(10, HK, 1, SHIFT, [0.30, 0.28]), "known_facts_lower_shift")
    assert f.verdict == CONTRADICTED


def test_known_facts_within_spread_when_ranges_overlap():
    # 0.21-0.29 overlaps 0.28-0.30, though the mean 0.25 is lower than 0.29.
    f = finding(arm(10, HK, 0, SHIFT, [0.30, 0.28]) + arm(10, HK, 1, SHIFT, [0.21, 0.29]), "known_facts_lower_shift")
    assert f.verdict == WITHIN_SPREAD


def test_known_facts_one_seed_uses_the_tolerance():
    # One seed each: 0.29 vs 0.30 differ by 0.01 <= 0.02, within spread; 0.25 vs 0.30 by 0.05: holds.
    close = finding(arm(10, HK, 0, SHIFT, [0.30]) + arm(10, HK, 1, SHIFT, [0.29]), "known_facts_lower_shift")
    assert close.verdict == WITHIN_SPREAD
    assert "one seed: no spread" in close.evidence and "within the one-seed tolerance 0.02" in close.evidence
    apart = finding(arm(10, HK, 0, SHIFT, [0.30]) + arm(10, HK, 1, SHIFT, [0.25]), "known_facts_lower_shift")
    assert apart.verdict == HOLDS


def test_known_facts_one_contradiction_contradicts_the_claim():
    # +1 HK lower (holds), +10 HK 0.40 above +0's 0.30 (contradicted) -> contradicted;
    # +1 HK lower and +10 HK overlapping -> within spread.
    base = arm(10, HK, 0, SHIFT, [0.30, 0.28]) + arm(10, HK, 1, SHIFT, [0.21, 0.19])
    assert finding(base + arm(10, HK, 10, SHIFT, [0.40, 0.41]), "known_facts_lower_shift").verdict == CONTRADICTED
    assert finding(base + arm(10, HK, 10, SHIFT, [0.27, 0.29]), "known_facts_lower_shift").verdict == WITHIN_SPREAD


def test_control_is_every_ratio_zero_trial_once_per_unknown_and_seed():
    # The +0 trial is listed under paraphrase, and again (same unknown, seed) under HK:
    # it is the control of the HK arm, counted once, so one seed (no spread), and 0.20 vs
    # 0.30 is 0.10 apart: holds.
    rows = arm(10, PARA, 0, SHIFT, [0.30]) + arm(10, HK, 0, SHIFT, [0.30]) + arm(10, HK, 1, SHIFT, [0.20])
    f = finding(rows, "known_facts_lower_shift")
    assert f.verdict == HOLDS
    assert f.numbers["comparisons"][0]["against_values"] == [0.30]


def test_failed_trials_are_left_out():
    # The failed +0 trial would overlap the +1 arm; without it the arms are apart.
    rows = arm(10, HK, 0, SHIFT, [0.30, 0.28]) + arm(10, HK, 1, SHIFT, [0.21, 0.19])
    rows.append({**trial(10, HK, 0, 7, **{SHIFT: 0.0}), "error": "RuntimeError('oom')"})
    assert finding(rows, "known_facts_lower_shift").verdict == HOLDS


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


@pytest.mark.parametrize(
    "few, many, verdict",
    [
        ([0.10, 0.12], [0.20, 0.22], HOLDS),  # 0.20-0.22 wholly above 0.10-0.12
        ([0.20, 0.22], [0.10, 0.12], CONTRADICTED),
        ([0.10, 0.21], [0.20, 0.22], WITHIN_SPREAD),  # 0.10-0.21 overlaps 0.20-0.22
    ],
)
def test_shift_grows_compares_smallest_and_largest_unknown_count(few, many, verdict):
    # A middle count (50) is never looked at: it would overlap both ends.
    rows = arm(10, HK, 0, SHIFT, few) + arm(50, HK, 0, SHIFT, [0.0, 1.0]) + arm(100, HK, 0, SHIFT, many)
    f = finding(rows, "shift_grows_with_new_facts")
    assert f.verdict == verdict
    (c,) = f.numbers["comparisons"]
    assert (c["arm"], c["unknown"], c["against_unknown"]) == ("+0", 100, 10)


def test_shift_grows_not_measured_with_one_unknown_count():
    f = finding(arm(10, HK, 0, SHIFT, [0.1]) + arm(10, HK, 1, SHIFT, [0.2]), "shift_grows_with_new_facts")
    assert f.verdict == NOT_MEASURED and "one unknown count per arm (10 new facts)" in f.evidence


# --- paraphrases learn the new facts at least as well as HighlyKnown extras -----------------

REL = "reliability"


@pytest.mark.parametrize(
    "para, known, verdict",
    [
        ([0.99, 1.0], [0.90, 0.92], HOLDS),  # 0.99-1.0 wholly above 0.90-0.92
        ([0.90, 0.92], [0.99, 1.0], CONTRADICTED),
        ([1.0, 1.0], [1.0, 1.0], WITHIN_SPREAD),  # equal: at least as well, but no more than the spread allows
    ],
)
def test_paraphrase_vs_highly_known(para, known, verdict):
    rows = arm(100, PARA, 1, REL, para) + arm(100, HK, 1, REL, known) + arm(100, HK, 0, REL, [0.0, 0.1])
    f = finding(rows, "paraphrase_vs_highly_known")
    assert f.verdict == verdict
    (c,) = f.numbers["comparisons"]  # the +0 control is no paraphrase arm
    assert (c["arm"], c["against"], c["unknown"]) == ("+1 paraphrase", "+1 HighlyKnown", 100)


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
        ([1.0, 0.95], [0.60, 0.50], HOLDS),  # both seeds >= 0.9 at 10; lower at 100
        ([1.0, 0.95], [0.95, 1.0], HOLDS),  # the same at 100: not higher
        ([0.80, 0.85], [0.60, 0.50], CONTRADICTED),  # no seed >= 0.9 at 10
        ([0.95, 0.85], [0.60, 0.50], WITHIN_SPREAD),  # 1 of 2 seeds >= 0.9 at 10
        ([0.90, 0.91], [0.99, 1.0], CONTRADICTED),  # 0.99-1.0 at 100 wholly above 0.90-0.91 at 10
    ],
)
def test_reliability_near_one(few, many, verdict):
    f = finding(arm(10, HK, 1, REL, few) + arm(100, HK, 1, REL, many), "reliability_near_one")
    assert f.verdict == verdict
    assert f.numbers["threshold"] == 0.9


def test_reliability_near_one_judged_at_the_runs_smallest_count():
    # +10 HK was run only at 100 new facts (0.5): "many" for this run, not judged as "few".
    rows = arm(10, HK, 1, REL, [1.0]) + arm(100, HK, 1, REL, [1.0]) + arm(100, HK, 10, REL, [0.5])
    f = finding(rows, "reliability_near_one")
    assert f.verdict == HOLDS and [c["arm"] for c in f.numbers["comparisons"]] == ["+1 HighlyKnown"]


def test_reliability_near_one_with_one_unknown_count():
    # Near 1 at the only count: holds, the fall not measured; below it: nothing tells
    # whether 40 new facts are already "many", so not measured.
    near = finding(arm(40, HK, 0, REL, [1.0, 0.95]), "reliability_near_one")
    assert near.verdict == HOLDS and "whether reliability falls at many new facts is not measured" in near.evidence
    low = finding(arm(40, HK, 0, REL, [0.125]), "reliability_near_one")
    assert low.verdict == NOT_MEASURED and "one unknown count (40 new facts)" in low.evidence


def test_reliability_not_measured_without_the_column():
    f = finding(arm(40, HK, 0, SHIFT, [0.1]), "reliability_near_one")
    assert f.verdict == NOT_MEASURED and "no reliability column" in f.evidence


# --- refusals nearly vanish after training --------------------------------------------------


def refusal_rows(before, afters):
    return [trial(10, HK, r, 0, refused_share_before=before, refused_share_after=a) for r, a in enumerate(afters)]


@pytest.mark.parametrize(
    "afters, verdict, vanished",
    [
        ([0.10, 0.12], HOLDS, 2),  # both below half of 0.30 = 0.15
        ([0.20, 0.30], CONTRADICTED, 0),
        ([0.10, 0.20], WITHIN_SPREAD, 1),
    ],
)
def test_refusals_vanish(afters, verdict, vanished):
    f = finding(refusal_rows(0.30, afters), "refusals_vanish")
    assert f.verdict == verdict and f.numbers["vanished"] == vanished and f.numbers["trials"] == 2
    assert f"in {vanished} of 2 trials" in f.evidence


def test_refusals_not_measured():
    nothing_refused = finding(refusal_rows(0.0, [0.0]), "refusals_vanish")
    assert nothing_refused.verdict == NOT_MEASURED and "refused_share_before > 0" in nothing_refused.evidence
    no_column = finding([trial(10, HK, 0, 0, refused_share_before=0.3)], "refusals_vanish")
    assert no_column.verdict == NOT_MEASURED and "no refused_share_after column" in no_column.evidence


# --- general ability falls as new facts grow ------------------------------------------------

MC, PPL = "bench_known_mc_delta", "bench_known_ppl_delta"


@pytest.mark.parametrize(
    "column, few, many, verdict",
    [
        (MC, [-0.02, -0.03], [-0.30, -0.35], HOLDS),  # accuracy fell further with more facts
        (MC, [-0.30, -0.35], [-0.02, -0.03], CONTRADICTED),
        (MC, [-0.02, -0.30], [-0.25, -0.35], WITHIN_SPREAD),  # -0.30..-0.02 overlaps -0.35..-0.25
        (PPL, [0.10, 0.12], [0.50, 0.60], HOLDS),  # a perplexity rising is the loss
        (PPL, [0.50, 0.60], [0.10, 0.12], CONTRADICTED),
        (PPL, [0.10], [0.14], WITHIN_SPREAD),  # one seed: 0.04 <= the perplexity tolerance 0.05
        (MC, [-0.02], [-0.03], WITHIN_SPREAD),  # one seed: 0.01 <= 0.02
        (MC, [-0.02], [-0.10], HOLDS),  # one seed: 0.08 > 0.02
    ],
)
def test_bench_falls(column, few, many, verdict):
    f = finding(arm(10, PARA, 1, column, few) + arm(100, PARA, 1, column, many), "bench_falls_with_new_facts")
    assert f.verdict == verdict
    (c,) = f.numbers["comparisons"]
    assert c["task"] == column[len("bench_") : -len("_delta")] and c["arm"] == "+1 paraphrase"


def test_bench_falls_every_task_and_arm_must_hold():
    # known_mc falls (holds), known_ppl falls too, i.e. improves (contradicted).
    rows = arm(10, HK, 0, MC, [-0.02]) + arm(100, HK, 0, MC, [-0.30])
    for r, v in zip(rows, (0.50, 0.10)):  # 10 then 100 new facts
        r[PPL] = v
    f = finding(rows, "bench_falls_with_new_facts")
    assert [c["verdict"] for c in f.numbers["comparisons"]] == [HOLDS, CONTRADICTED]
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
    results[REL] = np.float32(1.0)
    results["exploded_relative"] = np.int64(2)
    data = findings_json(check_findings(results))
    assert list(data) == list(CLAIMS)
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert all(v["verdict"] in VERDICTS for v in data.values())
    assert data["known_facts_lower_shift"]["verdict"] == HOLDS
    # The NaN seed of 100 new facts is left out: one value there.
    grows = data["shift_grows_with_new_facts"]["numbers"]["comparisons"][0]
    assert grows["values"] == [0.40] and grows["unknown"] == 100


def test_a_frame_without_arms_measures_nothing_but_says_why():
    for f in check_findings(pd.DataFrame({"trial": ["t0"]})):
        assert f.verdict == NOT_MEASURED and f.evidence.startswith("Not measured: no ")
