"""The two caches, and content keys for cached results: the same inputs always map to the same folder.

- the storage's cache, `<storage>/cache/`: categorizations, paraphrases and benchmarks,
  shared by every run in the same storage (and by `kgrid facts paraphrase`);
- the user's cache, KGRID_CACHE or ~/.cache/knowledge-grid: built micro-worlds, and the
  driver's staging folder of runs whose storage is a URI.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd

# Files above this size are keyed by name, size and mtime: hashing 16 GB of
# weights on every run would cost more than the cache saves.
FULL_HASH_LIMIT = 256 * 2**20


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The user's cache: `cache_dir` if given, else KGRID_CACHE, else ~/.cache/knowledge-grid."""
    return Path(cache_dir or os.environ.get("KGRID_CACHE") or Path.home() / ".cache" / "knowledge-grid")


def storage_cache(storage: str | Path) -> Path:
    """The cache of the runs stored in the folder `storage`."""
    return Path(storage) / "cache"


def digest(*parts: object) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def path_fingerprint(path: str | Path | None) -> str | None:
    """Fingerprint of a model or adapter folder (or a hub id, which is its own key)."""
    if path is None:
        return None
    path = Path(path)
    if not path.exists():
        return str(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        stat = f.stat()
        h.update(f"{f.relative_to(path) if f != path else f.name}:{stat.st_size}".encode())
        if stat.st_size <= FULL_HASH_LIMIT:
            h.update(f.read_bytes())
        else:
            h.update(str(stat.st_mtime_ns).encode())
    return h.hexdigest()[:16]


def frame_fingerprint(df: pd.DataFrame) -> str:
    """Order-independent hash of a frame's content."""
    rows = pd.util.hash_pandas_object(df.map(repr).sort_values(list(df.columns)), index=False)
    return hashlib.sha256(rows.values.tobytes()).hexdigest()[:16]
