import json

import pandas as pd
import pytest

from grid.data.facts import COLUMNS, FactError, read_facts, validate_facts, write_facts


def frame(**over):
    rows = [
        {"fact_id": "a", "question": "Where was Ada born?", "aliases": ["Lund", " ", "lund"]},
        {"fact_id": "b", "question": "Who wrote Oru?", "aliases": ["Mira Vost"], "paraphrases": ["Oru was written by whom?"]},
    ]
    for k, v in over.items():
        rows[1][k] = v
    return pd.DataFrame(rows)


def test_round_trip_keeps_schema_and_cleans_aliases(tmp_path):
    path = write_facts(frame(popularity="head"), tmp_path / "f.parquet")
    back = read_facts(path)
    assert tuple(back.columns) == COLUMNS
    assert back.loc[0, "aliases"] == ["Lund", "lund"]  # the blank alias is gone, case variants kept
    assert back.loc[1, "paraphrases"] == ["Oru was written by whom?"]
    assert back.loc[0, "paraphrases"] == []


@pytest.mark.parametrize(
    "over, field",
    [
        ({"question": ""}, "question"),
        ({"aliases": ["", "  "]}, "aliases"),
        ({"aliases": "Mira"}, "aliases"),
        ({"fact_id": "a"}, "fact_id"),
        ({"popularity": "famous"}, "popularity"),
        ({"paraphrases": "Oru was written by whom?"}, "paraphrases"),
    ],
)
def test_bad_rows_name_source_row_and_field(over, field):
    with pytest.raises(FactError) as err:
        validate_facts(frame(**over), "corpus.jsonl")
    assert (err.value.source, err.value.row, err.value.field) == ("corpus.jsonl", 1, field)
    assert "corpus.jsonl: row 1: field" in str(err.value)


def test_unknown_and_missing_columns_are_errors():
    with pytest.raises(FactError, match="field 'answer_text': unknown column"):
        validate_facts(frame().assign(answer_text="x"))
    with pytest.raises(FactError, match="field 'aliases': required column is missing"):
        validate_facts(frame().drop(columns="aliases"))


def test_reference_category_is_kept(tmp_path):
    back = read_facts(write_facts(frame().assign(reference_category=["Unknown", "HighlyKnown"]), tmp_path / "f.parquet"))
    assert list(back["reference_category"]) == ["Unknown", "HighlyKnown"]


def test_normalized_aliases_are_kept_cleaned_and_checked(tmp_path):
    back = read_facts(write_facts(frame().assign(normalized_aliases=[["lund", " "], ["mira vost"]]), tmp_path / "f.parquet"))
    assert list(back["normalized_aliases"]) == [["lund"], ["mira vost"]]
    with pytest.raises(FactError) as err:
        validate_facts(frame().assign(normalized_aliases=[["lund"], "mira vost"]), "corpus.jsonl")
    assert (err.value.row, err.value.field) == (1, "normalized_aliases")


def test_sources_give_normalized_aliases_their_own_or_triviaqa_s_rule(tmp_path):
    from grid.data.reading import SourceConfig
    from grid.data.sources import load_corpus

    rows = [
        # a TriviaQA answer object: its normalized_aliases as given, not in the order of its aliases
        {"question": "Where?", "answer": {"value": "St. Louis", "aliases": ["Saint Louis"],
                                          "normalized_aliases": ["saint louis", "st louis"]}},
        {"question": "Who?", "answer": ["The Beatles", "Beatles!"]},  # none given: the rule's
        {"question": "Which?", "answer": "A"},  # "A" normalizes to nothing: paper mode never finds it
        {"question": "Own?", "answer": "Oslo", "normalized_aliases": ["oslo city"]},  # a column of its own
    ]
    path = tmp_path / "facts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    facts, _ = load_corpus(SourceConfig.from_path(path))
    assert list(facts["aliases"][0]) == ["St. Louis", "Saint Louis", "saint louis", "st louis"]
    assert list(facts["normalized_aliases"]) == [["saint louis", "st louis"], ["beatles"], [], ["oslo city"]]
    path.write_text(json.dumps({"question": "Q?", "answer": {"value": "X", "normalized_aliases": [" "]}}) + "\n")
    with pytest.raises(FactError, match=rf"{path}: row 1: field 'normalized_aliases': missing or empty"):
        load_corpus(SourceConfig.from_path(path))


def test_world_facts_carry_normalized_aliases_and_its_pool_none(tiny_world):
    facts, pool = read_facts(tiny_world / "facts.parquet"), read_facts(tiny_world / "exemplars.parquet")
    assert [list(n) for n in facts["normalized_aliases"][:3]] == [
        [" ".join(a.lower().split()) for a in aliases] for aliases in facts["aliases"][:3]
    ]
    assert "normalized_aliases" not in pool.columns  # its shots show the trained spelling
