"""The paper's headline numbers (docs/protocol.md §6), as data for the side-by-side table.

Pletenev et al. 2025, Llama-3.1-8B-Instruct on 21,036 DBpedia questions. Settings are
keyed by this project's names: unknown, extra, ratio. A mix with ratio 0 is the same
whatever the extra kind, so its numbers are listed under both kinds.
"""
from __future__ import annotations

import pandas as pd

HK, PARA = "HighlyKnown", "paraphrase"
RATIOS = (0, 1, 10)
# The facts the paper evaluated: its shift counts are shares of these.
PAPER_FACTS = 21_036

# Table 2, reliability: per unknown count, +0/+1/+10 HighlyKnown then +0/+1/+10 paraphrases.
_TABLE2 = {
    1: (1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    10: (1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    50: (1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    100: (0.98, 1.0, 1.0, 0.98, 0.99, 1.0),
    500: (1.0, 0.99, 0.97, 1.0, 0.99, 1.0),
    3000: (0.98, 0.92, 0.48, 0.98, 0.97, 0.99),
}

# Table 5, shift counts UK->HK and HK->UK, per (unknown, HighlyKnown ratio).
_TABLE5 = {
    (1, 0): (4, 5),
    (1, 10): (45, 153),
    (10, 0): (111, 409),
    (10, 1): (140, 709),
    (50, 10): (255, 501),
    (500, 1): (748, 802),
    (500, 10): (568, 1134),
}

def paper_results() -> pd.DataFrame:
    """One row per paper setting: unknown, extra, ratio, reliability,
    unknown_to_highly_known, highly_known_to_unknown (counts), and the same counts as
    shares of the PAPER_FACTS facts (`*_share`); NaN where the paper gives none."""
    rows = {}
    for unknown, values in _TABLE2.items():
        for i, value in enumerate(values):
            rows[unknown, (HK, PARA)[i // 3], RATIOS[i % 3]] = {"reliability": value}
    for (unknown, ratio), (up, down) in _TABLE5.items():
        for extra in (HK, PARA) if ratio == 0 else (HK,):
            rows[unknown, extra, ratio] = {
                **rows.get((unknown, extra, ratio), {}),
                "unknown_to_highly_known": up,
                "highly_known_to_unknown": down,
                "unknown_to_highly_known_share": up / PAPER_FACTS,
                "highly_known_to_unknown_share": down / PAPER_FACTS,
            }
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index = frame.index.set_names(["unknown", "extra", "ratio"])
    return frame.reset_index()
