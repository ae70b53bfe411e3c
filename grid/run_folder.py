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


@dataclass(frozen=True)
class RunFolder:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def facts(self) -> Path:
        return self.root / "facts.parquet"

    @property
    def paraphrase_summary(self) -> Path:
        return self.root / "paraphrase.summary.json"

    @property
    def history(self) -> Path:
        return self.root / "history.parquet"

    @property
    def results(self) -> Path:
        return self.root / "results.parquet"

    @property
    def benchmarks(self) -> Path:
        return self.root / "benchmarks.parquet"

    @property
    def pareto(self) -> Path:
        return self.root / "pareto.parquet"

    @property
    def timings(self) -> Path:
        return self.root / "timings.json"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def base_distribution(self) -> Path:
        return self.root / "categories" / "base_distribution.csv"

    @property
    def base_reference_agreement(self) -> Path:
        return self.root / "categories" / "base_reference_agreement.csv"

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
