"""Benchmark tasks, scores and their deltas against the base model (docs/protocol.md §5), on frames.

A built-in task (BUILTIN, registered with register_task) is what to ask and how to score
it: its items from the facts the base model knows (each a question and the answer whose
log-likelihood is scored; grid/bench.py asks it in the categorization prompt), how the
scored items become one score, and which way is better. A new built-in task is one
function here. The items keep one row per scored chat (fact_id, loglik, tokens, and for
known_mc option and is_answer), so a trial's score can leave out the facts of its own mix
and the base model be scored on exactly the same facts. An lm-evaluation-harness task is
one number per model, an accuracy (bench.metric).

Columns of results.parquet, per task: bench_<task> (the adapter's score) and
bench_<task>_delta (adapter minus base on the same items: negative is a loss for
accuracies, positive is a loss for known_ppl, a perplexity).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from analysis.schema import BENCH_PREFIX, DELTA_SUFFIX, bench_delta, bench_score
from analysis.scoring import is_correct

OPTIONS = 4  # known_mc: the true answer and 3 distractors, as in MMLU


def mc_accuracy(items: pd.DataFrame) -> float:
    """Share of questions whose most likely option is the true answer (ties: the first
    option, in the question's seeded option order)."""
    if items.empty:
        return math.nan
    picked = items.loc[items.groupby("fact_id", sort=False)["loglik"].idxmax()]
    return float(picked["is_answer"].mean())


def perplexity(items: pd.DataFrame) -> float:
    """exp of the mean negative log-likelihood per token, over every scored turn."""
    tokens = items["tokens"].sum()
    return math.exp(-items["loglik"].sum() / tokens) if tokens else math.nan


@dataclass(frozen=True)
class Task:
    """A built-in task. `items(known, facts, rng)`: from the known facts (and the whole
    corpus, `facts`; `rng(fact_id)`, a generator seeded per fact), one row per scored
    chat: fact_id, question, answer, and what `aggregate` reads besides loglik and tokens."""

    items: Callable[[pd.DataFrame, pd.DataFrame, Callable[[str], np.random.Generator]], pd.DataFrame]
    aggregate: Callable[[pd.DataFrame], float]
    higher_is_better: bool
    needs: str  # what a known fact needs to give items, for the error where none does


# Built-in task name -> Task (register_task).
BUILTIN: dict[str, Task] = {}


def register_task(name: str, aggregate: Callable[[pd.DataFrame], float], higher_is_better: bool, needs: str):
    """Decorator of a task's item builder: the built-in task `name`."""

    def register(items):
        BUILTIN[name] = Task(items, aggregate, higher_is_better, needs)
        return items

    return register


@register_task("known_mc", aggregate=mc_accuracy, higher_is_better=True, needs=f"{OPTIONS - 1} distractors")
def mc_items(known: pd.DataFrame, facts: pd.DataFrame, rng) -> pd.DataFrame:
    """known_mc: multiple choice over the known facts, one row per (fact, option): the true
    answer and 3 distractors drawn, seeded per fact, from the answers of the same relation
    in the corpus (none that would score as correct); option is its place, is_answer marks
    the true one. The most likely option is the model's choice; chance is 0.25. A fact
    whose relation has fewer than 3 answers that are not correct for it is left out."""
    relations = facts["relation"] if "relation" in facts.columns else [None] * len(facts)
    rel_of = {f: None if pd.isna(r) else str(r) for f, r in zip(facts["fact_id"], relations)}
    answers: dict[str | None, set[str]] = {}
    for fact_id, aliases in zip(facts["fact_id"], facts["aliases"]):
        answers.setdefault(rel_of[fact_id], set()).add(str(aliases[0]))
    rows = []
    for fact_id, question, aliases in zip(known["fact_id"], known["question"], known["aliases"]):
        wrong = sorted(a for a in answers[rel_of[fact_id]] if not is_correct(a, aliases))
        if len(wrong) < OPTIONS - 1:
            continue
        draw = rng(fact_id)
        options = [aliases[0], *draw.choice(wrong, OPTIONS - 1, replace=False)]
        for place, k in enumerate(draw.permutation(OPTIONS)):
            rows.append((fact_id, place, k == 0, question, str(options[k])))
    return pd.DataFrame(rows, columns=["fact_id", "option", "is_answer", "question", "answer"])


@register_task("known_ppl", aggregate=perplexity, higher_is_better=False, needs="paraphrases")
def ppl_items(known: pd.DataFrame, facts: pd.DataFrame, rng) -> pd.DataFrame:
    """known_ppl: perplexity of the known facts' answers asked with their paraphrase
    templates, one row per (fact, paraphrase): the held-out world text (the micro-world's
    pretraining showed every template of a known fact, while a trial's mix asks the
    canonical question only, and paraphrase mixes paraphrase Unknown facts, never known ones)."""
    asked = known[["fact_id", "paraphrases", "aliases"]].explode("paraphrases").dropna(subset=["paraphrases"])
    return pd.DataFrame(
        {"fact_id": asked["fact_id"].values, "question": asked["paraphrases"].values, "answer": [a[0] for a in asked["aliases"]]}
    )


def higher_is_better(task: str) -> bool:
    """Which way a task's score is better: a built-in task's own; an lm-eval task's score is an accuracy."""
    return BUILTIN[task].higher_is_better if task in BUILTIN else True


def held_out(task: str, items: pd.DataFrame, exclude: set[str]) -> float:
    """The score of a built-in task over the items whose fact is not in `exclude` (a mix)."""
    return BUILTIN[task].aggregate(items[~items["fact_id"].isin(exclude)])


def bench_record(scores: dict[str, tuple[float, float]]) -> dict[str, float]:
    """task -> (adapter, base) as the columns bench_<task> and bench_<task>_delta."""
    record = {}
    for task, (score, base) in scores.items():
        record[bench_score(task)] = score
        record[bench_delta(task)] = score - base
    return record


def bench_tasks(results: pd.DataFrame) -> list[str]:
    """The tasks a results frame holds, in column order."""
    return [
        c[len(BENCH_PREFIX) : -len(DELTA_SUFFIX)] for c in results.columns if c.startswith(BENCH_PREFIX) and c.endswith(DELTA_SUFFIX)
    ]


def base_scores(results: pd.DataFrame) -> pd.DataFrame:
    """Per trial and task, the base model's score on that trial's items (score - delta):
    the same for every trial for an lm-eval task, nearly so for a built-in one."""
    return pd.DataFrame(
        {bench_score(t): results[bench_score(t)] - results[bench_delta(t)] for t in bench_tasks(results)}
    )
