"""Disk cache for expensive synthetic data, keyed by a hash of everything that determines it.

A cache file is built once under a file lock and written atomically, so a reader never sees a
half-written one. A file that is damaged anyway (a full disk, a copy cut short, a crash of the
storage) is not an error of the user's run: it is moved aside to `<name>.corrupt-<timestamp>`
(kept for inspection), a warning names both paths, and the data are rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
import zlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from isingaug.io import file_lock, save_npz_atomic

log = logging.getLogger(__name__)

#: Bump when the way cached data are generated changes, so old files are not reused.
CACHE_VERSION = 4
#: What numpy raises on a truncated or otherwise damaged .npz file.
_DAMAGED = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


def cache_key(spec: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able spec (key order does not matter)."""
    text = json.dumps({"version": CACHE_VERSION, **spec}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cached_arrays(path: Path, build: Callable[[], dict[str, np.ndarray]]) -> tuple[dict, bool]:
    """Load `path` if present and readable, else build, save atomically and return;
    (arrays, was_cached).

    The build runs under a file lock: jobs of a parallel sweep that need the same file wait for
    the first one instead of writing it twice, and the rename makes a half-written file invisible.
    A damaged file is moved aside only under the lock, after a second read has failed too, so a
    job never moves a file another job has just written.
    """
    if path.exists():
        arrays, _ = _load(path)
        if arrays is not None:
            return arrays, True
    with file_lock(path):
        if path.exists():
            arrays, damage = _load(path)
            if arrays is not None:
                return arrays, True
            _move_aside(path, damage)
        arrays = build()
        save_npz_atomic(path, **arrays)
    return arrays, False


def _load(path: Path) -> tuple[dict[str, np.ndarray] | None, Exception | None]:
    """Every array of the file, read now so damage anywhere shows here; or None and the error."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}, None
    except _DAMAGED as err:
        return None, err


def _move_aside(path: Path, damage: Exception | None) -> Path:
    """Rename a damaged cache file to `<name>.corrupt-<timestamp>` and warn with both paths."""
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S.%f")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    os.replace(path, aside)
    log.warning("cache file %s cannot be read (%r); moved it to %s and rebuilding the data",
                path, damage, aside)
    return aside
