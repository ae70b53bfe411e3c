"""LoRA trials on Ray Tune: the paper's grid, or an Optuna search (docs/protocol.md §3-5).

Each trial composes its mix from the base model's categories, once, trains an
adapter (actors/trial.py) and, before the first step (epoch 0) and after every epoch,
reports reliability on the new facts and the shifts on a probe set of the facts outside
the mix, with the adapter (and the mix) as its checkpoint. Shifts are counted against epoch 0, measured by the
same engine as every later epoch, so that no disagreement between the base
categorization's engine and the trainer's counts as a shift.
"""
from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from actors.engines import Decoding
from actors.trial import train_adapter
from analysis.scoring import categories_from_scores, score_generations
from analysis.shifts import reliability, shift_summary
from analysis.schema import HISTORY_COLUMNS, KNOWN_MC_DELTA, LAST_EPOCH, PROBE_NEGATIVE, PROBE_POSITIVE, REMEASURED, RESULT_COLUMNS
from analysis.verdicts import objective
from grid.bench import TrialBench
from grid.categorize import Categorization
from grid.data.mixes import Mix, compose_mix, probe_set
from grid.data.prompts import build_prompts, training_messages
from grid.run import Run
from grid.tracking import tracking_callbacks
from grid.trials_config import GridConfig, SearchConfig

Mode = Literal["grid", "search"]

# In every checkpoint: the watched facts' categories at epoch 0, so that a resumed trial
# counts its shifts against the same "before".
EPOCH0_FILE = "epoch0_categories.parquet"
# In every checkpoint: the trial's mix (fact_id, role), as the trial composed it.
MIX_FILE = "mix.parquet"
# How often (seconds) Tune snapshots which trials exist and their last checkpoint; --resume
# starts from the last snapshot. Tune's own default is every 10 s or more, so a kill could
# lose trials that started or finished just before it (retrained from scratch, in a new
# folder). TUNE_GLOBAL_CHECKPOINT_S, where set, wins. Its cost: docs/performance.md.
SNAPSHOT_S = "1"


@dataclass
class TrialContext:
    """What every trial reads: put once in Ray's object store by `tune.with_parameters`."""

    run: Run
    # The base model's categories (Categorization.categories): what a mix is drawn from, so
    # that in SliCK mode a WeaklyKnown fact is never taken for a new, Unknown one.
    base: pd.DataFrame
    bench: TrialBench | None = None  # set when the search minimizes or bounds the known_mc drop
    # Its greedy categories (Categorization.greedy): what a trial measures (greedy answers
    # only), so what its probe is stratified by and its engine agreement compares with.
    # None: `base` is greedy-only already (no samples, as in paper mode).
    base_greedy: pd.DataFrame | None = None

    def __post_init__(self):
        if self.base_greedy is None:
            self.base_greedy = self.base


class TrialWatch:
    """One trial's mix and the facts it watches every epoch: the new ones and a probe of
    the facts outside the mix. Epoch 0 (before the first step) sets `epoch0`, the
    categories that every later epoch's shifts are counted against."""

    def __init__(self, ctx: TrialContext, params: dict):
        self.ctx = ctx
        run, cfg = ctx.run, ctx.run.cfg
        self.mix: Mix = compose_mix(
            run.facts, ctx.base, params["unknown"], params["extra"], params["ratio"], params["seed"],
            cfg.grid.selection, cfg.grid.full_paraphrases,
        )
        self.probe = probe_set(run.facts, ctx.base_greedy, self.mix.fact_ids, cfg.grid.probe_size, params["seed"])
        self.watched = run.facts[run.facts["fact_id"].isin(set(self.mix.new) | set(self.probe))]
        self.prompts = build_prompts(self.watched, run.exemplars, cfg.prompts)
        train = self.mix.train
        self.chats = [training_messages(q, a, cfg.prompts.system) for q, a in zip(train["question"], train["answer"])]
        self.epoch0: pd.DataFrame | None = None

    def save(self, folder: Path) -> None:
        self.epoch0.to_parquet(folder / EPOCH0_FILE, index=False)
        # The mix as composed here, once: evaluation and benchmarks read it from the checkpoint.
        self.mix.train[["fact_id", "role"]].drop_duplicates(ignore_index=True).to_parquet(folder / MIX_FILE, index=False)

    def load(self, folder: Path) -> None:
        path = folder / EPOCH0_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing; a resumed trial counts its shifts against epoch 0's categories")
        self.epoch0 = pd.read_parquet(path)

    def evaluate(self, engine, epoch: int) -> dict:
        ctx, cfg = self.ctx, self.ctx.run.cfg
        answers = engine.generate(list(self.prompts["messages"]), Decoding(max_new_tokens=cfg.prompts.max_new_tokens))
        gens = self.prompts[["fact_id", "prompt_set"]].assign(sample=0, output=[a[0] for a in answers])
        # scoring.match: the same rule as the base categorization.
        after = categories_from_scores(score_generations(gens, self.watched, cfg.scoring.match))
        if epoch == 0:
            self.epoch0 = after[["fact_id", "category"]]
        before, now = (frame[frame["fact_id"].isin(self.probe)] for frame in (self.epoch0, after))
        shift = shift_summary(before, now)
        metrics = {
            **reliability(after, self.mix.new),
            # The probe's estimates; results.parquet's negative_shift_* are the whole corpus's.
            PROBE_NEGATIVE: shift["negative_of_all"],
            PROBE_POSITIVE: shift["positive_of_all"],
            "probe_facts": shift["facts"],
            "train_rows": len(self.mix.train),
            "engine_agreement": engine_agreement(ctx.base_greedy, self.epoch0),
        }
        if ctx.bench is not None:
            metrics[KNOWN_MC_DELTA] = ctx.bench.delta(engine, self.mix.fact_ids)
        search = cfg.search
        return {**metrics, "objective": objective(metrics, search.reliability_floor, search.bench_max_drop, search.objective)}


def engine_agreement(base_greedy: pd.DataFrame, epoch0: pd.DataFrame) -> float:
    """Share of the watched facts whose category at epoch 0 (the trainer's engine, the
    adapter still the base model) is their base categorization's (the categorize engine)."""
    pairs = epoch0.merge(base_greedy[["fact_id", "category"]], on="fact_id", suffixes=("", "_base"))
    return float((pairs["category"] == pairs["category_base"]).mean())


def run_trial(params: dict, ctx: TrialContext) -> None:
    """The Tune trainable: one mix, one adapter, one report per epoch (epoch 0 included)."""
    import torch
    from ray import tune

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    watch = TrialWatch(ctx, params)
    settings = ctx.run.cfg.lora.model_copy(update={k: params[k] for k in ("rank", "lr") if k in params})

    def report(metrics: dict, folder: Path) -> None:
        watch.save(folder)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(folder)))

    checkpoint = tune.get_checkpoint()
    with checkpoint.as_directory() if checkpoint else nullcontext(None) as resume:
        if resume:
            watch.load(Path(resume))
        train_adapter(
            ctx.run.model,
            watch.chats,
            settings,
            params["seed"],
            watch.evaluate,
            report,
            resume=Path(resume) if resume else None,
            trust_remote_code=ctx.run.trust_remote_code,
            attention=ctx.run.cfg.generators.engine.attention,
        )


def grid_points(grid: GridConfig) -> list[dict]:
    """Every trial of the grid: unknown x seed x (extra, ratio), where the "+0" control
    (ratio 0: no extras, the same mix whatever the extra kind) is one trial per (unknown,
    seed), carrying the first extra listed, and shared by both kinds in tables and figures."""
    arms = [(extra, ratio) for ratio in grid.ratio for extra in (grid.extra[:1] if ratio == 0 else grid.extra)]
    return [
        {"unknown": unknown, "extra": extra, "ratio": ratio, "seed": seed}
        for unknown in grid.unknown
        for extra, ratio in arms
        for seed in grid.seeds
    ]


def search_space(search: SearchConfig) -> dict:
    from ray import tune

    space = {
        "unknown": search.unknown,
        "seed": search.seed,
        "rank": tune.lograndint(search.rank[0], search.rank[1] + 1),
        "ratio": tune.randint(search.ratio[0], search.ratio[1] + 1),
        "extra": tune.choice(search.extra),
    }
    if search.lr:
        space["lr"] = tune.loguniform(*search.lr)
    return space


def make_tuner(ctx: TrialContext, mode: Mode, resume: bool = False, callbacks: list | None = None):
    """A Tuner for the run's grid or search, stored at `<storage>/tune`; or the one
    stored there, restored, when `resume` is set (with the callbacks it was run with).
    `callbacks`: Tune callbacks beside its default loggers (CSV, JSON, TensorBoard)."""
    from ray import tune

    cfg = ctx.run.cfg
    grid, search, resources, storage = cfg.grid, cfg.search, cfg.resources, cfg.storage_uri

    trainable = tune.with_resources(
        tune.with_parameters(run_trial, ctx=ctx), {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial}
    )
    path = f"{storage}/tune"
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", SNAPSHOT_S)  # read by Tune's controller in fit()
    if resume:
        if not tune.Tuner.can_restore(path):
            raise FileNotFoundError(f"{path}: no experiment to resume")
        return tune.Tuner.restore(path, trainable=trainable, resume_errored=True)
    run_config = tune.RunConfig(
        name="tune",
        storage_path=storage,
        failure_config=tune.FailureConfig(max_failures=resources.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=None),  # the paper keeps every epoch's adapter
        callbacks=callbacks,
    )
    if mode == "grid":
        from ray.tune.search.basic_variant import BasicVariantGenerator

        # The grid is a list of points, not a cross product (the +0 arm is trained once);
        # Tune wants each key in param_space too, but every trial is one of the points.
        points = grid_points(grid)
        space = {key: tune.choice(sorted({p[key] for p in points})) for key in points[0]}
        return tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune.TuneConfig(
                # Tune ignores TuneConfig's max_concurrent_trials beside a variant generator.
                search_alg=BasicVariantGenerator(points_to_evaluate=points, max_concurrent=resources.max_concurrent_trials or 0),
                num_samples=len(points),
            ),
            run_config=run_config,
        )
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    if search.multi_objective:
        sampler = optuna.samplers.NSGAIISampler(seed=search.seed)
        searcher = OptunaSearch(metric=[PROBE_NEGATIVE, "reliability"], mode=["min", "max"], sampler=sampler)
    else:
        searcher = OptunaSearch(metric="objective", mode="min", sampler=optuna.samplers.TPESampler(seed=search.seed))
    scheduler = None
    if search.asha:
        from ray.tune.schedulers import ASHAScheduler

        # Rungs start at grace_period >= 1, so epoch 0 (the base model) never stops a trial.
        scheduler = ASHAScheduler(
            metric="objective", mode="min", time_attr="epoch", max_t=cfg.lora.epochs, grace_period=max(1, cfg.lora.epochs // 4)
        )
    return tune.Tuner(
        trainable,
        param_space=search_space(search),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=search.trials,
            max_concurrent_trials=resources.max_concurrent_trials,
        ),
        run_config=run_config,
    )


@dataclass
class Trials:
    """What the trials made: results (one row per trial: its config, last epoch's metrics,
    adapter, error), history (one row per trial and epoch) and each finished trial's mix."""

    results: pd.DataFrame
    history: pd.DataFrame
    mixes: dict[str, pd.DataFrame]  # trial -> fact_id, role


def collect(result_grid) -> Trials:
    rows, history, mixes = [], [], {}
    for result in result_grid:
        trial = Path(result.path).name
        final = {
            (LAST_EPOCH + k if k in REMEASURED else k): v for k, v in (result.metrics or {}).items() if k in RESULT_COLUMNS
        }
        rows.append(
            {
                "trial": trial,
                **result.config,
                **final,
                "adapter": result.checkpoint.path if result.checkpoint else None,
                "error": repr(result.error) if result.error else None,
            }
        )
        if result.checkpoint:
            with result.checkpoint.as_directory() as folder:
                mixes[trial] = pd.read_parquet(Path(folder) / MIX_FILE)
        frame = result.metrics_dataframe
        if frame is not None and len(frame):
            # A run killed after an epoch's checkpoint was written but before Tune recorded it
            # trains that epoch again on --resume: its progress then holds the epoch twice, and
            # the later report is the one the training went on from.
            frame = frame.drop_duplicates("epoch", keep="last")
            history.append(frame[[c for c in HISTORY_COLUMNS if c in frame.columns]].assign(trial=trial))
    history = pd.concat(history, ignore_index=True) if history else pd.DataFrame(columns=["trial", *HISTORY_COLUMNS])
    return Trials(pd.DataFrame(rows), history, mixes)


def run_trials(run: Run, base: Categorization, mode: Mode, bench: TrialBench | None = None, resume: bool = False) -> Trials:
    """The run's grid or search on Ray Tune, each trial composing its mix from the base
    model's categories; history.parquet and mixes/<trial>.parquet stored in the run folder."""
    ctx = TrialContext(run, base.categories, bench, base.greedy)
    tuner = make_tuner(ctx, mode, resume, tracking_callbacks(run.cfg))
    trials = collect(tuner.fit())
    trials.history.to_parquet(run.paths.history, index=False)
    for trial, mix in trials.mixes.items():
        mix.to_parquet(run.paths.mix(trial), index=False)
    return trials
