"""The Ising model itself: parameters, energy, local fields, moments and exact enumeration.

Convention (ConIII's and most of the field's): spins s in {-1, +1}^n,
E(s) = -h.s - sum_{i<j} J_ij s_i s_j, P(s) = exp(-E(s)) / Z, and the flat parameter vector is
concat(h, J[triu(1)]) with the upper triangle taken row by row.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch import Tensor

from isingaug.errors import ConfigError

#: Largest n enumerated when the caller does not say otherwise (2^24 states, ~1 s per pass on CPU).
DEFAULT_MAX_ENUMERATION_N = 24
#: States per enumeration chunk: bounds memory at chunk * n numbers whatever n is.
DEFAULT_CHUNK = 1 << 16


@dataclass(frozen=True)
class IsingParams:
    """Fields h (n,) and couplings J (n, n), J symmetric with a zero diagonal."""

    h: Tensor
    J: Tensor

    def __post_init__(self) -> None:
        if self.h.ndim != 1 or self.J.shape != (self.h.shape[0], self.h.shape[0]):
            raise ValueError(
                f"IsingParams needs h of shape (n,) and J of shape (n, n); "
                f"got h {tuple(self.h.shape)} and J {tuple(self.J.shape)}"
            )

    @property
    def n(self) -> int:
        return int(self.h.shape[0])

    @property
    def device(self) -> torch.device:
        return self.h.device

    @property
    def dtype(self) -> torch.dtype:
        return self.h.dtype

    @classmethod
    def zeros(cls, n: int, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"):
        return cls(torch.zeros(n, dtype=dtype, device=device),
                   torch.zeros(n, n, dtype=dtype, device=device))

    @classmethod
    def from_couplings(cls, h: Tensor, J: Tensor) -> IsingParams:
        """Build from any square J: symmetrised, diagonal removed (e.g. after per-spin fits)."""
        J = 0.5 * (J + J.T)
        return cls(h, J - torch.diag(torch.diagonal(J)))

    def to(self, device: str | torch.device | None = None,
           dtype: torch.dtype | None = None) -> IsingParams:
        return IsingParams(self.h.to(device=device, dtype=dtype),
                           self.J.to(device=device, dtype=dtype))

    def to_vector(self) -> Tensor:
        """concat(h, J[triu(1)]), row-major upper triangle."""
        iu = torch.triu_indices(self.n, self.n, offset=1, device=self.J.device)
        return torch.cat([self.h, self.J[iu[0], iu[1]]])

    @classmethod
    def from_vector(cls, vector: Tensor) -> IsingParams:
        """Inverse of :meth:`to_vector`; n is solved from the length n + n(n-1)/2."""
        length = int(vector.shape[0])
        n = round((math.sqrt(8 * length + 1) - 1) / 2)
        if n + n * (n - 1) // 2 != length:
            raise ValueError(f"a parameter vector of length {length} is not n + n(n-1)/2 for any n")
        iu = torch.triu_indices(n, n, offset=1, device=vector.device)
        J = torch.zeros(n, n, dtype=vector.dtype, device=vector.device)
        J[iu[0], iu[1]] = vector[n:]
        return cls(vector[:n].clone(), J + J.T)

    def couplings_upper(self) -> Tensor:
        """J_ij for i < j as a flat vector."""
        return self.to_vector()[self.n:]

    def to_numpy(self) -> dict[str, np.ndarray]:
        return {"h": self.h.detach().cpu().numpy(), "J": self.J.detach().cpu().numpy()}

    @classmethod
    def from_numpy(cls, h: np.ndarray, J: np.ndarray, dtype: torch.dtype = torch.float64,
                   device: str | torch.device = "cpu") -> IsingParams:
        return cls(torch.as_tensor(np.asarray(h), dtype=dtype, device=device),
                   torch.as_tensor(np.asarray(J), dtype=dtype, device=device))


def local_fields(params: IsingParams, spins: Tensor) -> Tensor:
    """H_i(s) = h_i + sum_j J_ij s_j for every pattern; shape (..., n)."""
    spins = spins.to(params.dtype)
    return params.h + spins @ params.J


def energy(params: IsingParams, spins: Tensor) -> Tensor:
    """E(s) = -h.s - sum_{i<j} J_ij s_i s_j for every pattern; shape (...,)."""
    spins = spins.to(params.dtype)
    return -(spins @ params.h) - 0.5 * ((spins @ params.J) * spins).sum(-1)


def normalized_weights(num: int, weights: Tensor | None, dtype: torch.dtype,
                       device: torch.device | str) -> Tensor:
    """Per-pattern weights summing to one; uniform when None. Rejects negative or all-zero ones."""
    if weights is None:
        return torch.full((num,), 1.0 / num, dtype=dtype, device=device)
    weights = torch.as_tensor(weights, dtype=dtype, device=device).reshape(-1)
    if weights.shape[0] != num:
        raise ValueError(f"weights has {weights.shape[0]} entries for {num} patterns")
    if not torch.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError("weights must be finite, non-negative and not all zero")
    return weights / weights.sum()


def moments(spins: Tensor, weights: Tensor | None = None,
            dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
    """First moments <s_i> (n,) and second moments <s_i s_j> (n, n) of (weighted) patterns."""
    spins = spins.to(dtype)
    w = normalized_weights(spins.shape[0], weights, dtype, spins.device)
    first = w @ spins
    second = spins.T @ (w[:, None] * spins)
    return first, second


def connected_correlations(first: Tensor, second: Tensor) -> Tensor:
    """C_ij = <s_i s_j> - <s_i><s_j>."""
    return second - torch.outer(first, first)


def check_enumerable(n: int, max_n: int = DEFAULT_MAX_ENUMERATION_N) -> None:
    """Raise a clear error, not an out-of-memory crash, when 2^n states are too many."""
    if n > max_n:
        raise ConfigError(
            f"exact enumeration of 2^{n} states is above the limit n <= {max_n}; "
            "use an MCMC sampler / solver, or raise the limit (max_enumeration_n) knowingly"
        )


def _bit_states(bits: int, start: int, stop: int, dtype: torch.dtype,
                device: str | torch.device) -> Tensor:
    """States start..stop-1 of `bits` spins, (stop - start, bits); s_i = 2*bit_i(k) - 1."""
    index = torch.arange(start, stop, device=device)
    shifts = torch.arange(bits, device=device)
    return (((index[:, None] >> shifts) & 1) * 2 - 1).to(dtype)


def enumerate_states(n: int, chunk: int = DEFAULT_CHUNK, dtype: torch.dtype = torch.float64,
                     device: str | torch.device = "cpu",
                     max_n: int = DEFAULT_MAX_ENUMERATION_N) -> Iterator[Tensor]:
    """All 2^n spin states in chunks of at most `chunk` rows; state k has s_i = 2*bit_i(k) - 1."""
    check_enumerable(n, max_n)
    for start in range(0, 1 << n, chunk):
        yield _bit_states(n, start, min(start + chunk, 1 << n), dtype, device)


@dataclass(frozen=True)
class EnergyBlocks:
    """All 2^n energies as blocks (G, B): row g is one setting of the high spins, column b one of
    the low spins, so state k = b + B * (first + g) in the order of `enumerate_states`.

    Within a block the high spins are constant, so E = E_low(b) + E_high(g) - s_low . J_lh s_high
    costs O(B * L) per row instead of O(B * n^2): the energies and the moments below are
    O(2^n * L) work with L = log2(B) low spins.
    """

    low: Tensor
    e_low: Tensor
    params: IsingParams
    group: int

    @classmethod
    def of(cls, params: IsingParams, chunk: int, max_n: int) -> EnergyBlocks:
        n = params.n
        check_enumerable(n, max_n)
        low_bits = min(n, max(1, int(chunk).bit_length() - 1))
        low = _bit_states(low_bits, 0, 1 << low_bits, params.dtype, params.device)
        h, J = params.h[:low_bits], params.J[:low_bits, :low_bits]
        e_low = -(low @ h) - 0.5 * ((low @ J) * low).sum(-1)
        return cls(low, e_low, params, max(1, chunk >> low_bits))

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        """(high spins (G, n - L), energies (G, B)) for every group of high settings."""
        p, low_bits = self.params, self.low.shape[1]
        high_bits = p.n - low_bits
        h_high, J_high = p.h[low_bits:], p.J[low_bits:, low_bits:]
        J_cross = p.J[low_bits:, :low_bits]
        for start in range(0, 1 << high_bits, self.group):
            highs = _bit_states(high_bits, start, min(start + self.group, 1 << high_bits),
                                p.dtype, p.device)
            e_high = -(highs @ h_high) - 0.5 * ((highs @ J_high) * highs).sum(-1)
            yield highs, self.e_low + e_high[:, None] - (highs @ J_cross) @ self.low.T


@dataclass(frozen=True)
class ExactStatistics:
    """log Z and the exact model moments, from one streaming pass over all states."""

    log_z: Tensor
    first: Tensor
    second: Tensor
    mean_energy: Tensor
    var_energy: Tensor


def exact_statistics(params: IsingParams, chunk: int = DEFAULT_CHUNK,
                     max_n: int = DEFAULT_MAX_ENUMERATION_N) -> ExactStatistics:
    """Exact log Z, <s>, <s s^T>, <E> and Var[E] by enumeration in blocks of `chunk` states.

    Accumulators are rescaled whenever the running maximum of -E grows (a streaming log-sum-exp),
    so memory stays O(chunk) and nothing overflows at strong coupling. The low-spin block of the
    moments needs only the total weight of each low setting, summed once at the end.
    """
    blocks = EnergyBlocks.of(params, chunk, max_n)
    low = blocks.low
    low_bits, high_bits = low.shape[1], params.n - low.shape[1]
    zeros = partial(torch.zeros, dtype=params.dtype, device=params.device)
    ref = torch.tensor(-math.inf, dtype=params.dtype, device=params.device)
    mass, e1, e2 = zeros(()), zeros(()), zeros(())
    low_weight = zeros(low.shape[0])
    first_high, second_high = zeros(high_bits), zeros(high_bits, high_bits)
    cross = zeros(low_bits, high_bits)
    for highs, e in blocks:
        new_ref = torch.maximum(ref, (-e).max())
        scale = torch.exp(ref - new_ref)
        p = torch.exp(-e - new_ref)
        high_mass = p.sum(1)
        mass = mass * scale + high_mass.sum()
        low_weight = low_weight * scale + p.sum(0)
        first_high = first_high * scale + high_mass @ highs
        second_high = second_high * scale + highs.T @ (high_mass[:, None] * highs)
        cross = cross * scale + (p @ low).T @ highs
        e1 = e1 * scale + (p * e).sum()
        e2 = e2 * scale + (p * e * e).sum()
        ref = new_ref
    first = torch.cat([low_weight @ low, first_high]) / mass
    second = torch.cat([torch.cat([low.T @ (low_weight[:, None] * low), cross], 1),
                        torch.cat([cross.T, second_high], 1)]) / mass
    mean_e = e1 / mass
    return ExactStatistics(log_z=ref + torch.log(mass), first=first, second=second,
                           mean_energy=mean_e, var_energy=e2 / mass - mean_e**2)


def log_partition(params: IsingParams, chunk: int = DEFAULT_CHUNK,
                  max_n: int = DEFAULT_MAX_ENUMERATION_N) -> Tensor:
    """log Z by chunked enumeration."""
    return exact_statistics(params, chunk, max_n).log_z


def log_likelihood(params: IsingParams, spins: Tensor, log_z: Tensor | None = None,
                   max_n: int = DEFAULT_MAX_ENUMERATION_N) -> Tensor:
    """Exact log P(s) per pattern (enumerates once for log Z unless it is given)."""
    if log_z is None:
        log_z = log_partition(params, max_n=max_n)
    return -energy(params, spins) - log_z


def conditional_log_prob(params: IsingParams, spins: Tensor) -> Tensor:
    """log P(s_i | s_-i) = -log(1 + exp(-2 s_i H_i)) for every pattern and spin; shape (M, n)."""
    spins = spins.to(params.dtype)
    return -torch.nn.functional.softplus(-2.0 * spins * local_fields(params, spins))


def pseudo_log_likelihood(params: IsingParams, spins: Tensor) -> Tensor:
    """Sum over spins of log P(s_i | s_-i), per pattern; shape (M,)."""
    return conditional_log_prob(params, spins).sum(-1)
