"""Fetch the paper's inputs into the paths configs/paper.yaml names (docs/reproduce.md).

Run once, from the repository root, on a machine with internet access and `datasets`
installed (pip install datasets):

    python scripts/fetch_paper_data.py [--config configs/paper.yaml]

1. The authors' released DBpedia questions for Llama-3.1-8B-Instruct (question, answers
   with aliases, paraphrases, their category labels) -> corpus.path, as a save_to_disk
   folder. The config's split and mapped columns are checked against what was downloaded
   before anything is written.
2. The first --rows rows of TriviaQA's rc train split, in the Hub's file order (streamed:
   the rc contexts are gigabytes), trimmed to question, question_id and answer -> a JSONL
   beside the pool, then `kgrid facts exemplars` on it -> corpus.exemplars.path.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from itertools import islice
from pathlib import Path

from grid.config import load_config
from grid.data.reading import SourceConfig
from grid.data.sources import EXEMPLAR_ROWS, write_exemplars

RELEASED = "memyprokotow/llama-3.1-8B-HighlyKnown"
TRIVIAQA = ("mandarjoshi/trivia_qa", "rc")
TRIVIA_FIELDS = ("question", "question_id", "answer")


def check_released(splits: Mapping[str, list[str]], corpus: SourceConfig) -> None:
    """Fail, naming what the download has, unless it has the config's split and every
    column the config maps (corpus.split, corpus.columns)."""
    if corpus.split not in splits:
        raise SystemExit(f"the released dataset has splits {', '.join(splits)}, the config reads "
                         f"corpus.split {corpus.split!r}: set corpus.split")
    columns = splits[corpus.split]
    missing = {ours: theirs for ours, theirs in corpus.columns.items() if theirs not in columns}
    if missing:
        wrong = ", ".join(f"{ours}: {theirs}" for ours, theirs in missing.items())
        raise SystemExit(f"corpus.columns maps {wrong}, but split {corpus.split!r} has columns "
                         f"{', '.join(columns)}: fix corpus.columns in the config")


def trivia_head(rows: Iterable[dict], n: int) -> list[dict]:
    """The first n TriviaQA rows, in order, with only the fields an exemplar needs."""
    head = [{k: row[k] for k in TRIVIA_FIELDS if k in row} for row in islice(rows, n)]
    if len(head) < n:
        raise SystemExit(f"TriviaQA gave {len(head)} rows, the pool needs {n}")
    return head


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/paper.yaml")
    p.add_argument("--released", default=RELEASED, help="the released dataset's Hugging Face id")
    p.add_argument("--rows", type=int, default=EXEMPLAR_ROWS, help="TriviaQA rc train rows in the pool")
    args = p.parse_args(argv)

    from datasets import load_dataset  # only here: the pure helpers above need no network

    corpus = load_config(args.config).corpus
    if corpus.source != "hf_dataset" or corpus.exemplars is None:
        raise SystemExit(f"{args.config}: expects corpus.source hf_dataset and corpus.exemplars set")

    released = load_dataset(args.released)
    check_released({name: split.column_names for name, split in released.items()}, corpus)
    released.save_to_disk(str(corpus.path))
    print(f"{args.released}: {', '.join(f'{n} {len(s)} rows' for n, s in released.items())} -> {corpus.path}")

    trivia = load_dataset(*TRIVIAQA, split="train", streaming=True)
    pool = Path(corpus.exemplars.path)
    rows = write_jsonl(trivia_head(trivia, args.rows), pool.with_name(f"triviaqa-rc-train-0-{args.rows - 1}.jsonl"))
    print(f"TriviaQA rc train rows 0-{args.rows - 1} -> {rows}")
    print(f"kgrid facts exemplars {rows} {pool} --rows {args.rows}")
    print(f"wrote {write_exemplars(rows, pool, rows=args.rows)}")


if __name__ == "__main__":
    main()
