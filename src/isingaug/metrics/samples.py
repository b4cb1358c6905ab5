"""Statistics of sets of patterns under a model (the energy-variance criterion's quantity)."""

from __future__ import annotations

import torch
from torch import Tensor

from isingaug.ising import IsingParams, energy


def energy_variance(params: IsingParams, spins: Tensor) -> float:
    """Var[E] of the patterns' energies under `params` (population variance)."""
    e = energy(params, spins.to(device=params.device, dtype=params.dtype))
    return float(torch.var(e, correction=0))
