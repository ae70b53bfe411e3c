"""The Ray Data generator actor: prompts in, one row per (prompt, sample) out."""
from __future__ import annotations

import json

import pandas as pd

from actors.engines import Decoding, EngineConfig, Loras, make_engine

# The `adapter` of a row that asks the base model: Arrow columns hold strings, not None.
BASE = ""


class Generator:
    """Holds one engine (the base model, loaded once) for its lifetime; Ray Data calls it
    once per batch of prompts. A row's `adapter` names the adapter folder to answer with
    (BASE: none), so the adapters of a whole pass share the engine."""

    def __init__(
        self,
        model: str,
        engine: EngineConfig,
        decoding: Decoding,
        trust_remote_code: bool = False,
        threads: int | None = None,
        loras: Loras = Loras(),
    ):
        self.engine = make_engine(engine, model, trust_remote_code=trust_remote_code, threads=threads, loras=loras)
        self.decoding = decoding

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        prompts = [json.loads(m) for m in batch["messages"]]
        adapters = [a or None for a in batch["adapter"]]
        answers = self.engine.generate(prompts, self.decoding, adapters)
        rows = [
            (adapter, fact_id, prompt_set, sample, text)
            for adapter, fact_id, prompt_set, outs in zip(batch["adapter"], batch["fact_id"], batch["prompt_set"], answers)
            for sample, text in enumerate(outs)
        ]
        return pd.DataFrame(rows, columns=["adapter", "fact_id", "prompt_set", "sample", "output"])
