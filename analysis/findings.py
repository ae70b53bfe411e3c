"""The paper's findings (docs/protocol.md §6), checked on one run's results.parquet.

`check_findings(results)` gives one `Finding` per claim of the paper, each with a verdict
for this run, a sentence with the numbers behind it, and those numbers as a dict;
`findings_json` is what findings.json holds. Pure pandas, on one row per trial.

Arms. A trial belongs to the arm (extra, ratio) at its unknown count, e.g. "+1
HighlyKnown" at 10 new facts. Every ratio-0 trial is the "+0" control, whatever its
extra: a mix without extras is the same mix for both kinds (the paper lists +0 once per
unknown count), so a grid may hold it once or twice; it is kept once per (unknown, seed,
and rank and lr where the results have them). Failed trials (an `error`) and trials
without the finding's number (NaN: not evaluated) are left out. A search that varies rank
or lr pools its settings within an arm: the findings are made for grids.

Verdicts, comparing two arms by their per-seed values:

  holds          the arms' ranges (min-max over seeds) do not overlap and the difference
                 goes the paper's way;
  contradicted   they do not overlap and it goes the other way;
  within spread  the ranges overlap. When an arm has a single seed its spread is
                 unknown ("one seed: no spread" in the evidence), so ranges that do not
                 overlap still count as within spread unless the means differ by more
                 than a tolerance: SINGLE_SEED_TOLERANCE for shares and accuracies,
                 PERPLEXITY_TOLERANCE for a perplexity task's delta;
  not measured   an arm or a column the finding needs is missing; the evidence names it;
  not seen       only for "some answers explode": no trial has an exploded answer. The
                 paper saw answers explode only when the training data were biased, so
                 their absence does not contradict it, and the column was measured, so
                 "not measured" would be wrong.

A finding that makes several comparisons (per unknown count, arm or task) is
contradicted when any comparison is, holds when every one holds, and is within spread
otherwise: a general claim with one clear counter-example is contradicted, and one that
holds somewhere but not clearly everywhere claims no more than that.

The findings, and what each compares:

  known_facts_lower_shift    per unknown count, each HighlyKnown arm (ratio > 0) against
                             +0: its negative shift (facts outside the mix) is lower.
  shift_grows_with_new_facts per arm, the negative shift at the largest unknown count
                             against the smallest: higher. One unknown count: not measured.
  paraphrase_vs_highly_known per unknown count and ratio > 0, the paraphrase arm's
                             reliability against the HighlyKnown arm's: higher ("at least
                             as well": equal arms are within spread, never contradicted).
  reliability_near_one       per arm measured at the run's smallest unknown count (which
                             stands for "few"): every seed's reliability there >=
                             RELIABILITY_NEAR_ONE holds, every seed below contradicts,
                             some below is within spread; and, where the arm is measured
                             at the largest count too, reliability there not higher than
                             at the smallest (clearly higher, by the rule above:
                             contradicted; the paper's never rises). With one unknown
                             count only the first part is measured: it holds when every
                             seed is near 1, and is not measured otherwise, since nothing
                             tells whether that one count is already "many".
  refusals_vanish            per trial whose base model refused something
                             (refused_share_before > 0): the share refused after training
                             is below REFUSAL_VANISHED of the base share. Every such trial:
                             holds; none: contradicted; some: within spread; no such
                             trial: not measured.
  bench_falls_with_new_facts per bench task and arm, the bench delta (adapter minus base)
                             at the largest unknown count against the smallest: lower for
                             an accuracy, higher for a perplexity (PERPLEXITY_TASKS).
  answers_explode            at least one trial has an answer exploded against the base
                             model (exploded_relative > 0): holds; else not seen. The
                             relative threshold, not the paper's absolute share: on a
                             corpus far smaller than the paper's that share flags answers
                             already common under the base model, which is no collapse.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import pandas as pd

from analysis.tables import CONTROL, control_once

# results.parquet columns (grid/trials.py collect: the trial's config, last metrics, error;
# analysis/trial_analysis.py: the record of the whole-corpus re-categorization;
# analysis/benchmarks.py: bench_<task>_delta).
TRIAL = "trial"
UNKNOWN = "unknown"
EXTRA = "extra"
RATIO = "ratio"
SEED = "seed"
ERROR = "error"
RELIABILITY = "reliability"
NEGATIVE_SHIFT = "negative_shift_untrained"
REFUSED_BEFORE = "refused_share_before"
REFUSED_AFTER = "refused_share_after"
EXPLODED = "exploded_relative"
EXPLODED_PAPER = "exploded_absolute"  # reported beside, never judged (see above)
BENCH_PREFIX, BENCH_DELTA = "bench_", "_delta"
ARM_COLUMNS = (UNKNOWN, EXTRA, RATIO, SEED)

HIGHLY_KNOWN, PARAPHRASE = "HighlyKnown", "paraphrase"

# Bench tasks whose score is a perplexity: a rise is a loss.
PERPLEXITY_TASKS = frozenset({"known_ppl"})

RELIABILITY_NEAR_ONE = 0.9
REFUSAL_VANISHED = 0.5  # after training, below half the base model's share
# With a single seed, a difference counts only beyond these (absolute): two points of a
# share or an accuracy; 0.05 of a perplexity, whose base is near 1 on facts a model knows.
SINGLE_SEED_TOLERANCE = 0.02
PERPLEXITY_TOLERANCE = 0.05

HOLDS, CONTRADICTED, WITHIN_SPREAD = "holds", "contradicted", "within spread"
NOT_MEASURED, NOT_SEEN = "not measured", "not seen"
VERDICTS = (HOLDS, CONTRADICTED, WITHIN_SPREAD, NOT_MEASURED, NOT_SEEN)

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
Values = dict  # (arm, unknown) -> per-seed values


def check_findings(results: pd.DataFrame) -> list[Finding]:
    """Every finding of CLAIMS, in that order, for a results frame (one row per trial)."""
    trials = _trials(results)
    return [
        _known_facts_lower_shift(trials),
        _shift_grows(trials),
        _paraphrase_vs_highly_known(trials),
        _reliability_near_one(trials),
        _refusals_vanish(trials),
        _bench_falls(trials),
        _answers_explode(trials),
    ]


def findings_json(findings: list[Finding]) -> dict:
    """key -> claim, verdict, evidence, numbers: plain Python, NaN as None."""
    return {f.key: _plain({k: v for k, v in asdict(f).items() if k != "key"}) for f in findings}


# --- the trials and their arms ------------------------------------------------------


def _trials(results: pd.DataFrame) -> pd.DataFrame:
    """Finished trials, the +0 control once per (unknown, seed[, rank, lr])."""
    done = results[results[ERROR].isna()] if ERROR in results.columns else results
    return done if any(c not in done.columns for c in ARM_COLUMNS) else control_once(done)


def _values(trials: pd.DataFrame, column: str) -> Values:
    """(arm, unknown) -> the column's non-NaN values over seeds."""
    found: Values = {}
    for row in trials[[*ARM_COLUMNS, column]].dropna(subset=[column]).itertuples(index=False):
        unknown, extra, ratio, value = int(row[0]), row[1], int(row[2]), float(row[4])
        found.setdefault(((None, 0) if ratio == 0 else (extra, ratio), unknown), []).append(value)
    return found


def _label(arm: Arm) -> str:
    return CONTROL if arm[1] == 0 else f"+{arm[1]} {arm[0]}"


def _missing_columns(trials: pd.DataFrame, columns) -> str | None:
    absent = [c for c in columns if c not in trials.columns]
    return f"no {', '.join(absent)} column{'s' if len(absent) > 1 else ''} in the results" if absent else None


def _not_measured(key: str, missing: str) -> Finding:
    return Finding(key, CLAIMS[key], NOT_MEASURED, f"Not measured: {missing}.", {"missing": missing})


# --- comparing two arms ---------------------------------------------------------------


def _describe(values: list[float]) -> str:
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.3f} (one seed: no spread)"
    return f"{mean:.3f} ({min(values):.3f}-{max(values):.3f} over {len(values)} seeds)"


def _compare(ours: list[float], other: list[float], expect_higher: bool, tolerance: float) -> tuple[str, str]:
    """The verdict on `ours` against `other`, where the paper expects ours higher (or
    lower), and a note when the single-seed tolerance decided it."""
    diff = sum(ours) / len(ours) - sum(other) / len(other)
    apart = min(ours) > max(other) or max(ours) < min(other)
    note = ""
    if apart and min(len(ours), len(other)) == 1 and abs(diff) <= tolerance:
        apart, note = False, f", difference {abs(diff):.3f} within the one-seed tolerance {tolerance}"
    if not apart:
        return WITHIN_SPREAD, note
    return (HOLDS if (diff > 0) == expect_higher else CONTRADICTED), note


def _overall(verdicts: list[str]) -> str:
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    return HOLDS if all(v == HOLDS for v in verdicts) else WITHIN_SPREAD


def _comparison(
    what: str, ours: tuple[str, list], other: tuple[str, list], expect_higher: bool, tolerance: float, **where
) -> dict:
    """One comparison: its verdict, sentence and numbers. ours/other: (how the sentence
    names them, values); `where` (arm, unknown count, ...) goes into the numbers."""
    verdict, note = _compare(ours[1], other[1], expect_higher, tolerance)
    sentence = f"{ours[0]}: {what} {_describe(ours[1])} vs {other[0]}: {_describe(other[1])}{note} ({verdict})"
    return {**where, "values": ours[1], "against_values": other[1], "verdict": verdict, "sentence": sentence}


def _finding(key: str, column: str | list[str], comparisons: list[dict], **extra) -> Finding:
    verdict = _overall([c["verdict"] for c in comparisons])
    evidence = "; ".join(c.pop("sentence") for c in comparisons) + "."
    return Finding(key, CLAIMS[key], verdict, evidence, {"column": column, **extra, "comparisons": comparisons})


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
            False, SINGLE_SEED_TOLERANCE, unknown=u, arm=_label(arm), against=CONTROL,
        )
        for u in shared
        for arm in sorted({a for a, at in known if at == u}, key=lambda a: a[1])
    ]
    return _finding(key, NEGATIVE_SHIFT, comparisons)


def _counts(unknowns) -> str:
    return ", ".join(map(str, sorted(set(unknowns)))) + " new facts"


def _shift_grows(trials: pd.DataFrame) -> Finding:
    key = "shift_grows_with_new_facts"
    if missing := _missing_columns(trials, (*ARM_COLUMNS, NEGATIVE_SHIFT)):
        return _not_measured(key, missing)
    values = _values(trials, NEGATIVE_SHIFT)
    trends = _trends(values)
    if not trends:
        return _not_measured(key, _one_count(values, NEGATIVE_SHIFT))
    comparisons = [
        _comparison(
            "negative shift", (f"{_label(arm)} at {hi} new facts", values[arm, hi]), (f"at {lo}", values[arm, lo]),
            True, SINGLE_SEED_TOLERANCE, arm=_label(arm), unknown=hi, against_unknown=lo,
        )
        for arm, (lo, hi) in trends.items()
    ]
    return _finding(key, NEGATIVE_SHIFT, comparisons)


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
            True, SINGLE_SEED_TOLERANCE, unknown=u, arm=f"+{r} {PARAPHRASE}", against=f"+{r} {HIGHLY_KNOWN}",
        )
        for r, u in shared
    ]
    return _finding(key, RELIABILITY, comparisons)


def _reliability_near_one(trials: pd.DataFrame) -> Finding:
    key = "reliability_near_one"
    if missing := _missing_columns(trials, (*ARM_COLUMNS, RELIABILITY)):
        return _not_measured(key, missing)
    values = _values(trials, RELIABILITY)
    if not values:
        return _not_measured(key, f"no trial with a {RELIABILITY}")
    counts = sorted({u for _, u in values})
    lo, hi = counts[0], counts[-1]
    checks = []
    for arm in sorted({arm for arm, u in values if u == lo}, key=_arm_key):
        few = values[arm, lo]
        near = sum(v >= RELIABILITY_NEAR_ONE for v in few)
        verdict = HOLDS if near == len(few) else CONTRADICTED if near == 0 else WITHIN_SPREAD
        sentence = (
            f"{_label(arm)}: reliability at {lo} new facts {_describe(few)}, "
            f"{near} of {len(few)} seeds >= {RELIABILITY_NEAR_ONE}"
        )
        check = {"arm": _label(arm), "smallest": lo, "values_smallest": few}
        if hi != lo and (arm, hi) in values:
            rise, note = _compare(values[arm, hi], few, True, SINGLE_SEED_TOLERANCE)
            sentence += f"; at {hi}: {_describe(values[arm, hi])}{note}, {'higher' if rise == HOLDS else 'not higher'}"
            if rise == HOLDS:
                verdict = CONTRADICTED
            check.update(largest=hi, values_largest=values[arm, hi])
        checks.append({**check, "verdict": verdict, "sentence": f"{sentence} ({verdict})"})
    finding = _finding(key, RELIABILITY, checks, threshold=RELIABILITY_NEAR_ONE)
    if len(counts) > 1:
        return finding
    if finding.verdict == HOLDS:
        finding.evidence += " One unknown count: whether reliability falls at many new facts is not measured."
        return finding
    # Low reliability at the only count: nothing tells whether that count is already "many".
    finding.verdict = NOT_MEASURED
    finding.evidence = (
        f"Not measured: one unknown count ({lo} new facts), too few to tell few from many; {finding.evidence}"
    )
    finding.numbers["missing"] = "an unknown count smaller than the one where reliability is below the threshold"
    return finding


def _refusals_vanish(trials: pd.DataFrame) -> Finding:
    key = "refusals_vanish"
    if missing := _missing_columns(trials, (REFUSED_BEFORE, REFUSED_AFTER)):
        return _not_measured(key, missing)
    both = trials.dropna(subset=[REFUSED_BEFORE, REFUSED_AFTER])
    refusing = both[both[REFUSED_BEFORE] > 0]
    if refusing.empty:
        return _not_measured(key, f"no trial whose base model refused anything ({REFUSED_BEFORE} > 0)")
    vanished = refusing[REFUSED_AFTER] < REFUSAL_VANISHED * refusing[REFUSED_BEFORE]
    n, k = len(refusing), int(vanished.sum())
    verdict = HOLDS if k == n else CONTRADICTED if k == 0 else WITHIN_SPREAD
    before, after = refusing[REFUSED_BEFORE], refusing[REFUSED_AFTER]
    evidence = (
        f"Refused share fell below {REFUSAL_VANISHED} of the base share in {k} of {n} trials: "
        f"before {before.min():.3f}-{before.max():.3f}, after {after.min():.3f}-{after.max():.3f}."
    )
    numbers = {
        "columns": [REFUSED_BEFORE, REFUSED_AFTER],
        "trials": n,
        "vanished": k,
        "before": before.tolist(),
        "after": after.tolist(),
    }
    if TRIAL in refusing.columns:
        numbers["not_vanished"] = refusing.loc[~vanished, TRIAL].tolist()
    return Finding(key, CLAIMS[key], verdict, evidence, numbers)


def _bench_falls(trials: pd.DataFrame) -> Finding:
    key = "bench_falls_with_new_facts"
    deltas = [c for c in trials.columns if c.startswith(BENCH_PREFIX) and c.endswith(BENCH_DELTA)]
    if not deltas:
        return _not_measured(key, f"no {BENCH_PREFIX}<task>{BENCH_DELTA} columns in the results (no bench run)")
    if missing := _missing_columns(trials, ARM_COLUMNS):
        return _not_measured(key, missing)
    comparisons = []
    for column in deltas:
        task = column[len(BENCH_PREFIX) : -len(BENCH_DELTA)]
        perplexity = task in PERPLEXITY_TASKS
        values = _values(trials, column)
        for arm, (lo, hi) in _trends(values).items():
            comparisons.append(
                _comparison(
                    f"{task} delta",
                    (f"{_label(arm)} at {hi} new facts", values[arm, hi]),
                    (f"at {lo}", values[arm, lo]),
                    perplexity, PERPLEXITY_TOLERANCE if perplexity else SINGLE_SEED_TOLERANCE,
                    task=task, arm=_label(arm), unknown=hi, against_unknown=lo,
                )
            )
    if not comparisons:
        return _not_measured(key, _one_count(_values(trials, deltas[0]), deltas[0]))
    return _finding(key, deltas, comparisons)


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
