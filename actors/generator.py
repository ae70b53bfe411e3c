"""The Ray Data generator actor: rows of a pass in, results out. A row either asks a chat
prompt (kind "answer": one output row per sample) or scores a whole chat (kind "loglik":
the log-likelihood of its last turn, one output row)."""
from __future__ import annotations

import json

import pandas as pd

from actors.engines import ENGINES, Decoding, EngineConfig, Loras, make_engine, pick_engine, platform

# The `adapter` of a row that asks the base model: Arrow columns hold strings, not None.
BASE = ""
# What a row carries through the pool untouched: where its result goes and which item it is.
THROUGH = ["shards", "kind", "fact_id", "prompt_set", "item"]
OUTPUT_COLUMNS = [*THROUGH, "sample", "output", "loglik", "tokens"]


class Generator:
    """Holds one engine (the base model, loaded once) for its lifetime; Ray Data calls it
    once per batch of rows. A row's `adapter` names the adapter folder to answer or score
    with (BASE: none), so the adapters of a whole pass share the engine."""

    def __init__(
        self,
        model: str,
        engine: EngineConfig,
        decoding: Decoding,
        trust_remote_code: bool = False,
        threads: int | None = None,
        loras: Loras = Loras(),
        loglik_batch_size: int = 32,
    ):
        self.engine = make_engine(engine, model, trust_remote_code=trust_remote_code, threads=threads, loras=loras)
        self.scorer = self.engine
        found = platform()
        kind = pick_engine(engine.kind, found)
        scorer = ENGINES[kind].loglik_engine(found["gpu"])
        if scorer != kind:
            # Loaded now, beside the engine: the pass's loglik rows need it (grid.generate.resolved_engine).
            self.scorer = make_engine(engine.model_copy(update={"kind": scorer}), model, trust_remote_code=trust_remote_code, threads=threads)
        self.decoding, self.loglik_batch_size = decoding, loglik_batch_size

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        out = []
        asked = batch[batch["kind"] == "answer"]
        if len(asked):
            answers = self.engine.generate(self._chats(asked), self.decoding, self._adapters(asked))
            rows = [(*row, sample, text, float("nan"), 0) for row, outs in zip(asked[THROUGH].itertuples(index=False), answers) for sample, text in enumerate(outs)]
            out.append(pd.DataFrame(rows, columns=OUTPUT_COLUMNS))
        scored = batch[batch["kind"] == "loglik"]
        if len(scored):
            found = self.scorer.logliks(self._chats(scored), self._adapters(scored), self.loglik_batch_size)
            out.append(scored[THROUGH].assign(sample=0, output="", loglik=[s for s, _ in found], tokens=[n for _, n in found]))
        return pd.concat(out, ignore_index=True)

    @staticmethod
    def _chats(rows: pd.DataFrame) -> list[list[dict]]:
        return [json.loads(m) for m in rows["messages"]]

    @staticmethod
    def _adapters(rows: pd.DataFrame) -> list[str | None]:
        return [a or None for a in rows["adapter"]]
