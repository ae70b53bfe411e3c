"""analysis/schema.py describes every column of the run's tables, and nothing else."""
import pandas as pd

from analysis.schema import describe, bench_delta, bench_score
from grid.run_folder import RunFolder


def test_patterns_name_their_columns_and_nothing_else():
    assert describe("results", "negative_shift_untrained").startswith("facts that moved down")
    assert describe("results", "negative_shift_all") == describe("results", "negative_shift_untrained")
    # The most specific pattern: a task's delta is not its score.
    assert describe("results", bench_delta("known_mc")).startswith("that score minus")
    assert describe("results", bench_score("mmlu")).startswith("the adapter's benchmark score")
    assert describe("results", "refused_paper_share_after") == "the same as a share of the facts"
    assert describe("results", "last_epoch_reliability").endswith("by the trainer's engine")
    for column in ("negative_shift_some", "refused_during", "foo"):
        assert describe("results", column) is None
    assert describe("history", "negative_shift_untrained") is None  # the whole corpus is measured once, after


def test_every_column_of_a_runs_tables_is_described(grid_run):
    cfg, _ = grid_run
    paths = RunFolder(cfg.run_dir)
    for table, path in (("history", paths.history), ("results", paths.results), ("benchmarks", paths.benchmarks)):
        undescribed = [c for c in pd.read_parquet(path).columns if describe(table, c) is None]
        assert not undescribed, (table, undescribed)
