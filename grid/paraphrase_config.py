"""The `paraphrase:` section of grid/paraphrase.py, kept apart from the job's code, which
takes the Run, so that grid/config.py composes it without importing a stage (docs/design.md)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from actors.engines import Decoding


class ParaphraseConfig(BaseModel):
    """`paraphrase:` in an experiment config (and the options of `kgrid facts paraphrase`).

    The job runs on the pool of the `generators:` section.
    """

    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, description="model folder or hub id; None: the experiment's model")
    trust_remote_code: bool = False
    per_question: int = Field(10, ge=1, description="paraphrases each question should have (existing ones count)")
    candidates: int = Field(20, ge=1, description="generations per question: one greedy, the rest sampled")
    temperature: float = Field(1.0, gt=0, description="for the sampled candidates")
    top_k: int = Field(50, ge=1, description="for the sampled candidates")
    max_new_tokens: int = Field(48, ge=1)
    seed: int = Field(0, ge=0)
    length_ratio: tuple[float, float] = Field(
        (0.5, 2.0), description="a paraphrase's words over the question's: the sane range"
    )

    @model_validator(mode="after")
    def _ordered_ratio(self) -> ParaphraseConfig:
        low, high = self.length_ratio
        if not 0 <= low <= high:
            raise ValueError(f"length_ratio must be [low, high] with 0 <= low <= high, got {list(self.length_ratio)}")
        return self

    @property
    def decoding(self) -> Decoding:
        return Decoding(self.max_new_tokens, self.candidates - 1, self.temperature, self.top_k, self.seed)
