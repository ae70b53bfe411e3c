"""The micro-world: a deterministic graph, a loadable model that knows what it was taught,
and a cache that never holds half a world. The model tests share the session's tiny world."""
import re
import time

import pandas as pd
import pytest

from actors.engines import Decoding, TransformersEngine
from grid.data.facts import read_facts
from grid.world.graph import RELATIONS, WorldConfig, build, build_world, generate, world_path
from grid.world.chat import messages, refusal


def test_generation_is_deterministic_per_seed():
    a, b, c = (generate(WorldConfig(size="tiny", seed=s)) for s in (0, 0, 1))
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x, y)
    assert set(a[0]["question"]) != set(c[0]["question"])


def test_graph_shape():
    facts, exemplars, exposure = generate(WorldConfig(size="tiny"))
    relations = [r for rels in RELATIONS.values() for r in rels]
    assert len(relations) >= 8 and len({r[1] for r in relations}) >= 3
    assert all(len(r[3]) >= 3 for r in relations)
    assert all(len(p) >= 2 for p in facts["paraphrases"])
    names = pd.concat([facts["subject"], facts["object"]])
    assert names.str.fullmatch(r"[A-Za-z]+( [A-Za-z]+)*").all()
    assert set(facts["popularity"]) == {"head", "torso", "tail"}
    # Exemplars: enough for M=10 sets of k=4, never evaluated.
    assert len(exemplars) >= 40
    assert not set(exemplars["fact_id"]) & set(facts["fact_id"])
    assert not set(exemplars["question"]) & set(facts["question"])
    assert set(exposure["fact_id"]) == set(facts["fact_id"]) | set(exemplars["fact_id"])
    # Substring scoring: no answer is inside a different answer.
    objects = sorted({o.lower() for o in pd.concat([facts["object"], exemplars["object"]])})
    assert not [(a, b) for a in objects for b in objects if a != b and a in b]


def test_config_presets_and_overrides():
    assert WorldConfig(size="tiny").subjects_per_type < WorldConfig().subjects_per_type
    assert WorldConfig(size="tiny", batch_size=7).batch_size == 7
    with pytest.raises(ValueError):
        WorldConfig(size="huge")
    with pytest.raises(ValueError):
        WorldConfig(sized="tiny")


def test_killed_build_leaves_no_world(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("actors.pretrain.train", boom)
    with pytest.raises(KeyboardInterrupt):
        build(WorldConfig(size="tiny"), tmp_path, progress=False)
    assert list((tmp_path / "worlds").iterdir()) == []


def test_second_build_is_cached(tiny_world, world_cache):
    start = time.perf_counter()
    assert build_world("tiny", 0, cache_dir=world_cache, progress=False) == tiny_world
    assert time.perf_counter() - start < 2
    assert tiny_world == world_path(WorldConfig(size="tiny"), world_cache)
    assert [p.name for p in tiny_world.parent.iterdir()] == [tiny_world.name]


def test_model_loads_and_knows_what_it_was_taught(tiny_world):
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

    tok = AutoTokenizer.from_pretrained(tiny_world)
    model = AutoModelForCausalLM.from_pretrained(tiny_world).eval()
    assert isinstance(tok, PreTrainedTokenizerFast)
    facts, exemplars = read_facts(tiny_world / "facts.parquet"), read_facts(tiny_world / "exemplars.parquet")
    exposure = pd.read_parquet(tiny_world / "exposure.parquet").set_index("fact_id")["exposure"]

    # The chat template renders the protocol's layout and decoding gives the exact text back.
    chat = messages("Who wrote it?", [("Where?", "Here")])
    text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|system|>Answer the following question.<|end|><|user|>Question: Where?<|end|>"
        "<|assistant|>Answer: Here<|end|><|user|>Question: Who wrote it?<|end|><|assistant|>"
    )
    reply = f"Answer: {refusal(facts['subject'][0])}"
    ids = tok(reply, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert tok.unk_token_id not in ids and tok.decode(ids, skip_special_tokens=True) == reply

    # 4-shot prompt (set 0 of the paper protocol): taught facts right, unseen ones mostly not.
    engine = TransformersEngine.load(str(tiny_world))
    shots = list(zip(exemplars["question"][:4], exemplars["object"][:4]))
    for kind, lo, hi in (("known", 0.9, 1.0), ("unseen", 0.0, 0.3)):
        rows = facts[facts["fact_id"].map(exposure) == kind]
        answers = [a[0] for a in engine.generate([messages(q, shots) for q in rows["question"]], Decoding(max_new_tokens=32))]
        assert all(re.fullmatch(r"Answer: .+", a) for a in answers)
        right = sum(o.lower() in a.lower() for o, a in zip(rows["object"], answers)) / len(rows)
        assert lo <= right <= hi, (kind, right)
