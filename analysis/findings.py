"""The paper's findings (docs/protocol.md §6), checked on one run's results.parquet.

`check_findings(results, match)` gives one `Finding` per claim of the paper, each with a
verdict for this run, a sentence with the numbers behind it, and those numbers as a dict;
`findings_json` is what findings.json holds. Pure pandas and numpy, on one row per trial.

Arms. A trial belongs to the arm (extra, ratio) at its unknown count, e.g. "+1
HighlyKnown" at 10 new facts. Every ratio-0 trial is the "+0" control, whatever its
extra: a mix without extras is the same mix for both kinds (the paper lists +0 once per
unknown count), so a grid may hold it once or twice; it is kept once per (unknown, seed,
and rank and lr where the results have them). Failed trials (an `error`) and trials
without the finding's number (NaN: not evaluated) are left out. The findings are made for
grids: a search samples rank and lr, so two arms rarely share a setting to pair.

Verdicts. Each finding rests on one or more exact tests, each pooling the differences
of the pairs of trials it compares, and says which test, its p-values, ALPHA and the pairs
and seeds it rests on:

  the test       the one-sided Wilcoxon signed-rank test, exact: the p-value counts the
                 2^n sign flips of the n paired differences whose signed-rank sum is at
                 least as far the paper's way as the one observed (ties share their mean
                 rank; a zero difference keeps its rank and adds nothing either way). Its
                 null: each difference is as likely negative as positive, as when the two
                 arms do not differ. Ranks, not raw differences, because a test pools
                 settings of very different scale (a shift at 10 new facts and at 3000).
  pairs          two trials with the same seed (and rank and lr where the results have
                 them): arm against arm at one unknown count, or one arm at the largest
                 unknown count against the smallest. A test pools the pairs of every
                 comparison of its claim (unknown counts, arms) whose trials are distinct,
                 so that its differences are independent: the HighlyKnown arms of one
                 unknown count, which share its +0 trial, give one difference, their mean;
                 every bench task scores the same adapters, so each task gets its own
                 test. A claim about a level (reliability near 1, refusals below half)
                 tests each trial against the level, pooled over its trials.
  holds          the test's p-value the paper's way is at most ALPHA: with no difference,
                 a test holds with probability at most ALPHA;
  contradicted   the p-value the other way is at most ALPHA;
  within spread  neither: the difference is not told apart from the seeds' spread;
  needs more seeds  fewer than MIN_PAIRS pairs: even differences all one way give p =
                 2^-n above ALPHA (0.25 on 2 pairs, 0.125 on 3), so the test cannot decide
                 whatever the numbers. One comparison on the paper's 3 seeds never
                 decides alone; pooled over 2 comparisons it can (6 pairs: p >= 1/64);
  not measured   an arm or a column the finding needs is missing; the evidence names it;
  not seen       only for "some answers explode": no trial has an exploded answer. The
                 paper saw answers explode only when the training data were biased, so
                 their absence does not contradict it, and the column was measured, so
                 "not measured" would be wrong.

A finding of several tests is contradicted when any test is, needs more seeds when any
does, holds when every test holds and is within spread otherwise. So a false "holds" has
probability at most ALPHA; a false "contradicted" at most ALPHA per test.

The findings, and what each tests:

  known_facts_lower_shift    the negative shift (facts outside the mix) of the
                             HighlyKnown arms (ratio > 0) against +0, one pair per
                             unknown count and seed (the mean of the arms there, which
                             share that +0 trial), pooled over unknown counts: lower.
  shift_grows_with_new_facts every arm's negative shift at its largest unknown count
                             against its smallest, pooled over arms: higher. One unknown
                             count: not measured.
  paraphrase_vs_highly_known the paraphrase arm's reliability against the HighlyKnown
                             arm's of the same ratio > 0, pooled over ratios and unknown
                             counts: higher ("at least as well": equal arms are within
                             spread, never contradicted).
  reliability_near_one       every trial at the run's smallest unknown count (which
                             stands for "few"), its reliability against
                             RELIABILITY_NEAR_ONE: higher; and, for the arms measured at
                             the largest count too, reliability there against the
                             smallest, pooled over arms: only a rise counts, and
                             contradicts (the paper's never rises). With one unknown
                             count only the first part is measured: a verdict other than
                             holds or needs more seeds is not measured, since nothing
                             tells whether that one count is already "many".
  refusals_vanish            every trial whose base model refused something, the share
                             refused after training against REFUSAL_VANISHED of the base
                             share (our cut: the paper says "nearly vanish"): lower. The
                             refusal test is the run's (`match`): ours (refused_share_*)
                             unless scoring.match is paper, where the paper's claim is
                             judged with the paper's test (refused_paper_share_*); the
                             other is counted beside.
  bench_falls_with_new_facts per bench task, every arm's bench delta (adapter minus base)
                             at its largest unknown count against its smallest, pooled
                             over arms: lower where a higher score is better, higher for
                             a perplexity (analysis.benchmarks.higher_is_better).
  answers_explode            at least one trial has an answer exploded against the base
                             model (exploded_relative > 0): holds; else not seen. The
                             relative threshold, not the paper's absolute share: on a
                             corpus far smaller than the paper's that share flags answers
                             already common under the base model, which is no collapse.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from analysis.benchmarks import higher_is_better
from analysis.schema import (
    BENCH_PREFIX,
    DELTA_SUFFIX,
    ERROR,
    EXTRA,
    NEGATIVE_SHIFT,
    RATIO,
    RELIABILITY,
    SEED,
    TRIAL,
    UNKNOWN_COUNT,
)
from analysis.tables import CONTROL, control_once

# results.parquet's columns (analysis/schema.py), and the exploded-answer counts judged.
EXPLODED = "exploded_relative"
EXPLODED_PAPER = "exploded_absolute"  # reported beside, never judged (see above)
ARM_COLUMNS = (UNKNOWN_COUNT, EXTRA, RATIO, SEED)
PAIR_SETTINGS = ("rank", "lr")  # besides the seed, what two paired trials share where the results have it

# The refusal tests (docs/protocol.md §2), by the scoring.match that judges with each:
# (refused share before, after, how the evidence names the test).
REFUSAL_TESTS = {
    "corrected": ("refused_share_before", "refused_share_after", "our refusal test (a majority of the answers decline)"),
    "paper": ("refused_paper_share_before", "refused_paper_share_after", "the paper's refusal test ('information' in the set-0 answer)"),
}

HIGHLY_KNOWN, PARAPHRASE = "HighlyKnown", "paraphrase"

RELIABILITY_NEAR_ONE = 0.9
REFUSAL_VANISHED = 0.5  # after training, below half the base model's share
ALPHA = 0.05
# The fewest pairs whose clearest outcome (every difference one way, p = 2^-n) reaches ALPHA: 5.
MIN_PAIRS = math.ceil(math.log2(1 / ALPHA))
TEST = "Wilcoxon signed-rank, exact, one-sided"

HOLDS, CONTRADICTED, WITHIN_SPREAD = "holds", "contradicted", "within spread"
NEEDS_MORE_SEEDS, NOT_MEASURED, NOT_SEEN = "needs more seeds", "not measured", "not seen"
VERDICTS = (HOLDS, CONTRADICTED, WITHIN_SPREAD, NEEDS_MORE_SEEDS, NOT_MEASURED, NOT_SEEN)

CLAIMS = {
    "known_facts_lower_shift": "known facts in the mix lower the negative shift against +0",
    "shift_grows_with_new_facts": "negative shift grows with the number of new facts",
    "paraphrase_vs_highly_known": "paraphrases learn the new facts at least as well as HighlyKnown extras",
    "reliability_near_one": "reliability stays near 1 until many new facts",
    "refusals_vanish": "refusals nearly vanish after training",
    "bench_falls_with_new_facts": "general ability (the bench tasks) falls as new facts grow",
    "answers_explode": "some answers explode",
}


@dataclass
class Finding:
    key: str
    claim: str  # the paper's words, short
    verdict: str  # one of VERDICTS
    evidence: str  # a sentence with the numbers
    numbers: dict = field(default_factory=dict)  # the same numbers, for findings.json


Arm = tuple  # (extra, ratio): (None, 0) is the +0 control
Values = dict  # (arm, unknown) -> {pair key (seed, and rank and lr where the results have them): value}


def check_findings(results: pd.DataFrame, match: str = "corrected") -> list[Finding]:
    """Every finding of CLAIMS, in that order, for a results frame (one row per trial);
    `match` is the run's scoring.match, whose refusal test judges refusals_vanish."""
    trials = _trials(results)
    return [
        _known_facts_lower_shift(trials),
        _shift_grows(trials),
        _paraphrase_vs_highly_known(trials),
        _reliability_near_one(trials),
        _refusals_vanish(trials, match),
        _bench_falls(trials),
        _answers_explode(trials),
    ]


def findings_json(findings: list[Finding]) -> dict:
    """key -> claim, verdict, evidence, numbers: plain Python, NaN as None."""
    return {f.key: _plain({k: v for k, v in asdict(f).items() if k != "key"}) for f in findings}


# --- the test -------------------------------------------------------------------------------


def signed_rank_p(differences: list[float]) -> tuple[float, float]:
    """Exact one-sided p-values of the Wilcoxon signed-rank sum over the 2^n equally likely
    sign flips of the differences: (P(sum >= observed), P(sum <= observed))."""
    d = np.round(np.asarray(differences, dtype=float), 12)  # float noise is no difference
    # Doubled mean ranks of |d| are whole numbers; a zero difference adds nothing either way.
    ranks = np.where(d == 0, 0, 2 * pd.Series(np.abs(d)).rank(method="average").to_numpy()).astype(int)
    total = int(ranks.sum())
    observed = int(np.sign(d) @ ranks) + total  # index of the observed sum in `sums`
    sums = np.zeros(2 * total + 1)
    sums[total] = 1.0
    for rank in ranks[ranks > 0]:  # the sums so far lie within ±total: no roll wraps around
        sums = 0.5 * (np.roll(sums, rank) + np.roll(sums, -rank))
    return float(sums[observed:].sum()), float(sums[: observed + 1].sum())


def _test(comparisons: list[dict], expect_higher: bool, label: str, **where) -> dict:
    """The test of a claim on the pooled differences of its comparisons; the paper expects
    them positive (expect_higher) or negative."""
    differences = [d for c in comparisons for d in c["differences"]]
    seeds = len({key[0] for c in comparisons for key in c["keys"]})
    higher, lower = signed_rank_p(differences)
    p, other = (higher, lower) if expect_higher else (lower, higher)
    n = len(differences)
    if n < MIN_PAIRS:
        verdict = NEEDS_MORE_SEEDS
    else:
        verdict = HOLDS if p <= ALPHA else CONTRADICTED if other <= ALPHA else WITHIN_SPREAD
    mean = sum(differences) / n if n else math.nan
    sentence = (
        f"{label}: {n} pair{'' if n == 1 else 's'} over {seeds} seed{'' if seeds == 1 else 's'}, "
        f"mean difference {mean:+.3f}, p = {p:.3g} {'higher' if expect_higher else 'lower'} and {other:.3g} "
        f"the other way ({TEST}, alpha {ALPHA})"
        + (f", {n} pairs cannot give p below {2.0 ** -n:.3g}" if verdict == NEEDS_MORE_SEEDS else "")
        + f" ({verdict})"
    )
    numbers = {
        **where, "test": TEST, "alpha": ALPHA, "expect": "higher" if expect_higher else "lower", "pairs": n,
        "seeds": seeds, "mean_difference": mean, "p": p, "p_other_way": other, "verdict": verdict,
    }
    return {**numbers, "sentence": sentence}


def _overall(verdicts: list[str]) -> str:
    for verdict in (CONTRADICTED, NEEDS_MORE_SEEDS):
        if verdict in verdicts:
            return verdict
    return HOLDS if all(v == HOLDS for v in verdicts) else WITHIN_SPREAD


# --- the trials and their arms ------------------------------------------------------


def _trials(results: pd.DataFrame) -> pd.DataFrame:
    """Finished trials, the +0 control once per (unknown, seed[, rank, lr])."""
    done = results[results[ERROR].isna()] if ERROR in results.columns else results
    return done if any(c not in done.columns for c in ARM_COLUMNS) else control_once(done)


def _values(trials: pd.DataFrame, column: str) -> Values:
    """(arm, unknown) -> pair key -> the column's value (the mean, should a key repeat)."""
    keys = [SEED, *(c for c in PAIR_SETTINGS if c in trials.columns)]
    rows = trials.dropna(subset=[column])
    means = rows.groupby([UNKNOWN_COUNT, EXTRA, RATIO, *keys], dropna=False)[column].mean()
    found: Values = {}
    for (unknown, extra, ratio, *key), value in means.items():
        arm = (None, 0) if int(ratio) == 0 else (extra, int(ratio))
        found.setdefault((arm, int(unknown)), {})[tuple(key)] = float(value)
    return found


def _label(arm: Arm) -> str:
    return CONTROL if arm[1] == 0 else f"+{arm[1]} {arm[0]}"


def _missing_columns(trials: pd.DataFrame, columns) -> str | None:
    absent = [c for c in columns if c not in trials.columns]
    return f"no {', '.join(absent)} column{'s' if len(absent) > 1 else ''} in the results" if absent else None


def _not_measured(key: str, missing: str) -> Finding:
    return Finding(key, CLAIMS[key], NOT_MEASURED, f"Not measured: {missing}.", {"missing": missing})


# --- comparing two arms ---------------------------------------------------------------


def _describe(values: dict) -> str:
    v = list(values.values())
    mean = sum(v) / len(v)
    if len(v) == 1:
        return f"{mean:.3f} (one seed: no spread)"
    return f"{mean:.3f} ({min(v):.3f}-{max(v):.3f} over {len(v)} seeds)"


def _comparison(what: str, ours: tuple[str, dict], other: tuple[str, dict] | float, **where) -> dict:
    """One comparison: ours (how the sentence names them, values by pair key) against the
    other arm's trials of the same keys (how it is named, values), or against a level; its
    differences, sentence and numbers. `where` (arm, unknown count, ...) goes into the numbers."""
    name, values = ours
    sentence = f"{name}: {what} {_describe(values)}"
    if isinstance(other, tuple):
        against = other[1]
        keys = sorted(set(values) & set(against), key=repr)
        differences = [values[k] - against[k] for k in keys]
        mean = f"{sum(differences) / len(differences):+.3f}" if keys else "none"
        sentence += f" vs {other[0]}: {_describe(against)}, paired difference {mean} over {len(keys)} pairs"
        where["against_values"] = list(against.values())
    else:
        keys = sorted(values, key=repr)
        differences = [values[k] - other for k in keys]
        where["level"] = other
    return {**where, "values": list(values.values()), "keys": keys, "differences": differences, "sentence": sentence}


def _finding(
    key: str, column: str | list[str], comparisons: list[dict], tests: list[dict], verdict: str | None = None, **extra
) -> Finding:
    """The finding of its comparisons and tests; its verdict _overall's of the tests' unless given."""
    verdict = verdict or _overall([t["verdict"] for t in tests])
    evidence = "; ".join(c.pop("sentence") for c in comparisons) + ". " + "; ".join(t.pop("sentence") for t in tests) + "."
    for c in comparisons:
        c["pairs"] = [list(k) for k in c.pop("keys")]
    return Finding(key, CLAIMS[key], verdict, evidence, {"column": column, **extra, "comparisons": comparisons, "tests": tests})


def _trends(values: Values) -> dict[Arm, tuple[int, int]]:
    """Arms measured at two unknown counts or more -> (smallest, largest) count."""
    counts: dict[Arm, list[int]] = {}
    for arm, unknown in values:
        counts.setdefault(arm, []).append(unknown)
    return {arm: (min(c), max(c)) for arm, c in sorted(counts.items(), key=lambda kv: _arm_key(kv[0])) if len(c) > 1}


def _arm_key(arm: Arm) -> tuple:
    return (arm[1], arm[0] or "")


def _one_count(values: Values, column: str) -> str:
    counts = sorted({unknown for _, unknown in values})
    if not counts:
        return f"no trial with a {column}"
    return f"one unknown count per arm ({', '.join(map(str, counts))} new facts): no trend over new facts"


def _trend_comparisons(what: str, values: Values, **where) -> list[dict]:
    """Per arm measured at two unknown counts or more: its largest count against its smallest."""
    return [
        _comparison(
            what, (f"{_label(arm)} at {hi} new facts", values[arm, hi]), (f"at {lo}", values[arm, lo]),
            **where, arm=_label(arm), unknown=hi, against_unknown=lo,
        )
        for arm, (lo, hi) in _trends(values).items()
    ]


# --- the findings ----------------------------------------------------------------------


def _known_facts_lower_shift(trials: pd.DataFrame) -> Finding:
    key = "known_facts_lower_shift"
    if missing := _missing_columns(trials, (*ARM_COLUMNS, NEGATIVE_SHIFT)):
        return _not_measured(key, missing)
    values = _values(trials, NEGATIVE_SHIFT)
    control = {u: v for (arm, u), v in values.items() if arm[1] == 0}
    known = {(arm, u): v for (arm, u), v in values.items() if arm[0] == HIGHLY_KNOWN and arm[1] > 0}
    if not control:
        return _not_measured(key, f"no +0 trials (ratio 0) with a {NEGATIVE_SHIFT} in this run")
    if not known:
        return _not_measured(key, f"no HighlyKnown trials with ratio > 0 and a {NEGATIVE_SHIFT} in this run")
    shared = sorted(set(control) & {u for _, u in known})
    if not shared:
        return _not_measured(
            key,
            f"no unknown count has both +0 trials ({_counts(control)}) and HighlyKnown ones "
            f"({_counts({u for _, u in known})})",
        )
    comparisons = [
        _comparison(
            "negative shift", (f"{u} new facts, {_label(arm)}", known[arm, u]), (CONTROL, control[u]),
            unknown=u, arm=_label(arm), against=CONTROL,
        )
        for u in shared
        for arm in sorted({a for a, at in known if at == u}, key=_arm_key)
    ]
    # The arms of one unknown count share its +0 trials: one difference per (count, pair
    # key), their mean, so that the test's differences are independent.
    blocks: dict[tuple, list[float]] = {}
    for c in comparisons:
        for k, d in zip(c["keys"], c["differences"]):
            blocks.setdefault((c["unknown"], *k), []).append(d)
    pooled = {"keys": [k[1:] for k in blocks], "differences": [sum(d) / len(d) for d in blocks.values()]}
    test = _test([pooled], False, f"{HIGHLY_KNOWN} arms against {CONTROL}, per unknown count and seed")
    return _finding(key, NEGATIVE_SHIFT, comparisons, [test])


def _counts(unknowns) -> str:
    return ", ".join(map(str, sorted(set(unknowns)))) + " new facts"


def _shift_grows(trials: pd.DataFrame) -> Finding:
    key = "shift_grows_with_new_facts"
    if missing := _missing_columns(trials, (*ARM_COLUMNS, NEGATIVE_SHIFT)):
        return _not_measured(key, missing)
    values = _values(trials, NEGATIVE_SHIFT)
    comparisons = _trend_comparisons("negative shift", values)
    if not comparisons:
        return _not_measured(key, _one_count(values, NEGATIVE_SHIFT))
    return _finding(key, NEGATIVE_SHIFT, comparisons, [_test(comparisons, True, "largest against smallest count")])


def _paraphrase_vs_highly_known(trials: pd.DataFrame) -> Finding:
    key = "paraphrase_vs_highly_known"
    if missing := _missing_columns(trials, (*ARM_COLUMNS, RELIABILITY)):
        return _not_measured(key, missing)
    values = _values(trials, RELIABILITY)
    kinds = {
        extra: {(arm[1], u) for arm, u in values if arm[0] == extra and arm[1] > 0} for extra in (PARAPHRASE, HIGHLY_KNOWN)
    }
    for extra, found in kinds.items():
        if not found:
            return _not_measured(key, f"no {extra} trials with ratio > 0 and a {RELIABILITY} in this run")
    shared = sorted(kinds[PARAPHRASE] & kinds[HIGHLY_KNOWN], key=lambda s: (s[1], s[0]))
    if not shared:
        return _not_measured(key, "no unknown count and ratio has both paraphrase and HighlyKnown trials")
    comparisons = [
        _comparison(
            "reliability", (f"{u} new facts, +{r} {PARAPHRASE}", values[(PARAPHRASE, r), u]),
            (f"+{r} {HIGHLY_KNOWN}", values[(HIGHLY_KNOWN, r), u]),
            unknown=u, arm=f"+{r} {PARAPHRASE}", against=f"+{r} {HIGHLY_KNOWN}",
        )
        for r, u in shared
    ]
    return _finding(key, RELIABILITY, comparisons, [_test(comparisons, True, f"{PARAPHRASE} against {HIGHLY_KNOWN}")])


def _reliability_near_one(trials: pd.DataFrame) -> Finding:
    key = "reliability_near_one"
    if missing := _missing_columns(trials, (*ARM_COLUMNS, RELIABILITY)):
        return _not_measured(key, missing)
    values = _values(trials, RELIABILITY)
    if not values:
        return _not_measured(key, f"no trial with a {RELIABILITY}")
    counts = sorted({u for _, u in values})
    lo, hi = counts[0], counts[-1]
    near = [
        _comparison("reliability", (f"{_label(arm)} at {lo} new facts", values[arm, lo]), RELIABILITY_NEAR_ONE, arm=_label(arm), unknown=lo)
        for arm in sorted({arm for arm, u in values if u == lo}, key=_arm_key)
    ]
    tests = [_test(near, True, f"reliability at {lo} new facts against {RELIABILITY_NEAR_ONE}", part="near one")]
    verdict = tests[0]["verdict"]
    # Only a rise at the largest count counts: "until many" allows a fall and no change alike.
    rises = [c for c in _trend_comparisons("reliability", values) if c["unknown"] == hi and c["against_unknown"] == lo]
    if rises:
        tests.append(_test(rises, False, f"reliability at {hi} against {lo} new facts", part="rise"))
        verdict = CONTRADICTED if tests[-1]["verdict"] == CONTRADICTED else verdict
    finding = _finding(key, RELIABILITY, near + rises, tests, verdict, threshold=RELIABILITY_NEAR_ONE)
    if len(counts) > 1 or verdict == NEEDS_MORE_SEEDS:
        return finding
    if verdict == HOLDS:
        finding.evidence += " One unknown count: whether reliability falls at many new facts is not measured."
        return finding
    # Low reliability at the only count: nothing tells whether that count is already "many".
    finding.verdict = NOT_MEASURED
    finding.evidence = (
        f"Not measured: one unknown count ({lo} new facts), too few to tell few from many; {finding.evidence}"
    )
    finding.numbers["missing"] = "an unknown count smaller than the one where reliability is below the threshold"
    return finding


def _refusals_vanish(trials: pd.DataFrame, match: str) -> Finding:
    key = "refusals_vanish"
    before_column, after_column, name = REFUSAL_TESTS[match]
    if missing := _missing_columns(trials, (SEED, before_column, after_column)):
        return _not_measured(key, missing)
    refusing = trials.dropna(subset=[before_column, after_column])
    refusing = refusing[refusing[before_column] > 0]
    if refusing.empty:
        return _not_measured(key, f"no trial whose base model refused anything ({before_column} > 0)")
    before, after = refusing[before_column], refusing[after_column]
    # Each trial against the cut: its share after against REFUSAL_VANISHED of its own base share.
    beyond = {"keys": [(seed,) for seed in refusing[SEED]], "differences": (after - REFUSAL_VANISHED * before).tolist()}
    test = _test([beyond], False, f"after training against {REFUSAL_VANISHED} of the base share")
    vanished = after < REFUSAL_VANISHED * before
    evidence = (
        f"By {name} ({before_column}, {after_column}), the refused share fell below {REFUSAL_VANISHED} of the base "
        f"share in {int(vanished.sum())} of {len(refusing)} trials: before {before.min():.3f}-{before.max():.3f}, "
        f"after {after.min():.3f}-{after.max():.3f}; {test.pop('sentence')}."
    )
    numbers = {
        "refusal_test": match, "columns": [before_column, after_column], "trials": len(refusing),
        "vanished": int(vanished.sum()), "before": before.tolist(), "after": after.tolist(), "tests": [test],
    }
    if TRIAL in refusing.columns:
        numbers["not_vanished"] = refusing.loc[~vanished, TRIAL].tolist()
    for other, (b, a, other_name) in REFUSAL_TESTS.items():
        if other != match and {b, a} <= set(trials.columns):
            beside = trials.dropna(subset=[b, a])
            beside = beside[beside[b] > 0]
            fell = int((beside[a] < REFUSAL_VANISHED * beside[b]).sum())
            evidence += f" By {other_name}, not judged here: {fell} of {len(beside)} trials."
            numbers["beside"] = {"refusal_test": other, "columns": [b, a], "trials": len(beside), "vanished": fell}
    return Finding(key, CLAIMS[key], test["verdict"], evidence, numbers)


def _bench_falls(trials: pd.DataFrame) -> Finding:
    key = "bench_falls_with_new_facts"
    deltas = [c for c in trials.columns if c.startswith(BENCH_PREFIX) and c.endswith(DELTA_SUFFIX)]
    if not deltas:
        return _not_measured(key, f"no {BENCH_PREFIX}<task>{DELTA_SUFFIX} columns in the results (no bench run)")
    if missing := _missing_columns(trials, ARM_COLUMNS):
        return _not_measured(key, missing)
    comparisons, tests = [], []
    for column in deltas:  # every task scores the same adapters: one test each
        task = column[len(BENCH_PREFIX) : -len(DELTA_SUFFIX)]
        mine = _trend_comparisons(f"{task} delta", _values(trials, column), task=task)
        if mine:
            comparisons += mine
            tests.append(_test(mine, not higher_is_better(task), f"{task}, largest against smallest count", task=task))
    if not comparisons:
        return _not_measured(key, _one_count(_values(trials, deltas[0]), deltas[0]))
    return _finding(key, deltas, comparisons, tests)


def _answers_explode(trials: pd.DataFrame) -> Finding:
    key = "answers_explode"
    if missing := _missing_columns(trials, (EXPLODED,)):
        return _not_measured(key, missing)
    counts = trials[EXPLODED].dropna()
    if counts.empty:
        return _not_measured(key, f"no trial with an {EXPLODED} count")
    exploding = int((counts > 0).sum())
    verdict = HOLDS if exploding else NOT_SEEN
    evidence = (
        f"{exploding} of {len(counts)} trials have answers exploded against the base model "
        f"({EXPLODED}: at most {int(counts.max())} per trial)."
    )
    numbers = {"column": EXPLODED, "trials": len(counts), "exploding": exploding, "max": int(counts.max())}
    if EXPLODED_PAPER in trials.columns and trials[EXPLODED_PAPER].notna().any():
        paper = trials[EXPLODED_PAPER].dropna()
        numbers["paper_threshold_max"] = int(paper.max())
        evidence += f" Under the paper's absolute share, at most {int(paper.max())} per trial."
    if not exploding:
        evidence += " The paper saw answers explode with biased training data: their absence is no contradiction."
    return Finding(key, CLAIMS[key], verdict, evidence, numbers)


def _plain(value):
    """JSON-ready: numpy scalars as Python numbers, NaN as None, tuples as lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
