"""Fact corpora from real sources (grid/data/sources.py, grid/data/dbpedia.py): small files built here."""
from __future__ import annotations

import bz2
import gzip
import json
import random
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from grid.cli import main
from grid.data.reading import SourceConfig
from grid.data.sources import CorpusConfig, import_facts, load_corpus, load_exemplars, summary_path
from grid.data.dbpedia import SHIPPED_TEMPLATES, question_templates
from grid.data.facts import FactError, read_facts


def jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def trivia_row(qid: str, question: str, value: str, aliases: list[str]) -> dict:
    """A row of TriviaQA's rc config, as the Hugging Face dataset has it."""
    return {
        "question": question,
        "question_id": qid,
        "question_source": "http://www.quiz-zone.co.uk/",
        "entity_pages": {"doc_source": ["TagMe"], "filename": ["x.txt"], "title": ["X"], "wiki_context": ["..."]},
        "search_results": {"description": ["..."], "filename": ["y.txt"], "rank": [0], "title": ["Y"],
                           "url": ["http://y"], "search_context": ["..."]},
        "answer": {"aliases": aliases, "normalized_aliases": [a.lower() for a in aliases],
                   "matched_wiki_entity_name": "", "normalized_matched_wiki_entity_name": "",
                   "normalized_value": value.lower(), "type": "WikipediaEntity", "value": value},
    }


TRIVIA = [
    trivia_row("tc_33", "Which Lloyd Webber musical premiered in the US on 10th December 1993?",
               "Sunset Boulevard", ["Sunset Blvd", "West Sunset Boulevard", "Sunset Boulevard", ""]),
    trivia_row("tc_40", "Who was the man behind The Chipmunks?", "David Seville", ["David Seville"]),
]


# --- table sources ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "parquet"])
def test_triviaqa_rc_rows_load_as_they_are(tmp_path, fmt):
    if fmt == "jsonl":
        path = jsonl(tmp_path / "trivia.jsonl", TRIVIA)
    elif fmt == "jsonl.gz":
        path = tmp_path / "trivia.jsonl.gz"
        path.write_bytes(gzip.compress(jsonl(tmp_path / "plain.jsonl", TRIVIA).read_bytes()))
    else:
        path = tmp_path / "trivia.parquet"
        pd.DataFrame(TRIVIA).to_parquet(path)
    df, summary = load_corpus(SourceConfig.from_path(path))
    assert list(df.fact_id) == ["tc_33", "tc_40"]
    first = df.iloc[0]
    assert first.aliases[0] == "Sunset Boulevard"  # value first: it is the training target
    assert {"Sunset Blvd", "west sunset boulevard"} <= set(first.aliases)
    assert "" not in first.aliases  # docs/protocol.md §1: empty aliases removed
    assert summary.rows_read == summary.kept == 2 and not summary.skipped
    assert summary.ignored_columns == ["entity_pages", "question_source", "search_results"]


def test_csv_with_column_mapping_and_list_cells(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(
        "prompt,gold,rel,pop,para\n"
        'Capital of France?,"[""Paris"", """", ""City of Light""]",capital,head,"[""France\'s capital?""]"\n'
        "Who wrote Hamlet?,Shakespeare,author,tail,\n"
    )
    cfg = SourceConfig.from_path(path, columns={"question": "prompt", "aliases": "gold", "relation": "rel",
                                                "popularity": "pop", "paraphrases": "para"})
    df, _ = load_corpus(cfg)
    assert list(df.fact_id) == ["mine-2", "mine-3"]  # no id column: file stem and line
    assert df.aliases[0] == ["Paris", "City of Light"]
    assert df.paraphrases[0] == ["France's capital?"] and df.paraphrases[1] == []
    assert list(df.popularity) == ["head", "tail"] and list(df.relation) == ["capital", "author"]


def test_paper_hf_dataset_layout_keeps_category(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({
        "question": ["What genre does Queen belong to?", "Who starred in Alien?"],
        "answer": [[{"aliases": ["Rock music", "rock"], "normalized_aliases": ["rock music"]}],
                   [{"aliases": ["Sigourney Weaver"], "normalized_aliases": ["sigourney weaver"]}]],
        "para": [["Queen plays which genre?", ""], ["Alien starred whom?"]],
        "Category": ["HighlyKnown", "Unknown"],
    })
    folder = tmp_path / "paper_data"
    datasets.DatasetDict({"full": ds}).save_to_disk(str(folder))
    cfg = SourceConfig.from_path(folder)
    assert cfg.source == "hf_dataset"
    df, summary = load_corpus(cfg)
    assert list(df.fact_id) == ["paper_data-0", "paper_data-1"]
    assert df.aliases[0] == ["Rock music", "rock", "rock music"]
    assert df.paraphrases[0] == ["Queen plays which genre?"]
    assert list(df.reference_category) == ["HighlyKnown", "Unknown"]
    assert summary.kept == 2
    with pytest.raises(FactError, match="no split 'test'"):
        load_corpus(SourceConfig.from_path(folder, split="test"))


def test_import_writes_facts_and_summary(tmp_path, capsys):
    src = jsonl(tmp_path / "trivia.jsonl", TRIVIA + [{"question": "", "answer": "x"}])
    out = tmp_path / "run" / "facts.parquet"
    summary = import_facts(SourceConfig.from_path(src, on_error="skip"), out)
    facts = read_facts(out)
    assert list(facts.fact_id) == ["tc_33", "tc_40"]
    stored = json.loads(summary_path(out).read_text())
    assert stored == summary.to_dict()
    assert stored["skipped"] == {"question": 1}
    assert stored["examples"] == [{"file": str(src), "row": 3, "field": "question",
                                   "reason": "missing (column 'question')"}]
    printed = capsys.readouterr().out
    assert "3 rows read, 2 facts kept, 1 skipped" in printed and "row 3" in printed


def test_exemplar_pool_through_the_same_loaders(tmp_path):
    pool = jsonl(tmp_path / "pool.jsonl", TRIVIA)
    cfg = CorpusConfig(exemplars={"source": "jsonl", "path": str(pool)})
    assert cfg.source == "world"
    assert list(load_exemplars(cfg).question) == [r["question"] for r in TRIVIA]
    with pytest.raises(ValueError, match="exemplars is not set"):
        load_exemplars(CorpusConfig())
    with pytest.raises(ValueError, match="micro-world"):
        load_corpus(CorpusConfig())


def test_source_from_path(tmp_path):
    guess = lambda name, **kw: SourceConfig.from_path(tmp_path / name, **kw).source  # noqa: E731
    assert guess("a.jsonl") == "jsonl" and guess("a.jsonl.gz") == "jsonl"
    assert guess("a.csv") == "csv" and guess("a.parquet") == "parquet"
    assert guess("mappingbased_objects_en.ttl.bz2") == "dbpedia"  # the shipped templates by default
    assert guess("a.txt", source="csv") == "csv"
    with pytest.raises(ValueError, match="cannot tell the source"):
        guess("a.txt")
    with pytest.raises(ValidationError, match="dbpedia settings apply to source 'dbpedia', not to source 'jsonl'"):
        guess("a.jsonl", dbpedia={"per_relation": 5})
    with pytest.raises(ValidationError, match=r"dbpedia.domains\n.*a domains file is .json, .owl, .nt"):
        guess("dump.nt", dbpedia={"domains": "ontology.ttl"})


# --- bad input: an error naming file, row and field, or skipped and counted -----------------

GOOD = {"question": "Who wrote Hamlet?", "answer": "Shakespeare"}
BAD_JSONL = {
    "malformed line": (b'{"question": "Q?", "answer": \n', "(line)"),
    "not an object": (b'["Q?", "A"]\n', "(line)"),
    "missing question": (b'{"answer": "A"}\n', "question"),
    "missing answer": (b'{"question": "Q?"}\n', "aliases"),
    "no usable alias": (b'{"question": "Q?", "answer": ["", "  "]}\n', "aliases"),
    "answer object without answers": (b'{"question": "Q?", "answer": {"type": "WikipediaEntity"}}\n', "aliases"),
    "undecodable bytes": (b'{"question": "Caf\xe9 au lait?", "answer": "A"}\n', "question"),
    "bad popularity": (b'{"question": "Q?", "answer": "A", "popularity": "famous"}\n', "popularity"),
}


@pytest.mark.parametrize("case", list(BAD_JSONL))
def test_bad_jsonl_rows(tmp_path, case):
    line, field = BAD_JSONL[case]
    path = tmp_path / "facts.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n\n" + line)  # the bad row is on line 3
    with pytest.raises(FactError) as err:
        load_corpus(SourceConfig.from_path(path))
    assert (err.value.source, err.value.row, err.value.field) == (str(path), 3, field)
    assert f"{path}: row 3: field '{field}'" in str(err.value)
    df, summary = load_corpus(SourceConfig.from_path(path, on_error="skip"))
    assert len(df) == 1 and summary.rows_read == 2 and summary.skipped == {field: 1}
    assert summary.examples[0]["row"] == 3


def test_duplicate_fact_ids(tmp_path):
    path = jsonl(tmp_path / "facts.jsonl", [dict(GOOD, id="f1"), dict(GOOD, id="f2"), dict(GOOD, id="f1")])
    with pytest.raises(FactError, match=r"row 3: field 'fact_id': duplicate id 'f1' \(first at row 1\)"):
        load_corpus(SourceConfig.from_path(path))
    df, summary = load_corpus(SourceConfig.from_path(path, on_error="skip"))
    assert list(df.fact_id) == ["f1", "f2"] and summary.skipped == {"fact_id": 1}


@pytest.mark.parametrize("content, row, field", [
    (b"question,answer\nQ1?,A\nQ2?,B,extra\n", 3, "(line)"),
    (b"question,answer\nQ1?,A\n\xff\xfe?,B\n", 3, "question"),
    (b'question,answer\nQ1?,A\n"multi\nline?","[""A"", ""B"""\n', 3, "aliases"),  # cell JSON cut short
])
def test_bad_csv_rows(tmp_path, content, row, field):
    path = tmp_path / "facts.csv"
    path.write_bytes(content)
    with pytest.raises(FactError) as err:
        load_corpus(SourceConfig.from_path(path))
    assert (err.value.row, err.value.field) == (row, field)
    _, summary = load_corpus(SourceConfig.from_path(path, on_error="skip"))
    assert summary.kept == 1 and summary.skipped == {field: 1}


def test_unknown_columns_in_a_mapping(tmp_path):
    path = tmp_path / "facts.parquet"
    pd.DataFrame([GOOD]).to_parquet(path)
    with pytest.raises(FactError, match=r"facts.parquet: row -: field 'domain': mapped column 'dom' is not in"):
        load_corpus(SourceConfig.from_path(path, columns={"domain": "dom"}, on_error="skip"))
    src = jsonl(tmp_path / "facts.jsonl", [GOOD])
    with pytest.raises(FactError, match="field 'domain': mapped column 'dom'"):
        load_corpus(SourceConfig.from_path(src, columns={"domain": "dom"}))
    with pytest.raises(ValidationError, match="unknown field 'answer' in columns"):
        SourceConfig.from_path(src, columns={"answer": "gold"})


def test_nothing_loaded_is_an_error(tmp_path):
    path = jsonl(tmp_path / "facts.jsonl", [{"question": "Q?"}])
    with pytest.raises(FactError, match=r"no facts loaded \(1 rows read, 1 skipped"):
        load_corpus(SourceConfig.from_path(path, on_error="skip"))


# --- DBpedia ----------------------------------------------------------------------------------

RES, ONT = "http://dbpedia.org/resource/", "http://dbpedia.org/ontology/"


def triple(s: str, p: str, o: str) -> str:
    return f"<{RES}{s}> <{p if '/' in p else ONT + p}> <{RES}{o}> .\n"


def dump_lines() -> list[str]:
    """Queen (band) is the head entity, Jazz the torso one, everything else tail.

    Triple mass (degree): Queen 34, Jazz 31, 29 entities with 1: total 94, so Jazz starts
    after 34/94 (torso) and the single entities after 65/94 (tail).
    """
    lines = [triple("Queen_(band)", f"http://example.org/link{i}", "Jazz") for i in range(20)]
    lines += [triple(f"Fan_{i}", "http://example.org/fanOf", "Queen_(band)") for i in range(10)]
    lines += [triple("Queen_(band)", "genre", "Rock_music"), triple("Queen_(band)", "genre", "Pop_music"),
              triple("Queen_(band)", "recordLabel", "EMI"), triple("Jazz", "genre", "Music"),
              triple("Brian_May", "associatedMusicalArtist", "Queen_(band)"),
              triple("Bj%C3%B6rk", "recordLabel", "One_Little_Indian_Records"),
              triple("AC/DC", "recordLabel", "Atlantic_Records")]
    lines += [triple(f"Band_{i}", "genre", "Jazz") for i in range(10)]
    return lines


def write_dump(path: Path, lines: list[str], extra: bytes = b"") -> Path:
    with bz2.open(path, "wb") as f:
        f.write(b"# a comment\n" + "".join(lines).encode() + extra)
    return path


def dbpedia_cfg(path: Path, tmp_path: Path, **kw) -> SourceConfig:
    domains = tmp_path / "domains.json"
    domains.write_text(json.dumps({f"<{ONT}genre>": "music", f"{ONT}recordLabel": "music business"}))
    db = {"domains": str(domains), "per_relation": 3, **kw.pop("db", {})}
    return SourceConfig.from_path(path, dbpedia=db, **kw)


def test_dbpedia_bz2_dump_to_questions(tmp_path):
    cfg = dbpedia_cfg(write_dump(tmp_path / "objects.ttl.bz2", dump_lines()), tmp_path)
    assert cfg.source == "dbpedia"
    df, summary = load_corpus(cfg)
    by_q = df.set_index("question")
    queen = by_q.loc["What genre does Queen (band) belong to?"]
    assert queen.aliases == ["Rock music", "Pop music"]  # one question, every object an answer
    assert (queen.popularity, queen.domain, queen.relation) == ("head", "music", ONT + "genre")
    assert by_q.loc["What genre does Jazz belong to?"].popularity == "torso"
    may = by_q.loc["Which musical artist is associated with Brian May?"]
    assert may.aliases == ["Queen", "Queen (band)"] and may.popularity == "tail" and pd.isna(may.domain)
    assert by_q.loc["Which record label produced Björk?"].aliases == ["One Little Indian Records"]
    assert by_q.loc["Which record label produced AC/DC?"].subject == "AC/DC"
    tail_genre = df[(df.relation == ONT + "genre") & (df.popularity == "tail")]
    assert len(tail_genre) == 3  # K = 3 of the 10 tail bands
    assert len(df) == 9 and df.fact_id.str.startswith("dbp-").all()
    assert summary.rows_read == 47 and summary.notes["triples_without_template"] == 30
    assert summary.notes["questions_per_bin"] == {"head": 2, "torso": 1, "tail": 6}
    assert summary.notes["templates"] == str(SHIPPED_TEMPLATES)
    assert summary.notes["relations_without_domain"] == 1  # the JSON names genre and recordLabel only
    assert summary.notes["relations_without_domain_list"] == [ONT + "associatedMusicalArtist"]


def test_dbpedia_draw_is_seeded_and_independent_of_line_order(tmp_path):
    lines = dump_lines()
    first, _ = load_corpus(dbpedia_cfg(write_dump(tmp_path / "a.nt.bz2", lines), tmp_path))
    random.Random(1).shuffle(lines)
    shuffled, _ = load_corpus(dbpedia_cfg(write_dump(tmp_path / "b.nt.bz2", lines), tmp_path))
    other_seed, _ = load_corpus(dbpedia_cfg(tmp_path / "a.nt.bz2", tmp_path, db={"seed": 1}))
    assert set(first.fact_id) == set(shuffled.fact_id)
    assert set(first.fact_id) != set(other_seed.fact_id)


@pytest.mark.parametrize("extra, field, reason", [
    (b"<http://dbpedia.org/resource/X> <http://dbpedia.org/ontology/genre> \"a literal\"@en .\n", "object",
     "not an IRI <...>: '\"a literal\"@en'"),
    (b"<http://dbpedia.org/resource/X> dbo:genre <http://dbpedia.org/resource/Y> .\n", "relation",
     "not an IRI <...>: 'dbo:genre'"),
    (b"_:b0 <http://dbpedia.org/ontology/genre> <http://dbpedia.org/resource/Y> .\n", "subject",
     "not an IRI <...>: '_:b0'"),
    (b"<http://dbpedia.org/resource/X> <http://dbpedia.org/ontology/genre> .\n", "object", "missing"),
    (b"<http://dbpedia.org/resource/X> <http://dbpedia.org/ontology/genre> <http://dbpedia.org/resource/Y>\n",
     "(line)", "does not end with ' .'"),
    (b"<http://dbpedia.org/resource/Caf\xe9> <http://dbpedia.org/ontology/genre> <http://dbpedia.org/resource/Y> .\n",
     "subject", "undecodable bytes"),
    (b"<http://dbpedia.org/resource/Z> <http://dbpedia.org/ontology/language> <http://dbpedia.org/resource/%FF> .\n",
     "object", "percent-encoding that is not UTF-8"),
])
def test_bad_dbpedia_lines(tmp_path, extra, field, reason):
    path = write_dump(tmp_path / "objects.ttl.bz2", dump_lines(), extra)
    with pytest.raises(FactError) as err:
        load_corpus(dbpedia_cfg(path, tmp_path))
    assert (err.value.source, err.value.row, err.value.field) == (str(path), 49, field)
    assert str(err.value).startswith(f"{path}: row 49: field '{field}': {reason}")
    df, summary = load_corpus(dbpedia_cfg(path, tmp_path, on_error="skip"))
    assert len(df) == 9 and summary.skipped == {field: 1} and summary.examples[0]["row"] == 49


def test_dbpedia_template_without_subject(tmp_path):
    templates = tmp_path / "templates.json"
    templates.write_text(json.dumps({f"<{ONT}genre>": "What genre is this?"}))
    path = write_dump(tmp_path / "objects.nt.bz2", dump_lines())
    with pytest.raises(FactError, match=f"field '{ONT}genre': a template needs one '_'"):
        load_corpus(SourceConfig.from_path(path, dbpedia={"templates": str(templates)}))
    bad_value = tmp_path / "bad_value.json"
    bad_value.write_text(json.dumps({f"<{ONT}genre>": "What genre does _ play?", f"<{ONT}team>": ["Which team?"]}))
    with pytest.raises(FactError, match=f"bad_value.json: row -: field '{ONT}team': expected text, got list"):
        question_templates(bad_value)


def test_shipped_templates_are_package_data():
    assert SHIPPED_TEMPLATES.is_file()
    templates = question_templates(None)
    assert len(templates) == 435 and all(t.count("_") == 1 for t in templates.values())
    assert templates[ONT + "genre"] == "What genre does _ belong to?"
    readme = (SHIPPED_TEMPLATES.parent / "README.md").read_text()
    assert "facebookresearch/head-to-tail" in readme and "CC BY-NC 4.0" in readme


# A DBpedia ontology excerpt, written as the public dbpedia_*.owl writes it: genre has a
# range only (the domain falls back to it), recordLabel a relative domain (xml:base) and a
# range, associatedMusicalArtist a union of classes (no single class: no domain).
OWL = f"""<?xml version="1.0" encoding="UTF-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#"
         xmlns:owl="http://www.w3.org/2002/07/owl#"
         xml:base="{ONT}">
  <owl:Class rdf:about="{ONT}Artist"><rdfs:label xml:lang="en">artist</rdfs:label></owl:Class>
  <owl:ObjectProperty rdf:about="{ONT}genre">
    <rdfs:label xml:lang="en">genre</rdfs:label>
    <rdfs:range rdf:resource="{ONT}MusicGenre"/>
  </owl:ObjectProperty>
  <owl:ObjectProperty rdf:about="recordLabel">
    <rdfs:range><owl:Class rdf:about="{ONT}RecordLabel"/></rdfs:range>
    <rdfs:domain rdf:resource="Artist"/>
  </owl:ObjectProperty>
  <owl:ObjectProperty rdf:about="{ONT}associatedMusicalArtist">
    <rdfs:domain><owl:Class><owl:unionOf rdf:parseType="Collection">
      <owl:Class rdf:about="{ONT}Artist"/><owl:Class rdf:about="{ONT}Band"/>
    </owl:unionOf></owl:Class></rdfs:domain>
  </owl:ObjectProperty>
</rdf:RDF>
"""
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
NT = f"""# the same ontology as N-Triples
<{ONT}genre> <{RDFS}label> "genre"@en .
<{ONT}genre> <{RDFS}range> <{ONT}MusicGenre> .
<{ONT}recordLabel> <{RDFS}range> <{ONT}RecordLabel> .
<{ONT}recordLabel> <{RDFS}domain> <{ONT}Artist> .
<{ONT}associatedMusicalArtist> <{RDFS}domain> _:union1 .
_:union1 <http://www.w3.org/2002/07/owl#unionOf> _:list1 .
"""


def write_ontology(path: Path, content: str) -> Path:
    compress = {".bz2": bz2.compress, ".gz": gzip.compress}.get(path.suffix, lambda data: data)
    path.write_bytes(compress(content.encode()))
    return path


@pytest.mark.parametrize("name, content", [("dbpedia_2016-10.owl", OWL), ("ontology.nt", NT),
                                           ("ontology.nt.gz", NT), ("dbpedia.owl.bz2", OWL)])
def test_dbpedia_domains_from_an_ontology(tmp_path, name, content):
    ontology = write_ontology(tmp_path / name, content)
    path = write_dump(tmp_path / "objects.ttl.bz2", dump_lines())
    df, summary = load_corpus(dbpedia_cfg(path, tmp_path, db={"domains": str(ontology)}))
    domain = df.groupby("relation").domain.agg(lambda d: set(d))
    assert domain[ONT + "genre"] == {ONT + "MusicGenre"}  # no rdfs:domain: the range
    assert domain[ONT + "recordLabel"] == {ONT + "Artist"}  # rdfs:domain first
    assert domain[ONT + "associatedMusicalArtist"] == {None}  # empty, and counted
    assert summary.notes["domains"] == str(ontology)
    assert summary.notes["relations_without_domain"] == 1
    assert summary.notes["relations_without_domain_list"] == [ONT + "associatedMusicalArtist"]


@pytest.mark.parametrize("name, content, row, field, reason", [
    ("broken.owl", OWL.replace('"Artist"/>', '"Artist">'), 14, "(xml)", "malformed RDF/XML: mismatched tag"),
    ("broken.nt", NT.replace(f"<{ONT}recordLabel> <{RDFS}domain>", f"<{ONT}recordLabel> rdfs:domain"), 5, "(line)",
     "not an N-Triples statement"),
    ("instances.nt", f"<{RES}Queen_(band)> <{ONT}genre> <{RES}Rock_music> .\n", "-", "domains",
     "no rdfs:domain or rdfs:range statement: not an ontology"),
])
def test_bad_ontology_files(tmp_path, name, content, row, field, reason):
    ontology = write_ontology(tmp_path / name, content)
    path = write_dump(tmp_path / "objects.ttl.bz2", dump_lines())
    with pytest.raises(FactError) as err:
        load_corpus(dbpedia_cfg(path, tmp_path, db={"domains": str(ontology)}))
    assert (err.value.source, err.value.row, err.value.field) == (str(ontology), row, field)
    assert reason in err.value.reason


def test_cli_import_of_a_dbpedia_dump(tmp_path, capsys):
    path = write_dump(tmp_path / "mappingbased-objects_lang=en.ttl.bz2", dump_lines())
    out = tmp_path / "facts.parquet"
    assert main(["facts", "import", str(path), str(out)]) == 0  # the shipped templates, K = 20
    facts, notes = read_facts(out), json.loads(summary_path(out).read_text())["notes"]
    assert len(facts) == 16 and facts.domain.isna().all()  # 12 genre, 3 recordLabel, 1 associatedMusicalArtist
    assert (notes["per_relation"], notes["seed"], notes["domains"]) == (20, 0, None)
    assert "relations_without_domain" not in notes  # no domains asked for: nothing to count

    templates = tmp_path / "templates.json"
    templates.write_text(json.dumps({f"<{ONT}genre>": "Which genre does _ play?"}))
    ontology = write_ontology(tmp_path / "dbpedia.owl", OWL)
    assert main(["facts", "import", str(path), str(out), "--templates", str(templates), "--domains", str(ontology),
                 "--per-relation", "2", "--seed", "1"]) == 0
    facts, notes = read_facts(out), json.loads(summary_path(out).read_text())["notes"]
    assert len(facts) == 4 and facts.question.str.startswith("Which genre does ").all()  # head 1, torso 1, tail 2
    assert set(facts.domain) == {ONT + "MusicGenre"}
    assert (notes["per_relation"], notes["seed"], notes["relations_without_domain"]) == (2, 1, 0)
    assert notes["templates"] == str(templates)

    capsys.readouterr()
    src = jsonl(tmp_path / "trivia.jsonl", TRIVIA)
    assert main(["facts", "import", str(src), str(out), "--per-relation", "2"]) == 2
    assert "dbpedia settings apply to source 'dbpedia', not to source 'jsonl'" in capsys.readouterr().err
