"""LLM paraphrases (analysis/paraphrases.py, grid/paraphrase.py): the filters on hand-made
candidates, the Ray Data job end to end on the tiny micro-world, its cache, the config
block and the CLI."""
import json

import pandas as pd
import pytest

from analysis.paraphrases import KEPT, REASONS, extract_paraphrase, fill, judge, summarize

GUILD = {
    "fact_id": "f1",
    "question": "Who founded the Orsk Weavers Guild?",
    "aliases": ["Mira Vost", "M. Vost"],
    "subject": "Orsk Weavers Guild",
    "paraphrases": ["The Orsk Weavers Guild was founded by whom?"],
}
NORWAY = {"fact_id": "f2", "question": "What is the capital of Norway?", "aliases": ["Oslo"], "subject": None, "paraphrases": []}
DONE = {**NORWAY, "fact_id": "f3", "paraphrases": ["Which city is Norway's capital?", "Norway's capital is which city?", "Name Norway's capital?"]}


def candidates(rows: list[tuple[str, str]]) -> pd.DataFrame:
    """(fact_id, output) pairs as generated rows, samples numbered per fact."""
    df = pd.DataFrame(rows, columns=["fact_id", "output"])
    df.insert(1, "sample", df.groupby("fact_id").cumcount())
    return df


# --- the filters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "output, verdict",
    [
        ("Paraphrase: Who is the founder of the Orsk Weavers Guild?\nQuestion: next", KEPT),
        ("Who is the founder of the guild?", "subject_missing"),
        ("Was the Orsk Weavers Guild founded by Mira Vost?", "answer_leaked"),
        ("Was the Orsk Weavers Guild founded by m vost?", "answer_leaked"),  # normalized alias
        ("Mira Vost founded the Orsk Weavers Guild.", "not_a_question"),
        ("Who founded the Orsk Weavers Guild", "not_a_question"),
        ("Who founded it? What is the Orsk Weavers Guild?", "not_a_question"),
        ("", "not_a_question"),
        ("Guild founder?", "too_short"),
        ("Who, among all the people who ever lived anywhere, founded the Orsk Weavers Guild long ago?", "too_long"),
        ("WHO founded the Orsk Weavers-Guild ?", "same_as_original"),
        ("the orsk weavers guild was founded by whom?", "duplicate"),  # of the existing paraphrase
    ],
)
def test_each_rule_on_one_candidate(output, verdict):
    judged = judge(pd.DataFrame([GUILD]), candidates([("f1", output)]), per_question=5)
    assert judged["verdict"].tolist() == [verdict]


def test_extract_paraphrase_takes_the_first_line_without_label_or_quotes():
    assert extract_paraphrase('\n  Paraphrase: "Who wrote Oru?"\nParaphrase: again?') == "Who wrote Oru?"
    assert extract_paraphrase(None) == ""


def test_an_alias_the_question_itself_names_is_not_a_leak():
    fact = {**GUILD, "question": "Which Vost founded the Orsk Weavers Guild?", "aliases": ["Vost"]}
    judged = judge(pd.DataFrame([fact]), candidates([("f1", "Which Vost was the founder of the Orsk Weavers Guild?")]), 5)
    assert judged["verdict"].tolist() == [KEPT]


def test_duplicates_cap_and_summary_account_for_every_candidate():
    facts = pd.DataFrame([GUILD, NORWAY, DONE])
    cands = candidates(
        [
            ("f1", "Who is the founder of the Orsk Weavers Guild?"),
            ("f1", "who is the founder of the Orsk Weavers Guild ?"),  # duplicate of the one kept above
            ("f1", "Which person founded the Orsk Weavers Guild?"),
            ("f1", "By whom was the Orsk Weavers Guild founded?"),  # valid, but f1 has 3 by now
            ("f2", "Which city is Norway's capital?"),  # no subject: that rule is skipped
            ("f2", "Is Oslo the capital of Norway?"),
        ]
    )
    judged = judge(facts, cands, per_question=3)
    assert judged["verdict"].tolist() == [KEPT, "duplicate", KEPT, "beyond_per_question", KEPT, "answer_leaked"]
    filled = fill(facts, judged)
    # Existing paraphrases stay first and count toward per_question; f3 had enough already.
    assert filled["paraphrases"].tolist() == [
        [GUILD["paraphrases"][0], "Who is the founder of the Orsk Weavers Guild?", "Which person founded the Orsk Weavers Guild?"],
        ["Which city is Norway's capital?"],
        DONE["paraphrases"],
    ]
    summary = summarize(filled, judged, per_question=3)
    assert list(summary["rejected"]) == list(REASONS)
    assert summary["kept"] + sum(summary["rejected"].values()) == summary["candidates"] == 6
    assert summary["kept"] == 3 and summary["rejected"]["duplicate"] == 1 and summary["rejected"]["answer_leaked"] == 1
    assert (summary["facts"], summary["prompted"]) == (3, 2)
    assert summary["short"] == [{"fact_id": "f2", "count": 1}]  # listed, not padded
    assert summary["examples"]["answer_leaked"] == [{"fact_id": "f2", "text": "Is Oslo the capital of Norway?"}]
    json.dumps(summary)  # stored as JSON


def test_candidates_of_an_unknown_fact_are_an_error():
    with pytest.raises(ValueError, match="absent from the fact table"):
        judge(pd.DataFrame([GUILD]), candidates([("nope", "Who?")]), 3)


# --- the Ray Data job on the micro-world ---------------------------------------------------------


@pytest.fixture(scope="module")
def job(ray_runtime, tiny_world, storage):
    """6 micro-world facts (2 template paraphrases each) filled up to 3, with 3 candidates each,
    in the cache of the session's storage (the config-block test below finds it there)."""
    from grid.generate import GeneratorsConfig
    from grid.data.facts import read_facts
    from grid.paraphrase import ParaphraseConfig, paraphrase

    facts = read_facts(tiny_world / "facts.parquet").head(6)
    cfg = ParaphraseConfig(per_question=3, candidates=3)
    # Batches of 2 prompts: 3 shards, so the resume test below can drop one.
    workers = GeneratorsConfig(engine={"kind": "transformers"}, actors=1, prompts_per_batch=2)
    run = lambda: paraphrase(facts, str(tiny_world), cfg, workers, storage / "cache", progress=False)  # noqa: E731
    return facts, run, run()


def test_summary_accounts_for_every_candidate_and_lists_short_questions(job):
    facts, _, result = job
    s = result.summary
    assert not result.cached
    assert s["prompted"] == 6 and s["candidates"] == 6 * 3
    assert s["kept"] + sum(s["rejected"].values()) == s["candidates"]
    have = {f: len(p) for f, p in zip(result.facts["fact_id"], result.facts["paraphrases"])}
    assert {x["fact_id"]: x["count"] for x in s["short"]} == {f: n for f, n in have.items() if n < 3}
    assert s["short"]  # the tiny model mostly fails the filters: that shows here, nothing is padded
    for before, after in zip(facts["paraphrases"], result.facts["paraphrases"]):
        assert after[: len(before)] == before and len(after) <= 3
    assert sum(have.values()) - sum(map(len, facts["paraphrases"])) == s["kept"]


def test_second_run_is_a_cache_hit(job):
    _, run, result = job
    again = run()
    assert again.cached and again.key == result.key and again.summary == result.summary
    pd.testing.assert_frame_equal(again.facts, result.facts)


def test_interrupted_run_keeps_finished_shards(job, storage):
    _, run, result = job
    folder = storage / "cache" / "paraphrase" / result.key
    for name in ("summary.json", "paraphrases.parquet", "candidates.parquet"):
        (folder / name).unlink()
    shards = sorted((folder / "shards").glob("part-*.parquet"))
    assert len(shards) > 1
    kept = set(pd.read_parquet(shards[0])["fact_id"])
    for extra in shards[1:]:
        extra.unlink()
    resumed = run()
    assert not resumed.cached
    regenerated = set(pd.concat(pd.read_parquet(p) for p in sorted((folder / "shards").glob("part-*.parquet"))[1:])["fact_id"])
    assert regenerated == set(result.facts["fact_id"]) - kept  # finished facts were not prompted again
    # Sampling is seeded per batch of prompts, so the same batches give the same candidates.
    assert resumed.summary == result.summary
    pd.testing.assert_frame_equal(resumed.facts, result.facts)


def test_config_block_fills_the_unknown_facts_of_a_run(job, tiny_config):
    from grid.config import load_config
    from grid.paraphrase import paraphrase_unknown
    from grid.run import Run
    from grid.data.facts import read_facts

    facts, _, result = job
    cfg = load_config(tiny_config("paraphrase", paraphrase={"per_question": 3, "candidates": 3}))
    run = Run.open(cfg, progress=False)
    unknown = set(facts["fact_id"])
    base = pd.DataFrame({"fact_id": run.facts["fact_id"]})
    base["category"] = ["Unknown" if f in unknown else "HighlyKnown" for f in base["fact_id"]]
    out = paraphrase_unknown(run, base)
    stored = read_facts(cfg.run_dir / "facts.parquet")
    pd.testing.assert_frame_equal(stored, out.facts)
    filled = dict(zip(result.facts["fact_id"], result.facts["paraphrases"]))
    original = dict(zip(run.facts["fact_id"], run.facts["paraphrases"]))
    for f, paras in zip(stored["fact_id"], stored["paraphrases"]):
        assert paras == (filled[f] if f in unknown else original[f])  # known facts are not prompted
    summary = json.loads((cfg.run_dir / "paraphrase.summary.json").read_text())
    assert summary == result.summary  # the job's cache entry: the same model, facts and settings


def test_config_block_is_typed():
    from grid.config import ConfigError, parse_config

    cfg = parse_config({"experiment": "x", "paraphrase": {"per_question": 4, "model": "m"}})
    assert cfg.paraphrase.per_question == 4 and cfg.paraphrase.candidates == 20
    assert parse_config({"experiment": "x"}).paraphrase is None
    with pytest.raises(ConfigError, match=r"paraphrase\.per_questions: unknown key"):
        parse_config({"experiment": "x", "paraphrase": {"per_questions": 4}})
    with pytest.raises(ConfigError, match="length_ratio"):
        parse_config({"experiment": "x", "paraphrase": {"length_ratio": [2, 1]}})


# --- the CLI -------------------------------------------------------------------------------------


def test_cli_writes_the_filled_table_and_summary(job, tiny_world, storage, tmp_path, capsys):
    from grid.cli import main
    from grid.data.sources import summary_path
    from grid.data.facts import read_facts, write_facts

    facts, _, result = job
    source = write_facts(facts, tmp_path / "facts.parquet")
    out = tmp_path / "para.parquet"
    argv = ["facts", "paraphrase", str(source), str(out), "--model", str(tiny_world), "--per-question", "3",
            "--candidates", "3", "--engine", "transformers", "--cache-dir", str(storage / "cache")]
    assert main(argv) == 0
    assert "cache hit" in capsys.readouterr().out
    pd.testing.assert_frame_equal(read_facts(out), result.facts.reset_index(drop=True))
    assert json.loads(summary_path(out).read_text()) == result.summary


def test_cli_names_file_row_and_field_of_bad_input(tmp_path, capsys):
    from grid.cli import main

    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"fact_id": ["a", "b"], "question": ["Who wrote Oru?", " "], "aliases": [["Mira"], ["Vost"]]}).to_parquet(bad)
    out = tmp_path / "out.parquet"
    assert main(["facts", "paraphrase", str(bad), str(out), "--model", "m"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "row 1" in err and "'question'" in err
    assert not out.exists()
    assert main(["facts", "paraphrase", str(bad), str(out), "--model", "m", "--per-question", "0"]) == 2
    assert "per_question" in capsys.readouterr().err
