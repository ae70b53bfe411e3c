"""`kgrid`: the command line. Each command parses its arguments and calls one function."""
from __future__ import annotations

import argparse
import json
import sys

from analysis.scoring import category_distribution, reference_agreement
from analysis.verdicts import recommendations
from grid.cache import storage_cache
from grid.config import DEFAULT_STORAGE, config_value, load_config, parse_set
from grid.data.facts import read_facts
from grid.data.sources import CorpusConfig, import_facts, write_exemplars
from grid.generate import GeneratorsConfig, resolved_engine
from grid.launch import launch, plan
from grid.paraphrase import paraphrase, write_paraphrased
from grid.paraphrase_config import ParaphraseConfig
from grid.run import Run
from grid.run_folder import RunFolder
from grid.runtime import connect, publish
from grid.world.graph import build_world


def cmd_world_build(args) -> None:
    print(build_world(args.size, args.seed, cache_dir=args.cache_dir))


def cmd_validate(args) -> None:
    cfg = load_config(args.config, args.sets)
    print(f"{args.config}: ok (experiment {cfg.experiment!r}, run folder {cfg.run_dir})")
    for parts, _, _ in map(parse_set, args.sets):
        key = ".".join(parts)
        print(f"  {key}: {json.dumps(config_value(cfg, key))} (--set)")


def cmd_facts_import(args) -> None:
    overrides = {k: v for k, v in (("source", args.source), ("on_error", args.on_error)) if v}
    given = {"templates": args.templates, "domains": args.domains, "per_relation": args.per_relation, "seed": args.seed}
    if dbpedia := {k: v for k, v in given.items() if v is not None}:
        overrides["dbpedia"] = dbpedia
    import_facts(CorpusConfig.from_path(args.source_path, **overrides), args.out)


def cmd_facts_exemplars(args) -> None:
    out = write_exemplars(args.source_path, args.out, rows=args.rows, split=args.split)
    print(f"wrote {out}: the first {args.rows} rows of {args.source_path}")


def cmd_facts_paraphrase(args) -> None:
    given = {"per_question": args.per_question, "candidates": args.candidates}
    cfg = ParaphraseConfig(
        model=args.model, trust_remote_code=args.trust_remote_code, **{k: v for k, v in given.items() if v is not None}
    )
    facts = read_facts(args.facts_path)  # bad input fails here, naming file, row and field, before Ray starts
    connect(args.address)
    workers = GeneratorsConfig(engine={"kind": args.engine})
    resolved_engine(workers.engine)  # `vllm` without vllm fails here
    result = paraphrase(facts, cfg.model, cfg, workers, args.cache_dir or storage_cache(DEFAULT_STORAGE), cfg.trust_remote_code)
    write_paraphrased(result, args.out)


def cmd_categorize(args) -> None:
    cfg = load_config(args.config, args.sets)
    connect(args.address, min_gpus=args.min_gpus)
    resolved_engine(cfg.generators.engine)  # `vllm` without vllm fails before the world's build
    run = Run.open(cfg)
    result = run.categorize_base()
    # Facts with labels (the paper's released Category): how far we reproduce them comes first.
    agreement = reference_agreement(result.categories, run.facts)
    if agreement is not None:
        print(f"agreement with reference_category: {agreement.at['all', 'agreement']:.3f} "
              f"of {agreement.at['all', 'total']} labelled facts (rows: reference, columns: ours)")
        print(agreement.to_string(float_format="{:.3f}".format))
    print(f"categories of {len(result.categories)} facts ({'cache hit' if result.cached else 'computed'}, key {result.key}):")
    print(category_distribution(result.categories).to_string(float_format="{:.3f}".format))
    print(f"stored in {cfg.run_dir}")
    if uri := publish(cfg):
        print(f"published to {uri}")


def cmd_trials(args) -> None:
    # grid.pipeline and grid.report load matplotlib: only the commands that report import them.
    from grid.pipeline import run_experiment
    from grid.report import describe_recommendation, setting_trials

    cfg = load_config(args.config, args.sets)
    connect(args.address, min_gpus=args.min_gpus)
    resolved_engine(cfg.generators.engine)  # `vllm` without vllm fails before the world's build
    results = run_experiment(cfg, "search" if args.command == "tune" else "grid", resume=args.resume)
    paths = RunFolder(cfg.run_dir)
    print(f"{len(results)} trials: {paths.results}")
    # The report's recommendations, on the numbers re-measured over the whole corpus (not a
    # trial's per-epoch probe estimate).
    floor = cfg.search.reliability_floor
    found = recommendations(results, floor)
    if found.empty:
        print("no trial finished")
    for _, row in found.iterrows():
        lead = f"least mean negative shift with mean reliability >= {floor}" if row["met"] else f"none reached reliability {floor}; the closest"
        print(f"recommended ({lead}): {describe_recommendation(row)}")
        for trial in setting_trials(results, row).itertuples():
            print(f"  adapter: {trial.adapter}")
    print(f"report: {paths.report / 'index.html'}")
    if uri := publish(cfg):
        print(f"published to {uri}")


def cmd_report(args) -> None:
    from grid.report import build_report  # matplotlib, as in cmd_trials

    print(build_report(args.run_dir))


def cmd_launch(args) -> None:
    rc = launch(plan(args.config, args.cluster, args.resume, args.min_gpus), args.dry_run)
    if rc:
        sys.exit(rc)


def config_arguments() -> argparse.ArgumentParser:
    """The arguments of every command that reads an experiment config: the file and its overrides."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("config")
    p.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY.PATH=VALUE",
        help="override a config key, the value read as YAML (--set lora.rank=8, --set grid.seeds=[0,1]); repeatable",
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    from actors.engines import kinds

    p = argparse.ArgumentParser(prog="kgrid", description=__doc__)
    config = config_arguments()
    sub = p.add_subparsers(dest="command", required=True)

    world = sub.add_parser("world", help="the built-in micro-world").add_subparsers(dest="action", required=True)
    build = world.add_parser("build", help="generate the knowledge graph and pretrain its tiny model (cached)")
    build.add_argument("--size", choices=["tiny", "default"], default="default")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--cache-dir", default=None)
    build.set_defaults(func=cmd_world_build)

    validate = sub.add_parser("validate", parents=[config], help="check a config without running anything")
    validate.set_defaults(func=cmd_validate)

    facts = sub.add_parser("facts", help="fact tables").add_subparsers(dest="action", required=True)
    imp = facts.add_parser("import", help="load a corpus (jsonl, csv, parquet, HF dataset folder, DBpedia dump)")
    imp.add_argument("source_path", metavar="SOURCE")
    imp.add_argument("out", metavar="OUT.parquet")
    imp.add_argument("--source", default=None, help="override the source kind guessed from the path")
    imp.add_argument("--on-error", choices=["raise", "skip"], default=None)
    imp.add_argument("--templates", metavar="FILE", default=None,
                     help="DBpedia: JSON relation URI -> question with '_' for the subject (default: the shipped head-to-tail templates)")
    imp.add_argument("--domains", metavar="FILE", default=None,
                     help="DBpedia: relation domains from an ontology (.owl or .nt: rdfs:domain, else rdfs:range) or JSON (relation URI -> domain)")
    imp.add_argument("--per-relation", metavar="N", type=int, default=None,
                     help="DBpedia: at most N questions per relation and popularity bin (20)")
    imp.add_argument("--seed", metavar="N", type=int, default=None, help="DBpedia: which subjects are drawn (0)")
    imp.set_defaults(func=cmd_facts_import)

    ex = facts.add_parser("exemplars", help="the few-shot exemplar pool from TriviaQA rows (the paper's: rc train rows 0-39)")
    ex.add_argument("source_path", metavar="SOURCE", help="TriviaQA rows: JSONL, Parquet or a datasets save_to_disk folder")
    ex.add_argument("out", metavar="OUT", help="the pool corpus.exemplars names: .jsonl, or .parquet")
    ex.add_argument("--rows", type=int, default=40, help="the first N rows in file order (40: 10 sets x 4 shots)")
    ex.add_argument("--split", default="train", help="the split of a DatasetDict folder (train)")
    ex.set_defaults(func=cmd_facts_exemplars)

    para = facts.add_parser("paraphrase", help="add LLM paraphrases of each question (Ray Data), filtered; summary beside OUT")
    para.add_argument("facts_path", metavar="FACTS.parquet")
    para.add_argument("out", metavar="OUT.parquet")
    para.add_argument("--model", required=True, help="Hugging Face model folder or hub id")
    para.add_argument("--per-question", type=int, default=None, help="paraphrases each question should have, existing ones included (10)")
    para.add_argument("--candidates", type=int, default=None, help="generations per question: one greedy, the rest sampled (20)")
    para.add_argument("--engine", choices=kinds(), default="auto")
    para.add_argument("--trust-remote-code", action="store_true")
    para.add_argument("--cache-dir", default=None, help="default: runs/cache, the cache of runs in the default storage")
    para.add_argument("--address", default=None, help="Ray cluster address (default: RAY_ADDRESS or a local Ray)")
    para.set_defaults(func=cmd_facts_paraphrase)

    cat = sub.add_parser("categorize", parents=[config], help="categorize every fact for the config's base model")
    cat.add_argument("--address", default=None, help="Ray cluster address (default: RAY_ADDRESS or a local Ray)")
    cat.add_argument("--min-gpus", type=int, default=0, help="first wait until the cluster has this many GPUs")
    cat.set_defaults(func=cmd_categorize)

    for name, help in (("run", "run the config's grid of LoRA trials"), ("tune", "search LoRA rank and mix with Optuna")):
        trials = sub.add_parser(name, parents=[config], help=help)
        trials.add_argument("--resume", action="store_true", help="continue a killed run; finished trials are kept")
        trials.add_argument("--address", default=None, help="Ray cluster address (default: RAY_ADDRESS or a local Ray)")
        trials.add_argument("--min-gpus", type=int, default=0, help="first wait until the cluster has this many GPUs")
        trials.set_defaults(func=cmd_trials)

    report = sub.add_parser("report", help="tables, figures and index.html of a finished run, from its stored files")
    report.add_argument("run_dir", metavar="RUN_DIR")
    report.set_defaults(func=cmd_report)

    launch = sub.add_parser("launch", help="bring up a Ray cluster and run the config's grid on it (docs/cluster.md)")
    launch.add_argument("config")
    launch.add_argument("--cluster", default=None, help="Ray cluster launcher file (default: the project's cluster.yaml)")
    launch.add_argument("--resume", action="store_true", help="continue the experiment stored in the config's storage")
    launch.add_argument("--min-gpus", type=int, default=None, help="GPUs the job waits for (default: those the cluster starts with)")
    launch.add_argument("--dry-run", action="store_true", help="check everything, print the commands, run nothing")
    launch.set_defaults(func=cmd_launch)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError) as err:
        # Config and data errors already name the file, key or row: show them plainly.
        print(f"kgrid: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
