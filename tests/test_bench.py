"""Benchmarks after training (grid/bench.py): the built-in known_mc / known_ppl on the
tiny micro-world, their deltas in results.parquet and the report, the search objective,
and the lm-evaluation-harness path where the `bench` extra is installed."""
import importlib.util
import math

import pandas as pd
import pytest

from analysis.benchmarks import BUILTIN, OPTIONS, Task, bench_record, held_out, higher_is_better, mc_accuracy, perplexity
from analysis.figures import bench_by_unknown
from analysis.tables import bench_table
from grid.bench import BenchConfig, prepare, task_items
from grid.config import ConfigError, load_config
from grid.data.prompts import PromptConfig
from analysis.schema import KNOWN_MC_DELTA as BENCH_DELTA

from test_report import assert_png

PROMPTS = PromptConfig(sets=1, shots=1)


def facts_frame():
    """Two relations: `capital` with 5 answers, `river` with 3 (too few for 3 distractors)."""
    rows = [(f"c{i}", f"What is the capital of L{i}?", [f"City{i}"], "capital", [f"L{i} has which capital?"]) for i in range(5)]
    rows += [(f"r{i}", f"Which river crosses T{i}?", [f"River{i}"], "river", []) for i in range(3)]
    return pd.DataFrame(rows, columns=["fact_id", "question", "aliases", "relation", "paraphrases"])


EXEMPLARS = pd.DataFrame({"fact_id": ["x0"], "question": ["What is the capital of Xo?"], "aliases": [["Xotown"]]})


def test_mc_items_hold_the_answer_and_three_distractors_of_the_same_relation():
    facts = facts_frame()
    items = task_items("known_mc", facts, facts, EXEMPLARS, PROMPTS, seed=0)
    assert set(items["fact_id"]) == {f"c{i}" for i in range(5)}  # river facts: only 2 other answers
    for fact_id, q in items.groupby("fact_id"):
        assert list(q["option"]) == list(range(OPTIONS)) and q["is_answer"].sum() == 1
        answers = [chat[-1]["content"] for chat in q["chat"]]
        assert all(a.startswith("Answer: City") for a in answers) and len(set(answers)) == OPTIONS
        assert q.loc[q["is_answer"], "chat"].iloc[0][-1]["content"] == f"Answer: City{fact_id[1:]}"
        # The prompt is the categorization prompt: system, the exemplar turn, the question.
        assert [m["role"] for m in q["chat"].iloc[0]] == ["system", "user", "assistant", "user", "assistant"]
    again = task_items("known_mc", facts, facts, EXEMPLARS, PROMPTS, seed=0)
    assert again.drop(columns="chat").equals(items.drop(columns="chat"))  # seeded
    other = task_items("known_mc", facts, facts, EXEMPLARS, PROMPTS, seed=1)
    assert [c[-1] for c in other["chat"]] != [c[-1] for c in items["chat"]]


def test_ppl_items_ask_the_paraphrases_and_score_the_answer():
    facts = facts_frame()
    items = task_items("known_ppl", facts, facts, EXEMPLARS, PROMPTS, seed=0)
    assert list(items["fact_id"]) == [f"c{i}" for i in range(5)]
    chat = items["chat"].iloc[2]
    assert chat[-2]["content"] == "Question: L2 has which capital?" and chat[-1]["content"] == "Answer: City2"


def test_prepare_names_the_task_without_items():
    facts = facts_frame()
    base = pd.DataFrame({"fact_id": facts["fact_id"], "category": ["Unknown"] * 5 + ["HighlyKnown"] * 3})
    with pytest.raises(ValueError, match="known_mc has no items"):
        prepare(BenchConfig(), facts, base, EXEMPLARS, PROMPTS)
    bench = prepare(BenchConfig(limit=2), facts, base.assign(category="HighlyKnown"), EXEMPLARS, PROMPTS)
    assert bench.items["known_mc"]["fact_id"].nunique() == 2  # limit: the first facts by id


def test_a_registered_task_is_prepared_scored_and_judged_by_its_own_direction(monkeypatch):
    """A new built-in task is one registration (analysis/benchmarks.py): its items are asked
    in the categorization prompt, scored by its aggregate, judged by its direction."""
    facts = facts_frame()
    base = pd.DataFrame({"fact_id": facts["fact_id"], "category": "HighlyKnown"})

    def first_letter(known, facts, rng):  # one item per fact: the answer's first letter
        return pd.DataFrame({"fact_id": known["fact_id"], "question": known["question"], "answer": [a[0][0] for a in known["aliases"]]})

    monkeypatch.setitem(BUILTIN, "letter", Task(first_letter, perplexity, higher_is_better=False, needs="aliases"))
    assert BenchConfig(tasks=["letter", "mmlu"]).lm_eval_tasks == {"mmlu": 5}  # a registered name is no lm-eval task
    bench = prepare(BenchConfig(tasks=["letter"], limit=3), facts, base, EXEMPLARS, PROMPTS)
    items = bench.items["letter"]
    assert list(items.columns) == ["fact_id", "chat"] and list(items["fact_id"]) == ["c0", "c1", "c2"]
    assert items["chat"].iloc[1][-2:] == [{"role": "user", "content": "Question: What is the capital of L1?"}, {"role": "assistant", "content": "Answer: C"}]
    assert held_out("letter", items.assign(loglik=[-1.0, -2.0, -3.0], tokens=[1, 1, 2]), {"c2"}) == pytest.approx(math.exp(3 / 2))
    assert [higher_is_better(t) for t in ("letter", "known_mc", "known_ppl", "mmlu")] == [False, True, False, True]
    with pytest.raises(ValueError, match=r"letter has no items \(0 HighlyKnown facts, none with aliases\)"):
        prepare(BenchConfig(tasks=["letter"]), facts, base.assign(category="Unknown"), EXEMPLARS, PROMPTS)


def test_scores_leave_out_the_mix():
    items = pd.DataFrame(
        {
            "fact_id": ["a"] * 2 + ["b"] * 2 + ["c"] * 2,
            "is_answer": [True, False] * 3,
            "loglik": [-1.0, -2.0, -3.0, -1.0, -1.0, -1.0],  # a right, b wrong, c a tie: the first option
            "tokens": [2] * 6,
        }
    )
    assert mc_accuracy(items) == pytest.approx(2 / 3)
    assert held_out("known_mc", items, {"c"}) == 0.5
    assert perplexity(items) == pytest.approx(math.exp(9 / 12))
    assert bench_record({"known_mc": (0.5, 0.75)}) == {"bench_known_mc": 0.5, "bench_known_mc_delta": -0.25}


def test_a_bench_objective_needs_known_mc(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("experiment: x\nsearch:\n  objective: bench_drop\nbench:\n  tasks: [mmlu]\n")
    with pytest.raises(ConfigError, match="need the known_mc benchmark"):
        load_config(path)


def hand_made_results():
    """An lm-eval task: the base model scores 0.6 for every trial."""
    settings = [(10, 0), (10, 0), (100, 0), (10, 1), (100, 1)]
    delta = [-0.001 * unknown - 0.01 * i for i, (unknown, _) in enumerate(settings)]
    return pd.DataFrame(
        {
            "trial": [f"t{i}" for i in range(len(settings))],
            "unknown": [u for u, _ in settings],
            "extra": "HighlyKnown",
            "ratio": [r for _, r in settings],
            "bench_mmlu": [0.6 + d for d in delta],
            "bench_mmlu_delta": delta,
            "error": None,
        }
    )


def test_table7_and_figure_from_hand_made_results(tmp_path):
    results = hand_made_results()
    table = bench_table(results)
    assert len(table) == 4 and table["trials"].tolist() == [2, 1, 1, 1]
    first = table.iloc[0]
    assert first["bench_mmlu_base"] == pytest.approx(0.6) and first["bench_mmlu_delta_min"] == pytest.approx(-0.02)
    assert bench_table(results.drop(columns=["bench_mmlu", "bench_mmlu_delta"])).empty
    assert_png(bench_by_unknown(results, tmp_path / "bench.png"))


# ---------------------------------------------------------------- the tiny micro-world


def test_base_model_beats_chance_on_known_mc(grid_run):
    cfg, _ = grid_run
    log = pd.read_parquet(cfg.run_dir / "benchmarks.parquet")
    base = log[log["trial"] == "base"].set_index("task")
    assert set(base.index) == {"known_mc", "known_ppl"}
    assert base.loc["known_mc", "count"] >= 4 * 50  # 50+ questions of 4 options
    assert base.loc["known_mc", "score"] >= 0.6, base  # chance is 0.25
    assert 1 <= base.loc["known_ppl", "score"] < 3


def test_every_adapter_has_its_bench_delta(grid_run):
    cfg, results = grid_run
    stored = pd.read_parquet(cfg.run_dir / "results.parquet")
    for column in ("bench_known_mc", "bench_known_mc_delta", "bench_known_ppl", "bench_known_ppl_delta"):
        assert stored[column].notna().all(), column
    # The delta is the adapter minus the base model on the same questions: those outside its mix.
    log = pd.read_parquet(cfg.run_dir / "benchmarks.parquet").query("task == 'known_mc'")
    cache = cfg.run_dir.parent / "cache" / "benchmarks"
    scored = {trial: pd.read_parquet(cache / key / "items.parquet") for trial, key in zip(log["trial"], log["key"])}
    for trial in stored.itertuples():
        mix = set(pd.read_parquet(cfg.run_dir / "mixes" / f"{trial.trial}.parquet")["fact_id"])
        ours, base = held_out("known_mc", scored[trial.trial], mix), held_out("known_mc", scored["base"], mix)
        assert trial.bench_known_mc == pytest.approx(ours) and trial.bench_known_mc_delta == pytest.approx(ours - base)
    tables = cfg.run_dir / "report" / "tables"
    table7 = pd.read_csv(tables / "table7_benchmarks.csv")
    assert table7["ratio"].tolist() == [0, 1] and {"bench_known_mc_base", "bench_known_ppl_delta"} <= set(table7.columns)
    assert_png(cfg.run_dir / "report" / "figures" / "bench_by_unknown.png")


def test_search_bounds_the_known_mc_drop_of_many_new_facts(ray_runtime, tiny_config):
    """One trial on 40 new facts, searched for the least known_mc drop: the drop is measured
    after every epoch in the trial, and again (the same) on the finished adapter."""
    from grid.cli import main

    path = tiny_config(
        "bench-search",
        search={
            "trials": 1, "unknown": 40, "rank": [8, 8], "ratio": [0, 0],
            "reliability_floor": 0.0, "objective": "bench_drop", "bench_max_drop": 0.9,
        },
    )
    assert main(["tune", str(path)]) == 0
    cfg = load_config(path)
    results = pd.read_parquet(cfg.run_dir / "results.parquet")
    history = pd.read_parquet(cfg.run_dir / "history.parquet")
    assert history[BENCH_DELTA].notna().all() and len(history) == cfg.lora.epochs + 1  # epoch 0 too
    trial = results.iloc[0]
    assert trial["bench_known_mc_delta"] == pytest.approx(history[BENCH_DELTA].iloc[-1], abs=0.02)
    assert trial["objective"] == pytest.approx(-history[BENCH_DELTA].iloc[-1])
    assert trial["bench_known_mc_delta"] < -0.1  # 40 new facts cost known ones (6 cost about 0.02)


# ---------------------------------------------------------------- lm-evaluation-harness


# Skipped before any fixture is set up where the `bench` extra is not installed (CI installs dev only).
@pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None, reason="lm-eval (the bench extra) is not installed")
def test_lm_eval_tasks_on_an_adapter(grid_run, tiny_world, monkeypatch):
    """TruthfulQA MC1/MC2 through the harness on the micro-world and one adapter; only the
    dataset download is replaced, by two questions in memory."""
    import datasets

    from actors.harness import run_lm_eval

    rows = {
        "question": ["Who wrote it?", "Where is it?"],
        "mc1_targets": [{"choices": ["Answer one", "Answer two"], "labels": [1, 0]}] * 2,
        "mc2_targets": [{"choices": ["Answer one", "Answer two", "Answer three"], "labels": [1, 1, 0]}] * 2,
    }
    asked = []

    def load_dataset(path, name=None, **kwargs):
        asked.append((path, name))
        return datasets.DatasetDict({"validation": datasets.Dataset.from_dict(rows)})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    _, results = grid_run
    adapter = results["adapter"].iloc[0]
    found = run_lm_eval(str(tiny_world), adapter, {"truthfulqa_mc1": 0, "truthfulqa_mc2": 0}, limit=2, batch_size=4)
    assert set(asked) == {("truthfulqa/truthful_qa", "multiple_choice")}
    for task in ("truthfulqa_mc1", "truthfulqa_mc2"):
        assert 0 <= found[task]["metrics"]["acc,none"] <= 1 and found[task]["version"] is not None


def test_shared_prefix_logliks_equal_the_plain_ones(tiny_world, monkeypatch):
    """The exemplar prefix every chat starts with runs once; the scores are those of whole chats."""
    import actors.engines as engines
    from grid.data.facts import read_facts
    from grid.data.prompts import build_prompts, with_answer

    facts = read_facts(tiny_world / "facts.parquet").head(40)
    table = build_prompts(facts, read_facts(tiny_world / "exemplars.parquet"), PromptConfig(sets=1))
    chats = [with_answer(m, a[0]) for m, a in zip(table["messages"], facts["aliases"])]
    engine = engines.TransformersEngine.load(str(tiny_world))
    shared = engine.logliks(chats, batch_size=16)
    monkeypatch.setattr(engines, "MIN_SHARED_PREFIX", 10**9)  # every chat whole
    plain = engine.logliks(chats, batch_size=16)
    assert [n for _, n in shared] == [n for _, n in plain] and all(n > 0 for _, n in plain)
    assert [s for s, _ in shared] == pytest.approx([s for s, _ in plain], abs=1e-4)


def test_the_evaluation_pass_scores_the_benchmarks_and_a_killed_one_resumes(grid_run, tmp_path, monkeypatch):
    """The adapter's categorization and the built-in tasks of it and the base model share one
    pass of the generator pool; measure then finds them in the cache; each score is the
    engine's own on that adapter; a pass killed mid-way scores only the items it lacked."""
    from dataclasses import replace

    import grid.generate as generate
    from actors.engines import TransformersEngine
    from grid.bench import BuiltinScoring, Keys, measure
    from grid.categorize import categorize
    from grid.run import Run

    cfg, results = grid_run
    run = Run.open(cfg, progress=False)
    run = replace(run, cfg=cfg.model_copy(update={"storage": str(tmp_path), "experiment": "pass"}))  # an empty cache
    bench = prepare(cfg.bench, run.facts, pd.read_parquet(cfg.run_dir / "categories" / "base.parquet"), run.exemplars, cfg.prompts)
    adapter = results["adapter"].iloc[0]
    categorize(run.categorizer, run.pool)  # the base model's categories, as a run has them before its trials
    passes = []
    generate_shards = generate.generate_shards
    monkeypatch.setattr(generate, "generate_shards", lambda table, *a, **k: passes.append(table) or generate_shards(table, *a, **k))

    run.pool.run([run.categorizer, BuiltinScoring(bench, Keys.of(run, bench))], [None, adapter])
    [table] = passes
    scored = table[table["kind"] == "loglik"]
    assert set(table.loc[table["kind"] == "answer", "adapter"]) == {adapter}
    assert scored.groupby("adapter").size().to_dict() == {"": sum(map(len, bench.items.values())), adapter: sum(map(len, bench.items.values()))}
    found = measure(run, [None, adapter], bench)
    assert len(passes) == 1  # all in the cache
    chats = list(bench.items["known_mc"]["chat"])
    engine = TransformersEngine.load(run.model)
    direct = engine.logliks(chats, [adapter] * len(chats), cfg.bench.batch_size)
    items = found[adapter]["known_mc"].items
    assert items["loglik"].tolist() == pytest.approx([s for s, _ in direct], abs=1e-4)
    assert items["tokens"].tolist() == [n for _, n in direct]
    assert found[adapter]["known_mc"].info["score"] == mc_accuracy(items) != found[None]["known_mc"].info["score"]

    # A kill mid-pass: the adapter's known_mc result gone, and the shards of only some items written.
    folder = Keys.of(run, bench).folder(adapter, "known_mc")
    (folder / "result.json").unlink()
    shards = sorted((folder / "shards").glob("part-*.parquet"))
    written = pd.concat([pd.read_parquet(p) for p in shards])
    for part in shards:
        part.unlink()
    kept = written[written["item"] < len(chats) // 3]
    kept.to_parquet(shards[0], index=False)
    again = measure(run, [None, adapter], bench)
    assert len(passes) == 2 and set(passes[1]["adapter"]) == {adapter}
    assert sorted(passes[1]["item"]) == list(range(len(chats) // 3, len(chats)))
    assert again[adapter]["known_mc"].info["score"] == found[adapter]["known_mc"].info["score"]
