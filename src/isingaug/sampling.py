"""Sampling from an Ising model: exact (chunked enumeration) and batched MCMC.

The MCMC kernel advances every chain at once. A sweep visits the sites in order, as a textbook
single-site sampler does, and updates site i of all chains (and all tempering replicas, stacked as
more columns) with one vectorised operation; sites are grouped in blocks so that most of the
arithmetic of a sweep is a few matrix products (`SweepKernel`). The Python loop is over sites and
sweeps, never over chains or samples. The single-site *rule* (heat-bath or Metropolis) is a random
threshold inside the kernel, apart from the chain *runner*; parallel tempering swaps replicas
between sweeps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from isingaug.errors import ConfigError
from isingaug.ising import (
    DEFAULT_CHUNK,
    DEFAULT_MAX_ENUMERATION_N,
    EnergyBlocks,
    IsingParams,
)

RULES = ("heat_bath", "metropolis")
SAMPLER_KINDS = ("auto", "exact", "mcmc")
#: Couplings at which parallel tempering switches on when sampler.parallel_tempering is auto.
PT_AUTO_G = 1.5
#: Sites per block of the blocked sweep on the CPU (n < 128; doubled for larger n) and on CUDA.
BLOCK_CPU = 16
BLOCK_CUDA = 64
#: CPU tiles: about this many numbers of state per tile (2 MiB of float32), at least so many
#: chains.
TILE_FLOATS_CPU = 1 << 19
TILE_MIN_CPU = 4096
#: Samples drawn per enumeration block and call of torch.multinomial (bounds its buffers).
EXACT_DRAW_CHUNK = 1 << 20

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: CPU thresholds, per float type: the random word, and the bits b of the uniforms u = a / 2^b
#: made from it (a odd, a < 2^b: exact in that float type).
_THRESHOLD_WORDS = {np.float32: (np.uint32, 24), np.float64: (np.uint64, 53)}


def random_spins(shape: tuple[int, ...], rng: torch.Generator | None = None,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> Tensor:
    """Uniformly random +-1 spins."""
    bits = torch.randint(0, 2, shape, generator=rng, device=device)
    return (2 * bits - 1).to(dtype)


def exact_sample(params: IsingParams, num_samples: int, rng: torch.Generator | None = None,
                 chunk: int = DEFAULT_CHUNK,
                 max_n: int = DEFAULT_MAX_ENUMERATION_N) -> Tensor:
    """Independent samples from P = exp(-E)/Z by enumeration, in two memory-bounded passes.

    Pass one finds the probability mass of every block of states; blocks are then drawn
    multinomially and, within each block drawn, states in proportion to their weight. Memory is
    the output plus O(chunk) for the energies and O(EXACT_DRAW_CHUNK) for the draws, whatever
    num_samples and n are.
    """
    blocks = EnergyBlocks.of(params, chunk, max_n)
    block_log_mass = torch.stack([torch.logsumexp(-e.reshape(-1), 0) for _, e in blocks])
    picks = torch.multinomial(torch.softmax(block_log_mass, 0), num_samples, replacement=True,
                              generator=rng)
    counts = torch.bincount(picks, minlength=block_log_mass.shape[0]).tolist()
    del picks
    width, low_bits = blocks.low.shape
    samples = torch.empty(num_samples, params.n, dtype=params.dtype, device=params.device)
    filled = 0
    for count, (highs, e) in zip(counts, blocks, strict=True):
        probs = torch.softmax(-e.reshape(-1), 0) if count else None
        for offset in range(0, count, EXACT_DRAW_CHUNK):
            size = min(EXACT_DRAW_CHUNK, count - offset)
            rows = torch.multinomial(probs, size, replacement=True, generator=rng)
            out = samples[filled:filled + size]
            out[:, :low_bits] = blocks.low[rows % width]
            out[:, low_bits:] = highs[rows // width]
            filled += size
    order = torch.randperm(num_samples, generator=rng,
                           device=rng.device if rng is not None else samples.device)
    return samples[order.to(samples.device)]


def _check_rule(rule: str) -> None:
    if rule not in RULES:
        raise ConfigError(f"sampler.rule must be one of {list(RULES)}; got {rule!r}")


def default_block(n: int, device: torch.device) -> int:
    """Sites per block: a larger block means fewer matrix products per sweep but longer in-block
    corrections (a block site adds up to block - 1 updated neighbours). The CPU choice was the
    fastest of 8-64 in CPU-time measurements at n = 40-500; the CUDA one is a guess until a GPU
    measures it (benchmarks/gpu_check.py times several)."""
    if device.type == "cuda":
        return max(1, min(n, BLOCK_CUDA))
    return max(1, min(n, BLOCK_CPU if n < 128 else 2 * BLOCK_CPU if n < 384 else 4 * BLOCK_CPU))


def default_tile(n: int, device: torch.device) -> int:
    """Chains per tile: on the CPU a tile is swept whole before the next, so its state stays in
    the caches, while the per-site operations want many chains to amortise their call overhead.
    About 2^19 numbers of state (at least 4,096 chains) was the fastest or within 5 % of it at
    n = 20-200 and 10^4-10^5 chains on a Zen 4 core (1 MiB L2; CPU time, one thread), 1.1-1.4x
    faster than the 2^17 of the first kernel at n <= 100; at n = 500 repeated scans scattered by
    +-10 % with no consistent best. On CUDA one tile holds every chain."""
    if device.type == "cuda":
        return 1 << 62
    return max(TILE_MIN_CPU, TILE_FLOATS_CPU // (n + 1))


@contextmanager
def _exact_float32(device: torch.device) -> Iterator[None]:
    """No TF32 in the sweep's products on CUDA, whatever the process set for speed elsewhere:
    TF32 fields are off by about 1e-3 and every acceptance would be biased by as much."""
    if device.type != "cuda":
        yield
        return
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


class Uniforms:
    """The random thresholds of the sweeps: logit(u) (heat-bath) or log(u) (Metropolis) of fresh
    uniforms u, written into caller-owned buffers.

    On CUDA torch's generator (Philox) draws u and torch takes the logarithm. On the CPU the
    draws and their logarithms were half of a sweep's cost at n = 40 (torch's float32 log and
    logit ran at 1.0-1.1 ns a number, numpy's at 0.4), so there u is made from raw 64-bit words of
    a numpy SFC64 stream seeded once from `rng` (the same torch seed still gives the same chains)
    and numpy takes the logarithm: u = a / 2^b for an odd integer a < 2^b (b = 24 for float32, 53
    for float64, as exact in the float type), never 0 or 1, and logit(u) = log(a / (2^b - a)) with
    no cancellation near u = 1.
    """

    def __init__(self, rng: torch.Generator | None, device: torch.device) -> None:
        self.rng = rng
        self._bits: np.random.SFC64 | None = None
        self._scratch: dict[tuple[tuple[int, ...], np.dtype], np.ndarray] = {}
        if device.type == "cpu":
            seed_device = rng.device if rng is not None else "cpu"
            seed = torch.randint(0, 2**62, (1,), generator=rng, device=seed_device)
            self._bits = np.random.SFC64(int(seed))

    def logits_(self, out: Tensor) -> Tensor:
        """Fill a contiguous buffer in place with logit(u) and return it (heat-bath)."""
        if self._bits is None:
            return torch.logit(out.uniform_(generator=self.rng), out=out)
        values, bits = self._odd_numerators(out)
        key = (values.shape, values.dtype)
        if key not in self._scratch:
            self._scratch[key] = np.empty_like(values)
        rest = self._scratch[key]
        np.subtract(values.dtype.type(2.0**bits), values, out=rest)
        np.divide(values, rest, out=values)
        np.log(values, out=values)
        return out

    def logs_(self, out: Tensor) -> Tensor:
        """Fill a contiguous buffer in place with log(u) and return it (Metropolis)."""
        if self._bits is None:
            return torch.log(out.uniform_(generator=self.rng), out=out)
        values, bits = self._odd_numerators(out)
        np.multiply(values, values.dtype.type(2.0**-bits), out=values)
        np.log(values, out=values)
        return out

    def _odd_numerators(self, out: Tensor) -> tuple[np.ndarray, int]:
        """out (as a numpy view) filled with uniform odd integers a < 2^b, and b: the top b bits
        of a 32-bit (float32) or 64-bit (float64) random word, the last of them set to one."""
        assert self._bits is not None
        values = out.numpy()
        word_type, bits = _THRESHOLD_WORDS[values.dtype.type]
        word = np.dtype(word_type)
        size = values.size
        raw = self._bits.random_raw(-(-size * word.itemsize // 8))  # 64-bit words
        words = raw.view(word)[:size].reshape(values.shape)
        np.right_shift(words, 8 * word.itemsize - bits, out=words)
        np.bitwise_or(words, 1, out=words)
        np.copyto(values, words, casting="unsafe")
        return values, bits


@dataclass(frozen=True)
class _Block:
    """Consecutive sites [start, start + b) of one tile and the views its step works on."""

    weights: Tensor  # (b, n + 1): [J[block, :] with couplings to earlier block sites zeroed, h]
    field: Tensor  # (b, T): the block's rows of the tile's fields
    # per site: couplings to the block's earlier sites (k,), their spins (T, k), field, spins
    steps: tuple[tuple[Tensor | None, Tensor | None, Tensor, Tensor], ...]


class _Tile:
    """The chains of one tile, (n + 1, T) with a last row of ones, and its block views.

    `fields` and `previous` (n, T) are scratch shared by the tiles of one width: the sites'
    thresholds, then fields, of the sweep under way, and the spins before it (Metropolis only;
    None for heat-bath).
    """

    def __init__(self, weights: list[Tensor], J: Tensor, width: int, block: int,
                 buffers: tuple[Tensor, Tensor | None]) -> None:
        n = J.shape[0]
        self.state = torch.ones(n + 1, width, dtype=J.dtype, device=J.device)
        self.sites = self.state[:n]
        self.fields, self.previous = buffers
        blocks = []
        for index, start in enumerate(range(0, n, block)):
            size = min(block, n - start)
            steps = []
            for k in range(size):
                i = start + k
                coupled = (J[i, start:i], self.sites[start:i].T) if k else (None, None)
                steps.append((*coupled, self.fields[i], self.sites[i]))
            blocks.append(_Block(weights[index], self.fields[start:start + size], tuple(steps)))
        self.blocks = tuple(blocks)
        self.scale: Tensor | float = 1.0


class SweepKernel:
    """A sequential sweep of one model over many chains, laid out for few large operations.

    Chains are columns, stored site-major in tiles of `tile` chains, each tile (n + 1, T) with a
    last row of ones that carries h into the matrix products. A sweep visits sites 0..n-1 in
    order, as a plain single-site sampler does, in blocks of `block` consecutive sites: one matrix
    product gives every block site's field from the spins outside the block and from the block's
    not-yet-updated sites (the couplings to earlier block sites masked out); each site then adds
    the couplings to the block sites already updated (a matrix-vector product of at most
    block - 1 rows) and takes its new spin as the sign of the result. A sweep of a tile is thus
    n / block GEMMs plus two small vectorised operations per site, where the plain form is an
    n-row matrix-vector product and a handful of element-wise operations per site. A tile is
    swept whole before the next, so on the CPU its state stays in cache (default_tile).

    The rule is a random threshold folded into the field before the sign is taken: heat-bath sets
    s_i = +1 iff u < sigmoid(2 beta H_i), i.e. iff H_i - logit(u) / (2 beta) > 0; Metropolis
    flips s_i iff u < exp(-2 beta s_i H_i), i.e. the new spin is sign(H_i + s_i log(u) / (2 beta)).
    A field of exactly zero (probability zero) gives the sign of that zero.
    `beta` is one number or one per chain (tempering replicas are chains too). Every view is
    made once here: in the sweep, making them was a large part of the per-site cost.
    """

    def __init__(self, params: IsingParams, columns: int, rule: str = "heat_bath",
                 dtype: torch.dtype = torch.float32, block: int | None = None,
                 tile: int | None = None) -> None:
        _check_rule(rule)
        n, device = params.n, params.device
        self.n, self.columns, self.rule, self.device = n, int(columns), rule, device
        self.dtype = dtype
        self.block = default_block(n, device) if block is None else max(1, min(int(block), n))
        tile = default_tile(n, device) if tile is None else max(1, int(tile))
        count = math.ceil(self.columns / min(tile, self.columns))
        self.tile = math.ceil(self.columns / count)  # tiles as even as the count allows
        h, J = params.h.to(dtype), params.J.to(dtype)
        self._h = h[:, None]
        self._half_J = 0.5 * J
        self._J = J  # the coupling views of the steps point into it
        weights = []
        for start in range(0, n, self.block):
            stop = min(start + self.block, n)
            w = torch.cat([J[start:stop], h[start:stop, None]], 1)
            earlier = torch.tril(torch.ones(stop - start, stop - start, dtype=torch.bool,
                                            device=device), -1)
            w[:, start:stop].masked_fill_(earlier, 0.0)
            weights.append(w)
        self._bounds = [(start, min(start + self.tile, self.columns))
                        for start in range(0, self.columns, self.tile)]
        # scratch shared by the tiles of one width (contiguous, as Uniforms needs)
        buffers = {width: (torch.empty(n, width, dtype=dtype, device=device),
                           None if rule == "heat_bath"
                           else torch.empty(n, width, dtype=dtype, device=device))
                   for width in {stop - start for start, stop in self._bounds}}
        self._tiles = [_Tile(weights, J, stop - start, self.block, buffers[stop - start])
                       for start, stop in self._bounds]
        self.set_beta(1.0)

    def set_beta(self, beta: Tensor | float) -> None:
        """Inverse temperature: a number, or one per chain (shape (C,))."""
        half_inverse = 0.5 / torch.as_tensor(beta, dtype=self.dtype, device=self.device)
        scale = -half_inverse if self.rule == "heat_bath" else half_inverse
        for (start, stop), tile in zip(self._bounds, self._tiles, strict=True):
            tile.scale = scale.reshape(1, self.columns)[:, start:stop] if scale.ndim else scale

    def load(self, sites: Tensor) -> SweepKernel:
        """Copy site-major spins (n, C) into the kernel."""
        for (start, stop), tile in zip(self._bounds, self._tiles, strict=True):
            tile.sites.copy_(sites[:, start:stop])
        return self

    def spins(self, columns: Tensor | int | None = None) -> Tensor:
        """A copy of the spins, (n, C); the first `columns` chains, or those indexed."""
        sites = (self._tiles[0].sites.clone() if len(self._tiles) == 1
                 else torch.cat([tile.sites for tile in self._tiles], 1))
        if columns is None:
            return sites
        return sites[:, :columns] if isinstance(columns, int) else sites[:, columns]

    def sweep(self, uniforms: Uniforms) -> Tensor | None:
        """One sweep of every chain, in place. Metropolis: flips per chain; heat-bath: None."""
        heat_bath = self.rule == "heat_bath"
        agree = []
        with torch.no_grad(), _exact_float32(self.device):
            for tile in self._tiles:
                # every site's threshold at once: a site keeps its spin of the sweep's start
                # until its block's step, so Metropolis's s_i log(u) is known here too
                if heat_bath:
                    uniforms.logits_(tile.fields).mul_(tile.scale)
                else:
                    uniforms.logs_(tile.fields).mul_(tile.scale).mul_(tile.sites)
                    tile.previous.copy_(tile.sites)
                for blk in tile.blocks:
                    blk.field.addmm_(blk.weights, tile.state)
                    for couplings, updated, site_field, spins in blk.steps:
                        if couplings is not None:
                            site_field.addmv_(updated, couplings)
                        spins.copysign_(site_field)
                if not heat_bath:  # s_old s_new = -1 where a spin flipped
                    agree.append(tile.previous.mul_(tile.sites).sum(0))
        if heat_bath:
            return None
        return torch.cat(agree).neg_().add_(self.n).mul_(0.5)

    def energies(self, columns: int | None = None) -> Tensor:
        """E = -h.s - s.J s / 2 of the first `columns` chains (all by default); shape (columns,)."""
        with torch.no_grad(), _exact_float32(self.device):
            out = []
            for (start, _), tile in zip(self._bounds, self._tiles, strict=True):
                if columns is not None and start >= columns:
                    break
                spins = tile.sites
                out.append(-(torch.addmm(self._h, self._half_J, spins) * spins).sum(0))
            e = torch.cat(out)
        return e if columns is None else e[:columns]


def mcmc_sweep(params: IsingParams, sites: Tensor, rule: str = "heat_bath",
               rng: torch.Generator | None = None, beta: Tensor | float = 1.0) -> Tensor:
    """One sequential MCMC sweep over all sites, in place, for site-major chains (n, C).

    `beta` is a number or one per chain (C,). Returns the number of flips accepted per chain
    (Metropolis; zeros for heat-bath, which has no rejection). For many sweeps build one
    SweepKernel (as run_sweeps and mcmc_sample do) rather than calling this repeatedly.
    """
    kernel = SweepKernel(params, sites.shape[-1], rule, sites.dtype).load(sites)
    kernel.set_beta(beta)
    flips = kernel.sweep(Uniforms(rng, params.device))
    sites.copy_(kernel.spins())
    return flips if flips is not None else torch.zeros(sites.shape[-1], dtype=sites.dtype,
                                                       device=sites.device)


def run_sweeps(params: IsingParams, chains: Tensor, num_sweeps: int, rule: str = "heat_bath",
               rng: torch.Generator | None = None) -> Tensor:
    """Advance (C, n) chains by `num_sweeps` sweeps at beta = 1; returns the new chains."""
    _check_rule(rule)
    kernel = SweepKernel(params.to(device=chains.device), chains.shape[0], rule,
                         chains.dtype).load(chains.T)
    uniforms = Uniforms(rng, chains.device)
    for _ in range(num_sweeps):
        kernel.sweep(uniforms)
    return kernel.spins().T.contiguous()


def tempering_betas(replicas: int, beta_min: float) -> Tensor:
    """Geometric inverse-temperature ladder from 1 down to beta_min (1 first)."""
    if replicas < 2 or not 0.0 < beta_min < 1.0:
        raise ConfigError("sampler.pt_replicas must be >= 2 and sampler.pt_beta_min in (0, 1); "
                          f"got {replicas} and {beta_min}")
    return torch.logspace(0.0, math.log10(beta_min), replicas, dtype=torch.float64)


def swap_temperatures(order: Tensor, energies: Tensor, betas: Tensor, parity: int,
                      rng: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Replica-exchange moves between neighbouring temperatures (r, r+1), r of the given parity.

    `order` (R, C) is updated in place: order[r, c] is the replica slot that holds chain c's
    configuration at temperature betas[r]; `energies` (R, C) are those of the slots. Exchanging
    temperatures instead of configurations moves R * C numbers instead of n * R * C.
    Acceptance is min(1, exp((beta_r - beta_{r+1}) (E_r - E_{r+1}))). Returns the lower
    temperature r of each attempted pair (P,) and the acceptance per pair and chain (P, C).
    """
    replicas = betas.shape[0]
    lower, upper = slice(parity, replicas - 1, 2), slice(parity + 1, replicas, 2)
    pairs = torch.arange(replicas, device=order.device)[lower]
    if pairs.numel() == 0:
        return pairs, torch.zeros(0, order.shape[-1], device=order.device)
    e = energies.gather(0, order).to(betas.dtype)
    log_ratio = (betas[lower] - betas[upper])[:, None] * (e[lower] - e[upper])
    uniform = torch.rand(log_ratio.shape, generator=rng, device=order.device,
                         dtype=log_ratio.dtype)
    accept = torch.log(uniform) < log_ratio
    first, second = order[lower], order[upper]
    first_new = torch.where(accept, second, first)
    second.copy_(torch.where(accept, first, second))
    first.copy_(first_new)
    return pairs, accept.to(energies.dtype)


def slot_betas(order: Tensor, betas: Tensor) -> Tensor:
    """Each replica slot's inverse temperature (R, C), given order as in swap_temperatures."""
    values = betas.to(torch.float64)[:, None].expand(order.shape)
    return torch.empty(order.shape, dtype=torch.float64, device=order.device).scatter_(
        0, order, values)


def integrated_autocorrelation_time(trace: Tensor, window_factor: float = 5.0) -> float:
    """Integrated autocorrelation time (in steps of the trace) of a (T, C) trace of C chains.

    Autocorrelations come from an FFT, averaged over chains; the sum is cut at Sokal's automatic
    window, the smallest W with W >= window_factor * tau(W). Returns nan for too short a trace.
    """
    length = trace.shape[0]
    if length < 4:
        return math.nan
    x = trace.to(torch.float64)
    x = x - x.mean(0)
    spectrum = torch.fft.rfft(x, n=2 * length, dim=0)
    autocov = torch.fft.irfft(spectrum * spectrum.conj(), dim=0)[:length].mean(1)
    if autocov[0] <= 0:
        return math.nan
    rho = autocov / autocov[0]
    taus = 2.0 * torch.cumsum(rho, 0) - 1.0
    windows = torch.arange(length, dtype=torch.float64, device=taus.device)
    ok = windows >= window_factor * taus
    cut = int(torch.nonzero(ok)[0]) if ok.any() else length - 1
    return float(taus[cut])


@dataclass
class McmcSettings:
    """How MCMC samples are drawn; every length is counted in sweeps (n single-site updates)."""

    chains: int = 1000
    burn_in: int = 1000
    thin: int = 10
    rule: str = "heat_bath"
    parallel_tempering: bool = False
    pt_replicas: int = 8
    pt_beta_min: float = 0.3
    trace_chains: int = 256
    dtype: str = "float32"

    def __post_init__(self) -> None:
        _check_rule(self.rule)
        for key in ("chains", "thin"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"sampler.{key} must be >= 1; got {getattr(self, key)}")
        if int(self.burn_in) < 0:
            raise ConfigError(f"sampler.burn_in must be >= 0; got {self.burn_in}")
        if self.dtype not in _DTYPES:
            raise ConfigError(f"sampler.dtype must be one of {sorted(_DTYPES)}; "
                              f"got {self.dtype!r}")



@dataclass
class McmcResult:
    samples: Tensor
    diagnostics: dict[str, Any] = field(default_factory=dict)


def mcmc_sample(params: IsingParams, num_samples: int, settings: McmcSettings,
                rng: torch.Generator | None = None, block: int | None = None) -> McmcResult:
    """Draw `num_samples` patterns from `settings.chains` independent chains on params' device.

    Chains start uniformly random, run `burn_in` sweeps, then give one sample every `thin`
    sweeps, written into one preallocated (num_samples, n) buffer (memory: the samples and the
    chains, nothing per step). The energy of up to `trace_chains` chains is recorded every sweep
    from half the burn-in on, and its integrated autocorrelation time (in sweeps) is reported so
    the user can judge whether burn-in and thinning are long enough. `block` is SweepKernel's
    (a speed knob; None: default_block).
    """
    if num_samples < 1:
        raise ConfigError(f"number of samples must be >= 1; got {num_samples}")
    dtype = _DTYPES[settings.dtype]
    device = params.device
    n = params.n
    chains_n = min(settings.chains, num_samples)
    per_chain = math.ceil(num_samples / chains_n)
    if settings.parallel_tempering:
        betas = tempering_betas(settings.pt_replicas, settings.pt_beta_min).to(device)
    else:
        betas = torch.ones(1, dtype=torch.float64, device=device)
    replicas = betas.shape[0]
    start_spins = random_spins((replicas, n, chains_n), rng, device, dtype)
    kernel = SweepKernel(params, replicas * chains_n, settings.rule, dtype, block)
    kernel.load(start_spins.transpose(0, 1).reshape(n, -1))
    del start_spins
    # order[r, c]: the slot (block of chains_n columns) holding chain c at temperature betas[r]
    order = torch.arange(replicas, device=device)[:, None].repeat(1, chains_n)
    chain_index = torch.arange(chains_n, device=device)
    kernel.set_beta(slot_betas(order, betas).reshape(-1))
    uniforms = Uniforms(rng, device)
    total = settings.burn_in + (per_chain - 1) * settings.thin + 1
    trace_from = settings.burn_in // 2
    traced = min(settings.trace_chains, chains_n)
    trace = torch.empty(max(total - trace_from, 0), traced, dtype=dtype, device=device)
    samples = torch.empty(per_chain, chains_n, n, dtype=dtype, device=device)
    flips = torch.zeros((), device=device, dtype=dtype)
    swaps = torch.zeros(max(replicas - 1, 0), device=device, dtype=torch.float64)
    swap_tries = torch.zeros_like(swaps)
    start = time.perf_counter()
    columns = chain_index  # the columns at beta = 1
    for step in range(total):
        accepted = kernel.sweep(uniforms)
        if accepted is not None:
            flips += accepted[columns].sum()
        if replicas > 1:
            energies = kernel.energies().view(replicas, chains_n)
            pairs, accept = swap_temperatures(order, energies, betas, step % 2, rng)
            swaps[pairs] += accept.mean(1).to(swaps.dtype)
            swap_tries[pairs] += 1
            kernel.set_beta(slot_betas(order, betas).reshape(-1))
            columns = order[0] * chains_n + chain_index
            if step >= trace_from:
                trace[step - trace_from] = energies.gather(0, order[:1])[0, :traced]
        elif step >= trace_from:
            trace[step - trace_from] = kernel.energies(traced)
        if step >= settings.burn_in and (step - settings.burn_in) % settings.thin == 0:
            at_one = kernel.spins(columns if replicas > 1 else chains_n)
            samples[(step - settings.burn_in) // settings.thin] = at_one.T
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    samples = samples.reshape(-1, n)[:num_samples]
    tau = integrated_autocorrelation_time(trace) if trace.shape[0] else math.nan
    diagnostics: dict[str, Any] = {
        "sampler": "mcmc",
        "rule": settings.rule,
        "chains": chains_n,
        "samples_per_chain": per_chain,
        "sweeps": total,
        "burn_in": settings.burn_in,
        "thin": settings.thin,
        "tau_int_energy": tau,
        "seconds": seconds,
        "sweeps_per_second": total / seconds if seconds > 0 else math.nan,
    }
    if settings.rule == "metropolis":
        diagnostics["acceptance"] = float(flips) / (total * chains_n * n)
    if replicas > 1:
        diagnostics["pt_betas"] = betas.tolist()
        diagnostics["pt_swap_rates"] = (swaps / swap_tries.clamp(min=1)).tolist()
    diagnostics["warnings"] = mixing_warnings(tau, settings.burn_in, settings.thin, per_chain)
    return McmcResult(samples, diagnostics)


def mixing_warnings(tau: float, burn_in: int, thin: int, per_chain: int) -> list[str]:
    """Plain-language warnings when burn-in or thinning are short against tau_int(E)."""
    warnings = []
    if math.isnan(tau):
        return ["the energy trace was too short to measure tau_int; lengthen sampler.burn_in"]
    if burn_in < 20 * tau:
        warnings.append(f"sampler.burn_in={burn_in} sweeps is under 20 tau_int(E) = {20 * tau:.0f};"
                        " samples may not be equilibrated")
    if per_chain > 1 and thin < 2 * tau:
        warnings.append(f"sampler.thin={thin} sweeps is under 2 tau_int(E) = {2 * tau:.1f};"
                        " successive samples of a chain are correlated")
    return warnings


def resolve_sampler(sampler: dict[str, Any], n: int, g: float, owner: str) -> dict[str, Any]:
    """Settle a sampler config's 'auto' choices, so cache keys and metadata record what was done.

    `owner` is the config group holding the `sampler` node (for error messages).
    """
    spec = dict(sampler)
    kind = spec.pop("kind", "auto")
    if kind not in SAMPLER_KINDS:
        raise ConfigError(f"{owner}.sampler.kind must be one of {list(SAMPLER_KINDS)}; "
                          f"got {kind!r}")
    exact_max_n = int(spec.pop("exact_max_n", 20))
    if kind == "auto":
        kind = "exact" if n <= exact_max_n else "mcmc"
    if kind == "exact":
        return {"kind": "exact",
                "max_enumeration_n": int(spec.get("max_enumeration_n", DEFAULT_MAX_ENUMERATION_N))}
    spec.pop("max_enumeration_n", None)
    pt = spec.get("parallel_tempering", "auto")
    if pt == "auto":
        pt = g >= PT_AUTO_G
    if not isinstance(pt, bool):
        raise ConfigError(f"{owner}.sampler.parallel_tempering must be auto, true or false; "
                          f"got {pt!r}")
    spec["parallel_tempering"] = pt
    try:
        settings = McmcSettings(**spec)
    except TypeError as err:
        raise ConfigError(f"{owner}.sampler has an unknown key: {err}") from err
    return {"kind": "mcmc", **settings.__dict__}


def draw_samples(params: IsingParams, num: int, spec: dict[str, Any],
                 rng: torch.Generator) -> tuple[Tensor, dict[str, Any]]:
    """`num` patterns from P = exp(-E)/Z as a resolved spec says, with the sampler's diagnostics.

    MCMC samples are shuffled, so consecutive patterns do not come from one chain.
    """
    if spec["kind"] == "exact":
        samples = exact_sample(params, num, rng, max_n=spec["max_enumeration_n"])
        return samples, {"sampler": "exact"}
    settings = McmcSettings(**{k: v for k, v in spec.items() if k != "kind"})
    result = mcmc_sample(params, num, settings, rng)
    order = torch.randperm(num, generator=rng, device=params.device)
    return result.samples[order], result.diagnostics
