"""The objectives PLM and interaction screening minimise, chunk by chunk over the patterns.

Both are sums over spins of functions of the local fields H = h + s W^T, so one GEMM gives the
fields of a chunk of patterns and one the gradient; the elementwise work between them is a few
in-place passes. Chunks bound the temporaries at ~2^21 numbers (2^24 on a GPU), so memory does
not grow with M, and a cross-validation fold visits only its own row ranges.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn.functional import softplus

from isingaug.solvers.optim import fields_and_couplings

#: Start of a streaming maximum: finite, so exp(start - start) is 1, not nan.
_LOW = -1e30
Ranges = list[tuple[int, int]]


def chunk_rows(n: int, device: torch.device) -> int:
    """Patterns per chunk: temporaries of ~2^21 numbers on a CPU, 2^24 on a GPU (no measurable
    gain from 2^15-2^22 on the CPU; smaller chunks pay per-call overhead)."""
    return max(1, (1 << (24 if device.type == "cuda" else 21)) // n)


def augmented(spins: Tensor) -> Tensor:
    """The data as the objectives read it: -2 s (M, n) and a last column of -2 (M, n + 1).

    With it one GEMM gives the local fields, H = h + s W^T = -1/2 [-2 s, -2] [W, h]^T, and one
    the gradient of couplings and fields together, so no pass adds the fields or sums their
    gradient; the margin -2 s H is the first n columns times H.
    """
    column = torch.full((spins.shape[0], 1), -2.0, dtype=spins.dtype, device=spins.device)
    return torch.cat([-2.0 * spins, column], 1)


def _stacked(h: Tensor, couplings: Tensor) -> Tensor:
    """-1/2 [W, h] (n, n + 1): the right-hand factor of the local fields' GEMM."""
    return torch.cat([couplings, h[:, None]], 1).mul_(-0.5)


def pll_pass(x: Tensor, data: Tensor, weights: Tensor, ranges: Ranges, l2: float,
             symmetric: bool, grad: bool = True) -> tuple[Tensor, Tensor | None]:
    """Negative log-pseudo-likelihood and its gradient (layout of `fields_and_couplings`).

    sum_k w_k sum_i log(1 + exp(-2 s_ki H_ki)) + (l2/2) ||W||^2 over the rows in `ranges` of
    `data` = augmented(spins): per chunk two GEMMs and five elementwise passes.
    """
    h, couplings = fields_and_couplings(x, symmetric)
    n = h.shape[0]
    factor = _stacked(h, couplings)
    step = chunk_rows(n, x.device)
    value = torch.zeros((), dtype=x.dtype, device=x.device)
    grad_all = torch.zeros(n, n + 1, dtype=x.dtype, device=x.device)
    for lo, hi in ranges:
        for start in range(lo, hi, step):
            block, w = data[start:min(start + step, hi)], weights[start:min(start + step, hi)]
            c = block[:, :n]
            margin = torch.mm(block, factor.T).mul_(c)
            value = value + w @ softplus(margin).sum(1)
            if grad:
                dfields = torch.sigmoid_(margin).mul_(c).mul_(w[:, None])
                grad_all.addmm_(dfields.T, block, alpha=-0.5)
    value = value + 0.5 * l2 * couplings.pow(2).sum()
    if not grad:
        return value, None
    return value, _assemble(grad_all[:, n], grad_all[:, :n], couplings, l2, symmetric)


def screening_pass(x: Tensor, data: Tensor, log_weights: Tensor, ranges: Ranges, l2: float,
                   log: bool) -> tuple[Tensor, Tensor]:
    """Interaction screening sum_u S_u (RISE) or sum_u log S_u (logRISE), and the gradient.

    S_u = sum_k w_k exp(-s_ku H_ku) is accumulated chunk by chunk against a running maximum of
    the exponents per spin (a streaming log-sum-exp: the accumulators are rescaled when it
    grows), so nothing overflows when the couplings grow and memory stays one chunk. `data`
    is augmented(spins).
    """
    h, couplings = fields_and_couplings(x, False)
    n = h.shape[0]
    factor = _stacked(h, couplings)
    step = chunk_rows(n, x.device)
    ref = torch.full((n,), _LOW, dtype=x.dtype, device=x.device)
    mass = torch.zeros(n, dtype=x.dtype, device=x.device)
    grad_all = torch.zeros(n, n + 1, dtype=x.dtype, device=x.device)
    for lo, hi in ranges:
        for start in range(lo, hi, step):
            block = data[start:min(start + step, hi)]
            c = block[:, :n]
            # -s H = (c / 2) H, plus log w_k
            exponent = torch.mm(block, factor.T).mul_(c).mul_(0.5)
            exponent += log_weights[start:min(start + step, hi), None]
            new_ref = torch.maximum(ref, exponent.max(0).values)
            rescale = torch.exp(ref - new_ref)
            ref = new_ref
            terms = torch.exp_(exponent.sub_(ref))
            mass = mass * rescale + terms.sum(0)
            dfields = terms.mul_(c)  # twice d/dH of the terms, -s e^{-s H}: alpha halves it
            grad_all.mul_(rescale[:, None]).addmm_(dfields.T, block, alpha=-0.25)
    if log:
        value = (torch.log(mass) + ref).sum()
        scale = 1.0 / mass
    else:
        scale = torch.exp(ref)
        value = (mass * scale).sum()
    value = value + 0.5 * l2 * couplings.pow(2).sum()
    grad_all.mul_(scale[:, None])
    return value, _assemble(grad_all[:, n], grad_all[:, :n], couplings, l2, False)


def _assemble(grad_h: Tensor, grad_w: Tensor, couplings: Tensor, l2: float,
              symmetric: bool) -> Tensor:
    """Fields' gradient on the diagonal, couplings' (plus the penalty's) off it."""
    grad_w.fill_diagonal_(0.0)
    if symmetric:
        grad_w = 0.5 * (grad_w + grad_w.T)
    return grad_w + l2 * couplings + torch.diag(grad_h)
