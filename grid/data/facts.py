"""The fact table: the one schema every stage reads and writes (docs/protocol.md §1).

A fact is a question with gold answers (aliases) and optional graph metadata.
Stored as parquet; `validate_facts` is the single gate a frame passes before
any stage uses it, and it names the source, the row and the field it rejects.
"""
from __future__ import annotations

import re
import string
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

POPULARITY = ("head", "torso", "tail")

SCHEMA = pa.schema(
    [
        ("fact_id", pa.string()),
        ("question", pa.string()),
        ("aliases", pa.list_(pa.string())),
        ("subject", pa.string()),
        ("relation", pa.string()),
        ("object", pa.string()),
        ("domain", pa.string()),
        ("popularity", pa.string()),
        ("paraphrases", pa.list_(pa.string())),
    ]
)
COLUMNS = tuple(SCHEMA.names)
REQUIRED = ("fact_id", "question", "aliases")
# Columns a source may carry beyond the schema, kept as they are. normalized_aliases: the
# answers paper-mode scoring matches (docs/protocol.md §1); absent from the micro-world's
# exemplar pool, whose shots then show the first alias.
OPTIONAL_EXTRA = {"reference_category": pa.string(), "normalized_aliases": pa.list_(pa.string())}


class FactError(ValueError):
    """Bad fact data; the message names the source, the row and the field."""

    def __init__(self, source: str, row: int | str, field: str, reason: str):
        self.source, self.row, self.field, self.reason = source, row, field, reason
        super().__init__(f"{source}: row {row}: field '{field}': {reason}")


def clean_aliases(aliases) -> list[str]:
    """Strip aliases and drop empty ones: an empty alias matches every answer."""
    seen, out = set(), []
    for a in aliases if aliases is not None else []:
        a = str(a).strip()
        if a and a not in seen:
            seen.add(a)
            out.append(a)
    return out


_ARTICLES = re.compile(r"\b(a|an|the)\b")
# TriviaQA's evaluation treats ASCII punctuation and these quote marks as punctuation.
_PUNCTUATION = set(string.punctuation) | set("\u2018\u2019\u00b4`")


def normalize_answer(answer: str) -> str:
    """An answer as TriviaQA normalizes it (its normalized_aliases): underscores and
    punctuation become spaces, lower case, articles a/an/the dropped, spaces collapsed."""
    answer = answer.replace("_", " ").lower()
    answer = "".join(" " if ch in _PUNCTUATION else ch for ch in answer)
    return " ".join(_ARTICLES.sub(" ", answer).split())


def normalized_aliases(aliases) -> list[str]:
    """The aliases as TriviaQA normalizes them, for a source that gives no normalized form;
    one that normalizes to nothing ("A", "The") is dropped, as an empty alias would match
    every answer."""
    return clean_aliases(map(normalize_answer, clean_aliases(aliases)))


def _string_list(value, source: str, row: int, field: str) -> list[str]:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise FactError(source, row, field, "must be a list of strings")
    return clean_aliases(value)


def validate_facts(df: pd.DataFrame, source: str = "facts") -> pd.DataFrame:
    """Return `df` in the fact-table schema, or raise FactError for the first bad row.

    Missing optional columns are added empty; aliases (and normalized_aliases, where
    given) are cleaned; unknown columns (other than OPTIONAL_EXTRA) are an error, so a typo
    never passes silently.
    """
    unknown = [c for c in df.columns if c not in COLUMNS and c not in OPTIONAL_EXTRA]
    if unknown:
        raise FactError(source, "-", unknown[0], f"unknown column (schema: {', '.join(COLUMNS)})")
    for col in REQUIRED:
        if col not in df.columns:
            raise FactError(source, "-", col, "required column is missing")
    df = df.reset_index(drop=True).copy()
    for col in COLUMNS:
        if col not in df.columns:
            df[col] = [[] for _ in range(len(df))] if col == "paraphrases" else None
    rows = []
    for i, r in enumerate(df.itertuples(index=False)):
        r = r._asdict()
        for col in ("fact_id", "question"):
            if not isinstance(r[col], str) or not r[col].strip():
                raise FactError(source, i, col, "must be a non-empty string")
        r["aliases"] = _string_list(r["aliases"], source, i, "aliases")
        if not r["aliases"]:
            raise FactError(source, i, "aliases", "no usable (non-empty) alias")
        if "normalized_aliases" in r:  # may be empty: "A" normalizes to nothing (normalized_aliases)
            r["normalized_aliases"] = _string_list(r["normalized_aliases"], source, i, "normalized_aliases")
        pop = r["popularity"]
        if pop is not None and not (isinstance(pop, float) and pd.isna(pop)) and pop not in POPULARITY:
            raise FactError(source, i, "popularity", f"{pop!r} is not one of {POPULARITY}")
        paras = r["paraphrases"]
        if isinstance(paras, str):  # iterating it would keep single characters
            raise FactError(source, i, "paraphrases", "must be a list of strings")
        r["paraphrases"] = [] if paras is None or (isinstance(paras, float) and pd.isna(paras)) else [
            p.strip() for p in paras if isinstance(p, str) and p.strip()
        ]
        rows.append(r)
    out = pd.DataFrame(rows, columns=list(df.columns))
    dup = out["fact_id"].duplicated(keep="first")
    if dup.any():
        i = int(dup.idxmax())
        raise FactError(source, i, "fact_id", f"duplicate id {out.at[i, 'fact_id']!r}")
    extra = [c for c in OPTIONAL_EXTRA if c in out.columns]
    out = out[list(COLUMNS) + extra]
    for col in ("subject", "relation", "object", "domain", "popularity"):
        # object dtype: under pandas 3 a str column would turn None back into NaN.
        out[col] = out[col].astype(object).where(out[col].notna(), None)
    return out


def write_facts(df: pd.DataFrame, path: str | Path, source: str = "facts") -> Path:
    df = validate_facts(df, source)
    schema = SCHEMA
    for c in OPTIONAL_EXTRA:
        if c in df.columns:
            schema = schema.append(pa.field(c, OPTIONAL_EXTRA[c]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(df, schema=schema, preserve_index=False), path)
    return path


def parquet_file(path: str | Path) -> pq.ParquetFile:
    """Open a Parquet file; anything else fails naming the file, before any work starts."""
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(f"{path}: not a parquet file ({err})") from None


def read_facts(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such fact table")
    df = parquet_file(path).read().to_pandas()
    # Parquet lists come back as arrays. Anything else (None, a string, a missing column)
    # is left to validate_facts, which names the row and field it rejects.
    for col in ("aliases", "paraphrases", "normalized_aliases"):
        if col in df.columns:
            df[col] = df[col].map(lambda v: list(v) if hasattr(v, "__iter__") and not isinstance(v, str) else v)
    return validate_facts(df, str(path))
