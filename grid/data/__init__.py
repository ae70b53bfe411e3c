"""The data a run reads: the fact table, its sources, prompts and training mixes."""
