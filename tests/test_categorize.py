"""The categorization instrument end to end: Ray Data over the tiny micro-world on 2 CPUs."""
from dataclasses import replace

import pandas as pd
import pytest

from grid.config import load_config
from grid.run import Run


@pytest.fixture(scope="module")
def first(ray_runtime, tiny_config, tmp_path_factory):
    # A storage of its own: other modules fill the session's categorization cache.
    cfg = load_config(tiny_config("categorize", storage=str(tmp_path_factory.mktemp("categorize-runs"))))
    run = Run.open(cfg, progress=False)
    return cfg, run, run.categorize_base()


def test_tiny_world_has_every_paper_category(first):
    cfg, run, result = first
    assert not result.cached
    counts = result.categories["category"].value_counts()
    assert {"HighlyKnown", "MaybeKnown", "Unknown"} <= set(counts.index)
    assert len(result.categories) == len(run.facts)
    assert len(result.generations) == len(run.facts) * cfg.prompts.sets  # greedy only in paper mode
    assert (cfg.run_dir / "categories" / "base.parquet").exists()


def test_same_config_twice_is_a_cache_hit_with_the_same_categories(first):
    cfg, run, result = first
    again = run.categorize_base()
    assert again.cached and again.key == result.key
    pd.testing.assert_frame_equal(again.categories, result.categories)


def test_interrupted_run_keeps_finished_shards_and_completes(first):
    cfg, run, result = first
    folder = run.cache / "categorize" / result.key
    # Simulate a kill after some batches: no final table, only part of the shards.
    (folder / "generations.parquet").unlink()
    shards = sorted((folder / "shards").glob("part-*.parquet"))
    kept = shards[: max(1, len(shards) // 2)]
    for extra in shards[len(kept) :]:
        extra.unlink()
    kept_facts = set(pd.concat(pd.read_parquet(p) for p in kept)["fact_id"])
    resumed = run.categorize_base()
    assert not resumed.cached
    new_shards = sorted((folder / "shards").glob("part-*.parquet"))[len(kept) :]
    regenerated = set(pd.concat(pd.read_parquet(p) for p in new_shards)["fact_id"])
    assert kept_facts - regenerated  # facts finished before the kill were not generated again
    pd.testing.assert_frame_equal(resumed.categories, result.categories)


def test_a_changed_protocol_is_a_new_key(first):
    cfg, run, result = first
    from grid.categorize import categorization_key
    from grid.generate import resolved_engine

    engine = resolved_engine(cfg.generators.engine)
    assert categorization_key(run.model, None, run.facts, run.exemplars, cfg.prompts, engine) == result.key
    changed = cfg.prompts.model_copy(update={"max_new_tokens": 8})
    assert categorization_key(run.model, None, run.facts, run.exemplars, changed, engine) != result.key


def test_the_engine_is_part_of_the_key_with_auto_resolved(first):
    cfg, run, result = first
    from actors.engines import DECODER, EngineConfig
    from grid.categorize import categorization_key
    from grid.generate import resolved_engine

    # On this CPU-only Ray, `auto` is the transformers engine in float32, as the actors pick it.
    assert resolved_engine(EngineConfig()) == {"kind": "transformers", "dtype": "float32", "decoder": DECODER}
    assert resolved_engine(EngineConfig()) == resolved_engine(cfg.generators.engine)  # the config says transformers

    def key(**engine):
        return categorization_key(run.model, None, run.facts, run.exemplars, cfg.prompts, engine)

    assert key(kind="transformers", dtype="float32", decoder=DECODER) == result.key
    assert key(kind="vllm", dtype="auto") != result.key
    assert key(kind="transformers", dtype="bfloat16", decoder=DECODER) != result.key
    assert key(kind="transformers", dtype="float32", decoder=DECODER - 1) != result.key


def test_only_raw_outputs_are_cached_and_scoring_runs_on_every_read(first, monkeypatch):
    cfg, run, result = first
    import grid.categorize
    from analysis.scoring import ScoringConfig, categories_from_scores, score_generations

    folder = run.cache / "categorize" / result.key
    assert sorted(p.name for p in folder.iterdir()) == ["generations.parquet", "meta.json", "shards"]
    assert list(pd.read_parquet(folder / "generations.parquet").columns) == ["fact_id", "prompt_set", "sample", "output"]

    # The paper's rule on the same raw outputs: read from the cache, scored by that rule.
    paper = replace(run, cfg=cfg.model_copy(update={"scoring": ScoringConfig(match="paper")})).categorize_base()
    assert paper.cached and paper.key == result.key
    raw = result.generations[["fact_id", "prompt_set", "sample", "output"]]
    expected = score_generations(raw, run.facts, "paper")
    pd.testing.assert_frame_equal(paper.generations, expected)
    pd.testing.assert_frame_equal(paper.categories, categories_from_scores(expected))

    # Changed scoring code (here: nothing is ever correct) applies to a cached categorization.
    def nothing_correct(gens, facts, match="corrected"):
        return score_generations(gens, facts, match).assign(correct=False)

    monkeypatch.setattr(grid.categorize, "score_generations", nothing_correct)
    again = run.categorize_base()
    assert again.cached and (again.categories["category"] == "Unknown").all()


def test_adapters_share_a_pass_and_keep_their_own_keys(first, tmp_path, monkeypatch):
    """Three models in passes of two: two Ray Data jobs, each adapter's answers those it gives
    alone (the base model's too), each cached under its own key; a killed pass resumes."""
    import grid.generate as generate
    from grid.categorize import categorize
    from test_engines import save_adapter

    cfg, run, base = first
    adapters = [save_adapter(run.model, tmp_path / f"a{i}", scale=0.5, seed=i) for i in range(2)]
    passes = []
    generate_shards = generate.generate_shards
    monkeypatch.setattr(generate, "generate_shards", lambda table, *a, **k: passes.append(table) or generate_shards(table, *a, **k))
    two = replace(run, cfg=cfg.model_copy(update={"generators": cfg.generators.model_copy(update={"adapters_per_pass": 2})}))
    found = categorize(two.categorizer, two.pool, [adapters[0], None, adapters[1]])
    assert len(passes) == 1  # the base model was cached: both adapters in one pass
    assert sorted(passes[0]["adapter"].unique()) == sorted(adapters)
    assert found[None].cached and found[None].key == base.key
    alone = categorize(run.categorizer, run.pool, [adapters[1]])[adapters[1]]
    assert alone.cached and alone.key == found[adapters[1]].key != found[adapters[0]].key
    pd.testing.assert_frame_equal(found[None].generations, base.generations)
    assert (found[adapters[0]].generations["output"] != base.generations["output"]).any()
    # A kill mid-pass: one adapter's table gone, and the shards of only half its facts written.
    folder = run.cache / "categorize" / found[adapters[0]].key
    (folder / "generations.parquet").unlink()
    shards = sorted((folder / "shards").glob("part-*.parquet"))
    written = pd.concat([pd.read_parquet(p) for p in shards])
    for part in shards:
        part.unlink()
    half = sorted(written["fact_id"].unique())[: written["fact_id"].nunique() // 2]
    written[written["fact_id"].isin(half)].to_parquet(shards[0], index=False)
    passes.clear()
    again = categorize(two.categorizer, two.pool, adapters)
    assert len(passes) == 1 and set(passes[0]["adapter"]) == {adapters[0]}
    assert not set(passes[0]["fact_id"]) & set(half) and len(passes[0]) == len(base.generations) - len(half) * cfg.prompts.sets
    pd.testing.assert_frame_equal(again[adapters[0]].categories, found[adapters[0]].categories)


def test_engine_vllm_without_vllm_fails_in_one_line_before_any_job(ray_runtime, tiny_config, tmp_path, monkeypatch, capsys):
    import grid.generate
    from grid.cli import main

    # The generator actors' platform as a machine without vllm reports it (grid.generate.actors_platform).
    monkeypatch.setattr(grid.generate, "actors_platform", lambda: {"gpu": False, "vllm": None})
    path = tiny_config("no-vllm", storage=str(tmp_path), generators={"engine": {"kind": "vllm"}})
    assert main(["categorize", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "vllm is not installed" in err and "scripts/install_vllm_cpu.sh" in err
    assert not (tmp_path / "no-vllm").exists()  # nothing was built or written


def test_passes_are_cut_by_lora_adapters_and_the_base_model_rides_in_the_first():
    from grid.generate import cut_passes

    assert cut_passes(["a", None, "b", "c"], 2) == [[None, "a", "b"], ["c"]]
    assert cut_passes([None], 2) == [[None]]
    assert cut_passes(["a", "a", "b"], 1) == [["a"], ["b"]]
    assert cut_passes([], 3) == []
