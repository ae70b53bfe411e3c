"""How the model answers, beyond right and wrong (docs/protocol.md §5): refusals, answer
diversity, exploded answers and the reasons behind each knowledge shift.

Answer-level metrics read a generations frame (fact_id, prompt_set, sample, answer,
refused, ...) and use its greedy answers (sample 0) that are not refusals, compared
lower-cased and stripped. Fact-level ones read categories frames (see shifts.py).
"""
from __future__ import annotations

import pandas as pd

from analysis.scoring import HIGHLY_KNOWN, UNKNOWN, AliasMatcher, Substrings
from analysis.shifts import direction, paired

# The paper's absolute threshold, 850 answers of its 210,360 greedy answers
# (21,036 questions x 10 prompt sets), as a share so that it fits any corpus size.
PAPER_EXPLODED_SHARE = 850 / 210_360

REASONS = ("non_refusal", "exploded", "target_based", "domain")
# The reasons that read the fact's answer. `domain` is a property of the fact alone: with
# few domains (the micro-world has four) every shifted fact shares one with the mix by
# chance, so it is compared with that chance share and does not count as explaining a shift.
ANSWER_REASONS = ("non_refusal", "exploded", "target_based")
# The paper's notebook counts reasons only for these moves, over all facts.
PAPER_MOVES = {"positive": (UNKNOWN, HIGHLY_KNOWN), "negative": (HIGHLY_KNOWN, UNKNOWN)}
# The (reason, move) pairs the notebook computes: a refusal that went away explains a fact
# that came to be answered right (UK->HK), and the notebook never asks it of HK->UK.
PAPER_REASON_KEYS = tuple(
    f"{reason}_{move}" for move in PAPER_MOVES for reason in REASONS if (reason, move) != ("non_refusal", "negative")
)


def normalize(text: pd.Series) -> pd.Series:
    return text.fillna("").astype(str).str.strip().str.lower()


def refusals(categories: pd.DataFrame) -> dict:
    """Facts refused, as counts and shares: corrected and paper-compatible variants.

    Call it on the base model's frame and on an adapter's to compare before and after.
    """
    n = len(categories)
    refused, paper = int(categories["refused"].sum()), int(categories["refused_paper"].sum())
    return {
        "refused": refused,
        "refused_share": refused / n if n else float("nan"),
        "refused_paper": paper,
        "refused_paper_share": paper / n if n else float("nan"),
    }


def greedy_answers(generations: pd.DataFrame, keep_case: bool = False) -> pd.DataFrame:
    """The non-refused greedy answers: fact_id, prompt_set, answer (normalized; with
    keep_case, only stripped, as the paper's notebook compares them)."""
    greedy = generations[(generations["sample"] == 0) & ~generations["refused"].astype(bool)]
    answer = greedy["answer"].fillna("").astype(str).str.strip() if keep_case else normalize(greedy["answer"])
    return greedy[["fact_id", "prompt_set"]].assign(answer=answer)


def answer_counts(generations: pd.DataFrame, keep_case: bool = False) -> pd.Series:
    """How often each distinct answer string occurs, most frequent first."""
    return greedy_answers(generations, keep_case)["answer"].value_counts()


def _spread(counts: pd.Series) -> dict:
    return {
        "distinct_answers": len(counts),
        "answer_count_mean": float(counts.mean()) if len(counts) else float("nan"),
        "answer_count_std": float(counts.std(ddof=0)) if len(counts) else float("nan"),
    }


def diversity(generations: pd.DataFrame) -> dict:
    """Distinct answers and the mean and (population) standard deviation of their counts,
    over the non-refused greedy answers, normalized (greedy_answers)."""
    return _spread(answer_counts(generations))


PAPER_LABEL = "Answer: "


def paper_answer(output: str) -> str:
    """A raw output's answer as the paper's notebook reads it (docs/protocol.md §5): the
    text after its first "Answer: ", as written (case, continuation lines and all), the
    whole output where it has no such label; stripped."""
    output = output or ""
    at = output.find(PAPER_LABEL)
    return (output[at + len(PAPER_LABEL) :] if at >= 0 else output).strip()


def paper_diversity(generations: pd.DataFrame) -> dict:
    """diversity the notebook's way, keyed `*_paper`: every greedy answer counted, refusals
    included, as paper_answer reads its raw output; strings that differ in case differ."""
    greedy = generations.loc[generations["sample"] == 0, "output"]
    return {f"{key}_paper": value for key, value in _spread(greedy.map(paper_answer).value_counts()).items()}


def exploded_answers(
    after: pd.DataFrame,
    base: pd.DataFrame,
    count_above: int | None = None,
    share_above: float | None = None,
    ratio_above: float | None = None,
    keep_case: bool = False,
) -> pd.DataFrame:
    """Answers far more frequent after training than under the base model.

    `after` and `base` are generations frames. An answer is exploded when it passes
    every threshold given (strictly greater than):
      count_above  its count after training (paper: 850, for 210k answers);
      share_above  its count over all greedy answers after training, refusals included
                   (the paper's 210k counts them), e.g. PAPER_EXPLODED_SHARE;
      ratio_above  its count after over its base count, max(base count, 1).
    keep_case: answers that differ in case are different answers (the paper's notebook).
    Returns one row per exploded answer (index `answer`): count, share, base_count,
    ratio; most frequent first.
    """
    if count_above is None and share_above is None and ratio_above is None:
        raise ValueError("exploded_answers needs count_above, share_above or ratio_above")
    counts = answer_counts(after, keep_case)
    base_counts = answer_counts(base, keep_case).reindex(counts.index, fill_value=0)
    table = pd.DataFrame(
        {
            "count": counts,
            "share": counts / max(int((after["sample"] == 0).sum()), 1),
            "base_count": base_counts,
            "ratio": counts / base_counts.clip(lower=1),
        }
    ).rename_axis("answer")
    keep = pd.Series(True, index=table.index)
    for column, threshold in (("count", count_above), ("share", share_above), ("ratio", ratio_above)):
        if threshold is not None:
            keep &= table[column] > threshold
    return table[keep]


def main_answer(generations: pd.DataFrame) -> pd.Series:
    """Each fact's most frequent non-refused greedy answer, indexed by fact_id; a tie goes
    to the answer of the earliest prompt set. Facts that refused every time are absent."""
    stats = (
        greedy_answers(generations)
        .groupby(["fact_id", "answer"], as_index=False)
        .agg(n=("prompt_set", "size"), first=("prompt_set", "min"))
        .sort_values(["fact_id", "n", "first"], ascending=[True, False, True])
    )
    return stats.drop_duplicates("fact_id").set_index("fact_id")["answer"]


def _domains(facts: pd.DataFrame) -> pd.Series | None:
    """Each fact's relation domain (NA where it has none), indexed by fact_id; None when
    no fact has one (the paper's released dataset has no domain column)."""
    if "domain" not in facts.columns:
        return None
    domains = facts.set_index("fact_id")["domain"]
    domains = domains.where(domains.notna() & (domains.astype(str).str.strip() != ""))
    return None if domains.isna().all() else domains


def domain_count(facts: pd.DataFrame) -> int:
    """How many distinct relation domains the facts have; 0: the domain reason is not measured."""
    domains = _domains(facts)
    return 0 if domains is None else int(domains.nunique())


def same_domain(fact_ids, facts: pd.DataFrame, trained) -> pd.Series:
    """Whether each fact's relation domain is the domain of a trained fact (False for a
    fact without a domain); all NA (not measured) when no fact has a domain."""
    index = pd.Index(list(fact_ids), name="fact_id")
    domains = _domains(facts)
    if domains is None:
        return pd.Series(pd.NA, index=index, dtype="boolean")
    trained_domains = set(domains[domains.index.isin(list(trained))].dropna())
    return pd.Series(domains.reindex(index).isin(trained_domains).to_numpy(), index=index, dtype="boolean")


def domain_chance(after: pd.DataFrame, facts: pd.DataFrame, trained) -> float:
    """The share of evaluated facts outside the mix whose domain is a trained fact's: the
    `domain` share a shift would show if domains had nothing to do with it. NaN when no
    fact has a domain."""
    outside = after.loc[~after["fact_id"].isin(list(trained)), "fact_id"]
    return _share(same_domain(outside, facts, trained))


def _share(flags: pd.Series) -> float:
    """The share of True among the flags; NaN for no flags or flags not measured (NA)."""
    flags = flags.dropna()
    return float(flags.astype(bool).mean()) if len(flags) else float("nan")


def shift_reasons(before, after, generations, facts, trained, exploded) -> pd.DataFrame:
    """Why each shifted fact outside the training mix moved; a fact may have several reasons.

    before, after: categories frames; generations: the adapter's generations frame;
    facts: the fact table; trained: fact ids of everything in the training mix (their
    own shifts are the training itself, so they are left out); exploded: the exploded
    answer strings (e.g. `exploded_answers(...).index`).

    The fact's new answer is its `main_answer` after training. Reasons:
      non_refusal   the base model refused it (corrected) and the adapter does not;
      exploded      the new answer is an exploded one;
      target_based  the new answer is an answer of a trained fact, by the corrected
                    scoring rule (scoring.AliasMatcher over every trained fact's aliases);
      domain        its relation domain is the domain of a trained fact (NA, not
                    measured, when no fact has a domain).
    One row per shifted fact, indexed by fact_id: before, after, direction (+1/-1),
    answer, then one boolean column per reason.
    """
    trained = list(trained)
    pairs = paired(before, after, exclude=trained)
    pairs = pairs.assign(direction=direction(pairs))
    pairs = pairs[pairs["direction"] != 0]
    answer = main_answer(generations).reindex(pairs.index)

    refused_before = before.set_index("fact_id")["refused"].reindex(pairs.index).astype(bool)
    refused_after = after.set_index("fact_id")["refused"].reindex(pairs.index).astype(bool)
    in_mix = facts[facts["fact_id"].isin(trained)]
    targets = AliasMatcher([a for aliases in in_mix["aliases"] for a in aliases])

    reasons = pairs.assign(answer=answer)
    reasons["non_refusal"] = refused_before & ~refused_after
    reasons["exploded"] = answer.isin(list(exploded))
    reasons["target_based"] = [isinstance(a, str) and targets(a) for a in answer]
    reasons["domain"] = same_domain(pairs.index, facts, trained).to_numpy()
    return reasons


def reason_shares(reasons: pd.DataFrame) -> dict:
    """The share of shifts each reason explains (they overlap, so the shares may sum
    past 1; `domain` NaN when not measured), the share no answer-based reason
    (ANSWER_REASONS) explains, and the number of shifts."""
    n = len(reasons)
    shares = {reason: _share(reasons[reason]) for reason in REASONS}
    explained = reasons[list(ANSWER_REASONS)].any(axis=1)
    shares["unexplained"] = float((~explained).mean()) if n else float("nan")
    return {"shifts": n, **shares}


def paper_shift_reasons(before, after, generations, facts, trained, new, exploded) -> pd.DataFrame:
    """The reasons as the authors' notebook counts them (docs/protocol.md §5, §7): for the
    UK->HK (positive) and HK->UK (negative) moves only, over all facts, trained ones
    included. Each reason reads the raw greedy output of prompt set 0 after training, and
    compares strings case-sensitively:
      non_refusal   the base model refused it (its paper refusal, `refused_paper`); the
                    notebook does not ask whether the adapter still refuses;
      exploded      an exploded answer string (the paper's absolute threshold,
                    PAPER_EXPLODED_SHARE, counted with keep_case) is a substring of the output;
      target_based  aliases[0], as written, of a trained Unknown fact (`new`) is a
                    substring of the output;
      domain        its relation domain is the domain of a trained Unknown fact (`new`;
                    the extra HighlyKnown facts' domains do not count); NA when no fact
                    has a domain.
    shift_reasons is our corrected reading of each. `generations` is the adapter's
    generations frame (with `output`); `trained` every fact of the mix (kept for the
    callers' symmetry with shift_reasons: every fact counts here), `new` its Unknown
    facts; `exploded` the exploded answer strings.
    One row per such fact, indexed by fact_id: before, after, move (positive |
    negative), output, then the reason flags.
    """
    if "output" not in generations.columns:
        raise ValueError("paper_shift_reasons: the generations frame has no `output` column (the raw outputs it reads)")
    pairs = paired(before, after)
    moves = {pair: name for name, pair in PAPER_MOVES.items()}
    pairs = pairs.assign(move=[moves.get(pair) for pair in zip(pairs["before"], pairs["after"])]).dropna(subset=["move"])

    first = generations[(generations["sample"] == 0) & (generations["prompt_set"] == 0)]
    output = first.set_index("fact_id")["output"].reindex(pairs.index).fillna("").astype(str)
    refused_before = before.set_index("fact_id")["refused_paper"].reindex(pairs.index).astype(bool)
    aliases = facts.set_index("fact_id")["aliases"]
    new = pd.unique(pd.Series(list(new), dtype=object))
    targets = Substrings(str(aliases[f][0]) for f in new if len(aliases[f]))
    collapsed = Substrings(exploded)

    reasons = pairs.assign(output=output)
    reasons["non_refusal"] = refused_before
    reasons["exploded"] = [collapsed(o) for o in output]
    reasons["target_based"] = [targets(o) for o in output]
    reasons["domain"] = same_domain(pairs.index, facts, new).to_numpy()
    return reasons


def paper_reason_shares(reasons: pd.DataFrame) -> dict:
    """Per paper move, the share of its facts each reason flags, keyed `{reason}_{move}`
    (move positive: UK->HK, negative: HK->UK; PAPER_REASON_KEYS, the pairs the notebook
    computes); NaN for a move no fact made."""
    return {
        f"{reason}_{move}": _share(reasons.loc[reasons["move"] == move, reason])
        for move in PAPER_MOVES
        for reason in REASONS
        if f"{reason}_{move}" in PAPER_REASON_KEYS
    }
