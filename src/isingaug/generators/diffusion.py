"""DDPM (Ho et al. 2020) on +-1 patterns treated as real vectors, with ancestral or DDIM sampling.

The forward process noises a pattern x0 to x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps with a
linear beta schedule; an MLP denoiser with skip connections learns to predict eps from (x_t, t).
Generation runs the learned reverse process from pure noise and takes sign() to return to spins.
The network (Denoiser) is kept apart from the process (Diffusion) so either can change alone.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional

from isingaug.errors import check_options, is_int, is_number
from isingaug.generators.learned import LearnedGenerator, ema_decay_option, ema_step
from isingaug.generators.networks import seeded_module, widths_option

SAMPLERS = ("ancestral", "ddim")
#: Precision of the denoiser's matmuls (training, sampling): fp32, or bf16 under torch.autocast.
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
#: Devices with a fused Adam kernel in torch.
FUSED_ADAM_DEVICES = ("cpu", "cuda")
ANCESTRAL_VARIANCES = ("beta", "posterior")


def sinusoidal_embedding(t: Tensor, dim: int) -> Tensor:
    """Transformer-style sin/cos features of the time step, (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device,
                                                        dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class _Block(nn.Module):
    """Linear -> (+ time projection) -> GELU: the time step conditions every layer."""

    def __init__(self, width_in: int, width_out: int, time_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width_in, width_out)
        self.time = nn.Linear(time_dim, width_out)

    def forward(self, h: Tensor, temb: Tensor) -> Tensor:
        return functional.gelu(self.linear(h) + self.time(temb))


class Denoiser(nn.Module):
    """MLP U-Net predicting the noise eps from (x_t, t).

    The encoder narrows n -> encoder_widths; the decoder runs through decoder_widths, and from its
    second layer on, layer j concatenates the encoder activation at the mirrored depth
    (the last decoder layer meets the first encoder layer), as in a U-Net. A final Linear maps to
    n. With the defaults (128/256/512 and 512/512/256/128) the first decoder layer is the
    bottleneck and the three others meet 512, 256, 128.
    """

    def __init__(self, n: int, encoder_widths: Sequence[int] = (128, 256, 512),
                 decoder_widths: Sequence[int] = (512, 512, 256, 128),
                 time_dim: int = 128) -> None:
        super().__init__()
        self.time_dim = int(time_dim)
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, time_dim), nn.GELU(),
                                      nn.Linear(time_dim, time_dim))
        enc = list(encoder_widths)
        dec = list(decoder_widths)
        self.encoder = nn.ModuleList(
            _Block(w_in, w_out, time_dim) for w_in, w_out in itertools.pairwise([n, *enc]))
        # skip_index[j]: which encoder activation decoder layer j concatenates (None: no skip).
        self.skip_index: list[int | None] = [
            len(dec) - 1 - j if j >= 1 and len(dec) - 1 - j < len(enc) else None
            for j in range(len(dec))]
        blocks = []
        width = enc[-1]
        for j, w_out in enumerate(dec):
            skip = self.skip_index[j]
            blocks.append(_Block(width + (enc[skip] if skip is not None else 0), w_out, time_dim))
            width = w_out
        self.decoder = nn.ModuleList(blocks)
        self.out = nn.Linear(width, n)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        """Predicted noise (B, n) for noisy patterns x (B, n) at integer steps t (B,).

        A t of shape (1,) is one step shared by all B rows (as in sampling): the time embedding
        and every layer's time projection are then computed once and broadcast, which saves
        about a fifth of the arithmetic of a sampling step.
        """
        temb = self.time_mlp(sinusoidal_embedding(t, self.time_dim))
        h = x
        skips = []
        for block in self.encoder:
            h = block(h, temb)
            skips.append(h)
        for skip, block in zip(self.skip_index, self.decoder, strict=True):
            if skip is not None:
                h = torch.cat([h, skips[skip]], dim=1)
            h = block(h, temb)
        return self.out(h)


class Diffusion(LearnedGenerator):
    """`generator=diffusion`: DDPM with an eps-predicting MLP denoiser, MSE loss, Adam.

    `ema_decay` (null = off) keeps an exponential moving average of the denoiser's weights,
    updated after every optimizer step and used for sampling. `sampler` is `ancestral` (all
    `timesteps` reverse steps; variance beta_t or the posterior's beta~_t) or `ddim`
    (`ddim_steps` evenly spaced steps ending at T-1, stochasticity `ddim_eta`; eta=1 with
    ddim_steps=T is ancestral sampling with the posterior variance). `clip_denoised` clips each
    step's predicted x_0 to [-1, 1], the range of the spins, before the step is taken (Ho et
    al.'s sampler; at high noise x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) magnifies the
    denoiser's error by up to 1 / sqrt(abar_T), about 160 for the linear schedule).
    """

    name = "diffusion"

    def __init__(self, timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02,
                 encoder_widths: Sequence[int] = (128, 256, 512),
                 decoder_widths: Sequence[int] = (512, 512, 256, 128), time_dim: int = 128,
                 lr: float = 1e-4, ema_decay: float | None = None, sampler: str = "ancestral",
                 ddim_steps: int = 100, ddim_eta: float = 0.0,
                 ancestral_variance: str = "beta", clip_denoised: bool = False,
                 train_precision: str = "fp32",
                 sample_precision: str = "fp32", batch_size: int = 256,
                 sample_batch_size: int = 10000, seed: int = 0, device: str = "auto",
                 **training: Any) -> None:
        super().__init__(batch_size=batch_size, sample_batch_size=sample_batch_size, seed=seed,
                         device=device, **training)
        check_options([
            ("generator.timesteps", timesteps, is_int(timesteps) and timesteps >= 1,
             "an integer >= 1"),
            ("generator.beta_start", beta_start, is_number(beta_start) and 0 < beta_start < 1,
             "a number in (0, 1)"),
            ("generator.beta_end", beta_end,
             is_number(beta_end) and is_number(beta_start) and beta_start <= beta_end < 1,
             f"a number in [beta_start={beta_start!r}, 1)"),
            ("generator.time_dim", time_dim, is_int(time_dim) and time_dim >= 2
             and time_dim % 2 == 0, "an even integer >= 2"),
            ("generator.lr", lr, is_number(lr) and lr > 0, "a number > 0"),
            ema_decay_option(ema_decay),
            ("generator.sampler", sampler, sampler in SAMPLERS, f"one of {list(SAMPLERS)}"),
            ("generator.ddim_steps", ddim_steps, is_int(ddim_steps) and ddim_steps >= 1
             and (sampler != "ddim" or ddim_steps <= timesteps),
             f"an integer in [1, timesteps={timesteps!r}]"),
            ("generator.ddim_eta", ddim_eta, is_number(ddim_eta) and 0 <= ddim_eta <= 1,
             "a number in [0, 1]"),
            ("generator.ancestral_variance", ancestral_variance,
             ancestral_variance in ANCESTRAL_VARIANCES, f"one of {list(ANCESTRAL_VARIANCES)}"),
            ("generator.clip_denoised", clip_denoised, isinstance(clip_denoised, bool),
             "true or false"),
            ("generator.train_precision", train_precision, train_precision in PRECISIONS,
             f"one of {list(PRECISIONS)}"),
            ("generator.sample_precision", sample_precision, sample_precision in PRECISIONS,
             f"one of {list(PRECISIONS)}"),
        ])
        self.encoder_widths = widths_option("generator.encoder_widths", encoder_widths)
        self.decoder_widths = widths_option("generator.decoder_widths", decoder_widths)
        self.timesteps = int(timesteps)
        self.time_dim = int(time_dim)
        self.lr = float(lr)
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.sampler = sampler
        self.ddim_steps = int(ddim_steps)
        self.ddim_eta = float(ddim_eta)
        self.ancestral_variance = ancestral_variance
        self.clip_denoised = clip_denoised
        self.train_precision = train_precision
        self.sample_precision = sample_precision
        self.denoiser: Denoiser | None = None
        self.ema_denoiser: Denoiser | None = None
        # The schedule follows from the config alone, so it is not saved in checkpoints.
        betas = torch.linspace(float(beta_start), float(beta_end), self.timesteps,
                               dtype=torch.float64)
        alpha_bars = torch.cumprod(1.0 - betas, 0)
        alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])
        schedule = {
            "betas": betas,
            "alphas": 1.0 - betas,
            "alpha_bars": alpha_bars,
            "alpha_bars_prev": alpha_bars_prev,
            "posterior_variance": betas * (1.0 - alpha_bars_prev) / (1.0 - alpha_bars),
        }
        for key, value in schedule.items():
            self.register_buffer(key, value.float(), persistent=False)
        # Per-step scalars of the clipped sampler as Python floats from the float64 schedule (1 -
        # abar_t from a float32 abar_t loses 3 digits at the first steps; floats need no device
        # sync per step): x_0 = x0_from_xt x_t - x0_from_eps eps, and the posterior mean of
        # x_{t-1} = posterior_x0_coef x_0 + posterior_xt_coef x_t.
        self.x0_from_xt = alpha_bars.rsqrt().tolist()
        self.x0_from_eps = (1.0 / alpha_bars - 1.0).sqrt().tolist()
        self.posterior_x0_coef = (alpha_bars_prev.sqrt() * betas / (1.0 - alpha_bars)).tolist()
        self.posterior_xt_coef = ((1.0 - betas).sqrt() * (1.0 - alpha_bars_prev)
                                  / (1.0 - alpha_bars)).tolist()

    def build(self, n: int) -> None:
        """The denoiser (and its EMA copy) for n spins, initialised from the run seed."""
        self.denoiser = seeded_module(
            lambda: Denoiser(n, self.encoder_widths, self.decoder_widths, self.time_dim),
            self.seed, "init", "denoiser")
        self.ema_denoiser = None
        if self.ema_decay is not None:
            self.ema_denoiser = copy.deepcopy(self.denoiser).requires_grad_(False)

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, for per-row steps t (B,)."""
        alpha_bar = self.alpha_bars[t][:, None]
        return alpha_bar.sqrt() * x0 + (1.0 - alpha_bar).sqrt() * noise

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Simple DDPM loss: MSE between the true and the predicted noise at a random step."""
        assert self.denoiser is not None
        x0 = self.batch()
        t = torch.randint(self.timesteps, (x0.shape[0],), device=self.device,
                          generator=self.step_rng("time"))
        noise = torch.randn(x0.shape, device=self.device, generator=self.step_rng("noise"))
        with self.precision(self.train_precision):
            predicted = self.denoiser(self.q_sample(x0, t, noise), t)
        loss = functional.mse_loss(predicted.float(), noise)
        self.log("train/loss", loss, batch_size=x0.shape[0])
        return loss

    def configure_optimizers(self) -> Any:
        """Adam; its fused kernel (one pass over the parameters) where the device has one."""
        assert self.denoiser is not None
        fused = self.device.type in FUSED_ADAM_DEVICES
        return self.with_schedule(torch.optim.Adam(self.denoiser.parameters(), lr=self.lr,
                                                   fused=fused))

    def precision(self, name: str) -> contextlib.AbstractContextManager[Any]:
        """The denoiser's precision: fp32 as it is, bf16 under torch.autocast (matmuls in
        bfloat16, the state and the weights kept in fp32)."""
        dtype = PRECISIONS[name]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """The optimizer step, then the EMA update (here, so it runs once per real step)."""
        super().optimizer_step(*args, **kwargs)
        if (self.ema_denoiser is not None and self.denoiser is not None
                and self.ema_decay is not None):
            ema_step(self.ema_denoiser.parameters(), self.denoiser.parameters(),
                     self.ema_decay)

    def sampling_network(self) -> Denoiser:
        """The EMA weights when kept, else the trained ones."""
        net = self.ema_denoiser if self.ema_denoiser is not None else self.denoiser
        if net is None:
            raise RuntimeError("Diffusion.build() has not been called")
        return net

    def reverse(self, num: int, rng: torch.Generator) -> Tensor:
        """Real-valued end points x_0 (num, n) of the configured reverse process (before sign)."""
        net = self.sampling_network()
        x = torch.randn(num, self.n, device=self.device, generator=rng)
        t_all = torch.empty(num, dtype=torch.long, device=self.device)
        if self.sampler == "ancestral":
            sigmas = (self.betas if self.ancestral_variance == "beta"
                      else self.posterior_variance).sqrt().tolist()
            betas = self.betas.tolist()
            alphas = self.alphas.tolist()
            alpha_bars = self.alpha_bars.tolist()
            for t in range(self.timesteps - 1, -1, -1):
                eps = net(x, t_all.fill_(t)).float()  # bf16 under autocast
                if self.clip_denoised:
                    x = self.posterior_mean(self.clipped_x0(x, eps, t), x, t)
                else:
                    x = (x - betas[t] / math.sqrt(1.0 - alpha_bars[t]) * eps) / math.sqrt(
                        alphas[t])
                if t > 0:
                    x = x + sigmas[t] * torch.randn(x.shape, device=x.device, generator=rng)
            return x
        steps = self.ddim_timesteps().tolist()
        alpha_bars = self.alpha_bars.tolist()
        for i in range(len(steps) - 1, -1, -1):
            t = steps[i]
            ab_t = alpha_bars[t]
            ab_prev = alpha_bars[steps[i - 1]] if i > 0 else 1.0
            eps = net(x, t_all.fill_(t)).float()
            if self.clip_denoised:
                x0 = self.clipped_x0(x, eps, t)
                eps = (x * self.x0_from_xt[t] - x0) / self.x0_from_eps[t]
            else:
                x0 = (x - math.sqrt(1.0 - ab_t) * eps) / math.sqrt(ab_t)
            sigma = self.ddim_eta * math.sqrt((1.0 - ab_prev) / (1.0 - ab_t)
                                              * (1.0 - ab_t / ab_prev))
            x = math.sqrt(ab_prev) * x0 + math.sqrt(max(1.0 - ab_prev - sigma**2, 0.0)) * eps
            if sigma > 0:
                x = x + sigma * torch.randn(x.shape, device=x.device, generator=rng)
        return x

    def clipped_x0(self, x: Tensor, eps: Tensor, t: int) -> Tensor:
        """The x_0 that x_t and the predicted noise imply, clipped to the spins' range [-1, 1]."""
        x0 = x * self.x0_from_xt[t] - eps * self.x0_from_eps[t]
        return x0.clamp_(-1.0, 1.0)

    def posterior_mean(self, x0: Tensor, x: Tensor, t: int) -> Tensor:
        """The mean of q(x_{t-1} | x_t, x_0): the ancestral step written through x_0."""
        return self.posterior_x0_coef[t] * x0 + self.posterior_xt_coef[t] * x

    def ddim_timesteps(self) -> Tensor:
        """The ddim_steps evenly spaced steps T/S - 1, 2T/S - 1, ..., T - 1 (all of them at S=T)."""
        return (torch.arange(1, self.ddim_steps + 1) * self.timesteps) // self.ddim_steps - 1

    def generate(self, num: int, rng: torch.Generator) -> Tensor:
        """Spins from sign() of the reverse process; an exact 0 becomes +1.

        With sample_precision=bf16 the denoiser runs under torch.autocast in bfloat16 (its
        matmuls), while the state x and its updates stay fp32.
        """
        with self.precision(self.sample_precision):
            x = self.reverse(num, rng)
        return torch.where(x >= 0, 1.0, -1.0)
