"""LoRA trials on Ray Tune with the tiny micro-world on 2 CPUs: the grid and the Optuna search."""
from pathlib import Path

import pandas as pd
import pytest
import yaml

from grid.cli import main
from grid.config import load_config
from analysis.verdicts import best_trial, pareto_front
from grid.trials import engine_agreement


def test_grid_learns_the_new_facts(grid_run):
    cfg, results = grid_run
    assert len(results) == 2 and set(results["ratio"]) == {0, 1}
    assert results["error"].isna().all()
    history = pd.read_parquet(cfg.run_dir / "history.parquet")
    for trial, epochs in history.groupby("trial")["epoch"]:
        assert sorted(epochs) == list(range(cfg.lora.epochs + 1)), trial  # epoch 0: before the first step
    # The new facts were Unknown before training: P_greedy 0 for each of them.
    assert (results["reliability"] >= 0.5).all(), results[["trial", "reliability"]]
    assert (results["train_rows"] == [6 * (1 + r) for r in results["ratio"]]).all()


def test_epoch_0_is_the_base_model_measured_by_the_trainer(grid_run):
    """Shifts are counted against epoch 0 (the trainer's engine on the base model), so
    epoch 0's shift is 0 against itself; the two engines' agreement is recorded per trial."""
    cfg, results = grid_run
    history = pd.read_parquet(cfg.run_dir / "history.parquet")
    start = history[history["epoch"] == 0]
    assert len(start) == 2
    assert (start["probe_negative_shift"] == 0).all() and (start["probe_positive_shift"] == 0).all()
    assert (start["probe_facts"] == cfg.grid.probe_size).all()
    # The new facts were Unknown to the base categorization; the trainer's engine agrees on most.
    assert (start["reliability"] <= 0.25).all()
    saved = pd.read_parquet(cfg.run_dir / "results.parquet")
    # Both engines are transformers on the tiny world: they disagree on a few facts at most.
    assert saved["engine_agreement"].between(0.9, 1.0).all(), saved["engine_agreement"]
    assert "engine_agreement" not in history.columns  # one number per trial


def test_the_resolved_config_records_every_switch(grid_run):
    cfg, _ = grid_run
    recorded = yaml.safe_load((cfg.run_dir / "config.yaml").read_text())
    assert recorded["grid"]["selection"] == "random" and recorded["grid"]["full_paraphrases"] == 100
    assert recorded["grid"]["probe_size"] == 20
    lora = recorded["lora"]
    assert (lora["weight_decay"], lora["max_grad_norm"], lora["group_by_length"]) == (0.0, 1.0, True)


def test_results_name_a_stored_adapter(grid_run):
    cfg, results = grid_run
    saved = pd.read_parquet(cfg.run_dir / "results.parquet")
    assert list(saved["trial"]) == list(results["trial"])
    best = best_trial(saved)
    files = {p.name for p in Path(best["adapter"]).iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json"} <= files


def test_optuna_search_runs_its_trials(ray_runtime, tiny_config, capsys):
    # ASHA stops on epochs: epoch 0 (the base model) comes before its first rung.
    path = tiny_config("search", search={"multi_objective": True, "asha": True})
    assert main(["tune", str(path)]) == 0
    cfg = load_config(path)
    results = pd.read_parquet(cfg.run_dir / "results.parquet")
    assert len(results) == 3
    assert results["rank"].between(1, 8).all() and set(results["extra"]) == {"HighlyKnown"}
    history = pd.read_parquet(cfg.run_dir / "history.parquet")
    assert (history.groupby("trial")["epoch"].min() == 0).all()
    # The front of the numbers re-measured on the whole corpus after training, not the probe's.
    front = pd.read_parquet(cfg.run_dir / "pareto.parquet")
    assert 1 <= len(front) <= 3 and front["trial"].isin(results["trial"]).all()
    assert list(front["trial"]) == list(pareto_front(results)["trial"])
    # The CLI names the report's recommendation, with its numbers over the whole corpus.
    from analysis.verdicts import recommendations
    from grid.report import describe_recommendation, setting_trials

    out = capsys.readouterr().out
    for _, row in recommendations(results, cfg.search.reliability_floor).iterrows():
        assert describe_recommendation(row) in out
        assert all(f"adapter: {a}" in out for a in setting_trials(results, row)["adapter"])


def test_engine_agreement_is_the_share_of_watched_facts_categorized_alike():
    base = pd.DataFrame({"fact_id": ["a", "b", "c", "d"], "category": ["Unknown", "HighlyKnown", "MaybeKnown", "Unknown"]})
    # Watched: a, b, c (d is neither new nor in the probe); c moved under the trainer's engine.
    epoch0 = pd.DataFrame({"fact_id": ["a", "b", "c"], "category": ["Unknown", "HighlyKnown", "Unknown"]})
    assert engine_agreement(base, epoch0) == pytest.approx(2 / 3)


def test_the_control_arm_is_one_trial_per_unknown_and_seed():
    from grid.trials import GridConfig, grid_points

    paper = load_config(Path(__file__).parent.parent / "configs/paper.yaml").grid
    points = grid_points(paper)
    # 6 unknown counts x 3 seeds x (+0 once, 2 extras x ratios 1 and 10) = 90, not 6 x 3 x 2 x 3 = 108.
    assert len(points) == 90
    assert len({tuple(sorted(p.items())) for p in points}) == 90
    controls = [p for p in points if p["ratio"] == 0]
    assert len(controls) == 18 and {p["extra"] for p in controls} == {"HighlyKnown"}
    small = grid_points(GridConfig(unknown=[10], extra=["paraphrase", "HighlyKnown"], ratio=[0, 1], seeds=[0, 1]))
    assert sorted((p["extra"], p["ratio"], p["seed"]) for p in small) == [
        ("HighlyKnown", 1, 0), ("HighlyKnown", 1, 1), ("paraphrase", 0, 0), ("paraphrase", 0, 1), ("paraphrase", 1, 0), ("paraphrase", 1, 1)
    ]


def test_history_keeps_the_last_report_of_an_epoch_trained_again():
    """After a kill between an epoch's checkpoint and Tune's record of it, --resume trains the
    epoch again: the history holds it once, as the training went on from it."""
    from types import SimpleNamespace

    from grid.trials import collect

    progress = pd.DataFrame({"epoch": [0, 1, 1, 2], "loss": [4.0, 3.0, 2.9, 2.0], "time_this_iter_s": 1.0})
    result = SimpleNamespace(path="/runs/x/tune/t0", metrics={"epoch": 2, "loss": 2.0}, config={"unknown": 1}, checkpoint=None, error=None, metrics_dataframe=progress)
    history = collect([result]).history
    assert list(history["epoch"]) == [0, 1, 2] and list(history["loss"]) == [4.0, 2.9, 2.0]
    assert set(history["trial"]) == {"t0"}


def test_a_trials_row_names_the_last_epochs_numbers_apart_from_the_remeasured_ones():
    from types import SimpleNamespace

    from grid.trials import collect

    metrics = {"epoch": 4, "reliability": 0.8, "probe_negative_shift": 0.1, "engine_agreement": 1.0}
    result = SimpleNamespace(path="/runs/x/tune/t0", metrics=metrics, config={"unknown": 1}, checkpoint=None, error=None, metrics_dataframe=None)
    row = collect([result]).results.iloc[0]
    # `reliability` is left to the whole corpus's re-measure (grid/evaluate.py).
    assert "reliability" not in row and row["last_epoch_reliability"] == 0.8
    assert row["probe_negative_shift"] == 0.1 and row["engine_agreement"] == 1.0
