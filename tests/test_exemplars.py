"""The paper's exemplar pool from TriviaQA rows, and the paper's released data into
`kgrid categorize` (grid/data/sources.py, grid/cli.py, scripts/fetch_paper_data.py).
Every input is a few rows built here in the shape of the real dataset."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from grid.cli import main
from grid.data.reading import SourceConfig
from grid.data.sources import CorpusConfig, load_exemplars, write_exemplars
from grid.data.facts import FactError, normalize_answer
from grid.data.prompts import PromptConfig, build_prompts

ROOT = Path(__file__).resolve().parents[1]


def trivia_row(i: int, value: str, aliases: list[str], normalized: list[str]) -> dict:
    """A row of TriviaQA's rc train split as the Hugging Face dataset has it (contexts shortened)."""
    return {
        "question": f"Trivia question {i}?",
        "question_id": f"tc_{i}",
        "question_source": "http://www.quiz-zone.co.uk/",
        "entity_pages": {"doc_source": ["TagMe"], "filename": ["x.txt"], "title": ["X"], "wiki_context": ["..."]},
        "search_results": {"description": ["..."], "filename": ["y.txt"], "rank": [0], "title": ["Y"],
                           "url": ["http://y"], "search_context": ["..."]},
        "answer": {"aliases": aliases, "normalized_aliases": normalized, "matched_wiki_entity_name": "",
                   "normalized_matched_wiki_entity_name": "", "normalized_value": normalize_answer(value),
                   "type": "WikipediaEntity", "value": value},
    }


# TriviaQA's normalized_aliases are not in the order of its aliases: the first one is
# not the normalized value (row 0), which is why the pool keeps the field as given.
TRIVIA = [
    trivia_row(0, "Sinclair Lewis", ["(Harry) Sinclair Lewis", "Sinclair Lewis", "Lewis, Sinclair"],
               ["harry sinclair lewis", "sinclair lewis", "lewis sinclair"]),
    trivia_row(1, "The Beatles", ["The Beatles", "Beatles"], ["beatles"]),
    trivia_row(2, "U.S.A.", ["U.S.A.", "United States"], ["u s", "united states"]),
    trivia_row(3, "Everest", ["Mount Everest", "Everest"], ["mount everest", "everest"]),
    trivia_row(4, "Paris", ["Paris"], ["paris"]),
]


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def trivia_source(tmp_path: Path, fmt: str) -> Path:
    if fmt == "jsonl":
        return jsonl(tmp_path / "train.jsonl", TRIVIA)
    if fmt == "parquet":
        path = tmp_path / "train.parquet"
        pd.DataFrame(TRIVIA).to_parquet(path)
        return path
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "trivia_qa_rc"
    rows = datasets.Dataset.from_list(TRIVIA)
    datasets.DatasetDict({"train": rows, "validation": rows.select([4])}).save_to_disk(str(folder))
    return folder


def test_normalize_answer_as_triviaqa_does():
    assert normalize_answer("The Beatles") == "beatles"
    assert normalize_answer("(Harry) Sinclair Lewis") == "harry sinclair lewis"
    assert normalize_answer("Lewis, Sinclair") == "lewis sinclair"
    assert normalize_answer("U.S.A.") == "u s"  # an article letter alone ("a") is dropped
    assert normalize_answer("Rock_and_Roll’s  an Era") == "rock and roll s era"
    assert normalize_answer("Théâtre") == "théâtre"  # letters outside ASCII are kept


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "hf_dataset"])
def test_facts_exemplars_takes_the_first_rows_with_both_answer_fields(tmp_path, fmt, capsys):
    src = trivia_source(tmp_path, fmt)
    out = tmp_path / "pool" / "triviaqa-exemplars.jsonl"
    assert main(["facts", "exemplars", str(src), str(out), "--rows", "4"]) == 0
    assert "wrote" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["fact_id"] for r in rows] == ["tc_0", "tc_1", "tc_2", "tc_3"]  # file order, row 4 left out
    assert rows[0] == {
        "fact_id": "tc_0",
        "question": "Trivia question 0?",
        "aliases": ["Sinclair Lewis", "(Harry) Sinclair Lewis", "Lewis, Sinclair"],  # value first
        "normalized_aliases": ["harry sinclair lewis", "sinclair lewis", "lewis sinclair"],  # as given
    }


def test_the_pool_loads_and_a_shot_shows_the_chosen_answer(tmp_path):
    pool = write_exemplars(trivia_source(tmp_path, "jsonl"), tmp_path / "pool.parquet", rows=4)
    ex = load_exemplars(CorpusConfig(exemplars=SourceConfig.from_path(pool)))
    assert list(ex.normalized_aliases[0]) == ["harry sinclair lewis", "sinclair lewis", "lewis sinclair"]
    facts = pd.DataFrame({"fact_id": ["f"], "question": ["Who?"], "aliases": [["Ann"]]})

    def shots(answer):
        messages = build_prompts(facts, ex, PromptConfig(sets=1, shots=4, exemplar_answer=answer)).messages[0]
        return [m["content"] for m in messages if m["role"] == "assistant"]

    assert shots("normalized_alias") == ["Answer: harry sinclair lewis", "Answer: beatles", "Answer: u s",
                                         "Answer: mount everest"]
    assert shots("first_alias") == ["Answer: Sinclair Lewis", "Answer: The Beatles", "Answer: U.S.A.", "Answer: Everest"]


def test_raw_triviaqa_rows_and_plain_pools_carry_normalized_aliases(tmp_path):
    # Raw rows: TriviaQA's own field, from the answer object.
    raw = load_exemplars(CorpusConfig(exemplars={"source": "jsonl", "path": str(jsonl(tmp_path / "raw.jsonl", TRIVIA))}))
    assert list(raw.normalized_aliases[2]) == ["u s", "united states"]
    # A pool with answers only: TriviaQA's normalizer on each alias.
    plain = jsonl(tmp_path / "plain.jsonl", [{"question": "Who led the Beatles?", "aliases": ["The Beatles", "Beatles!"]}])
    ex = load_exemplars(CorpusConfig(exemplars={"source": "jsonl", "path": str(plain)}))
    assert list(ex.normalized_aliases[0]) == ["beatles"]
    with pytest.raises(ValueError, match="on_error must be 'raise'.*shift every later set"):
        load_exemplars(CorpusConfig(exemplars={"source": "jsonl", "path": str(plain), "on_error": "skip"}))


def test_a_pool_row_without_normalized_aliases_is_named(tmp_path):
    rows = [{"question": "Q1?", "aliases": ["A"], "normalized_aliases": ["a1"]},
            {"question": "Q2?", "aliases": ["B"], "normalized_aliases": []}]
    pool = jsonl(tmp_path / "pool.jsonl", rows)
    with pytest.raises(FactError, match=rf"{pool}: row 2: field 'normalized_aliases': missing or empty"):
        load_exemplars(CorpusConfig(exemplars=SourceConfig.from_path(pool)))


@pytest.mark.parametrize("change, row, field", [
    (lambda r: r["answer"].pop("normalized_aliases"), 3, "answer.normalized_aliases"),
    (lambda r: r["answer"].update(value=""), 3, "answer.value"),
    (lambda r: r.update(answer="Everest"), 3, "answer"),
    (lambda r: r.update(question=None), 3, "question"),
])
def test_bad_triviaqa_rows_name_file_row_and_field(tmp_path, change, row, field):
    rows = json.loads(json.dumps(TRIVIA))
    change(rows[2])
    src = jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(FactError) as err:
        write_exemplars(src, tmp_path / "pool.jsonl", rows=4)
    assert (err.value.source, err.value.row, err.value.field) == (str(src), row, field)


def test_too_few_rows_and_a_bad_source_are_errors(tmp_path, capsys):
    src = jsonl(tmp_path / "train.jsonl", TRIVIA)
    with pytest.raises(FactError, match=r"5 rows, the pool needs 40"):
        write_exemplars(src, tmp_path / "pool.jsonl")
    assert main(["facts", "exemplars", str(src), str(tmp_path / "pool.jsonl")]) == 2
    assert "5 rows, the pool needs 40" in capsys.readouterr().err
    csv = tmp_path / "train.csv"
    csv.write_text("question,answer\nQ?,A\n")
    with pytest.raises(ValueError, match="not csv"):
        write_exemplars(csv, tmp_path / "pool.jsonl", rows=1)


# --- the released dataset, into `kgrid categorize` --------------------------------------------


def released_rows() -> dict:
    """A few rows in the shape of the paper's released DBpedia questions (split `full`)."""
    return {
        "question": ["What genre does Queen belong to?", "Who starred in Alien?", "Where is Lund?", "Who wrote Oru?"],
        "answer": [[{"aliases": ["Rock music"], "normalized_aliases": ["rock music"]}],
                   [{"aliases": ["Sigourney Weaver"], "normalized_aliases": ["sigourney weaver"]}],
                   [{"aliases": ["Sweden"], "normalized_aliases": ["sweden"]}],
                   [{"aliases": ["Mira Vost"], "normalized_aliases": ["mira vost"]}]],
        "para": [["Queen plays which genre?"], ["Alien starred whom?"], ["Lund lies where?"], ["Oru's author?"]],
        "Category": ["HighlyKnown", "Unknown", "MaybeKnown", "Unknown"],
    }


def test_categorize_leads_with_agreement_against_the_released_labels(tmp_path, monkeypatch, capsys):
    datasets = pytest.importorskip("datasets")
    from grid.categorize import Categorization

    data = tmp_path / "data"
    datasets.DatasetDict({"full": datasets.Dataset.from_dict(released_rows())}).save_to_disk(str(data / "released"))
    pool = write_exemplars(trivia_source(tmp_path, "jsonl"), data / "triviaqa-exemplars.jsonl", rows=4)
    corpus = yaml.safe_load((ROOT / "configs/paper.yaml").read_text())["corpus"]  # the paper's column mapping
    corpus["path"], corpus["exemplars"]["path"] = str(data / "released"), str(pool)
    config = tmp_path / "paper.yaml"
    config.write_text(yaml.safe_dump({"experiment": "paper", "storage": str(tmp_path / "runs"), "corpus": corpus,
                                      "model": {"name": "meta-llama/Meta-Llama-3.1-8B-Instruct"},
                                      "prompts": {"sets": 1, "shots": 4}}))

    measured = ["HighlyKnown", "Unknown", "Unknown", "HighlyKnown"]  # agrees on facts 0 and 1: 2 of 4

    def categorize_base(run):
        assert list(run.facts.reference_category) == released_rows()["Category"]
        assert list(run.facts.paraphrases[0]) == ["Queen plays which genre?"]
        assert list(run.exemplars.normalized_aliases[1]) == ["beatles"]
        cats = pd.DataFrame({"fact_id": run.facts.fact_id, "category": measured, "p_greedy": [1.0, 0, 0, 1.0],
                             "p_sample": 0.0, "refused": False, "refused_paper": False})
        return Categorization(generations=pd.DataFrame(), categories=cats, key="k", cached=False)

    monkeypatch.setattr("grid.run.Run.categorize_base", categorize_base)
    monkeypatch.setattr("grid.cli.connect", lambda *a, **k: None)
    # No Ray here, so no generator actors to ask which engine they run (grid/generate.py actors_platform).
    monkeypatch.setattr("grid.cli.resolved_engine", lambda engine: {})
    assert main(["categorize", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.index("agreement with reference_category: 0.500 of 4 labelled facts") < out.index("categories of 4 facts")
    table = out[out.index("labelled facts"): out.index("categories of")]
    assert "MaybeKnown" in table and "0.500" in table


# --- scripts/fetch_paper_data.py: its parts that need no network ------------------------------


def fetch_script():
    spec = importlib.util.spec_from_file_location("fetch_paper_data", ROOT / "scripts" / "fetch_paper_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fetch_script_checks_the_download_against_the_config():
    fetch = fetch_script()
    corpus = CorpusConfig.model_validate(yaml.safe_load((ROOT / "configs/paper.yaml").read_text())["corpus"])
    fetch.check_released({"full": list(released_rows())}, corpus)  # the shape the config expects
    with pytest.raises(SystemExit, match="splits train, the config reads corpus.split 'full'"):
        fetch.check_released({"train": list(released_rows())}, corpus)
    with pytest.raises(SystemExit, match=r"maps reference_category: Category, but split 'full' has columns question, answer, para, label"):
        fetch.check_released({"full": ["question", "answer", "para", "label"]}, corpus)


def test_fetch_script_keeps_the_first_triviaqa_rows_in_order(tmp_path):
    fetch = fetch_script()
    head = fetch.trivia_head(iter(TRIVIA), 4)
    assert [r["question_id"] for r in head] == ["tc_0", "tc_1", "tc_2", "tc_3"]
    assert set(head[0]) == {"question", "question_id", "answer"}  # contexts dropped
    with pytest.raises(SystemExit, match="gave 5 rows, the pool needs 40"):
        fetch.trivia_head(iter(TRIVIA), 40)
    # What it writes is what `kgrid facts exemplars` reads.
    rows = fetch.write_jsonl(head, tmp_path / "head.jsonl")
    pool = pd.read_json(write_exemplars(rows, tmp_path / "pool.jsonl", rows=4), lines=True)
    assert list(pool.fact_id) == ["tc_0", "tc_1", "tc_2", "tc_3"]
