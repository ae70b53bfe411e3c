"""Judging generated paraphrases of questions (`kgrid facts paraphrase`): pure pandas.

candidates (one row per fact x generated sample): fact_id, sample (0 = greedy, then
the sampled ones), output. `judge` gives each candidate one verdict: "kept", or the
first rule it breaks, checked in the order of REASONS. So every candidate is counted
exactly once, and kept + every rejection reason == all candidates.

A fact's existing paraphrases are kept as they are and count toward `per_question`:
they are the corpus's own data (e.g. the paper's `para` column), so they are never
re-judged, and a new paraphrase must differ from them as from the original.
A fact that ends with fewer than `per_question` is listed in the summary, never padded.
"""
from __future__ import annotations

import re

import pandas as pd

KEPT = "kept"
# In the order they are checked; a candidate gets the first one it breaks.
REASONS = (
    "not_a_question",  # does not end with '?', or asks more than one question (empty output too)
    "too_short",  # fewer words than length_ratio[0] x the original's
    "too_long",  # more words than length_ratio[1] x the original's
    "subject_missing",  # the fact's subject name is not in it (checked where the fact has a subject)
    "answer_leaked",  # contains an answer alias (one the original question does not contain itself)
    "same_as_original",  # equal to the question once normalized
    "duplicate",  # equal to a kept or existing paraphrase once normalized
    "beyond_per_question",  # valid, but the fact already has per_question paraphrases
)
MAX_EXAMPLES = 3

_LABEL = re.compile(r"^\s*(paraphrase|rephrased|question)\s*:\s*", re.I)
_NON_WORD = re.compile(r"[\W_]+")


def normalize(text: str) -> str:
    """Lower-cased, punctuation and whitespace collapsed to single spaces."""
    return _NON_WORD.sub(" ", (text or "").lower()).strip()


def _contains(haystack: str, needle: str) -> bool:
    """`needle` occurs in `haystack` as whole words (both normalized)."""
    return bool(needle) and f" {needle} " in f" {haystack} "


def extract_paraphrase(output: str) -> str:
    """The paraphrase in one generated text: its first non-empty line, without a leading
    "Paraphrase:" label (the examples teach it) or quotes."""
    lines = [line for line in (output or "").splitlines() if line.strip()]
    text = _LABEL.sub("", lines[0]) if lines else ""
    return text.strip().strip("\"'“”").strip()


def _verdict(text: str, original: str, subject: str, leaks: list[str], seen: set[str], length_ratio) -> str:
    if not text.endswith("?") or text.count("?") != 1:
        return "not_a_question"
    norm = normalize(text)
    words, base = len(norm.split()), len(normalize(original).split())
    if words < length_ratio[0] * base:
        return "too_short"
    if words > length_ratio[1] * base:
        return "too_long"
    if subject and not _contains(norm, subject):
        return "subject_missing"
    if any(_contains(norm, a) for a in leaks):
        return "answer_leaked"
    if norm == normalize(original):
        return "same_as_original"
    if norm in seen:
        return "duplicate"
    return KEPT


def judge(
    facts: pd.DataFrame, candidates: pd.DataFrame, per_question: int, length_ratio: tuple[float, float] = (0.5, 2.0)
) -> pd.DataFrame:
    """`candidates` (in fact and sample order) with `paraphrase` (the extracted text) and
    `verdict` (KEPT or one of REASONS) added. Kept candidates fill each fact up to
    `per_question`, counting its existing paraphrases."""
    by_id = facts.set_index("fact_id")
    missing = sorted(set(candidates["fact_id"]) - set(by_id.index))
    if missing:
        raise ValueError(f"candidates name {len(missing)} facts absent from the fact table, e.g. {missing[0]!r}")
    out = candidates.sort_values(["fact_id", "sample"], kind="stable", ignore_index=True)
    out["paraphrase"] = [extract_paraphrase(o) for o in out["output"]]
    verdicts = []
    for fact_id, group in out.groupby("fact_id", sort=False):
        fact = by_id.loc[fact_id]
        original = normalize(fact["question"])
        subject = normalize(fact["subject"]) if isinstance(fact["subject"], str) else ""
        # An alias the question itself contains (or the subject's own name) cannot leak.
        leaks = [a for a in map(normalize, fact["aliases"]) if not _contains(original, a) and a != subject]
        seen = {normalize(p) for p in fact["paraphrases"]}
        have = len(fact["paraphrases"])
        for text in group["paraphrase"]:
            verdict = _verdict(text, fact["question"], subject, leaks, seen, length_ratio)
            if verdict == KEPT and have >= per_question:
                verdict = "beyond_per_question"
            if verdict == KEPT:
                seen.add(normalize(text))
                have += 1
            verdicts.append(verdict)
    out["verdict"] = verdicts
    return out


def fill(facts: pd.DataFrame, judged: pd.DataFrame) -> pd.DataFrame:
    """`facts` with each fact's kept paraphrases appended to its existing ones."""
    kept = judged[judged["verdict"] == KEPT].groupby("fact_id", sort=False)["paraphrase"].agg(list)
    out = facts.copy()
    out["paraphrases"] = [list(p) + kept.get(f, []) for f, p in zip(out["fact_id"], out["paraphrases"])]
    return out


def summarize(filled: pd.DataFrame, judged: pd.DataFrame, per_question: int) -> dict:
    """Counts of every verdict (kept + each reason == candidates), a few examples of each
    reason, and the facts that still have fewer than `per_question` paraphrases."""
    counts = judged["verdict"].value_counts()
    examples = {
        reason: [{"fact_id": f, "text": t} for f, t in rows[["fact_id", "paraphrase"]].head(MAX_EXAMPLES).values]
        for reason, rows in judged[judged["verdict"] != KEPT].groupby("verdict", sort=False)
    }
    have = filled["paraphrases"].map(len)
    short = filled[have < per_question]
    return {
        "per_question": per_question,
        "facts": len(filled),
        "prompted": int(judged["fact_id"].nunique()),
        "candidates": len(judged),
        "kept": int(counts.get(KEPT, 0)),
        "rejected": {reason: int(counts.get(reason, 0)) for reason in REASONS},
        "short": [{"fact_id": f, "count": int(n)} for f, n in zip(short["fact_id"], have[short.index])],
        "examples": {reason: examples[reason] for reason in REASONS if reason in examples},
    }
