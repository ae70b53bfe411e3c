"""Scoring answers and categorizing facts (docs/protocol.md §2; refusal as in §5; the
`scoring.match` switch in §7).

Pure pandas, no Ray and no torch, so every rule here is testable on hand-made frames.

generations (one row per fact x prompt set x sample):
    fact_id, prompt_set (0..M-1), sample (0 = greedy, 1..N = sampled), output;
    score_generations adds answer, correct, refused.
categories (one row per fact):
    fact_id, p_greedy, p_sample, category, refused, refused_paper, greedy_answers.
"""
from __future__ import annotations

import re
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

Match = Literal["corrected", "paper"]


class ScoringConfig(BaseModel):
    """The `scoring:` section: which rule decides that an answer is correct.

    corrected (default): an alias is looked for in the extracted answer (extract_answer),
    a short or numeric alias only as a whole word (AliasMatcher). paper: the authors'
    code, each of the fact's normalized aliases (the fact table's `normalized_aliases`,
    TriviaQA's) as a plain substring of the whole lower-cased raw output (label,
    continuation lines and all), so "us" is found in "Australia" and "1" in "1987".
    """

    model_config = ConfigDict(extra="forbid")
    match: Match = "corrected"

CATEGORIES = HIGHLY_KNOWN, MAYBE_KNOWN, WEAKLY_KNOWN, UNKNOWN = ("HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown")
CATEGORY_COLUMNS = ["fact_id", "p_greedy", "p_sample", "category", "refused", "refused_paper", "greedy_answers"]

_LABEL = re.compile(r"answer\s*:", re.I)
_NEXT_QUESTION = re.compile(r"question\s*:", re.I)

# The paper's patterns ("information", "verify") plus obvious first-person declines.
# "information" counts only inside a refusal phrase: alone it also matches real
# answers such as "Information technology" (a DBpedia industry).
REFUSAL_PATTERNS = (
    r"\b(no|any|enough|sufficient|specific|reliable|more) information\b",
    r"\bverify\b",
    r"\b(cannot|can not|can't|could not|couldn't|unable to|not able to) (find|confirm|determine|provide|answer)\b",
    r"\bi (don't|do not) (know|have)\b",
    r"\bi(?:'m| am) not aware\b",
)
_REFUSAL = re.compile("|".join(REFUSAL_PATTERNS), re.I)


def extract_answer(output: str) -> str:
    """The answer in one generated text.

    The exemplars teach the reply "Answer: X", and a model often goes on with a
    "Question: ..." turn of its own. So: if the first non-empty line holds the
    "Answer:" label, the answer starts after it (text before it, e.g. "Sure!", is
    dropped); otherwise the model answered in free form and the whole output is the
    answer. Either way only its first line counts, cut before any "Question:".
    """
    text = (output or "").strip()
    label = _LABEL.search(text.split("\n", 1)[0])
    if label:
        text = text[label.end() :].lstrip()
    return _NEXT_QUESTION.split(text.split("\n", 1)[0], maxsplit=1)[0].strip()


def _normalized(aliases) -> list[str]:
    # An empty alias is a substring of every answer: it must never take part.
    return [a for a in (str(x).strip().lower() for x in (aliases if aliases is not None else [])) if a]


# An alias this short (in characters), or one that is a number, is found only as a whole
# word: as a plain substring "us" is in "australia" and "1" in "1987". Three characters
# cover the abbreviations ("us", "uk", "nyc") and leave real names ("Oslo") substrings.
SHORT_ALIAS = 3
_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)*")


def _whole_word(alias: str) -> bool:
    return len(alias) <= SHORT_ALIAS or bool(_NUMBER.fullmatch(alias))


def _bounded(alias: str) -> str:
    # No letter or digit may touch it; for a number not "1" in "1.5" or "2,000" either.
    return rf"(?<!\w)(?<!\d[.,]){re.escape(alias)}(?![.,]\d)(?!\w)"


class Substrings:
    """Whether any of a set of strings (empty ones dropped) is a substring of a text,
    compared as given. Up to _FEW of them each is tested; beyond, each substring of the
    text of a needle's length is looked up in the set, which stays fast with tens of
    thousands of needles (all the answers of a large training mix)."""

    _FEW = 32

    def __init__(self, needles):
        self.needles = {n for n in needles if n}
        self.lengths = sorted({len(n) for n in self.needles})

    def __call__(self, text: str) -> bool:
        if len(self.needles) <= self._FEW:
            return any(n in text for n in self.needles)
        return any(text[i : i + n] in self.needles for n in self.lengths for i in range(len(text) - n + 1))


class AliasMatcher:
    """The corrected matching rule for a set of aliases (normalized: stripped, lower
    case, empty ones dropped): an alias is a substring of the lower-cased text, a short
    or numeric one (_whole_word) only at word boundaries. Built once per set of aliases:
    scoring builds one per fact, the shift reasons one for all trained answers."""

    def __init__(self, aliases):
        normalized = set(_normalized(aliases))
        words = sorted({a for a in normalized if _whole_word(a)}, key=len, reverse=True)
        self.plain = Substrings(normalized.difference(words))
        self.words = re.compile("|".join(map(_bounded, words))) if words else None

    def __call__(self, text: str) -> bool:
        text = text.lower()
        return self.plain(text) or bool(self.words and self.words.search(text))


def is_correct(answer: str, aliases) -> bool:
    """The corrected rule (AliasMatcher) on one extracted answer."""
    return AliasMatcher(aliases)(answer)


def is_correct_paper(output: str, normalized_aliases) -> bool:
    """The paper code's rule (`quasi_accuracy_triviaqa`): one of the fact's normalized
    aliases is a plain substring of the lower-cased raw output (docs/protocol.md §2, §7).
    Its raw aliases take no part: "st louis" is not in "Answer: St. Louis", and a raw
    alias "A" would be in almost any output."""
    output = output.lower()
    return any(a in output for a in _normalized(normalized_aliases))


def is_refusal(answer: str) -> bool:
    """The answer declines instead of answering (REFUSAL_PATTERNS, case-insensitive)."""
    return bool(_REFUSAL.search(answer.replace("\u2019", "'")))  # curly apostrophes as in "couldn’t"


def is_refusal_paper(output: str) -> bool:
    """The paper code's test, `('information' or "verify") in greedy[0]`, which Python
    reads as the plain, case-sensitive substring "information" (docs/protocol.md §5, §7).
    categorize applies it to the raw output of the first prompt set's greedy answer only,
    as the paper code does."""
    return "information" in (output or "")


def score_generations(gens: pd.DataFrame, facts: pd.DataFrame, match: Match = "corrected") -> pd.DataFrame:
    """A copy of `gens` with answer, correct and refused added (aliases from `facts`).

    `match` is the `scoring.match` rule of ScoringConfig: "corrected" scores the
    extracted answer with AliasMatcher on the facts' `aliases`, "paper" the whole raw
    output by plain substrings of their `normalized_aliases`.
    """
    if match not in ("corrected", "paper"):
        raise ValueError(f"scoring.match: {match!r} is neither 'corrected' nor 'paper'")
    field = "normalized_aliases" if match == "paper" else "aliases"
    if field not in facts.columns:
        raise ValueError(f"scoring.match {match}: the fact table has no {field} column, the answers that rule matches")
    aliases = dict(zip(facts["fact_id"], facts[field]))
    missing = sorted(set(gens["fact_id"]) - aliases.keys())
    if missing:
        raise ValueError(f"generations name {len(missing)} facts absent from the fact table, e.g. {missing[0]!r}")
    out = gens.copy()
    out["answer"] = [extract_answer(o) for o in out["output"]]
    if match == "paper":
        out["correct"] = [is_correct_paper(o or "", aliases[f]) for f, o in zip(out["fact_id"], out["output"])]
    else:
        matchers = {f: AliasMatcher(aliases[f]) for f in pd.unique(out["fact_id"])}
        out["correct"] = [matchers[f](a) for f, a in zip(out["fact_id"], out["answer"])]
    out["refused"] = [is_refusal(a) for a in out["answer"]]
    return out


def _category(p_greedy: float, p_sample: float) -> str:
    if p_greedy == 1:
        return HIGHLY_KNOWN
    if p_greedy > 0:
        return MAYBE_KNOWN
    if p_sample > 0:  # NaN (no samples) compares False: WeaklyKnown needs samples
        return WEAKLY_KNOWN
    return UNKNOWN


def categories_from_scores(scored: pd.DataFrame) -> pd.DataFrame:
    """One row per fact (in order of first appearance), columns CATEGORY_COLUMNS.

    p_greedy = correct greedy answers / M; p_sample = correct samples / samples (NaN
    without samples). refused (corrected variant): a strict majority of the fact's M
    greedy answers are refusals. A majority, not "any", because one odd exemplar set
    can provoke a decline the model does not hold for the question; not "all",
    because a model that declines on most sets is declining the question.
    refused_paper: the raw greedy output of prompt set 0 contains "information".
    """
    dup = scored.duplicated(["fact_id", "prompt_set", "sample"])
    if dup.any():
        row = scored[dup].iloc[0]
        raise ValueError(
            f"generations: fact {row['fact_id']!r} has two rows for prompt set {row['prompt_set']}, sample {row['sample']}"
        )
    greedy = scored[scored["sample"] == 0].sort_values("prompt_set", kind="stable")
    sets = greedy["prompt_set"].nunique()
    per_fact = greedy.groupby("fact_id", sort=False)
    counts = per_fact.size().reindex(pd.unique(scored["fact_id"]), fill_value=0)
    if (counts != sets).any():
        fact = counts.index[counts != sets][0]
        raise ValueError(f"generations: fact {fact!r} has {counts[fact]} greedy answers, expected one per prompt set ({sets})")

    out = pd.DataFrame(
        {
            "p_greedy": per_fact["correct"].mean(),
            "refused": per_fact["refused"].mean() > 0.5,
            # The paper code's bug, kept on purpose: only the first set's answer is tested.
            "refused_paper": per_fact["output"].first().map(is_refusal_paper),
            "greedy_answers": per_fact["answer"].agg(list),
        }
    ).reindex(counts.index)
    out["p_sample"] = scored[scored["sample"] > 0].groupby("fact_id")["correct"].mean().reindex(out.index)
    out["category"] = [_category(g, s) for g, s in zip(out["p_greedy"], out["p_sample"])]
    return out.rename_axis("fact_id").reset_index()[CATEGORY_COLUMNS]


def category_distribution(categories: pd.DataFrame) -> pd.DataFrame:
    """Per category (CATEGORIES order, then "all"): count, share of all facts, and the
    share of its facts refused, corrected and paper-compatible."""
    rows = []
    for name, part in [(c, categories[categories["category"] == c]) for c in CATEGORIES] + [("all", categories)]:
        n = len(part)
        rows.append(
            {
                "category": name,
                "count": n,
                "share": n / len(categories) if len(categories) else float("nan"),
                "refused_share": part["refused"].mean() if n else float("nan"),
                "refused_paper_share": part["refused_paper"].mean() if n else float("nan"),
            }
        )
    return pd.DataFrame(rows).set_index("category")


_LABELS = {"highlyknown": HIGHLY_KNOWN, "hk": HIGHLY_KNOWN, "maybeknown": MAYBE_KNOWN, "mk": MAYBE_KNOWN,
           "weaklyknown": WEAKLY_KNOWN, "wk": WEAKLY_KNOWN, "unknown": UNKNOWN, "uk": UNKNOWN}


def canonical_category(label: str) -> str:
    """A category label as written elsewhere ("HighlyKnown" in the paper's datasets,
    "HK", "highly_known", "Highly Known") mapped to its name in CATEGORIES."""
    try:
        return _LABELS[re.sub(r"[^a-z]", "", str(label).lower())]
    except KeyError:
        raise ValueError(f"unknown category label {label!r}: expected one of {', '.join(CATEGORIES)} or HK/MK/WK/UK") from None


def reference_agreement(categories: pd.DataFrame, facts: pd.DataFrame) -> pd.DataFrame | None:
    """Measured categories against the facts' `reference_category` (e.g. the paper's
    labels for Llama-3.1-8B-Instruct); None when no fact carries one.

    One row per reference category (CATEGORIES order) and a last row "all": counts per
    measured category (columns CATEGORIES), total, and agreement (share of the row's
    facts measured in the same category; in "all", the overall agreement rate).
    """
    if "reference_category" not in facts.columns:
        return None
    labelled = facts[[isinstance(x, str) and x.strip() != "" for x in facts["reference_category"]]]
    both = labelled[["fact_id", "reference_category"]].merge(categories[["fact_id", "category"]], on="fact_id")
    if both.empty:
        return None
    both["reference"] = both["reference_category"].map(canonical_category)
    table = pd.crosstab(both["reference"], both["category"]).reindex(index=CATEGORIES, columns=CATEGORIES, fill_value=0)
    table.loc["all"] = table.sum()
    table["total"] = table.sum(axis=1)
    same = [table.at[c, c] for c in CATEGORIES] + [int((both["reference"] == both["category"]).sum())]
    table["agreement"] = [s / t if t else float("nan") for s, t in zip(same, table["total"])]
    table.index.name, table.columns.name = "reference", None
    return table
