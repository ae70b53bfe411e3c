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
