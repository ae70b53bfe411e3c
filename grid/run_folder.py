"""The run folder, `<storage>/<experiment>/`: where every stage writes and the report reads.

    config.yaml                  the resolved config (every default filled in)
    facts.parquet                the fact table the run studies (with LLM paraphrases, if asked;
                                 their summary in paraphrase.summary.json)
    generations/<name>.parquet   scored answers: base (the base model) or a trial's adapter
    categories/<name>.parquet    categories of the same; base_distribution.csv, base_reference_agreement.csv
    mixes/<trial>.parquet        fact_id, role: the mix the trial trained on, as the trial composed it
    analysis/<trial>/            the trial's findings (grid/evaluate.py): transitions, reasons,
                                 paper_reasons, exploded (.parquet)
    history.parquet              one row per trial and epoch      } columns: analysis/schema.py
    results.parquet              one row per trial: written once, by the last stage (grid/pipeline.py)
    benchmarks.parquet           one row per model or trial and benchmark task }
    pareto.parquet, timings.json, report/
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ANALYSIS_TABLES = ("transitions", "reasons", "paper_reasons", "exploded")


def _file(*parts: str) -> property:
    return property(lambda self: self.root.joinpath(*parts))


@dataclass(frozen=True)
class RunFolder:
    root: Path

    config = _file("config.yaml")
    facts = _file("facts.parquet")
    paraphrase_summary = _file("paraphrase.summary.json")
    history = _file("history.parquet")
    results = _file("results.parquet")
    benchmarks = _file("benchmarks.parquet")
    pareto = _file("pareto.parquet")
    timings = _file("timings.json")
    report = _file("report")
    base_distribution = _file("categories", "base_distribution.csv")
    base_reference_agreement = _file("categories", "base_reference_agreement.csv")

    def generations(self, name: str) -> Path:
        """The scored answers of `name` (base: the base model; else a trial's adapter)."""
        return self._table("generations", name)

    def categories(self, name: str) -> Path:
        return self._table("categories", name)

    def mix(self, trial: str) -> Path:
        return self._table("mixes", trial)

    def _table(self, kind: str, name: str) -> Path:
        folder = self.root / kind
        folder.mkdir(parents=True, exist_ok=True)  # the writer's folder, made on first use
        return folder / f"{name}.parquet"

    def analysis(self, trial: str, table: str) -> Path:
        """`<run>/analysis/<trial>/<table>.parquet` (table: one of ANALYSIS_TABLES), its folder made."""
        if table not in ANALYSIS_TABLES:
            raise ValueError(f"analysis table {table!r} is none of {ANALYSIS_TABLES}")
        folder = self.root / "analysis" / trial
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{table}.parquet"

    def analysis_tables(self, table: str) -> list[Path]:
        """Every trial's `table` (one of ANALYSIS_TABLES), by trial folder."""
        return sorted(self.root.glob(f"analysis/*/{table}.parquet"))
