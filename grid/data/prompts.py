"""Categorization prompts (docs/protocol.md §2) and the training prompt (§3), as chat messages.

A prompt is a list of {"role", "content"} dicts; the engine applies the model's own
chat template, so the same messages serve vLLM, transformers and peft training.

Exemplars come from a separate exemplar pool (columns question, aliases, optionally
normalized_aliases, and relation in SliCK mode), never from the facts being evaluated:
`build_prompts` refuses a pool that shares a fact_id or a question with the facts. An
exemplar fact is therefore never evaluated, and no fact can see its own answer in its
prompt. A pool carved out of a corpus must be taken out of the facts first.

- paper: M fixed exemplar sets, set i = pool rows k*i .. k*i+k-1, the same for all facts.
- slick: each set draws k exemplars of the fact's relation from the pool, with a
  generator seeded by (seed, fact_id): a fact gets the same prompts in every run and
  on every worker, whatever the order or sharding of the facts.

A shot's answer is `exemplar_answer`: the exemplar's first normalized alias (the paper's
code shows TriviaQA's `normalized_aliases[0]`: lower case, no punctuation, no articles)
or its first alias (for TriviaQA, the canonical `value`). A pool without a
normalized_aliases column shows its first alias either way: the micro-world's pool has
none, and its word-level vocabulary knows only the spellings it was trained on.
"""
from __future__ import annotations

import hashlib
import json
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from grid.data.facts import FactError, clean_aliases

SYSTEM = "Answer the following question."
# Bump when the message layout changes, so cached generations are not reused.
PROMPT_FORMAT = 1


class PromptConfig(BaseModel):
    """How facts are asked, and how answers are decoded, for categorization.

    samples: sampled answers per prompt set besides the greedy one. SliCK defines
    WeaklyKnown by samples, so slick mode needs samples >= 1 (Gekhman et al. use 16).
    Paper mode allows samples > 0 too: the paper's fixed sets plus sampling, which
    makes WeaklyKnown reachable without changing the exemplars.
    """

    model_config = ConfigDict(extra="forbid")
    mode: Literal["paper", "slick"] = "paper"
    sets: int = Field(10, ge=1, description="M: exemplar sets, one greedy answer each")
    shots: int = Field(4, ge=0, description="k: exemplars per set")
    samples: int = Field(0, ge=0, description="N: sampled answers per set")
    temperature: float = Field(0.5, gt=0, description="for the sampled answers only")
    top_k: int = Field(40, ge=1, description="for the sampled answers only")
    max_new_tokens: int = Field(32, ge=1)
    system: str = SYSTEM
    exemplar_answer: Literal["normalized_alias", "first_alias"] = Field(
        "normalized_alias", description="what a shot's answer shows: normalized_aliases[0] (the paper's code) or aliases[0]"
    )
    seed: int = Field(0, ge=0, description="seeds the SliCK exemplar draw and the sampled answers")

    @model_validator(mode="after")
    def _slick_needs_samples(self) -> PromptConfig:
        if self.mode == "slick" and self.samples < 1:
            raise ValueError("mode 'slick' needs samples >= 1: WeaklyKnown is defined by sampled answers (SliCK uses 16)")
        return self


def _user(question: str) -> dict:
    return {"role": "user", "content": f"Question: {question}"}


def _assistant(answer: str) -> dict:
    return {"role": "assistant", "content": f"Answer: {answer}"}


def training_messages(question: str, answer: str, system: str = SYSTEM) -> list[dict]:
    """The 0-shot training chat (docs/protocol.md §3): all but the last message is the prompt,
    the last one ("Answer: " + answer, the fact's first alias) is the target."""
    return [{"role": "system", "content": system}, _user(question), _assistant(answer)]


def with_answer(messages: list[dict], answer: str) -> list[dict]:
    """A prompt followed by the answer turn "Answer: a": what the benchmarks score (grid/bench.py)."""
    return [*messages, _assistant(answer)]


def _pool(exemplars: pd.DataFrame, cfg: PromptConfig) -> list[tuple[str, str, str | None]]:
    """The exemplar pool as (question, shown answer, relation) in pool order: the answer a
    shot shows (`cfg.exemplar_answer`), and the relation in slick mode only, where it is
    the only other thing that shapes a prompt."""
    needed = ("question", "aliases") + (("relation",) if cfg.mode == "slick" else ())
    for col in needed:
        if col not in exemplars.columns:
            raise FactError("exemplar pool", "-", col, "required column is missing")
    relations = exemplars["relation"] if cfg.mode == "slick" else [None] * len(exemplars)
    shown_field = "normalized_aliases" if (
        cfg.exemplar_answer == "normalized_alias" and "normalized_aliases" in exemplars.columns
    ) else "aliases"
    pool = []
    for i, (q, aliases, shown, rel) in enumerate(
        zip(exemplars["question"], exemplars["aliases"], exemplars[shown_field], relations)
    ):
        if not isinstance(q, str) or not q.strip():
            raise FactError("exemplar pool", i, "question", "must be a non-empty string")
        for field, value in {"aliases": aliases, shown_field: shown}.items():
            if isinstance(value, str) or not hasattr(value, "__iter__") or not clean_aliases(value):
                raise FactError("exemplar pool", i, field, "no usable (non-empty) alias in a list of strings")
        pool.append((q.strip(), clean_aliases(shown)[0], _relation(rel)))
    return pool


def _relation(value) -> str | None:
    # A missing relation (None or NaN) must never group facts with each other.
    return None if value is None or pd.isna(value) else str(value)


def _check_disjoint(facts: pd.DataFrame, exemplars: pd.DataFrame) -> None:
    """Exemplar facts are never evaluated: fail on any fact_id or question they share."""
    shared = set()
    if "fact_id" in exemplars.columns:
        shared = set(facts["fact_id"]) & set(exemplars["fact_id"].dropna())
    if not shared:
        ex_questions = {q.strip().lower() for q in exemplars["question"] if isinstance(q, str)}
        shared = {f for f, q in zip(facts["fact_id"], facts["question"]) if q.strip().lower() in ex_questions}
    if shared:
        raise ValueError(
            f"{len(shared)} facts are also in the exemplar pool (e.g. fact {min(shared)!r}): "
            "take the exemplar pool out of the facts, an exemplar must never be evaluated"
        )


def fact_rng(seed: int, fact_id: str) -> np.random.Generator:
    # hashlib, not hash(): Python salts str hashes per process, workers would disagree.
    return np.random.default_rng([seed, int.from_bytes(hashlib.sha256(fact_id.encode()).digest()[:8], "little")])


def build_prompts(facts: pd.DataFrame, exemplars: pd.DataFrame, cfg: PromptConfig) -> pd.DataFrame:
    """One row per (fact_id, prompt_set): fact_id, prompt_set (0..M-1), messages.

    messages = system, then k exemplar turns (user "Question: q", assistant
    "Answer: a", a = the answer `cfg.exemplar_answer` names), then the user question.
    """
    pool = _pool(exemplars, cfg)
    _check_disjoint(facts, exemplars)
    shot_turns = [[_user(q), _assistant(a)] for q, a, _ in pool]
    k = cfg.shots

    if cfg.mode == "paper":
        if len(pool) < cfg.sets * k:
            raise ValueError(
                f"paper mode needs sets x shots = {cfg.sets} x {k} = {cfg.sets * k} exemplars, the pool has {len(pool)}"
            )
        fixed = [sum(shot_turns[k * i : k * i + k], []) for i in range(cfg.sets)]

        def sets_for(fact_id, relation):
            return fixed
    else:
        by_relation: dict[str, list[int]] = {}
        for i, (_, _, rel) in enumerate(pool):
            if rel is not None:
                by_relation.setdefault(rel, []).append(i)

        def sets_for(fact_id, relation):
            candidates = by_relation.get(_relation(relation), [])
            if len(candidates) < k:
                raise ValueError(
                    f"slick mode: fact {fact_id!r} has relation {relation!r}, with {len(candidates)} exemplars "
                    f"in the pool; each set needs {k}"
                )
            # Each set: k distinct exemplars, uniformly at random (argsort of uniforms),
            # all M sets in one draw.
            picks = fact_rng(cfg.seed, fact_id).random((cfg.sets, len(candidates))).argsort(axis=1)[:, :k]
            return [sum((shot_turns[candidates[j]] for j in row), []) for row in picks]

    relations = facts["relation"] if "relation" in facts.columns else [None] * len(facts)
    system = {"role": "system", "content": cfg.system}
    rows = [
        (fact_id, i, [system, *turns, _user(question.strip())])
        for fact_id, question, relation in zip(facts["fact_id"], facts["question"], relations)
        for i, turns in enumerate(sets_for(fact_id, relation))
    ]
    return pd.DataFrame(rows, columns=["fact_id", "prompt_set", "messages"])


def protocol_key(cfg: PromptConfig, exemplars: pd.DataFrame) -> str:
    """A stable hash of everything that changes prompts or decoding: the message format,
    the config, and the exemplars that can appear (in paper mode only the first
    sets x shots rows; the rest of the pool never reaches a prompt)."""
    pool = _pool(exemplars, cfg)
    if cfg.mode == "paper":
        pool = pool[: cfg.sets * cfg.shots]
    payload = {"format": PROMPT_FORMAT, "config": cfg.model_dump(), "pool": pool}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
