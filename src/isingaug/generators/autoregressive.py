"""Autoregressive models of +-1 patterns: p(s) = prod_i p(s_i | s_<i), an exact likelihood.

Every conditional is written with a local field f_i(s_<i), as an Ising spin's is:

    p(s_i | s_<i) = exp(s_i f_i) / (2 cosh f_i),   log p(s_i | s_<i) = -softplus(-2 s_i f_i),

so p(s_i = +1 | s_<i) = sigmoid(2 f_i). Two networks give the fields:

- `logistic` (arDCA, Trinquier et al., Nat. Commun. 12, 5800, 2021): f_i = h_i + sum_{j<i} J_ij s_j,
  one strictly lower-triangular linear layer, n(n+1)/2 parameters;
- `made` (Germain et al. 2015, the variational autoregressive network of Wu, Wang & Zhang,
  PRL 122, 080602, 2019): a masked MLP whose output i sees only inputs j < i, with an optional
  direct lower-triangular connection (the logistic model as its linear part).

Training maximises the posterior of a Gaussian prior exp(-l2_prior |w|^2) on the weights (not the
biases) given the M training patterns: per pattern, the mean negative log-likelihood plus
(l2_prior / M) |w|^2, so the prior's pull fades as 1/M as data accumulate (Adam); sampling is
exact and i.i.d., spin by spin in n network passes, all patterns of a batch at once. Spins are
modelled in `order` (natural, or arDCA's entropic order: the least variable spins first).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional

from isingaug.errors import check_options, is_int, is_number, option_error
from isingaug.generators.base import fitted
from isingaug.generators.learned import LearnedGenerator
from isingaug.generators.networks import seeded_module
from isingaug.generators.vae import ACTIVATIONS

ARCHITECTURES = ("logistic", "made")
ORDERS = ("natural", "entropic")
#: Magnetisations are clamped to [-1 + eps, 1 - eps] before atanh in the field initialisation.
MAGNETISATION_EPS = 1e-3


class MaskedLinear(nn.Linear):
    """A Linear layer whose weight is multiplied by a fixed 0/1 mask (set with set_mask()).

    The mask follows from the layer sizes alone, so it is a non-persistent buffer.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias)
        self.register_buffer("mask", torch.ones(out_features, in_features), persistent=False)

    def set_mask(self, mask: Tensor) -> None:
        """Fix which weights exist: mask[o, i] = 1 lets output o see input i."""
        self.mask = mask.to(dtype=self.weight.dtype, device=self.weight.device)

    def forward(self, x: Tensor) -> Tensor:
        return functional.linear(x, self.weight * self.mask, self.bias)


def hidden_degrees(n: int, width: int) -> Tensor:
    """MADE degrees of a hidden layer, cycling through 1..n-1 (every degree used when width >=
    n - 1): unit k may depend on inputs 1..m_k, and is read by outputs of degree > m_k."""
    return torch.arange(width) % max(n - 1, 1) + 1


def made_masks(n: int, hidden_widths: Sequence[int]) -> list[Tensor]:
    """The masks input -> hidden -> ... -> output of a MADE with inputs and outputs of degree
    1..n: hidden unit k of degree m_k sees input j iff m_k >= j (and a previous hidden unit
    of degree m iff m_k >= m); output i sees hidden unit k iff i > m_k. So output i depends
    on inputs j < i only."""
    degrees = [torch.arange(1, n + 1)] + [hidden_degrees(n, w) for w in hidden_widths]
    masks = [(d_out[:, None] >= d_in[None, :]).float()
             for d_in, d_out in itertools.pairwise(degrees)]
    masks.append((torch.arange(1, n + 1)[:, None] > degrees[-1][None, :]).float())
    return masks


class AutoregressiveNet(nn.Module):
    """The fields f (B, n) of an autoregressive model in its own spin order; f_i sees s_<i.

    With no hidden layers this is the logistic (arDCA) model: f = h + J_lower s. With hidden
    layers it is a MADE; `direct` adds the lower-triangular linear term to its output.
    """

    def __init__(self, n: int, hidden_widths: Sequence[int] = (), direct: bool = True,
                 activation: str = "gelu") -> None:
        super().__init__()
        self.n = int(n)
        self.hidden_widths = [int(w) for w in hidden_widths]
        widths = [self.n, *self.hidden_widths, self.n]
        self.layers = nn.ModuleList(MaskedLinear(w_in, w_out)
                                    for w_in, w_out in itertools.pairwise(widths))
        self.activation = ACTIVATIONS[activation]()
        # the logistic model is its direct layer alone (and then it carries the bias h)
        self.direct = (MaskedLinear(self.n, self.n, bias=not self.hidden_widths)
                       if direct and self.hidden_widths else None)

    def set_masks(self) -> None:
        """Fill the masks (after construction on the meta device, see seeded_module)."""
        lower = torch.tril(torch.ones(self.n, self.n), diagonal=-1)
        masks = made_masks(self.n, self.hidden_widths) if self.hidden_widths else [lower]
        for layer, mask in zip(self.layers, masks, strict=True):
            layer.set_mask(mask)
        if self.direct is not None:
            self.direct.set_mask(lower)

    @property
    def output_bias(self) -> Tensor:
        """The bias of the fields: h_i of the logistic model."""
        bias = self.layers[-1].bias
        assert bias is not None
        return bias

    def weights(self) -> list[Tensor]:
        """Every weight matrix (masked entries are never used, so they stay at their start)."""
        layers = [*self.layers, *([self.direct] if self.direct is not None else [])]
        return [layer.weight * layer.mask for layer in layers]

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = self.activation(h)
        if self.direct is not None:
            h = h + self.direct(x)
        return h

    @torch.no_grad()
    def sample(self, num: int, rng: torch.Generator, device: torch.device | str) -> Tensor:
        """Exact ancestral sampling in the model's order: s_k ~ sigmoid(2 f_k(s_<k)), k = 1..n.

        Calling forward() for each k would cost n full passes, O(n^2) per pattern per spin
        through the input and direct layers. Here the first layer's pre-activation is updated
        with spin k's column once it is drawn, the deeper hidden layers are recomputed (they are
        width x width), and only output row k is evaluated; the direct term f_k sees s_<k as a
        length-k dot product. Same fields, same draws (one uniform per pattern per spin).
        """
        weights = [layer.weight * layer.mask for layer in self.layers]
        biases = [layer.bias for layer in self.layers]
        direct = None if self.direct is None else self.direct.weight * self.direct.mask
        x = torch.zeros(num, self.n, dtype=weights[0].dtype, device=device)
        first = biases[0].expand(num, -1).clone() if self.hidden_widths else None
        for k in range(self.n):
            if first is None:                      # logistic: f_k = h_k + sum_{j<k} J_kj s_j
                field = x[:, :k] @ weights[0][k, :k] + biases[0][k]
            else:
                h = self.activation(first)
                for weight, bias in zip(weights[1:-1], biases[1:-1], strict=True):
                    h = self.activation(functional.linear(h, weight, bias))
                field = h @ weights[-1][k] + biases[-1][k]
                if direct is not None:
                    field = field + x[:, :k] @ direct[k, :k]
            up = torch.sigmoid(2.0 * field)
            x[:, k] = torch.where(torch.rand(num, device=device, generator=rng) < up, 1.0, -1.0)
            if first is not None:
                first += x[:, k, None] * weights[0][:, k]
        return x


def conditional_log_probs(fields: Tensor, spins: Tensor) -> Tensor:
    """log p(s_i | s_<i) = -softplus(-2 s_i f_i), per pattern and spin."""
    return -functional.softplus(-2.0 * spins * fields)


def entropic_order(spins: Tensor) -> Tensor:
    """The spins sorted by increasing single-site entropy (arDCA's order); ties keep index order."""
    p = ((spins.double().mean(0) + 1.0) / 2.0).clamp(1e-12, 1.0 - 1e-12)
    entropy = -(p * p.log() + (1.0 - p) * (1.0 - p).log())
    return torch.sort(entropy, stable=True).indices


class Autoregressive(LearnedGenerator):
    """`generator=autoregressive`: an exact-likelihood model trained by maximum likelihood.

    `architecture` is `logistic` (arDCA) or `made` (`hidden_widths`, `activation`, `direct`).
    `l2_prior` is the Gaussian prior's strength on the weights (not biases): the loss is the
    mean negative log-likelihood per pattern in nats plus l2_prior / M times the sum of squared
    weights, M the number of training patterns. A penalty fixed per pattern instead would pull
    as hard at M = 4,000 as at 1,000 (at SK n = 20, 1e-2 per pattern is the best of four at
    M = 1,000 and 2.5e-3 beats it at M = 4,000: benchmarks/README.md). The output biases start
    at the independent-spin fields atanh(<s_i>) of the training data. `tractable`: `log_prob`
    is exact and normalised.
    """

    name = "autoregressive"
    tractable = True

    def __init__(self, architecture: str = "made", hidden_widths: Sequence[int] = (64, 64),
                 direct: bool = True, activation: str = "gelu", order: str = "natural",
                 lr: float = 1e-3, l2_prior: float = 10.0, batch_size: int = 256,
                 sample_batch_size: int = 10000, max_steps: int = 2000, seed: int = 0,
                 device: str = "auto") -> None:
        super().__init__(batch_size=batch_size, sample_batch_size=sample_batch_size, seed=seed,
                         device=device, max_steps=max_steps)
        check_options([
            ("generator.architecture", architecture, architecture in ARCHITECTURES,
             f"one of {list(ARCHITECTURES)}"),
            ("generator.direct", direct, isinstance(direct, bool), "true or false"),
            ("generator.activation", activation, activation in ACTIVATIONS,
             f"one of {list(ACTIVATIONS)}"),
            ("generator.order", order, order in ORDERS, f"one of {list(ORDERS)}"),
            ("generator.lr", lr, is_number(lr) and lr > 0, "a number > 0"),
            ("generator.l2_prior", l2_prior, is_number(l2_prior) and l2_prior >= 0,
             "a number >= 0 (0 = plain maximum likelihood)"),
        ])
        widths = [] if hidden_widths is None else hidden_widths
        ok = (isinstance(widths, Sequence) and not isinstance(widths, str)
              and all(is_int(w) and int(w) >= 1 for w in widths))
        if not ok or (architecture == "made" and not widths):
            raise option_error("generator.hidden_widths",
                               "a non-empty list of integers >= 1 (architecture=made)",
                               hidden_widths)
        self.architecture = architecture
        self.hidden_widths = [int(w) for w in widths] if architecture == "made" else []
        self.direct = bool(direct)
        self.activation = activation
        self.order = order
        self.lr = float(lr)
        self.l2_prior = float(l2_prior)
        self.net: AutoregressiveNet | None = None

    # -- parameters -----------------------------------------------------------------------------

    def build(self, n: int) -> None:
        """The network for n spins (seeded init) and the spin order (natural until setup)."""
        net = seeded_module(
            lambda: AutoregressiveNet(n, self.hidden_widths, self.direct, self.activation),
            self.seed, "init", "autoregressive")
        assert isinstance(net, AutoregressiveNet)
        net.set_masks()
        self.net = net
        self.register_buffer("spin_order", torch.arange(n))

    def setup(self, stage: str) -> None:
        """Data-dependent start (before Lightning restores a checkpoint, which then wins): the
        spin order, and output biases at the independent-spin fields of the training data."""
        if stage != "fit" or self.train_data.numel() == 0 or self.net is None:
            return
        with torch.no_grad():
            if self.order == "entropic":
                self.spin_order.copy_(entropic_order(self.train_data).to(self.spin_order))
            mags = self.train_data[:, self.spin_order].mean(0)
            mags = mags.clamp(-1.0 + MAGNETISATION_EPS, 1.0 - MAGNETISATION_EPS)
            self.net.output_bias.copy_(torch.atanh(mags))

    def network(self) -> AutoregressiveNet:
        if self.net is None:
            raise RuntimeError("Autoregressive.build() has not been called")
        return self.net

    # -- likelihood -----------------------------------------------------------------------------

    def pattern_log_prob(self, spins: Tensor) -> Tensor:
        """log p(s) (B,) in nats of +-1 patterns on self.device (differentiable)."""
        x = spins[:, self.spin_order]
        return conditional_log_probs(self.network()(x), x).sum(1)

    @torch.no_grad()
    def log_prob(self, spins: Tensor) -> Tensor:
        """Exact normalised log p(s) in nats, (M,) float64 on the CPU (sample_batch_size chunks)."""
        fitted(self.net, self.name)
        spins = torch.as_tensor(spins)
        if spins.ndim != 2 or spins.shape[1] != self.n:
            raise ValueError(f"log_prob needs patterns of shape (M, {self.n}); "
                             f"got {tuple(spins.shape)}")
        parts = [self.pattern_log_prob(chunk.to(device=self.device, dtype=torch.float32))
                 .to(device="cpu", dtype=torch.float64)
                 for chunk in spins.split(self.sample_batch_size)]
        return torch.cat(parts) if parts else torch.empty(0, dtype=torch.float64)

    def penalty_per_pattern(self) -> float:
        """The coefficient of the squared weights per pattern: l2_prior / M."""
        return self.l2_prior / self.train_data.shape[0]

    def penalty(self) -> Tensor:
        """Sum of squared weights (biases are not penalised)."""
        return sum((w.square().sum() for w in self.network().weights()),
                   start=torch.zeros((), device=self.device))

    # -- training -------------------------------------------------------------------------------

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Mean NLL per pattern of this step's batch plus the prior's share per pattern."""
        spins = self.batch()
        nll = -self.pattern_log_prob(spins).mean()
        loss = nll + self.penalty_per_pattern() * self.penalty() if self.l2_prior > 0 else nll
        self.log("train/loss", loss, batch_size=spins.shape[0])
        self.log("train/nll", nll, batch_size=spins.shape[0])
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.network().parameters(), lr=self.lr)

    # -- sampling -------------------------------------------------------------------------------

    def generate(self, num: int, rng: torch.Generator) -> Tensor:
        """Exact ancestral sampling: spin k of the model order from sigmoid(2 f_k(s_<k)), for
        k = 1..n, every pattern of the batch at once; then back to the data's spin order."""
        x = self.network().sample(num, rng, self.device)
        spins = torch.empty_like(x)
        spins[:, self.spin_order] = x
        return spins
