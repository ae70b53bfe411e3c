"""Generator engines on the tiny micro-world: the transformers engine here, vLLM where CUDA is."""
import importlib.util

import pytest
import torch

import actors.engines as engines
from actors.engines import Decoding, EngineConfig, TransformersEngine, make_engine, pick_engine, prefix_batches
from grid.data.facts import read_facts
from grid.data.prompts import PromptConfig, build_prompts


@pytest.fixture(scope="module")
def prompts(tiny_world):
    facts = read_facts(tiny_world / "facts.parquet").head(24)
    table = build_prompts(facts, read_facts(tiny_world / "exemplars.parquet"), PromptConfig(sets=3))
    return list(table["messages"])


@pytest.fixture(scope="module")
def engine(tiny_world):
    return TransformersEngine.load(str(tiny_world), batch_size=16)


def test_shared_prefix_decoding_gives_the_answers_of_plain_decoding(engine, prompts, monkeypatch):
    shared = engine.generate(prompts, Decoding(max_new_tokens=16))
    monkeypatch.setattr(engines, "MIN_SHARED_PREFIX", 10**9)  # turn prefix sharing off
    plain = engine.generate(prompts, Decoding(max_new_tokens=16))
    assert shared == plain
    assert all(len(a) == 1 and a[0].startswith("Answer:") for a in shared)


def test_samples_are_seeded_and_counted(engine, prompts):
    decoding = Decoding(max_new_tokens=16, samples=3, temperature=1.0, top_k=40, seed=5)
    one, two = engine.generate(prompts[:8], decoding), engine.generate(prompts[:8], decoding)
    assert one == two and all(len(a) == 4 for a in one)


def test_batches_keep_prompt_sets_apart_and_stay_full_when_little_is_shared():
    system = [1, 2, 3]
    sets = [system + [10 + s] * 20 + [99, q] for s in range(3) for q in range(40)]  # 3 sets x 40 questions
    order = sorted(range(len(sets)), key=lambda i: sets[i])
    batches = prefix_batches(sets, order, size=64)
    assert sorted(i for _, b in batches for i in b) == list(range(len(sets)))
    assert [len(b) for _, b in batches] == [40, 40, 40]  # cut at each set, never across
    assert [start for start, _ in batches] == [0, 40, 80]
    # Prompts that share only the system message: full batches, not one per row.
    loose = [system + [q] * 5 for q in range(100)]
    assert [len(b) for _, b in prefix_batches(loose, list(range(100)), size=64)] == [64, 36]


def test_auto_picks_transformers_without_cuda_and_vllm():
    if torch.cuda.is_available() and importlib.util.find_spec("vllm"):
        pytest.skip("CUDA and vllm present")
    assert pick_engine("auto") == "transformers"
    assert pick_engine("vllm") == "vllm"


@pytest.mark.gpu
@pytest.mark.skipif(not (torch.cuda.is_available() and importlib.util.find_spec("vllm")), reason="needs CUDA and vllm")
def test_vllm_greedy_parity_with_transformers(tiny_world, prompts):
    hf = TransformersEngine.load(str(tiny_world), dtype="float32").generate(prompts, Decoding(max_new_tokens=16))
    vllm = make_engine(EngineConfig(kind="vllm", dtype="float32"), str(tiny_world)).generate(prompts, Decoding(max_new_tokens=16))
    agree = sum(a == b for a, b in zip(hf, vllm)) / len(hf)
    assert agree >= 0.95, f"greedy answers agree on {agree:.0%} of prompts"
