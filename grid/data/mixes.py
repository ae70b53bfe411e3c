"""Training mixes (docs/protocol.md §3) and the probe set a trial watches: pure and seeded.

A mix is n Unknown facts (the new knowledge) plus extra data of one kind:
r HighlyKnown facts per Unknown fact, or r paraphrases of each Unknown question.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Extra = Literal["HighlyKnown", "paraphrase"]
Selection = Literal["random", "first"]

# The authors' code (selection "first") asks a full set of paraphrases of the Unknown facts
# of mixes up to this size, and at least one paraphrase of larger ones.
FULL_SET_UP_TO = 500


class MixError(ValueError):
    pass


@dataclass(frozen=True)
class Mix:
    train: pd.DataFrame  # fact_id, question, answer, role ("new" | "HighlyKnown" | "paraphrase")
    new: tuple[str, ...]  # the Unknown facts being learned
    known: tuple[str, ...]  # the extra HighlyKnown facts (empty for paraphrases)

    @property
    def fact_ids(self) -> set[str]:
        return set(self.new) | set(self.known)


def _pick(ids: list[str], k: int, rng: np.random.Generator, selection: Selection) -> list[str]:
    # "first" is the paper code's way: corpus order, the seed changes nothing.
    return ids[:k] if selection == "first" else [ids[i] for i in sorted(rng.choice(len(ids), k, replace=False))]


def _rows(facts: pd.DataFrame, ids, role: str) -> pd.DataFrame:
    sub = facts.set_index("fact_id").loc[list(ids)]
    return pd.DataFrame(
        {"fact_id": list(ids), "question": sub["question"].values, "answer": [a[0] for a in sub["aliases"]], "role": role}
    )


def _unknown_pool(
    facts: pd.DataFrame, unknown_ids: list[str], unknown: int, extra: Extra, ratio: int, selection: Selection, full_paraphrases: int
) -> tuple[list[str], str]:
    """The Unknown facts a mix may draw, in corpus order, and what they had to have.

    "first" (the authors' code): in both arms, only facts with paraphrases, exactly
    `full_paraphrases` of them when n <= FULL_SET_UP_TO (the code's `para_len == 100`).
    "random": a paraphrase mix draws among the facts with at least r paraphrases, so that
    none of them runs short."""
    if selection == "first":
        full = unknown <= FULL_SET_UP_TO
        least = full_paraphrases if full else 1
        rule = f"a full set of {least} paraphrases" if full else "a paraphrase"
        rule += f" (selection first{', n <= ' + str(FULL_SET_UP_TO) if full else ''})"
    elif extra == "paraphrase" and ratio:
        least, rule = ratio, f"at least {ratio} paraphrases"
    else:
        return unknown_ids, ""
    have = facts.set_index("fact_id").loc[unknown_ids, "paraphrases"].map(len)
    exact = selection == "first" and unknown <= FULL_SET_UP_TO
    return [f for f in unknown_ids if (have[f] == least if exact else have[f] >= least)], f" with {rule}"


def compose_mix(
    facts: pd.DataFrame,
    categories: pd.DataFrame,
    unknown: int,
    extra: Extra,
    ratio: int,
    seed: int,
    selection: Selection = "random",
    full_paraphrases: int = 100,
) -> Mix:
    """n Unknown facts plus r*n HighlyKnown facts, or plus r paraphrases of each.

    Only facts of category "Unknown" are new and only "HighlyKnown" ones are extras (in
    SliCK mode a WeaklyKnown fact is neither). `full_paraphrases` is what selection
    "first" counts as a full set of paraphrases (see _unknown_pool)."""
    rng = np.random.default_rng(seed)
    by_cat = categories.set_index("fact_id")["category"].reindex(facts["fact_id"])
    pool, having = _unknown_pool(
        facts, list(facts["fact_id"][(by_cat == "Unknown").values]), unknown, extra, ratio, selection, full_paraphrases
    )
    if len(pool) < unknown:
        hint = "; `kgrid facts paraphrase` can add paraphrases" if having else ""
        raise MixError(f"the mix needs {unknown} Unknown facts{having}, the corpus has {len(pool)}{hint}")
    new = _pick(pool, unknown, rng, selection)
    parts = [_rows(facts, new, "new")]
    known: list[str] = []
    if extra == "HighlyKnown" and ratio:
        pool = list(facts["fact_id"][(by_cat == "HighlyKnown").values])
        if len(pool) < ratio * unknown:
            raise MixError(f"the mix needs {ratio * unknown} HighlyKnown facts ({ratio} x {unknown}), the corpus has {len(pool)}")
        known = _pick(pool, ratio * unknown, rng, selection)
        parts.append(_rows(facts, known, "HighlyKnown"))
    elif extra == "paraphrase" and ratio:
        paras = facts.set_index("fact_id").loc[new, "paraphrases"]
        short = [(f, len(p)) for f, p in paras.items() if len(p) < ratio]
        if short:
            f, have = short[0]
            raise MixError(
                f"the mix needs {ratio} paraphrases of each Unknown question; {len(short)} facts have fewer "
                f"(e.g. {f} has {have}); `kgrid facts paraphrase` can add them"
            )
        rows = _rows(facts, new, "paraphrase")
        rows = rows.loc[rows.index.repeat(ratio)].reset_index(drop=True)
        rows["question"] = [q for f in new for q in _pick(list(paras[f]), ratio, rng, selection)]
        parts.append(rows)
    return Mix(pd.concat(parts, ignore_index=True), tuple(new), tuple(known))


def probe_set(facts: pd.DataFrame, categories: pd.DataFrame, exclude: set[str], size: int | None, seed: int) -> list[str]:
    """The facts outside the mix that a trial watches for shifts: all of them when size is
    None, else a seeded sample of `size` of them stratified by category (each category's
    share kept to within one fact), so that the shifts on the probe estimate those of every
    fact outside the mix."""
    outside = categories[~categories["fact_id"].isin(exclude)]
    if size is None or size >= len(outside):
        return sorted(outside["fact_id"])
    counts = outside["category"].value_counts().sort_index()
    quota = counts * size / len(outside)
    take = np.floor(quota).astype(int)
    # Largest remainders get the facts left over, so the sample has exactly `size` facts.
    for category in (quota - take).sort_values(ascending=False, kind="stable").index[: size - take.sum()]:
        take[category] += 1
    rng = np.random.default_rng(seed)
    ids = outside.groupby("category")["fact_id"]
    return sorted(f for category, n in take.items() for f in rng.choice(sorted(ids.get_group(category)), n, replace=False))
