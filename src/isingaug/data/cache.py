"""Disk cache for expensive synthetic data, keyed by a hash of everything that determines it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from isingaug.io import file_lock, save_npz_atomic

#: Bump when the way cached data are generated changes, so old files are not reused.
CACHE_VERSION = 2


def cache_key(spec: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able spec (key order does not matter)."""
    text = json.dumps({"version": CACHE_VERSION, **spec}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cached_arrays(path: Path, build: Callable[[], dict[str, np.ndarray]]) -> tuple[dict, bool]:
    """Load `path` if present, else build, save atomically and return; (arrays, was_cached).

    The build runs under a file lock: jobs of a parallel sweep that need the same file wait for
    the first one instead of writing it twice, and the rename makes a half-written file invisible.
    """
    if path.exists():
        return _load(path), True
    with file_lock(path):
        if path.exists():
            return _load(path), True
        arrays = build()
        save_npz_atomic(path, **arrays)
    return arrays, False


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
