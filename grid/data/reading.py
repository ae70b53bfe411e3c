"""What every fact source's reader shares (grid/data/sources.py for tables, grid/data/dbpedia.py
for dumps): the source config, the load summary, row errors and text cells."""
from __future__ import annotations

import bz2
import gzip
import re
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from grid.data.facts import FactError

Source = Literal["world", "jsonl", "csv", "parquet", "hf_dataset", "dbpedia"]
TABLE_SOURCES = ("jsonl", "csv", "parquet", "hf_dataset")

# Our fields and the source columns tried, in order, when `columns` names none.
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "fact_id": ("fact_id", "id", "question_id"),  # question_id: TriviaQA
    "question": ("question",),
    "aliases": ("aliases", "answer", "answers"),
    "normalized_aliases": ("normalized_aliases",),  # else those of TriviaQA answer objects
    "subject": ("subject",),
    "relation": ("relation",),
    "object": ("object",),
    "domain": ("domain",),
    "popularity": ("popularity",),
    "paraphrases": ("paraphrases", "para"),  # para: the paper's datasets
    "reference_category": ("reference_category", "Category"),  # Category: the paper's
}
# Keys of a TriviaQA-style answer object that hold answers. `value` comes first
# because the first alias is the training target (docs/protocol.md §3).
ANSWER_KEYS = ("value", "aliases", "normalized_aliases")
# Bytes that are not UTF-8 are read as lone surrogates (errors="surrogateescape"),
# so that the field holding them can be named instead of failing the whole file.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_EXTENSIONS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet", ".nt": "dbpedia", ".ttl": "dbpedia"}
_COMPRESSED = (".bz2", ".gz")


DOMAIN_FORMATS = {".json": "json", ".owl": "owl", ".nt": "nt"}  # relation domains: suffix -> format


class DBpediaConfig(BaseModel):
    """How a DBpedia dump becomes questions, the head-to-tail way (grid/data/dbpedia.py)."""

    model_config = ConfigDict(extra="forbid")
    # JSON: relation URI -> question, "_" for the subject; None: the shipped head-to-tail templates
    templates: Path | None = None
    # Relation domains: a DBpedia ontology (.owl RDF/XML or .nt N-Triples; rdfs:domain, else
    # rdfs:range) or JSON (relation URI -> domain); .bz2/.gz read as they stream. None: no domains.
    domains: Path | None = None
    per_relation: int = Field(20, ge=1)  # K: at most K questions per relation per popularity bin
    seed: int = 0  # which K are drawn

    @field_validator("domains")
    @classmethod
    def _domain_format(cls, path: Path | None) -> Path | None:
        if path is not None:
            domain_format(path)
        return path


def domain_format(path: Path) -> str:
    """The format of a domains file, told by its suffix (before .bz2/.gz)."""
    suffixes = [s.lower() for s in Path(path).suffixes if s.lower() not in _COMPRESSED]
    if not suffixes or suffixes[-1] not in DOMAIN_FORMATS:
        raise ValueError(f"{path}: a domains file is {', '.join(DOMAIN_FORMATS)} (optionally .bz2/.gz)")
    return DOMAIN_FORMATS[suffixes[-1]]


class SourceConfig(BaseModel):
    """One source of facts: the corpus itself, or the few-shot exemplar pool."""

    model_config = ConfigDict(extra="forbid")
    source: Source = "world"
    path: Path | None = None
    columns: dict[str, str] = {}  # our field -> the source's column, for table sources
    on_error: Literal["raise", "skip"] = "raise"
    split: str = "full"  # hf_dataset: the split of a DatasetDict folder
    dbpedia: DBpediaConfig = Field(default_factory=DBpediaConfig)

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, columns: dict[str, str]) -> dict[str, str]:
        for ours in columns:
            if ours not in DEFAULT_COLUMNS:
                raise ValueError(f"unknown field {ours!r} in columns (fields: {', '.join(DEFAULT_COLUMNS)})")
        return columns

    @model_validator(mode="after")
    def _complete(self):
        if self.source != "world" and self.path is None:
            raise ValueError(f"path is required for source {self.source!r}")
        if self.columns and self.source not in TABLE_SOURCES:
            raise ValueError(f"columns apply to {', '.join(TABLE_SOURCES)}, not to source {self.source!r}")
        if self.source != "dbpedia" and self.dbpedia != DBpediaConfig():
            raise ValueError(f"dbpedia settings apply to source 'dbpedia', not to source {self.source!r}")
        return self

    @classmethod
    def from_path(cls, path: str | Path, **overrides):
        """A config for `path`; unless `source` is given, told by the extension or folder layout."""
        if "source" not in overrides:
            overrides["source"] = guess_source(path)
        return cls(path=path, **overrides)


def guess_source(path: str | Path) -> str:
    path = Path(path)
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            return "hf_dataset"
        raise ValueError(f"{path}: a folder that is not a datasets save_to_disk folder")
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in _COMPRESSED]
    if suffixes and suffixes[-1] in _EXTENSIONS:
        return _EXTENSIONS[suffixes[-1]]
    raise ValueError(f"{path}: cannot tell the source from the name; known: {', '.join(_EXTENSIONS)} "
                     "(optionally .bz2/.gz) and save_to_disk folders; name the source")


@dataclass
class LoadSummary:
    """What a load read, kept and skipped; stored as OUT.summary.json beside the facts."""

    source: str
    path: str
    on_error: str = "raise"
    rows_read: int = 0
    kept: int = 0
    skipped: dict[str, int] = dataclass_field(default_factory=dict)  # by field
    examples: list[dict] = dataclass_field(default_factory=list)  # the first few skipped rows per field
    ignored_columns: list[str] = dataclass_field(default_factory=list)  # source columns no field reads
    notes: dict[str, Any] = dataclass_field(default_factory=dict)  # source specifics (dbpedia: sampling)

    MAX_EXAMPLES = 3

    def reject(self, err: FactError) -> None:
        """Raise `err`, or, under on_error: skip, count it and keep an example."""
        if self.on_error == "raise":
            raise err
        self.skipped[err.field] = self.skipped.get(err.field, 0) + 1
        if self.skipped[err.field] <= self.MAX_EXAMPLES:
            self.examples.append({"file": err.source, "row": err.row, "field": err.field, "reason": err.reason})

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        lines = [f"{self.path} ({self.source}): {self.rows_read} rows read, {self.kept} facts kept, "
                 f"{sum(self.skipped.values())} skipped"]
        for f, n in self.skipped.items():
            lines.append(f"  skipped for {f}: {n}")
            lines += [f"    e.g. row {e['row']}: {e['reason']}" for e in self.examples if e["field"] == f]
        if self.ignored_columns:
            lines.append(f"  columns not read: {', '.join(self.ignored_columns)}")
        lines += [f"  {k}: {v}" for k, v in self.notes.items()]
        return "\n".join(lines)


class RowError(Exception):
    """A bad field in the row being read; the loop that knows file and row makes it a FactError."""

    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field, self.reason = field, reason


def text(value, field: str) -> str | None:
    """`value` as a stripped string, None when absent or empty."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise RowError(field, "undecodable bytes (not UTF-8)") from None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RowError(field, f"expected text, got {type(value).__name__} {shorten(value)}")
    value = str(value).strip()
    if _UNDECODABLE.search(value):
        raise RowError(field, "undecodable bytes (not UTF-8)")
    return value or None


def open_text(path: Path):
    """A text file, .bz2 and .gz read as they stream."""
    opener = {".bz2": bz2.open, ".gz": gzip.open}.get(path.suffix.lower(), open)
    return opener(path, "rt", encoding="utf-8", errors="surrogateescape", newline="")


def shorten(value, n: int = 60) -> str:
    r = repr(value)
    return r if len(r) <= n else r[: n - 3] + "..."
