"""Bernoulli-Bernoulli RBMs: `rbm` (PCD-k / CD-k, long Gibbs chains) and `ff_rbm` (F&F).

Both share the energy and the Gibbs kernels below, written as plain functions on tensors apart from
the classes. Units are {0,1} internally: a +-1 training pattern s enters as v = (s + 1)/2 and a
generated v leaves as s = 2v - 1. With W (n, H), visible bias b (n) and hidden bias c (H),

    E(v, h) = -b.v - c.h - v^T W h,   F(v) = -b.v - sum_mu softplus(c_mu + (v W)_mu),

p(h_mu = 1 | v) = sigmoid(c_mu + (v W)_mu) and p(v_i = 1 | h) = sigmoid(b_i + (W h)_i).

Choices shared by both classes (the decisions of the F&F authors' public code, DsysDML/FeF, as
numbered in our notes on it):
- one Gibbs step is true block Gibbs (h sampled from p(h|v), then v sampled from p(v|h)), the
  same kernel in training and in generation (decision 8, as in the refactored F&F code);
- both phases use the hidden conditional mean p(h|v) as hidden statistic (decision 6), and the
  negative phase takes it from the final visible state v^(k), with no half-step lag (decision 7);
- the centered gradient (Melchior et al.) is on by default, with offsets from the minibatch's data
  (decision 9); `offset_momentum` > 0 turns them into running means instead;
- the gradient ascent direction is assigned to `.grad` of optimizers built with maximize=True
  (as the refactored code does); plain SGD by default (decision 10), at lr 0.05 (rbm) and 0.1
  (ff_rbm): the literature's 0.01 needs more updates than a CPU budget allows
  (benchmarks/README.md);
- W ~ N(0, weight_init_std^2), c = 0 and b = logit of the clamped data frequency (decision 11);
- `weight_decay` (Hinton's "weight-cost") subtracts weight_decay * W from the W direction: the
  ascent of the log-likelihood minus weight_decay/2 |W|^2, off (0) by default, the same for SGD
  and Adam; the biases are not decayed;
- `ema_decay` (null = off) keeps an exponential moving average of (W, b, c), updated after every
  update and used for generation and the exact likelihood: it averages out the SGD noise of the
  last updates (Polyak-Ruppert averaging) that a constant learning rate leaves in the weights.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.functional import softplus

from isingaug.errors import ConfigError, check_options, is_int, is_number
from isingaug.generators.base import FitContext
from isingaug.generators.learned import LearnedGenerator, ema_decay_option, ema_step
from isingaug.ising import enumerate_states
from isingaug.seeding import stream

OPTIMIZERS = ("sgd", "adam")
BIAS_INITS = ("data", "zero")
#: Data frequencies are clamped to [eps, 1 - eps] before the logit of the visible-bias init.
FREQUENCY_EPS = 1e-4
#: log Z enumerates the 2^units states of the smaller layer up to this many units (2^20 states).
LOG_PARTITION_MAX_UNITS = 20
#: Elements (states x units) per chunk of log Z and log_prob: bounds their memory.
_LOG_PROB_CHUNK_ELEMENTS = 1 << 22
#: Visible units of the block multiplied once in minus_free_energy_table (2^12 states).
_TABLE_LOW_BITS = 12
#: Buffers of the moving average of (W, b, c) kept with `ema_decay`.
EMA_BUFFERS = ("ema_weight", "ema_visible_bias", "ema_hidden_bias")
#: `hidden: auto`: the hidden layer grows with the training set (see `auto_hidden`).
AUTO_HIDDEN = "auto"


class RbmParams(NamedTuple):
    """The parameters (or their gradients): W (n, H), visible bias b (n), hidden bias c (H)."""

    W: Tensor
    b: Tensor
    c: Tensor


# ----------------------------------------------------------------------------------------------
# Kernels: plain functions on tensors ({0,1} units, rows are chains or patterns).
# ----------------------------------------------------------------------------------------------

def to_binary(spins: Tensor) -> Tensor:
    """+-1 patterns to {0,1} units."""
    return (spins + 1.0) / 2.0


def to_spins(units: Tensor) -> Tensor:
    """{0,1} units to +-1 patterns."""
    return 2.0 * units - 1.0


def hidden_probs(v: Tensor, W: Tensor, c: Tensor) -> Tensor:
    """p(h = 1 | v), shape (B, H)."""
    return torch.sigmoid(c + v @ W)


def visible_probs(h: Tensor, W: Tensor, b: Tensor) -> Tensor:
    """p(v = 1 | h), shape (B, n)."""
    return torch.sigmoid(b + h @ W.T)


def bernoulli(probs: Tensor, rng: torch.Generator) -> Tensor:
    """A {0,1} draw per entry, 1 where a uniform falls below its probability: the same law as
    torch.bernoulli at half its cost on a CPU, where the draws were 80% of a Gibbs sweep."""
    uniform = torch.rand(probs.shape, device=probs.device, dtype=probs.dtype, generator=rng)
    return (uniform < probs).to(probs.dtype)


def sample_hiddens(v: Tensor, W: Tensor, c: Tensor, rng: torch.Generator) -> Tensor:
    """A {0,1} sample of h ~ p(h | v) for every row of v."""
    return bernoulli(hidden_probs(v, W, c), rng)


def sample_visibles(h: Tensor, W: Tensor, b: Tensor, rng: torch.Generator) -> Tensor:
    """A {0,1} sample of v ~ p(v | h) for every row of h."""
    return bernoulli(visible_probs(h, W, b), rng)


def gibbs_step(v: Tensor, params: RbmParams, rng: torch.Generator) -> Tensor:
    """One block-Gibbs sweep v -> h -> v' (all chains at once)."""
    h = sample_hiddens(v, params.W, params.c, rng)
    return sample_visibles(h, params.W, params.b, rng)


def gibbs_steps(v: Tensor, params: RbmParams, k: int, rng: torch.Generator) -> Tensor:
    """The visible state after k Gibbs sweeps from v (the chains are the rows)."""
    for _ in range(k):
        v = gibbs_step(v, params, rng)
    return v


def free_energy(v: Tensor, params: RbmParams) -> Tensor:
    """F(v) = -b.v - sum_mu softplus(c_mu + (v W)_mu), so that p(v) = exp(-F(v)) / Z."""
    return -(v @ params.b) - softplus(params.c + v @ params.W).sum(-1)


def minus_free_energy_table(params: RbmParams,
                            max_units: int = LOG_PARTITION_MAX_UNITS) -> Tensor:
    """-F(v) of every {0,1}^n visible state, state k having v_i = bit_i(k) (enumerate_states's
    order), in the parameters' dtype (pass float64).

    Blocked like ising.EnergyBlocks: with v = (low, high) bits, vW + c = (low W_low + c) +
    high W_high, so the low block is multiplied once and each group of high settings costs one
    broadcast add; the 2^n x H softplus is all the work. Memory: the table (2^n numbers) plus
    chunks of _LOG_PROB_CHUNK_ELEMENTS.
    """
    W, b, c = params
    n = W.shape[0]
    if n > max_units:
        raise ConfigError(f"the RBM's table of -F enumerates 2^{n} visible states; allowed up "
                          f"to 2^{max_units}")
    low_bits = min(n, _TABLE_LOW_BITS)
    low = to_binary(next(iter(enumerate_states(low_bits, 1 << low_bits, W.dtype, W.device,
                                               max_n=low_bits))))
    low_fields = low @ W[:low_bits] + c  # (2^L, H)
    low_bias = low @ b[:low_bits]
    group = max(1, _LOG_PROB_CHUNK_ELEMENTS // low_fields.numel())
    parts = []
    for highs in enumerate_states(n - low_bits, group, W.dtype, W.device, max_n=max_units):
        high = to_binary(highs)
        fields = low_fields + (high @ W[low_bits:])[:, None, :]  # (G, 2^L, H)
        parts.append((softplus(fields).sum(-1) + low_bias + (high @ b[low_bits:])[:, None])
                     .reshape(-1))
    return torch.cat(parts)


def rbm_log_partition(params: RbmParams, max_units: int = LOG_PARTITION_MAX_UNITS) -> Tensor:
    """log Z = log sum_{v,h} exp(-E(v, h)): one layer summed analytically, the other enumerated.

    Over the visibles log Z = logsumexp_v -F(v); over the hiddens
    log Z = logsumexp_h [c.h + sum_i softplus(b_i + (W h)_i)], the same table for the RBM with
    its layers swapped (W^T, c, b). The smaller layer is enumerated.
    """
    W, b, c = params
    n, hidden = W.shape
    if min(n, hidden) > max_units:
        raise ConfigError(f"the RBM's exact log Z enumerates its smaller layer, here "
                          f"2^{min(n, hidden)} states (n={n} visible, hidden={hidden}); allowed "
                          f"up to 2^{max_units}")
    swapped = params if n <= hidden else RbmParams(W.T, c, b)
    return torch.logsumexp(minus_free_energy_table(swapped, max_units), 0)


def _normalised(weights: Tensor | None, rows: Tensor) -> Tensor:
    if weights is None:
        return torch.full((rows.shape[0],), 1.0 / rows.shape[0], dtype=rows.dtype,
                          device=rows.device)
    return weights.to(rows.dtype) / weights.sum()


def rbm_gradient(v_data: Tensor, v_model: Tensor, params: RbmParams, *, centered: bool = False,
                 offsets: tuple[Tensor, Tensor] | None = None,
                 data_weights: Tensor | None = None,
                 model_weights: Tensor | None = None) -> RbmParams:
    """The log-likelihood gradient <.>_data - <.>_model for (W, b, c), an ascent direction.

    The hidden statistic is the conditional mean p(h|v) of each row. Rows are averaged with
    `data_weights` / `model_weights` (normalised; None = uniform), so exact expectations follow
    from all 2^n visible states weighted by p(v).

    `centered` gives the centered gradient of Melchior et al. mapped back to (W, b, c), with
    offsets (mu, lam) for the visible and hidden units (None: the data's weighted means):
        dW = <(v-mu)(h-lam)^T>_data - <(v-mu)(h-lam)^T>_model,
        db = <v>_data - <v>_model - dW lam,   dc = <h>_data - <h>_model - dW^T mu.
    This is L L^T g for the plain gradient g and the invertible linear map L from centered to
    plain parameters (b = b' - W lam, c = c' - W^T mu): an ascent direction with the same zeros.
    """
    h_data = hidden_probs(v_data, params.W, params.c)
    h_model = hidden_probs(v_model, params.W, params.c)
    w_data = _normalised(data_weights, v_data)
    w_model = _normalised(model_weights, v_model)
    mean_v_data, mean_h_data = w_data @ v_data, w_data @ h_data
    mean_v_model, mean_h_model = w_model @ v_model, w_model @ h_model
    if not centered:
        grad_W = (v_data * w_data[:, None]).T @ h_data - (v_model * w_model[:, None]).T @ h_model
        return RbmParams(grad_W, mean_v_data - mean_v_model, mean_h_data - mean_h_model)
    mu, lam = offsets if offsets is not None else (mean_v_data, mean_h_data)
    grad_W = (((v_data - mu) * w_data[:, None]).T @ (h_data - lam)
              - ((v_model - mu) * w_model[:, None]).T @ (h_model - lam))
    grad_b = mean_v_data - mean_v_model - grad_W @ lam
    grad_c = mean_h_data - mean_h_model - grad_W.T @ mu
    return RbmParams(grad_W, grad_b, grad_c)


def auto_hidden(patterns: int, n: int) -> int:
    """`hidden: auto`: max(round(sqrt(M)), round(1.6 n)) hidden units for M patterns of n spins.

    Why: the capacity that gives the best couplings grows with the spins and with the data. At
    SK n = 20, M = 1,000, 32 units beat 16, 64 and 256; at n = 40, M = 1,000, 64 beat 32; at
    M = 4,000, 64 beat 32 at n = 20 and at n = 40 (benchmarks/README.md). The rule gives 32,
    64, 63 and 64 there.
    """
    return max(1, round(patterns ** 0.5), round(1.6 * n))


# ----------------------------------------------------------------------------------------------
# Generators
# ----------------------------------------------------------------------------------------------

class Rbm(LearnedGenerator):
    """`generator=rbm`: an RBM trained near equilibrium, sampled from long Gibbs chains.

    `method`: `pcd` keeps `num_chains` persistent chains (a persistent buffer, so checkpoints
    carry them) and advances them `k` sweeps per update; `cd` restarts the chains from the
    minibatch and runs `k` sweeps. Generation runs `gibbs_steps` sweeps from `generate_start`
    (`random`: Bernoulli(1/2) visibles; `data`: training patterns drawn with replacement) and
    returns the last sampled visible state. `hidden` is a number of units or `auto`
    (`auto_hidden`: max(sqrt(M), 1.6 n), fixed when fit() sees the M training patterns).
    """

    name = "rbm"
    METHODS: tuple[str, ...] = ("pcd", "cd")
    STARTS: tuple[str, ...] = ("random", "data")
    _start_key = "generator.generate_start"

    def __init__(self, hidden: int | str = AUTO_HIDDEN, lr: float = 0.05, optimizer: str = "sgd",
                 method: str = "pcd", k: int = 10, num_chains: int | None = None,
                 centered: bool = True, offset_momentum: float = 0.0,
                 weight_init_std: float = 0.01, weight_decay: float = 0.0,
                 ema_decay: float | None = None, visible_bias_init: str = "data",
                 gibbs_steps: int = 2000, generate_start: str = "random",
                 batch_size: int = 1000, sample_batch_size: int = 10000, seed: int = 0,
                 device: str = "auto", **training: Any) -> None:
        super().__init__(batch_size=batch_size, sample_batch_size=sample_batch_size, seed=seed,
                         device=device, **training)
        check_options([
            ("generator.hidden", hidden,
             hidden == AUTO_HIDDEN or (is_int(hidden) and hidden >= 1),
             f"an integer >= 1 or {AUTO_HIDDEN!r} (max(sqrt(M), 1.6 n) for M patterns of n "
             "spins)"),
            ("generator.lr", lr, is_number(lr) and lr > 0, "a number > 0"),
            ("generator.optimizer", optimizer, optimizer in OPTIMIZERS,
             f"one of {list(OPTIMIZERS)}"),
            ("generator.method", method, method in self.METHODS, f"one of {list(self.METHODS)}"),
            ("generator.k", k, is_int(k) and k >= 1, "an integer >= 1"),
            ("generator.num_chains", num_chains,
             num_chains is None or (is_int(num_chains) and num_chains >= 1),
             "null (= batch_size) or an integer >= 1"),
            ("generator.centered", centered, isinstance(centered, bool), "true or false"),
            ("generator.offset_momentum", offset_momentum,
             is_number(offset_momentum) and 0 <= offset_momentum < 1, "a number in [0, 1)"),
            ("generator.weight_init_std", weight_init_std,
             is_number(weight_init_std) and weight_init_std >= 0, "a number >= 0"),
            ("generator.weight_decay", weight_decay,
             is_number(weight_decay) and weight_decay >= 0, "a number >= 0 (0 = off)"),
            ema_decay_option(ema_decay),
            ("generator.visible_bias_init", visible_bias_init, visible_bias_init in BIAS_INITS,
             f"one of {list(BIAS_INITS)}"),
            ("generator.gibbs_steps", gibbs_steps, is_int(gibbs_steps) and gibbs_steps >= 1,
             "an integer >= 1"),
            (self._start_key, generate_start, generate_start in self.STARTS,
             f"one of {list(self.STARTS)}"),
        ])
        self.hidden_option = hidden
        self.hidden = 0 if hidden == AUTO_HIDDEN else int(hidden)
        self.diagnostics: dict[str, Any] = {}
        self.lr = float(lr)
        self.optimizer_name = optimizer
        self.method = method
        self.k = int(k)
        self.num_chains = self.batch_size if num_chains is None else int(num_chains)
        self.centered = centered
        self.offset_momentum = float(offset_momentum)
        self.weight_init_std = float(weight_init_std)
        self.weight_decay = float(weight_decay)
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.visible_bias_init = visible_bias_init
        self.gibbs_steps = int(gibbs_steps)
        self.generate_start = generate_start
        self.automatic_optimization = False

    # -- parameters ---------------------------------------------------------------------------

    def fit(self, context: FitContext) -> None:
        """Train (`LearnedGenerator.fit`), with `hidden: auto` resolved from the training set's
        size first; the hidden layer's size is kept in `diagnostics` (results.json)."""
        if self.hidden_option == AUTO_HIDDEN and context.train.ndim == 2:  # else fit() refuses it
            self.hidden = auto_hidden(*(int(size) for size in context.train.shape))
        self.diagnostics = {"hidden": self.hidden}
        super().fit(context)

    def build(self, n: int) -> None:
        """W, b, c; the data means and centering offsets; PCD's persistent chains."""
        weights = torch.randn(n, self.hidden, generator=stream(self.seed, "init", "weights"))
        self.weight = nn.Parameter(weights * self.weight_init_std)
        self.visible_bias = nn.Parameter(torch.zeros(n))
        self.hidden_bias = nn.Parameter(torch.zeros(self.hidden))
        self.register_buffer("data_mean", torch.full((n,), 0.5))
        self.register_buffer("visible_offset", torch.full((n,), 0.5))
        self.register_buffer("hidden_offset", torch.full((self.hidden,), 0.5))
        if self.method == "pcd":
            start = torch.full((self.num_chains, n), 0.5)
            self.register_buffer("chains", bernoulli(start, stream(self.seed, "init", "chains")))
        if self.ema_decay is not None:
            for name, param in zip(EMA_BUFFERS, self.params, strict=True):
                self.register_buffer(name, param.detach().clone())

    def setup(self, stage: str) -> None:
        """Data-dependent init (before Lightning restores a checkpoint, which then wins)."""
        if stage != "fit" or self.train_data.numel() == 0:
            return
        with torch.no_grad():
            mean = to_binary(self.train_data).mean(0).to(self.data_mean)
            self.data_mean.copy_(mean)
            self.visible_offset.copy_(mean)
            if self.visible_bias_init == "data":
                freq = mean.clamp(FREQUENCY_EPS, 1.0 - FREQUENCY_EPS)
                self.visible_bias.copy_(torch.log(freq) - torch.log1p(-freq))
        if self.ema_decay is not None:
            self.reset_average()

    @property
    def params(self) -> RbmParams:
        """The current (W, b, c)."""
        return RbmParams(self.weight, self.visible_bias, self.hidden_bias)

    @property
    def sampling_params(self) -> RbmParams:
        """What generation and the likelihood use: the moving average when kept, else params."""
        if self.ema_decay is None:
            return self.params
        return RbmParams(*(getattr(self, name) for name in EMA_BUFFERS))

    def reset_average(self) -> None:
        """Start the moving average at the current parameters."""
        with torch.no_grad():
            for average, param in zip(self.sampling_params, self.params, strict=True):
                average.copy_(param)

    # -- chains -------------------------------------------------------------------------------

    def initial_chains(self, num: int, start: str, rng: torch.Generator) -> Tensor:
        """`num` {0,1} visible states drawn from a start distribution."""
        n = self.weight.shape[0]
        if start in ("random", "uniform"):
            probs = torch.full((num, n), 0.5, device=self.device)
        elif start == "data_marginals":
            probs = self.data_mean.expand(num, n).contiguous()
        else:  # "data": training patterns, drawn with replacement
            if self.train_data.numel() == 0:
                raise RuntimeError("generate_start=data needs the training patterns of fit()")
            rows = torch.randint(self.train_data.shape[0], (num,), device=self.device,
                                 generator=rng)
            return to_binary(self.train_data[rows])
        return bernoulli(probs, rng)

    def negative_chains(self, v_data: Tensor) -> Tensor:
        """The negative-phase visibles of this update (PCD advances its persistent chains)."""
        rng = self.step_rng("gibbs")
        if self.method == "cd":
            return gibbs_steps(v_data, self.params, self.k, rng)
        chains = gibbs_steps(self.chains, self.params, self.k, rng)
        self.chains.copy_(chains)
        return chains

    # -- training -----------------------------------------------------------------------------

    def offsets(self, v_data: Tensor) -> tuple[Tensor, Tensor]:
        """Centering offsets: the minibatch's data means, or running means with momentum."""
        m = self.offset_momentum
        batch_v = v_data.mean(0)
        batch_h = hidden_probs(v_data, self.weight, self.hidden_bias).mean(0)
        self.visible_offset.copy_(m * self.visible_offset + (1.0 - m) * batch_v)
        self.hidden_offset.copy_(m * self.hidden_offset + (1.0 - m) * batch_h)
        return self.visible_offset, self.hidden_offset

    def training_step(self, batch: Any, batch_idx: int) -> None:
        """One update: data batch, negative chains, (centered) gradient, optimizer step."""
        with torch.no_grad():
            v_data = to_binary(self.batch())
            v_model = self.negative_chains(v_data)
            offsets = self.offsets(v_data) if self.centered else None
            grads = rbm_gradient(v_data, v_model, self.params, centered=self.centered,
                                 offsets=offsets)
            if self.weight_decay:
                grads = grads._replace(W=grads.W - self.weight_decay * self.weight)
            recon = visible_probs(hidden_probs(v_data, self.weight, self.hidden_bias),
                                  self.weight, self.visible_bias)
            self.log("train/recon_error", ((v_data - recon) ** 2).mean(),
                     batch_size=v_data.shape[0])
            self.log("train/free_energy_gap", free_energy(v_data, self.params).mean()
                     - free_energy(v_model, self.params).mean(), batch_size=v_data.shape[0])
        optimizer = self.optimizers()
        optimizer.zero_grad()
        for param, grad in zip(self.params, grads, strict=True):
            param.grad = grad
        optimizer.step()
        if self.ema_decay is not None:
            ema_step(self.sampling_params, self.params, self.ema_decay)
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()  # manual optimisation: Lightning leaves the stepping to us

    def configure_optimizers(self) -> Any:
        """SGD (no momentum) or Adam, maximising: `.grad` holds the ascent direction."""
        params = list(self.params)
        if self.optimizer_name == "adam":
            return self.with_schedule(torch.optim.Adam(params, lr=self.lr, maximize=True))
        return self.with_schedule(torch.optim.SGD(params, lr=self.lr, maximize=True))

    # -- generation ---------------------------------------------------------------------------

    def generate(self, num: int, rng: torch.Generator) -> Tensor:
        """`gibbs_steps` sweeps from the start distribution; the last sampled visibles as +-1."""
        start = self.initial_chains(num, self.generate_start, rng)
        return to_spins(gibbs_steps(start, self.sampling_params, self.gibbs_steps, rng))

    # -- exact likelihood ---------------------------------------------------------------------

    @property
    def tractable(self) -> bool:
        """log_prob is exact once fitted if a layer has <= LOG_PARTITION_MAX_UNITS units.

        It depends on the size, so it is False before fit() (n unknown) and for, e.g., n = 100
        visible and 64 hidden units.
        """
        return self.n > 0 and min(self.n, self.hidden) <= LOG_PARTITION_MAX_UNITS

    def _exact_params(self) -> RbmParams:
        return RbmParams(*(p.detach().to(torch.float64) for p in self.sampling_params))

    def _likelihood_tables(self) -> tuple[Tensor, Tensor | None]:
        """(log Z, -F of all 2^n visible states or None), float64, cached until a weight changes.

        With n <= hidden the -F table is what log Z sums, so it is kept (8 * 2^n bytes) and
        log_prob becomes a lookup: a KL over all states then costs one pass, not two.
        """
        params = self._exact_params()
        cached = getattr(self, "_log_z_cache", None)
        if cached is not None and all(a.device == b.device and torch.equal(a, b)
                                      for a, b in zip(cached[0], params, strict=True)):
            return cached[1], cached[2]
        n, hidden = params.W.shape
        table = None
        if n <= hidden:
            table = minus_free_energy_table(params)
            log_z = torch.logsumexp(table, 0)
        else:
            log_z = rbm_log_partition(params)
        self._log_z_cache = (params, log_z, table)
        return log_z, table

    @torch.no_grad()
    def log_partition(self) -> Tensor:
        """log Z of the current weights in float64 (cached until any weight changes)."""
        return self._likelihood_tables()[0]

    @torch.no_grad()
    def log_prob(self, spins: Tensor) -> Tensor:
        """Exact log p(s) = -F(v) - log Z of +-1 patterns (M, n): float64, on the module's device.

        p is the RBM's equilibrium distribution: what its long Gibbs chains sample.
        """
        log_z, table = self._likelihood_tables()
        spins = spins.to(device=log_z.device)
        if table is not None:
            powers = torch.ones(spins.shape[1], dtype=torch.int64, device=spins.device) << (
                torch.arange(spins.shape[1], device=spins.device))
            return table[((spins > 0).to(torch.int64) * powers).sum(1)] - log_z
        params = self._exact_params()
        v = to_binary(spins.to(torch.float64))
        rows = max(1, _LOG_PROB_CHUNK_ELEMENTS // self.hidden)
        return torch.cat([-free_energy(v[start:start + rows], params) - log_z
                          for start in range(0, v.shape[0], rows)])


class FFRbm(Rbm):
    """`generator=ff_rbm`: the F&F RBM, trained out of equilibrium (arXiv 2307.06797).

    At every update `num_chains` fresh chains start from the fixed distribution `init`
    (`data_marginals`, the default: independent sites at the data frequencies, annaDCA's profile
    start, which gave better couplings than the paper's `uniform` Bernoulli(1/2) visibles at SK
    n = 20, M = 1,000: benchmarks/README.md) and run exactly `k` Gibbs sweeps; the negative
    statistics are taken there. Generation repeats that protocol: fresh chains from `init`,
    `gibbs_steps` sweeps, which is k unless set otherwise (other lengths leave the trained
    protocol and give a warning). Without labels F&F reduces to Rdm-k (ff_rbm.md decision 2);
    Ising patterns have no labels, so the label layer and its second, visible-clamped chain are
    left out.
    """

    name = "ff_rbm"
    #: log_prob (inherited) is the equilibrium distribution of the energy, but F&F samples come
    #: from k sweeps started at `init`, a different distribution: its likelihood is not exact.
    tractable = False
    METHODS = ("ff",)
    STARTS = ("uniform", "data_marginals")
    _start_key = "generator.init"

    def __init__(self, hidden: int = 256, lr: float = 0.1, optimizer: str = "sgd", k: int = 10,
                 num_chains: int | None = None, init: str = "data_marginals", centered: bool = True,
                 offset_momentum: float = 0.0, weight_init_std: float = 1e-4,
                 weight_decay: float = 0.0, ema_decay: float | None = None,
                 visible_bias_init: str = "data",
                 gibbs_steps: int | None = None, batch_size: int = 1000,
                 sample_batch_size: int = 10000, seed: int = 0, device: str = "auto",
                 **training: Any) -> None:
        steps = k if gibbs_steps is None else gibbs_steps
        super().__init__(hidden=hidden, lr=lr, optimizer=optimizer, method="ff", k=k,
                         num_chains=num_chains, centered=centered,
                         offset_momentum=offset_momentum, weight_init_std=weight_init_std,
                         weight_decay=weight_decay, ema_decay=ema_decay,
                         visible_bias_init=visible_bias_init, gibbs_steps=steps,
                         generate_start=init, batch_size=batch_size,
                         sample_batch_size=sample_batch_size, seed=seed, device=device,
                         **training)
        self.init = init
        if self.gibbs_steps != self.k:
            warnings.warn(f"generator=ff_rbm: gibbs_steps={self.gibbs_steps} differs from "
                          f"k={self.k}; generation leaves the trained k-step protocol",
                          UserWarning, stacklevel=2)

    def negative_chains(self, v_data: Tensor) -> Tensor:
        """Fresh chains from `init`, exactly k sweeps (nothing persists between updates)."""
        start = self.initial_chains(self.num_chains, self.init, self.step_rng("chains"))
        return gibbs_steps(start, self.params, self.k, self.step_rng("gibbs"))
