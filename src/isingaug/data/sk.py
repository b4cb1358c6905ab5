"""Synthetic Sherrington–Kirkpatrick data with known truth, cached on disk.

J_ij ~ N(0, g^2/n) for i<j (symmetric, zero diagonal) and h_i ~ N(0, g_h^2/n); training and test
patterns are drawn exactly by enumeration for small n and by batched MCMC above.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isingaug.data.base import Dataset
from isingaug.data.cache import cache_key, cached_arrays
from isingaug.device import resolve_device
from isingaug.errors import check_options, is_int, is_number
from isingaug.ising import IsingParams
from isingaug.sampling import draw_samples, resolve_sampler


def sk_truth(n: int, g: float, g_h: float, data_seed: int) -> IsingParams:
    """The SK instance of a seed (numpy's PCG64, so it is the same on every machine)."""
    rng = np.random.default_rng(data_seed)
    upper = np.triu(rng.normal(0.0, g / math.sqrt(n), size=(n, n)), k=1)
    h = rng.normal(0.0, g_h / math.sqrt(n), size=n)
    return IsingParams.from_numpy(h, upper + upper.T)


def _check_sizes(n: Any, g: Any, g_h: Any, M: Any, M_test: Any) -> None:
    check_options([
        ("dataset.n", n, is_int(n) and n >= 2, "an integer >= 2"),
        ("dataset.M", M, is_int(M) and M >= 1, "an integer >= 1"),
        ("dataset.M_test", M_test, is_int(M_test) and M_test >= 0, "an integer >= 0"),
        ("dataset.g", g, is_number(g) and math.isfinite(g) and g >= 0, "a finite number >= 0"),
        ("dataset.g_h", g_h, is_number(g_h) and math.isfinite(g_h) and g_h >= 0,
         "a finite number >= 0 (or null for g_h = g)"),
    ])


def make_sk_dataset(n: int, g: float, M: int, M_test: int, data_seed: int,
                    sampler: dict[str, Any], g_h: float | None = None,
                    cache_dir: str | None = None, device: str = "auto") -> Dataset:
    """Build (or load from the cache) an SK instance and its training and test patterns."""
    g_h = g if g_h is None else g_h
    _check_sizes(n, g, g_h, M, M_test)
    spec = resolve_sampler(dict(sampler), n, float(g), "dataset")
    torch_device = resolve_device(device)
    truth = sk_truth(n, float(g), float(g_h), int(data_seed))
    key_spec = {"model": "sk", "n": n, "g": float(g), "g_h": float(g_h), "M": M,
                "M_test": M_test, "data_seed": int(data_seed), "sampler": spec,
                "rng_device": torch_device.type}

    def build() -> dict[str, np.ndarray]:
        generator = torch.Generator(device=torch_device).manual_seed(int(data_seed))
        samples, diagnostics = draw_samples(truth.to(torch_device), M + M_test, spec, generator)
        spins = samples.to(torch.int8).cpu().numpy()
        return {"train": spins[:M], "test": spins[M:], "h": truth.h.numpy(),
                "J": truth.J.numpy(), "diagnostics": np.array(json.dumps(diagnostics))}

    if cache_dir is None:
        arrays, cached = build(), False
        path = None
    else:
        path = Path(cache_dir) / "sk" / f"{cache_key(key_spec)}.npz"
        arrays, cached = cached_arrays(path, build)
    meta = {"dataset": "sk", **key_spec, "cache_file": str(path) if path else None,
            "from_cache": cached, "sampling": json.loads(str(arrays["diagnostics"]))}
    test = torch.from_numpy(arrays["test"]).float() if M_test > 0 else None
    return Dataset(train=torch.from_numpy(arrays["train"]).float(), test=test, truth=truth,
                   meta=meta)

