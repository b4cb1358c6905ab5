"""Independent random streams derived from the one run seed.

Every stage (data, generator training, generation, evaluation) draws from its own stream, so
changing how much one stage draws never shifts another's numbers, and a stream can be re-created
from (seed, step) alone, which is what makes resuming a training run exact.
"""

from __future__ import annotations

import hashlib

import torch

_MASK = (1 << 63) - 1


def derived_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed determined by `seed` and the stream's name/indices (stable across runs)."""
    text = "/".join(str(part) for part in (int(seed), *keys))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") & _MASK


def stream(seed: int, *keys: object, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator on `device` seeded by derived_seed(seed, *keys)."""
    return torch.Generator(device=device).manual_seed(derived_seed(seed, *keys))
