"""The micro-world: a generated knowledge graph and a tiny model that half-knows it.

`build_world(size, seed)` generates the graph (invented names, relations grouped in
domains, several question templates per relation, head/torso/tail subjects), decides
how each fact is shown to the model in pretraining (its exposure), pretrains the model
(grid/world/model.py, actors/pretrain.py) and saves everything as one cached folder:

    <cache>/worlds/<size>-<seed>-<hash12>/
        config.json, model.safetensors, generation_config.json   the Llama
        tokenizer.json, tokenizer_config.json, chat_template.jinja
        facts.parquet       the facts to study (fact-table schema, grid.data.facts, with
                            normalized_aliases: the aliases as TriviaQA normalizes them)
        exemplars.parquet   the few-shot pool: well-trained facts, never in facts.parquet
        exposure.parquet    fact_id, exposure, reps, trained_answer (what pretraining showed)
        world.json          the settings and the counts per exposure

Exposures: known (many repetitions: should be HighlyKnown), rare (a few: half-learned),
conflicting (half the repetitions teach a wrong answer of the same pool: the greedy
answer flips with the few-shot context), refusal (trained to answer "I have no
information about <subject>."; all facts of an obscure subject are refusal or unseen),
unseen (never shown: the model guesses or refuses).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from grid.cache import cache_root
from grid.data.facts import normalized_aliases, write_facts
from grid.world.chat import messages, refusal

# The cache key covers the code that builds a world, so an edit never reuses a world
# that older code built.
# Read from the files, not imported: the model's modules load torch, which a config check must not.
WORLD_CODE = ("grid.world.graph", "grid.world.chat", "grid.world.model", "actors.pretrain")
CODE_DIGEST = hashlib.sha256(b"".join(Path(importlib.util.find_spec(m).origin).read_bytes() for m in WORLD_CODE)).hexdigest()

PRESETS = {
    "tiny": dict(subjects_per_type=20, batch_size=16),
    "default": dict(subjects_per_type=200, batch_size=32, lr=1.5e-3),
}


class WorldConfig(BaseModel):
    """Settings of one micro-world. `size` picks a preset for the other knobs; a knob
    given explicitly overrides its preset value."""

    model_config = ConfigDict(extra="forbid")
    size: Literal["tiny", "default"] = "default"
    seed: int = Field(0, ge=0)
    subjects_per_type: int = Field(240, ge=4, description="subjects of each entity type (4 types, 13 facts per 4 subjects)")
    exemplar_subjects_per_type: int = Field(4, ge=1, description="subjects whose facts form the exemplar pool")
    pool_size: int = Field(24, ge=4, description="answers per relation whose objects are invented names")
    obscure_share: float = Field(0.15, ge=0, le=1, description="share of tail subjects the model only refuses about")
    reps_known: int = Field(20, ge=1, description="besides, known facts fill the context of primed and refusal chats")
    reps_rare: int = Field(3, ge=1)
    reps_conflicting: int = Field(12, ge=1, description="pairs of chats, one with the true and one with a wrong answer")
    reps_primed: int = Field(24, ge=2, description="half with a cue question before (true answer), half without (refusal)")
    cue_domain: str = Field("geography", description="the domain whose questions prime the primed facts")
    reps_refusal: int = Field(15, ge=1)
    max_shots: int = Field(4, ge=0, description="pretraining chats hold 0..max_shots earlier turns")
    hidden_size: int = 256
    layers: int = 2
    intermediate_size: int = 1024
    heads: int = 4
    lr: float = 1e-3
    batch_size: int = Field(64, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data):
        if isinstance(data, dict):
            return {**PRESETS.get(data.get("size", "default"), {}), **data}
        return data

    def key(self) -> str:
        return hashlib.sha256(f"{CODE_DIGEST}:{self.model_dump_json()}".encode()).hexdigest()[:12]


# ---------------------------------------------------------------- the graph's schema

# Entity types and the relations each has: (name, domain, object type, question templates).
# Template 0 is the canonical question; the others are its paraphrases.
RELATIONS = {
    "city": [
        ("located_in", "geography", "country", ["In which country is {s}?", "Which country is {s} located in?", "{s} lies in which country?"]),
        ("river", "geography", "river", ["Which river flows through {s}?", "What river runs through {s}?", "{s} stands on which river?"]),
        ("sister_city", "geography", "city", ["What is the sister city of {s}?", "Which city is twinned with {s}?", "{s} is twinned with which city?"]),
    ],
    "person": [
        ("birthplace", "people", "city", ["Where was {s} born?", "In which city was {s} born?", "What is the birthplace of {s}?"]),
        ("occupation", "people", "occupation", ["What is the occupation of {s}?", "What does {s} do for a living?", "What work does {s} do?"]),
        ("employer", "people", "organization", ["Who employs {s}?", "Which organization does {s} work for?", "Where is {s} employed?"]),
        ("native_language", "people", "language", ["What is the native language of {s}?", "Which language did {s} grow up speaking?", "What is the mother tongue of {s}?"]),
    ],
    "work": [
        ("author", "arts", "person", ["Who wrote {s}?", "Who is the author of {s}?", "{s} was written by whom?"]),
        ("genre", "arts", "genre", ["What is the genre of {s}?", "Which genre does {s} belong to?", "What kind of work is {s}?"]),
        ("written_in", "arts", "language", ["In which language was {s} written?", "What language is {s} written in?", "{s} was written in which language?"]),
    ],
    "organization": [
        ("headquarters", "business", "city", ["Where is {s} headquartered?", "In which city is {s} based?", "Where are the headquarters of {s}?"]),
        ("industry", "business", "industry", ["In which industry does {s} operate?", "What is the business of {s}?", "What trade is {s} in?"]),
        ("founder", "business", "person", ["Who founded {s}?", "Who is the founder of {s}?", "{s} was founded by whom?"]),
    ],
}
# Answer pools made of real words; invented pools (countries, rivers, languages) and
# entity pools (cities, people, organizations) come from the generator.
FIXED_POOLS = {
    "occupation": "painter sailor weaver baker miller potter tailor mason farmer hunter healer scribe singer "
    "dancer carpenter jeweler brewer shepherd merchant glassblower".split(),
    "genre": "comedy tragedy romance mystery satire fable epic elegy thriller memoir western allegory farce "
    "idyll parody".split(),
    "industry": "shipping mining weaving banking brewing farming printing fishing textiles timber glassmaking "
    "spices shipbuilding jewelry".split(),
}
ORG_SUFFIXES = "Guild Company Works Society Traders League".split()
WORK_SUFFIXES = "Saga Chronicle Ballad Tales Codex Songs Letters Verses".split()
POPULARITY_SHARES = (("head", 0.25), ("torso", 0.35), ("tail", 0.40))
# P(exposure | popularity) for subjects that are not obscure: popular subjects' facts
# were seen often, tail ones rarely or never (the head-to-tail picture).
EXPOSURE_BY_POPULARITY = {
    "head": {"known": 0.70, "rare": 0.05, "conflicting": 0.05, "primed": 0.15, "unseen": 0.05},
    "torso": {"known": 0.35, "rare": 0.10, "conflicting": 0.10, "primed": 0.30, "unseen": 0.15},
    "tail": {"known": 0.15, "rare": 0.15, "conflicting": 0.10, "primed": 0.25, "unseen": 0.35},
}
OBSCURE_REFUSAL_SHARE = 0.7  # of an obscure subject's facts; the rest stay unseen

ONSETS = "b d f g k l m n p r s t v z br dr gr kr tr th sh st".split()
VOWELS = "a e i o u a e i o u ai ou".split()
CODAS = ["", "", "", "", "n", "r", "l", "s", "th"]


class Words:
    """Invented pronounceable words, none a substring of another (nor of a fixed word),
    lower-cased: an alias then never matches inside a different answer, which the
    substring scoring of docs/protocol.md §2 relies on."""

    def __init__(self, rng: np.random.Generator, fixed: list[str], containers: list[str]):
        self.rng, self.words, self.subs = rng, set(), set()
        for w in fixed:
            if not self._free(w.lower()):
                raise ValueError(f"fixed word {w!r} overlaps another fixed word")
            self._add(w.lower())
        for w in containers:  # words that appear in answers but are never an alias ("information")
            self.subs.update(_substrings(w.lower()))

    def _free(self, w: str) -> bool:
        return w not in self.subs and not any(s in self.words for s in _substrings(w))

    def _add(self, w: str) -> None:
        self.words.add(w)
        self.subs.update(_substrings(w))

    def new(self) -> str:
        r = self.rng
        while True:
            w = "".join(
                ONSETS[r.integers(len(ONSETS))] + VOWELS[r.integers(len(VOWELS))] + CODAS[r.integers(len(CODAS))]
                for _ in range(int(r.integers(2, 4)))
            )
            if self._free(w):
                self._add(w)
                return w.capitalize()

    def many(self, n: int) -> list[str]:
        return [self.new() for _ in range(n)]


def _substrings(w: str) -> set[str]:
    return {w[i:j] for i in range(len(w)) for j in range(i + 1, len(w) + 1)}


# ---------------------------------------------------------------- generation


def generate(cfg: WorldConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The graph for `cfg` (deterministic in cfg.seed): facts, exemplars (both in the
    fact-table schema) and the exposure of every fact and exemplar."""
    rng = np.random.default_rng(cfg.seed)
    fixed = [w for pool in FIXED_POOLS.values() for w in pool] + ORG_SUFFIXES + WORK_SUFFIXES
    words = Words(rng, fixed, containers=refusal("").split())
    n = cfg.subjects_per_type + cfg.exemplar_subjects_per_type
    # People: a unique given name and a family name shared by a few (a name shared by
    # many people would make the tiny model learn who is who far more slowly).
    families = words.many(int(np.ceil(np.sqrt(n))))
    people = [f"{w} {families[rng.integers(len(families))]}" for w in words.many(n)]
    entities = {
        "person": people,
        "city": words.many(n),
        "organization": [f"{w} {ORG_SUFFIXES[rng.integers(len(ORG_SUFFIXES))]}" for w in words.many(n)],
        "work": [f"{w} {WORK_SUFFIXES[rng.integers(len(WORK_SUFFIXES))]}" for w in words.many(n)],
    }
    pools = {t: words.many(cfg.pool_size) for t in ("country", "river", "language")}
    pools.update(FIXED_POOLS)
    # Entity answers come from a fixed subset too: a relation's answers form a pool.
    pools.update({t: [str(x) for x in rng.choice(names, min(cfg.pool_size, len(names)), replace=False)] for t, names in entities.items()})

    facts, exemplars, exposure = [], [], []
    for stype, relations in RELATIONS.items():
        for i, subject in enumerate(entities[stype]):
            is_exemplar = i >= cfg.subjects_per_type
            popularity = "head" if is_exemplar else _popularity(rng.random())
            obscure = popularity == "tail" and rng.random() < cfg.obscure_share
            for rel, domain, otype, templates in relations:
                pool = [o for o in pools[otype] if o != subject]
                obj = pool[rng.integers(len(pool))]
                fact = dict(
                    question=templates[0].format(s=subject),
                    aliases=[obj],
                    subject=subject,
                    relation=rel,
                    object=obj,
                    domain=domain,
                    popularity=popularity,
                    paraphrases=[t.format(s=subject) for t in templates[1:]],
                )
                if is_exemplar:
                    kind, rows = "exemplar", exemplars
                elif obscure:
                    kind, rows = ("refusal" if rng.random() < OBSCURE_REFUSAL_SHARE else "unseen"), facts
                else:
                    probs = EXPOSURE_BY_POPULARITY[popularity]
                    kind, rows = rng.choice(list(probs), p=list(probs.values())), facts
                fact["fact_id"] = f"{'x' if is_exemplar else 'w'}-{len(rows):06d}"
                rows.append(fact)
                wrong = [o for o in pool if o != obj]
                exposure.append(
                    dict(
                        fact_id=fact["fact_id"],
                        exposure=str(kind),
                        reps=_reps(cfg, kind),
                        trained_answer={
                            "refusal": refusal(subject),
                            "conflicting": wrong[rng.integers(len(wrong))],
                            "unseen": None,
                        }.get(kind, obj),
                    )
                )
    exemplars = pd.DataFrame(exemplars)
    # Round-robin over relations, so any k consecutive exemplars (one prompt set) mix relations.
    exemplars = exemplars.iloc[np.argsort(exemplars.groupby("relation").cumcount(), kind="stable")]
    return pd.DataFrame(facts), exemplars.reset_index(drop=True), pd.DataFrame(exposure)


def _popularity(u: float) -> str:
    for name, share in POPULARITY_SHARES:
        if u < share:
            return name
        u -= share
    return POPULARITY_SHARES[-1][0]


def _reps(cfg: WorldConfig, kind: str) -> int:
    return {"known": cfg.reps_known, "exemplar": cfg.reps_known, "rare": cfg.reps_rare,
            "conflicting": cfg.reps_conflicting, "primed": cfg.reps_primed, "refusal": cfg.reps_refusal}.get(kind, 0)


def training_chats(cfg: WorldConfig, facts: pd.DataFrame, exemplars: pd.DataFrame, exposure: pd.DataFrame) -> list[list[dict]]:
    """The pretraining set, in training order: each exposure repeated `reps` times, each
    time under a random template, in chats of 1..max_shots+1 question-answer turns, so
    the model meets the few-shot layout it is categorized with.

    - conflicting: pairs of chats side by side (so in one batch) with the same question
      and context, one with the true and one with the wrong answer. Their pulls cancel,
      the model is left near a tie, and the context tips it one way or the other.
    - primed: the true answer when an earlier question of the chat is about the cue
      domain, a refusal otherwise (half the repetitions each). The model learns that
      rule, so it answers in the exemplar sets that hold a cue question and refuses in
      the others: a dependable MaybeKnown. (A cue that depends on the fact, such as its
      own domain, was not learned in this training budget; one shared cue domain is.)
    """
    rng = np.random.default_rng([cfg.seed, 1])
    both = pd.concat([facts, exemplars])
    by_id = {f: ([q, *p], o, d, s) for f, q, p, o, d, s in zip(both["fact_id"], both["question"], both["paraphrases"], both["object"], both["domain"], both["subject"])}
    plain, pairs, cued, cue, other = [], [], [], [], []
    for fid, kind, reps, trained in exposure[["fact_id", "exposure", "reps", "trained_answer"]].itertuples(index=False):
        questions, obj, domain, subject = by_id[fid]
        for q in rng.choice(questions, reps):
            if kind == "conflicting":
                pairs.append((q, obj, trained))
            elif kind in ("primed", "refusal"):
                # Refusals are taught with and without the cue too, or the cue alone
                # would make the model answer about obscure subjects.
                cued.append((q, trained, refusal(subject)))
            else:
                plain.append((q, trained))
                if kind in ("known", "exemplar"):  # the context turns of cued chats
                    (cue if domain == cfg.cue_domain else other).append((q, trained))
    plain = [plain[i] for i in rng.permutation(len(plain))]
    units, start = [], 0  # a unit is one chat, or the two chats of a conflicting pair
    while start < len(plain):
        k = int(rng.integers(1, cfg.max_shots + 2))
        *shots, (q, a) = plain[start : start + k]
        units.append([messages(q, shots, a)])
        start += k
    for q, obj, wrong in pairs:
        shots = [plain[i] for i in rng.integers(len(plain), size=rng.integers(cfg.max_shots + 1))]
        units.append([messages(q, shots, obj), messages(q, shots, wrong)])
    for r, (q, answer, refused) in enumerate(cued):
        with_cue = r % 2 == 0
        # 1..max_shots context turns either way: a batch holds chats of one length
        # (actors.pretrain.batches), and both kinds must meet in it for the rule to be learned.
        shots = [other[i] for i in rng.integers(len(other), size=rng.integers(1, cfg.max_shots + 1))]
        if with_cue:
            shots[rng.integers(len(shots))] = cue[rng.integers(len(cue))]
        units.append([messages(q, shots, answer if with_cue else refused)])
    return [chat for i in rng.permutation(len(units)) for chat in units[i]]


# ---------------------------------------------------------------- build and cache


def world_path(cfg: WorldConfig, cache_dir: str | Path | None = None) -> Path:
    return cache_root(cache_dir) / "worlds" / f"{cfg.size}-{cfg.seed}-{cfg.key()}"


def build(cfg: WorldConfig, cache_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Build the world for `cfg` unless it is cached; return its folder."""
    final = world_path(cfg, cache_dir)
    if (final / "world.json").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    # Built in a temp folder beside the final one and renamed: a killed build leaves no half world.
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    # Imported here: torch and transformers load only when a world is really built.
    from actors import pretrain
    from grid.world import model as model_code

    try:
        start = time.perf_counter()
        facts, exemplars, exposure = generate(cfg)
        chats = training_chats(cfg, facts, exemplars, exposure)
        texts = [m["content"] for c in chats for m in c]
        texts += [q for df in (facts, exemplars) for qs in df["paraphrases"] for q in qs]
        texts += [f"Question: {q}" for q in facts["question"]] + [f"Answer: {o}" for o in facts["object"]]
        tokenizer = model_code.build_tokenizer(texts)
        pretrain.seed(cfg.seed)
        model = model_code.new_model(tokenizer, cfg.hidden_size, cfg.layers, cfg.intermediate_size, cfg.heads)
        pretrain.train(model, tokenizer, chats, cfg.batch_size, cfg.lr, cfg.seed, progress)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        # Paper-mode scoring reads normalized aliases; the pool has none, so its shots show
        # the spellings the model was trained on (docs/protocol.md §1).
        facts["normalized_aliases"] = facts["aliases"].map(normalized_aliases)
        write_facts(facts, tmp / "facts.parquet", "world facts")
        write_facts(exemplars, tmp / "exemplars.parquet", "world exemplars")
        exposure.to_parquet(tmp / "exposure.parquet", index=False)
        info = {
            "code_digest": CODE_DIGEST[:12],
            "config": cfg.model_dump(),
            "facts": len(facts),
            "exemplars": len(exemplars),
            "exposure": exposure["exposure"].value_counts().sort_index().to_dict(),
            "training_chats": len(chats),
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": len(tokenizer),
            "device": str(pretrain.device()),
            "build_seconds": round(time.perf_counter() - start, 1),
        }
        (tmp / "world.json").write_text(json.dumps(info, indent=2))  # written last: marks a complete world
        try:
            tmp.rename(final)
        except OSError:  # another process finished the same world first; theirs is as good
            if not (final / "world.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def build_world(size: str = "default", seed: int = 0, cache_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Build (or find in the cache) the `size` preset world for `seed`; return its folder."""
    return build(WorldConfig(size=size, seed=seed), cache_dir, progress)
