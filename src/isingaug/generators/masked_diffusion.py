"""Absorbing-state (masked) discrete diffusion of +-1 patterns (MDLM, Sahoo et al. 2024; MD4,
Shi et al. 2024).

Each spin is -1, +1 or MASK. The forward process masks every spin independently, keeping it with
probability alpha_t (`schedule`: linear alpha_t = 1 - t, or MD4's cosine
alpha_t = 1 - cos(pi (1 - t) / 2)), from alpha_0 = 1 (the data) to alpha_1 = 0 (all masked). A
network reads the partially masked pattern (two channels: the spin value with 0 for MASK, and the
mask indicator, an invertible linear map of the one-hot of the three states) and gives one logit
of s_i = +1 per spin; unmasked spins are carried over (MDLM's SUBS parameterisation), so only the
masked spins' predictions count. The continuous-time negative ELBO of a pattern x is

    NELBO(x) = int_0^1 w(t) E_{z_t ~ q(.|x)} [ sum_{i masked in z_t} -log p(x_i | z_t) ] dt,
    w(t) = -alpha'_t / (1 - alpha_t)           (1/t for the linear schedule),

estimated (`estimator`) either as written, t ~ U(eps, 1) and one mask draw per pattern (`time`),
or with t integrated out (`count`, the default): k ~ U{1..n} masked spins, a random set of them,
weight n/k on their cross-entropy (per spin: the mean cross-entropy over the masked positions; a
time-conditioned network sees the t at which k/n spins are masked on average). Both are unbiased
for the same NELBO (which does not depend on the schedule); `count` has less variance and trained
better at n = 20. Draws are stratified across the batch when `low_discrepancy`. The training loss
is the batch mean divided by n (nats per spin). With the exact conditionals of a distribution p
the NELBO equals -log p(x) (it is the average, over uniformly random orders, of the
autoregressive chain rule), which is how the tests check the weights.

No time input by default: the absorbing process's posterior of a masked spin does not depend on
t (MDLM, Sec. 3), so `time_conditioning` is an option. Generation starts fully masked and either
unmasks one spin per step in a random order (`sampling_steps: null`, n steps, exact for a perfect
predictor), or runs MDLM's reverse process on S uniform steps of t: from t to s < t each masked
spin is unmasked with probability (alpha_s - alpha_t) / (1 - alpha_t), its value drawn from the
network's prediction (spins unmasked in the same step are drawn independently, an error that
vanishes as S grows). The random order is the default: it costs n network passes, as S = n would,
but with the linear schedule S = n unmasks about n(n-1)/(2S) = (n-1)/2 pairs of spins per pattern
in the same step (measured: at n = 3 and S = 100 the joint distribution's chi2 against the exact
one was 22-41 with 1e5 samples, within noise at S = 250).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional

from isingaug.errors import check_options, is_int, is_number
from isingaug.generators.base import fitted
from isingaug.generators.diffusion import sinusoidal_embedding
from isingaug.generators.learned import LearnedGenerator
from isingaug.generators.networks import seeded_module, widths_option
from isingaug.generators.vae import ACTIVATIONS, mlp

SCHEDULES = ("linear", "cosine")
ESTIMATORS = ("count", "time")
#: t (in [0, 1]) is scaled by this before the sinusoidal embedding (the DDPM steps' range).
TIME_SCALE = 1000.0
#: Spin frequencies are clamped to [eps, 1 - eps] before the log-odds of the bias initialisation.
FREQUENCY_EPS = 1e-3


def alpha(t: Tensor, schedule: str) -> Tensor:
    """alpha_t, the probability that a spin is still unmasked at time t."""
    if schedule == "linear":
        return 1.0 - t
    return 1.0 - torch.cos(0.5 * math.pi * (1.0 - t))


def elbo_weight(t: Tensor, schedule: str) -> Tensor:
    """w(t) = -alpha'_t / (1 - alpha_t): 1/t (linear), (pi/2) cot(pi t/2) (cosine)."""
    if schedule == "linear":
        return 1.0 / t
    return 0.5 * math.pi / torch.tan(0.5 * math.pi * t)


def time_of_alpha(a: Tensor, schedule: str) -> Tensor:
    """The t at which alpha_t = a (the inverse of alpha)."""
    if schedule == "linear":
        return 1.0 - a
    return (2.0 / math.pi) * torch.asin((1.0 - a).clamp(0.0, 1.0))


class MaskedDenoiser(nn.Module):
    """MLP from a partially masked pattern (and optionally t) to the logits (B, n) of s_i = +1.

    With `direct`, a linear term W s (masked spins counting 0, no bias) is added to the MLP's
    output: an Ising spin's logit given all the others is exactly 2 (h_i + sum_j J_ij s_j),
    so the MLP is left with the corrections of partial contexts.
    """

    def __init__(self, n: int, hidden_widths: Sequence[int], activation: str = "gelu",
                 time_dim: int = 0, direct: bool = False) -> None:
        super().__init__()
        self.time_dim = int(time_dim)
        self.net = mlp([2 * n + self.time_dim, *hidden_widths, n], ACTIVATIONS[activation])
        self.direct = nn.Linear(n, n, bias=False) if direct else None

    @property
    def output_bias(self) -> Tensor:
        """The bias of the output logits."""
        last = self.net[-1]
        assert isinstance(last, nn.Linear) and last.bias is not None
        return last.bias

    def forward(self, x: Tensor, masked: Tensor, t: Tensor | None = None) -> Tensor:
        """x (B, n) of +-1 (ignored where masked), masked (B, n) bool, t (B,) in [0, 1]."""
        m = masked.to(x.dtype)
        visible = x * (1.0 - m)
        parts = [visible, m]
        if self.time_dim:
            if t is None:
                raise ValueError("this denoiser is time-conditioned and needs t")
            parts.append(sinusoidal_embedding(TIME_SCALE * t, self.time_dim))
        logits = self.net(torch.cat(parts, dim=1))
        if self.direct is not None:
            logits = logits + self.direct(visible)
        return logits


class MaskedDiffusion(LearnedGenerator):
    """`generator=masked_diffusion`: absorbing-state diffusion, trained on the continuous-time
    ELBO, sampled by unmasking.

    `hidden_widths`/`activation`: the MLP (`direct`: plus a linear term); `time_conditioning`
    with `time_dim`: a sinusoidal embedding of t as extra input; `estimator`, `schedule`,
    `t_min` (eps) and `low_discrepancy` set the loss; `sampling_steps` the sampler (null: one
    spin per step in a random order). `weight_decay` is AdamW's decoupled decay.
    `negative_elbo` estimates the NELBO of given patterns.
    """

    name = "masked_diffusion"

    def __init__(self, hidden_widths: Sequence[int] = (128, 128), activation: str = "gelu",
                 direct: bool = False, time_conditioning: bool = False, time_dim: int = 32,
                 schedule: str = "linear", estimator: str = "count", t_min: float = 1e-3,
                 low_discrepancy: bool = True, sampling_steps: int | None = None,
                 lr: float = 1e-3, weight_decay: float = 0.1, batch_size: int = 1000,
                 sample_batch_size: int = 10000, max_steps: int = 8000, seed: int = 0,
                 device: str = "auto") -> None:
        super().__init__(batch_size=batch_size, sample_batch_size=sample_batch_size, seed=seed,
                         device=device, max_steps=max_steps)
        check_options([
            ("generator.activation", activation, activation in ACTIVATIONS,
             f"one of {list(ACTIVATIONS)}"),
            ("generator.direct", direct, isinstance(direct, bool), "true or false"),
            ("generator.time_conditioning", time_conditioning,
             isinstance(time_conditioning, bool), "true or false"),
            ("generator.time_dim", time_dim, is_int(time_dim) and time_dim >= 2
             and time_dim % 2 == 0, "an even integer >= 2"),
            ("generator.schedule", schedule, schedule in SCHEDULES, f"one of {list(SCHEDULES)}"),
            ("generator.estimator", estimator, estimator in ESTIMATORS,
             f"one of {list(ESTIMATORS)}"),
            ("generator.t_min", t_min, is_number(t_min) and 0 < t_min < 1, "a number in (0, 1)"),
            ("generator.low_discrepancy", low_discrepancy, isinstance(low_discrepancy, bool),
             "true or false"),
            ("generator.sampling_steps", sampling_steps, sampling_steps is None
             or (is_int(sampling_steps) and sampling_steps >= 1),
             "null (one spin per step, n steps) or an integer >= 1"),
            ("generator.lr", lr, is_number(lr) and lr > 0, "a number > 0"),
            ("generator.weight_decay", weight_decay, is_number(weight_decay)
             and weight_decay >= 0, "a number >= 0"),
        ])
        self.hidden_widths = widths_option("generator.hidden_widths", hidden_widths)
        self.activation = activation
        self.direct = bool(direct)
        self.time_conditioning = bool(time_conditioning)
        self.time_dim = int(time_dim)
        self.schedule = schedule
        self.estimator = estimator
        self.t_min = float(t_min)
        self.low_discrepancy = bool(low_discrepancy)
        self.sampling_steps = None if sampling_steps is None else int(sampling_steps)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.denoiser: MaskedDenoiser | None = None

    def build(self, n: int) -> None:
        """The denoiser for n spins, initialised from the run seed."""
        time_dim = self.time_dim if self.time_conditioning else 0
        denoiser = seeded_module(
            lambda: MaskedDenoiser(n, self.hidden_widths, self.activation, time_dim, self.direct),
            self.seed, "init", "masked_denoiser")
        assert isinstance(denoiser, MaskedDenoiser)
        self.denoiser = denoiser

    def setup(self, stage: str) -> None:
        """Data-dependent start (before Lightning restores a checkpoint, which then wins): the
        output biases at the log-odds of the training data's spins, so that the all-masked
        prediction starts at the independent-spin model."""
        if stage != "fit" or self.train_data.numel() == 0 or self.denoiser is None:
            return
        with torch.no_grad():
            p = ((self.train_data.mean(0) + 1.0) / 2.0).clamp(FREQUENCY_EPS, 1 - FREQUENCY_EPS)
            self.denoiser.output_bias.copy_(torch.log(p) - torch.log1p(-p))

    def predict(self, x: Tensor, masked: Tensor, t: Tensor) -> Tensor:
        """Logits (B, n) of s_i = +1 given the unmasked spins (the sampler's and loss's one call
        of the network; a test may replace it by exact conditionals)."""
        if self.denoiser is None:
            raise RuntimeError("MaskedDiffusion.build() has not been called")
        return self.denoiser(x, masked, t if self.time_conditioning else None)

    # -- loss -----------------------------------------------------------------------------------

    def draw_times(self, num: int, rng: torch.Generator) -> Tensor:
        """t in [t_min, 1): uniform, or one uniform offset of an evenly spaced grid (MDLM)."""
        if self.low_discrepancy:
            u = (torch.rand(1, device=self.device, generator=rng)
                 + torch.arange(num, device=self.device) / num) % 1.0
        else:
            u = torch.rand(num, device=self.device, generator=rng)
        return self.t_min + (1.0 - self.t_min) * u

    def draw_counts(self, num: int, rng: torch.Generator) -> Tensor:
        """k in 1..n masked spins per pattern: uniform, or stratified across the batch."""
        if self.low_discrepancy:
            u = (torch.rand(1, device=self.device, generator=rng)
                 + torch.arange(num, device=self.device) / num) % 1.0
            return (u * self.n).long().clamp(max=self.n - 1) + 1
        return torch.randint(1, self.n + 1, (num,), device=self.device, generator=rng)

    def nelbo_terms(self, x0: Tensor, time_rng: torch.Generator,
                    mask_rng: torch.Generator) -> Tensor:
        """One-draw estimates (B,) of the NELBO in nats, by the configured `estimator`.

        time: t ~ U(t_min, 1), each spin masked with probability 1 - alpha_t, weight
        (1 - t_min) w(t) (the length of the t range the draws cover) on the masked spins'
        cross-entropy. count: k ~ U{1..n} masked spins, a uniformly random set of them,
        weight n / k: the same NELBO with t integrated out (for the linear schedule k | t is
        Binomial(n, t), so k is uniform on 0..n and E[1/t | k] = (n + 1) / k; the NELBO does
        not depend on the schedule), with less variance.
        """
        num = x0.shape[0]
        if self.estimator == "time":
            t = self.draw_times(num, time_rng)
            masked = (torch.rand(x0.shape, device=x0.device, generator=mask_rng)
                      >= alpha(t, self.schedule)[:, None])
            weight = (1.0 - self.t_min) * elbo_weight(t, self.schedule)
        else:
            k = self.draw_counts(num, time_rng)
            scores = torch.rand(x0.shape, device=x0.device, generator=mask_rng)
            kth = scores.sort(1).values.gather(1, (k - 1)[:, None])
            masked = scores <= kth
            # the time at which k of the n spins are masked on average (time conditioning)
            t = time_of_alpha(1.0 - k.to(x0.dtype) / self.n, self.schedule)
            weight = self.n / k.to(x0.dtype)
        logits = self.predict(x0, masked, t)
        ce = functional.binary_cross_entropy_with_logits(logits, (x0 + 1.0) / 2.0,
                                                         reduction="none")
        return weight * (ce * masked).sum(1)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """The batch-mean NELBO per spin, with step-seeded times (or counts) and masks."""
        x0 = self.batch()
        loss = self.nelbo_terms(x0, self.step_rng("time"), self.step_rng("mask")).mean() / self.n
        self.log("train/loss", loss, batch_size=x0.shape[0])
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        assert self.denoiser is not None
        return torch.optim.AdamW(self.denoiser.parameters(), lr=self.lr,
                                 weight_decay=self.weight_decay)

    @torch.no_grad()
    def negative_elbo(self, spins: Tensor, rng: torch.Generator, draws: int = 64) -> Tensor:
        """Monte-Carlo NELBO per pattern in nats, (M,) on the CPU: the mean of `draws` one-draw
        estimates of the configured estimator, in expectation an upper bound on the negative
        log-likelihood of the random-order sampler."""
        fitted(self.denoiser, self.name)
        spins = torch.as_tensor(spins).to(device=self.device, dtype=torch.float32)
        rows = max(1, self.sample_batch_size // max(draws, 1))
        was_training = self.training
        self.eval()
        try:
            parts = []
            for chunk in spins.split(rows):
                # row r is pattern r % len(chunk), so stratified draws spread over every pattern
                x0 = chunk.repeat(draws, 1)
                terms = self.nelbo_terms(x0, rng, rng).view(draws, chunk.shape[0])
                parts.append(terms.mean(0).to(device="cpu", dtype=torch.float64))
        finally:
            self.train(was_training)
        return torch.cat(parts) if parts else torch.empty(0, dtype=torch.float64)

    # -- sampling -------------------------------------------------------------------------------

    def generate(self, num: int, rng: torch.Generator) -> Tensor:
        """From all-masked to a full pattern, by random-order unmasking or MDLM's reverse steps."""
        x = torch.zeros(num, self.n, device=self.device)
        masked = torch.ones(num, self.n, dtype=torch.bool, device=self.device)
        if self.sampling_steps is None:
            order = torch.argsort(torch.rand(num, self.n, device=self.device, generator=rng), 1)
            for k in range(self.n):
                # the time at which n - k of the n spins are masked on average
                t = time_of_alpha(torch.full((num,), k / self.n, device=self.device),
                                  self.schedule)
                site = order[:, k:k + 1]
                up = torch.sigmoid(self.predict(x, masked, t).gather(1, site))
                u = torch.rand(num, 1, device=self.device, generator=rng)
                x.scatter_(1, site, torch.where(u < up, 1.0, -1.0))
                masked.scatter_(1, site, False)
            return x
        grid = torch.linspace(1.0, 0.0, self.sampling_steps + 1, dtype=torch.float64)
        alphas = alpha(grid, self.schedule).tolist()
        alphas[-1] = 1.0  # at s = 0 every spin left is unmasked
        for k in range(self.sampling_steps):
            a_t, a_s = alphas[k], alphas[k + 1]
            p_unmask = (a_s - a_t) / (1.0 - a_t)
            t = torch.full((num,), float(grid[k]), device=self.device)
            up = torch.sigmoid(self.predict(x, masked, t))
            values = torch.where(torch.rand(x.shape, device=self.device, generator=rng) < up,
                                 1.0, -1.0)
            reveal = masked & (torch.rand(x.shape, device=self.device, generator=rng)
                               < p_unmask)
            x = torch.where(reveal, values, x)
            masked = masked & ~reveal
        return x
