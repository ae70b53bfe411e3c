"""The micro-world: a generated knowledge graph and the tiny model pretrained on it."""
