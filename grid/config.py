"""Experiment configs: YAML, with the command line's `--set KEY.PATH=VALUE` overrides,
validated into typed sections.

Each section is a small pydantic class that lives beside the code it configures, in a
module that imports no stage (docs/design.md); this module only composes them and turns
validation errors into messages that name the file, the key path and the reason.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from actors.engines import VLLM_LORA_RANKS
from actors.trial import LoraSettings
from analysis.scoring import ScoringConfig
from grid.bench_config import BenchConfig
from grid.cache import cache_root
from grid.data.prompts import PromptConfig
from grid.data.sources import CorpusConfig
from grid.generate import GeneratorsConfig
from grid.paraphrase_config import ParaphraseConfig
from grid.tracking import TrackingConfig
from grid.trials_config import GridConfig, ResourcesConfig, SearchConfig
from grid.world.graph import WorldConfig


# Runs go to <storage>/<experiment>/, their cache to <storage>/cache/ (grid/cache.py).
DEFAULT_STORAGE = "runs"


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # "world" is the micro-world built from the `world:` section; anything else is a
    # Hugging Face model folder or hub id.
    name: str = "world"
    trust_remote_code: bool = False


class ExperimentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    experiment: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    storage: str = DEFAULT_STORAGE
    model: ModelConfig = ModelConfig()
    world: WorldConfig = WorldConfig()
    corpus: CorpusConfig = CorpusConfig()
    prompts: PromptConfig = PromptConfig()
    generators: GeneratorsConfig = GeneratorsConfig()
    scoring: ScoringConfig = ScoringConfig()
    # Set: LLM paraphrases fill the Unknown facts' paraphrases before the grid (grid/paraphrase.py).
    paraphrase: ParaphraseConfig | None = None
    lora: LoraSettings = LoraSettings()
    grid: GridConfig = GridConfig()
    search: SearchConfig = SearchConfig()
    resources: ResourcesConfig = ResourcesConfig()
    bench: BenchConfig = BenchConfig()
    tracking: TrackingConfig = TrackingConfig()

    @model_validator(mode="after")
    def _search_bench(self) -> ExperimentConfig:
        if self.search.uses_bench and not (self.bench.enabled and "known_mc" in self.bench.tasks):
            raise ValueError(
                "search.objective bench_drop and search.bench_max_drop need the known_mc benchmark: "
                "set bench.enabled and list known_mc in bench.tasks"
            )
        return self

    @model_validator(mode="after")
    def _vllm_ranks(self) -> ExperimentConfig:
        # Before any training: adapters vLLM cannot serve would fail only at their evaluation.
        if self.generators.engine.kind == "vllm":
            widest = VLLM_LORA_RANKS[-1]
            for key, rank in (("lora.rank", self.lora.rank), ("search.rank", self.search.rank[1])):
                if rank > widest:
                    raise ValueError(f"{key}: LoRA rank {rank}, but vLLM (generators.engine.kind) serves ranks up to {widest}")
        return self

    @property
    def remote_storage(self) -> bool:
        """storage is a URI (s3://, gs://, ...) rather than a folder."""
        return "://" in self.storage

    @property
    def run_dir(self) -> Path:
        """The run folder on this machine: results, report, categories. With a URI
        storage, a staging folder on the driver (the head node) that
        `grid.runtime.publish` copies to `<storage>/<experiment>/`."""
        if self.remote_storage:
            return cache_root() / "runs" / self.experiment
        return Path(self.storage) / self.experiment

    @property
    def storage_uri(self) -> str:
        """Where Tune keeps trials: an absolute local folder, or s3:// (gs://...) on a cluster."""
        if self.remote_storage:
            return f"{self.storage.rstrip('/')}/{self.experiment}"
        return str(self.run_dir.resolve())


class ConfigError(ValueError):
    pass


# One `--set`: its key path split at the dots, its value, and the option as given (for messages).
Override = tuple[list[str], object, str]


def _message(path: str | Path, err: ValidationError, overrides: Sequence[Override] = ()) -> str:
    lines = [f"{path}: invalid config"]
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        key = ".".join(loc) or "(top level)"
        reason = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        # The --set that wrote this key, or a key inside it, or the section it is in.
        given = [item for parts, _, item in overrides if loc and parts[: len(loc)] == loc[: len(parts)]]
        lines.append(f"  {key}: {reason}" + (f" (from {', '.join(f'--set {g}' for g in given)})" if given else ""))
    return "\n".join(lines)


def yaml_error(path: str | Path, err: yaml.YAMLError) -> str:
    """One line, FILE:LINE:COL: what is wrong (the way compilers say it; YAML counts from 0)."""
    mark = getattr(err, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    what = " ".join(str(p) for p in (getattr(err, "context", None), getattr(err, "problem", None)) if p) or str(err)
    return f"{where}: not valid YAML: {what}"


def parse_set(item: str) -> Override:
    """`KEY.PATH=VALUE`, the value read as YAML: `lora.rank=8` an int, `grid.seeds=[0,1]` a
    list, `paraphrase=null` None, as if written in the file."""
    key, eq, text = item.partition("=")
    parts = key.strip().split(".")
    if not eq or not all(parts):
        raise ConfigError(f"--set {item}: expected KEY.PATH=VALUE, e.g. --set lora.rank=8")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(yaml_error(f"--set {key}", err)) from None
    return parts, value, item


def _apply(data: dict, overrides: Sequence[Override], path: str | Path) -> dict:
    """`data` with each override written at its key path; an unset section (absent or null)
    is created by a key inside it."""
    data = copy.deepcopy(data)
    for parts, value, item in overrides:
        node = data
        for depth, part in enumerate(parts[:-1]):
            if node.get(part) is None:
                node[part] = {}
            elif not isinstance(node[part], dict):
                where = ".".join(parts[: depth + 1])
                raise ConfigError(f"{path}: invalid config\n  {where}: not a section, so --set {item} has no key to set")
            node = node[part]
        node[parts[-1]] = value
    return data


def parse_config(data: dict, path: str | Path = "<config>", sets: Sequence[str] = ()) -> ExperimentConfig:
    """The config in `data` (read from `path`), each of `sets` (`--set KEY.PATH=VALUE`) applied first."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a YAML mapping, got {type(data).__name__}")
    overrides = [parse_set(item) for item in sets]
    try:
        return ExperimentConfig.model_validate(_apply(data, overrides, path))
    except ValidationError as err:
        raise ConfigError(_message(path, err, overrides)) from None


def load_config(path: str | Path, sets: Sequence[str] = ()) -> ExperimentConfig:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(yaml_error(path, err)) from None
    return parse_config(data or {}, path, sets)


def config_value(cfg: ExperimentConfig, key: str) -> object:
    """The resolved value at a dotted key path, as config.yaml records it (None inside a
    section that is unset, as a later `--set paraphrase=null` leaves `paraphrase.model`)."""
    value = cfg.model_dump(mode="json")
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def dump_config(cfg: ExperimentConfig, path: str | Path) -> Path:
    """Write the resolved config (every default filled in), as the run used it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return path

