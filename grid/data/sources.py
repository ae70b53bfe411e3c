"""Fact corpora from real sources: the files users bring, loaded into the fact table.

Sources (`corpus.source`):
  jsonl, csv, parquet  one question per row with its answers (a string, a list of
                       strings or a TriviaQA answer object); real TriviaQA rows load as
                       they are.
  hf_dataset           a `datasets` save_to_disk folder in the layout of the paper's
                       released data (split `full`: question, answer, para, Category).
  dbpedia              a mapping-based objects dump, made into questions (grid/data/dbpedia.py).
  world                the built-in micro-world: generated elsewhere, never loaded here.

A bad row is a FactError naming the file, the row and the field; with
`on_error: skip` it is counted in the LoadSummary instead, which `import_facts`
prints and stores beside the facts, so nothing is dropped silently.
Rows are numbered as the user sees them: line numbers (from 1) in text files,
row indexes (from 0) in parquet and Arrow tables, as pandas and datasets show them.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Container, Iterator

import pandas as pd
import pyarrow as pa

from grid.data.dbpedia import load_dbpedia
from grid.data.facts import (
    POPULARITY,
    FactError,
    clean_aliases,
    normalized_aliases,
    parquet_file,
    validate_facts,
    write_facts,
)
from grid.data.reading import (
    ANSWER_KEYS,
    DEFAULT_COLUMNS,
    LoadSummary,
    RowError,
    SourceConfig,
    open_text,
    shorten,
    text,
)

class CorpusConfig(SourceConfig):
    """`corpus:` in an experiment config."""

    exemplars: SourceConfig | None = None  # the few-shot pool for categorization prompts


# --- table sources: each reader yields (row number, record dict or RowError) ---------------


def _read_jsonl(cfg: SourceConfig) -> Iterator[tuple[int, dict | RowError]]:
    with open_text(cfg.path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                yield line_no, RowError("(line)", f"malformed JSON: {e.msg} at column {e.colno}")
                continue
            yield line_no, rec if isinstance(rec, dict) else RowError(
                "(line)", f"expected a JSON object, got {type(rec).__name__}")


def _read_csv(cfg: SourceConfig) -> Iterator[tuple[int, dict | RowError]]:
    with open_text(cfg.path) as f:
        reader = csv.reader(f)
        header, end = None, 0
        while True:
            start = end + 1  # a quoted cell may span lines: report the line the record starts on
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                end = reader.line_num
                yield start, RowError("(line)", f"malformed CSV: {e}")
                continue
            end = reader.line_num
            if not cells:
                continue
            if header is None:
                header = cells
            elif len(cells) != len(header):
                yield start, RowError("(line)", f"{len(cells)} cells, the header has {len(header)}")
            else:
                yield start, {h: c if c != "" else None for h, c in zip(header, cells, strict=True)}


def _read_parquet(cfg: SourceConfig) -> Iterator[tuple[int, dict | RowError]]:
    row = 0
    for batch in parquet_file(cfg.path).iter_batches(batch_size=4096):
        for rec in batch.to_pylist():
            yield row, rec
            row += 1


def _read_hf_dataset(cfg: SourceConfig) -> Iterator[tuple[int, dict | RowError]]:
    # The save_to_disk layout read with pyarrow, so that loading needs no `datasets`:
    # dataset_dict.json lists the splits; each split folder has state.json naming its
    # Arrow stream files.
    folder = Path(cfg.path)
    if (folder / "dataset_dict.json").exists():
        splits = json.loads((folder / "dataset_dict.json").read_text())["splits"]
        if cfg.split not in splits:
            raise FactError(str(folder), "-", "split", f"no split {cfg.split!r} (splits: {', '.join(splits)})")
        folder = folder / cfg.split
    if not (folder / "state.json").exists():
        raise FactError(str(folder), "-", "path", "not a datasets save_to_disk folder (no state.json)")
    row = 0
    for data_file in json.loads((folder / "state.json").read_text())["_data_files"]:
        with pa.memory_map(str(folder / data_file["filename"])) as arrow:
            for batch in pa.ipc.open_stream(arrow):
                for rec in batch.to_pylist():
                    yield row, rec
                    row += 1


_READERS = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet, "hf_dataset": _read_hf_dataset}


def _column(columns: Container[str], ours: str, cfg: SourceConfig) -> str | None:
    """The source column that holds our field `ours`: the mapped one, else the first default present."""
    if ours in cfg.columns:
        return cfg.columns[ours]
    return next((c for c in DEFAULT_COLUMNS[ours] if c in columns), None)


def _check_mapping(cfg: SourceConfig, columns: set[str]) -> None:
    for ours, theirs in cfg.columns.items():
        if theirs not in columns:
            raise FactError(str(cfg.path), "-", ours, f"mapped column {theirs!r} is not in the source "
                            f"(columns: {', '.join(sorted(columns))})")


def _json_cell(value, field: str, cell: bool):
    """A CSV cell (`cell`) holding a list or object is JSON text: ["a", "b"]."""
    if cell and isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise RowError(field, f"malformed JSON in the cell: {e.msg}") from None
    return value


def _strings(value, field: str, cell: bool) -> list[str]:
    """Answers or paraphrases: a string, a list, or (answers) a TriviaQA answer object."""
    value = _json_cell(value, field, cell)
    if isinstance(value, dict) and field == "aliases":
        if not any(k in value for k in ANSWER_KEYS):
            raise RowError(field, f"an answer object needs one of {', '.join(ANSWER_KEYS)}: {shorten(value)}")
        return [s for k in ANSWER_KEYS for s in _strings(value.get(k), field, False)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v, field, False)]
    s = text(value, field)
    return [s] if s else []


def source_stem(path: str | Path) -> str:
    """A source's name without its data suffixes, the prefix of default fact ids: a dataset
    folder such as llama-3.1-8B-dbpedia keeps its dots, facts.jsonl.gz becomes facts."""
    return re.sub(r"(\.(jsonl|json|csv|tsv|parquet|ttl|nt|gz|bz2))+$", "", Path(path).name)


def _fact(rec: dict, cfg: SourceConfig, default_id: str) -> dict:
    def get(ours: str):
        col = _column(rec, ours, cfg)
        return rec.get(col) if col else None

    cell = cfg.source == "csv"
    fact = {f: text(get(f), f) for f in ("fact_id", "question", "subject", "relation", "object",
                                         "domain", "popularity", "reference_category")}
    fact["fact_id"] = fact["fact_id"] or default_id
    if not fact["question"]:
        col = _column(rec, "question", cfg) or " or ".join(DEFAULT_COLUMNS["question"])
        raise RowError("question", f"missing (column {col!r})")
    answers = _json_cell(get("aliases"), "aliases", cell)
    if answers is None:
        col = _column(rec, "aliases", cfg) or " or ".join(DEFAULT_COLUMNS["aliases"])
        raise RowError("aliases", f"missing (column {col!r})")
    fact["aliases"] = clean_aliases(_strings(answers, "aliases", False))
    if not fact["aliases"]:
        raise RowError("aliases", f"no usable (non-empty) alias in {shorten(answers)}")
    fact["normalized_aliases"] = _normalized(get("normalized_aliases"), answers, fact["aliases"], cell)
    if fact["popularity"] is not None and fact["popularity"] not in POPULARITY:
        raise RowError("popularity", f"{fact['popularity']!r} is not one of {', '.join(POPULARITY)}")
    fact["paraphrases"] = _strings(get("paraphrases"), "paraphrases", cell)
    return fact


def _answer_objects(answers) -> list[dict]:
    """The TriviaQA answer objects among a row's answers: one, or a list of them."""
    if isinstance(answers, dict):
        return [answers]
    if isinstance(answers, (list, tuple)):
        return [o for a in answers for o in _answer_objects(a)]
    return []


def _normalized(given, answers, aliases: list[str], cell: bool) -> list[str]:
    """A row's normalized aliases (docs/protocol.md §1): the source's own, a
    `normalized_aliases` column or that key of its TriviaQA answer objects, kept as given
    (TriviaQA's list is not in the order of its aliases); else the aliases as TriviaQA
    normalizes them, which leaves none of an answer such as "A" or "The" (paper mode then
    never finds it, where the source's own could be empty strings, which every text holds)."""
    if given is None:
        objects = [o for o in _answer_objects(answers) if o.get("normalized_aliases") is not None]
        given = [o["normalized_aliases"] for o in objects] if objects else None
    if given is None:
        return normalized_aliases(aliases)
    names = clean_aliases(_strings(given, "normalized_aliases", cell))
    if not names:
        raise RowError("normalized_aliases", "missing or empty, where the source gives them")
    return names


def _load_table(cfg: SourceConfig, summary: LoadSummary) -> list[dict]:
    path, stem = str(cfg.path), source_stem(cfg.path)
    facts, first_row = [], {}
    seen: set[str] = set()
    for row, rec in _READERS[cfg.source](cfg):
        summary.rows_read += 1
        try:
            if isinstance(rec, RowError):
                raise rec
            if not seen and cfg.source != "jsonl":
                _check_mapping(cfg, set(rec))  # every row of a table has every column
            seen.update(rec)
            fact = _fact(rec, cfg, default_id=f"{stem}-{row}")
            if (first := first_row.get(fact["fact_id"])) is not None:
                raise RowError("fact_id", f"duplicate id {fact['fact_id']!r} (first at row {first})")
        except RowError as bad:
            summary.reject(FactError(path, row, bad.field, bad.reason))
            continue
        first_row[fact["fact_id"]] = row
        facts.append(fact)
    _check_mapping(cfg, seen)  # JSONL lines may differ in keys: check against them all
    read = {c for ours in DEFAULT_COLUMNS if (c := _column(seen, ours, cfg))}
    summary.ignored_columns = sorted(seen - read)
    if not any(f["reference_category"] for f in facts):
        for f in facts:
            del f["reference_category"]
    return facts


# --- public API ------------------------------------------------------------------------------


def load_corpus(cfg: SourceConfig) -> tuple[pd.DataFrame, LoadSummary]:
    """The fact table of `cfg`'s source, validated, and what was read, kept and skipped."""
    if cfg.source == "world":
        raise ValueError("source 'world' is the built-in micro-world: it is generated, not loaded from a file")
    if not Path(cfg.path).exists():
        raise FileNotFoundError(f"{cfg.path}: no such file or folder (corpus path)")
    summary = LoadSummary(cfg.source, str(cfg.path), cfg.on_error)
    if cfg.source == "dbpedia":

        # A dump has no normalized answers: the rule's, as for a plain table.
        facts = [{**f, "normalized_aliases": normalized_aliases(f["aliases"])} for f in load_dbpedia(cfg, summary)]
    else:
        facts = _load_table(cfg, summary)
    summary.kept = len(facts)
    if not facts:
        raise FactError(str(cfg.path), "-", "question", f"no facts loaded ({summary.rows_read} rows read, "
                        f"{sum(summary.skipped.values())} skipped: {summary.skipped})")
    return validate_facts(pd.DataFrame(facts), str(cfg.path)), summary


def summary_path(out_path: str | Path) -> Path:
    """Where the summary of OUT.parquet is stored: OUT.summary.json."""
    return Path(out_path).with_suffix(".summary.json")


def import_facts(cfg: SourceConfig, out_path: str | Path) -> LoadSummary:
    """Load `cfg`'s source, write the fact table to `out_path` and its summary beside it, print the summary."""
    df, summary = load_corpus(cfg)
    out = write_facts(df, out_path, source=str(cfg.path))
    summary_path(out).write_text(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n")
    print(summary)
    print(f"wrote {out} and {summary_path(out)}")
    return summary


# --- the few-shot exemplar pool ---------------------------------------------------------------

EXEMPLAR_ROWS = 40  # the paper's pool: TriviaQA rc train rows 0-39, 10 sets of 4 shots


def load_exemplars(cfg: CorpusConfig) -> pd.DataFrame:
    """The few-shot exemplar pool named by `cfg.exemplars`, in file order: the fact fields
    (question, aliases, normalized_aliases, ...); a shot shows the first normalized alias
    by default (docs/protocol.md §2)."""
    ex = cfg.exemplars
    if ex is None:
        raise ValueError("corpus.exemplars is not set: name the few-shot exemplar pool (source and path)")
    if ex.on_error == "skip":
        raise ValueError("corpus.exemplars.on_error must be 'raise': prompt set i shows pool rows k*i..k*i+k-1, "
                         "so a skipped row would shift every later set")
    return load_corpus(ex)[0]


def _trivia_exemplar(rec: dict, default_id: str) -> dict:
    """One TriviaQA row as a pool row: both answer fields a shot can show."""
    question = text(rec.get("question"), "question")
    if not question:
        raise RowError("question", "missing or empty")
    answer = rec.get("answer")
    if not isinstance(answer, dict):
        raise RowError("answer", f"expected a TriviaQA answer object (value, aliases, normalized_aliases, ...), "
                                 f"got {shorten(answer)}")
    value = text(answer.get("value"), "answer.value")
    if not value:
        raise RowError("answer.value", "missing or empty")
    normalized = clean_aliases(_strings(answer.get("normalized_aliases"), "answer.normalized_aliases", False))
    if not normalized:
        raise RowError("answer.normalized_aliases", "missing or empty: a paper-mode shot shows its first entry")
    return {
        "fact_id": text(rec.get("question_id"), "question_id") or default_id,
        "question": question,
        "aliases": clean_aliases([value, *_strings(answer.get("aliases"), "answer.aliases", False)]),
        "normalized_aliases": normalized,
    }


def write_exemplars(source: str | Path, out: str | Path, rows: int = EXEMPLAR_ROWS, split: str = "train") -> Path:
    """The paper's exemplar pool from TriviaQA rows as the Hugging Face dataset has them
    (JSONL, Parquet, or a save_to_disk folder, whose split `split` is read): the first
    `rows` rows in file order, each as fact_id (question_id), question, aliases (answer.value
    first, then answer.aliases) and normalized_aliases (answer.normalized_aliases as
    given). Written as JSONL, or Parquet when `out` ends in .parquet."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, not {rows}")
    cfg = SourceConfig.from_path(source, split=split)
    if cfg.source not in ("jsonl", "parquet", "hf_dataset"):
        raise ValueError(f"{source}: TriviaQA rows come as JSONL, Parquet or a datasets save_to_disk folder, "
                         f"not {cfg.source}")
    stem, pool = source_stem(source), []
    for row, rec in _READERS[cfg.source](cfg):
        if len(pool) == rows:
            break
        try:
            if isinstance(rec, RowError):
                raise rec
            pool.append(_trivia_exemplar(rec, f"{stem}-{row}"))
        except RowError as bad:
            raise FactError(str(cfg.path), row, bad.field, bad.reason) from None
    if len(pool) < rows:
        raise FactError(str(cfg.path), "-", "(rows)", f"{len(pool)} rows, the pool needs {rows}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        pd.DataFrame(pool).to_parquet(out, index=False)
    else:
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in pool), encoding="utf-8")
    return out
