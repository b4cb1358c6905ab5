"""isingaug: does augmenting a small data set with generative-model samples improve inverse Ising
inference? One run: dataset -> generator -> augment -> inverse solver -> metrics."""

from __future__ import annotations

from typing import Any

__all__ = ["IsingParams"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """`isingaug.IsingParams` on first use, so torch-free tools (the report) start fast."""
    if name == "IsingParams":
        from isingaug.ising import IsingParams

        return IsingParams
    raise AttributeError(f"module 'isingaug' has no attribute {name!r}")
