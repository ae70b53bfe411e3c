"""Experiment configs: YAML validated into typed sections.

Each section is a small pydantic class that lives beside the code it configures;
this module only composes them and turns validation errors into messages that
name the file, the key path and the reason.
"""
from __future__ import annotations

from pathlib import Path

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


def _message(path: str | Path, err: ValidationError) -> str:
    lines = [f"{path}: invalid config"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        reason = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"  {key}: {reason}")
    return "\n".join(lines)


def parse_config(data: dict, path: str | Path = "<config>") -> ExperimentConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a YAML mapping, got {type(data).__name__}")
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_message(path, err)) from None


def yaml_error(path: str | Path, err: yaml.YAMLError) -> str:
    """One line, FILE:LINE:COL: what is wrong (the way compilers say it; YAML counts from 0)."""
    mark = getattr(err, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    what = " ".join(str(p) for p in (getattr(err, "context", None), getattr(err, "problem", None)) if p) or str(err)
    return f"{where}: not valid YAML: {what}"


def load_config(path: str | Path, overrides: dict | None = None) -> ExperimentConfig:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(yaml_error(path, err)) from None
    return parse_config({**(data or {}), **(overrides or {})}, path)


def dump_config(cfg: ExperimentConfig, path: str | Path) -> Path:
    """Write the resolved config (every default filled in), as the run used it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return path

