"""A variational autoencoder of +-1 patterns: Gaussian latent, Bernoulli decoder on (s + 1) / 2.

Training maximises the ELBO (reconstruction log-likelihood minus beta times the KL to the N(0, I)
prior) with the reparameterisation trick. Generation decodes prior draws z ~ N(0, I) and *samples*
every spin from its Bernoulli, since the decoder's mean alone would collapse the spread of the
data that augmentation is meant to reproduce.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional

from isingaug.errors import check_options, is_int, is_number
from isingaug.generators.learned import LearnedGenerator
from isingaug.generators.networks import seeded_module, widths_option

ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh}


def mlp(widths: Sequence[int], activation: type[nn.Module]) -> nn.Sequential:
    """Linear layers through `widths`, with the activation between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (w_in, w_out) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(w_in, w_out))
        if i < len(widths) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class Vae(LearnedGenerator):
    """`generator=vae`: MLP encoder -> (mean, log-variance) of a Gaussian latent -> MLP decoder.

    The decoder mirrors the encoder (hidden_widths reversed) and outputs one Bernoulli logit per
    spin. The loss is the negative ELBO per pattern, in nats: BCE-with-logits reconstruction plus
    `beta` times the analytic KL (beta=1 is the true ELBO). `weight_decay` is AdamW's decoupled
    decay (0 = plain Adam), a regulariser for the small data sets augmentation starts from.
    """

    name = "vae"

    def __init__(self, latent_dim: int = 16, hidden_widths: Sequence[int] = (256, 256),
                 activation: str = "gelu", beta: float = 1.0, lr: float = 1e-3,
                 weight_decay: float = 0.0, batch_size: int = 256,
                 sample_batch_size: int = 10000, seed: int = 0, device: str = "auto",
                 **training: Any) -> None:
        super().__init__(batch_size=batch_size, sample_batch_size=sample_batch_size, seed=seed,
                         device=device, **training)
        check_options([
            ("generator.latent_dim", latent_dim, is_int(latent_dim) and latent_dim >= 1,
             "an integer >= 1"),
            ("generator.activation", activation, activation in ACTIVATIONS,
             f"one of {list(ACTIVATIONS)}"),
            ("generator.beta", beta, is_number(beta) and beta >= 0, "a number >= 0"),
            ("generator.lr", lr, is_number(lr) and lr > 0, "a number > 0"),
            ("generator.weight_decay", weight_decay, is_number(weight_decay) and weight_decay >= 0,
             "a number >= 0 (0 = off)"),
        ])
        self.hidden_widths = widths_option("generator.hidden_widths", hidden_widths)
        self.latent_dim = int(latent_dim)
        self.activation = activation
        self.beta = float(beta)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.encoder: nn.Sequential | None = None
        self.decoder: nn.Sequential | None = None

    def build(self, n: int) -> None:
        """Encoder n -> hidden -> 2*latent_dim and decoder latent_dim -> hidden reversed -> n."""
        act = ACTIVATIONS[self.activation]
        self.encoder = seeded_module(
            lambda: mlp([n, *self.hidden_widths, 2 * self.latent_dim], act),
            self.seed, "init", "encoder")
        self.decoder = seeded_module(
            lambda: mlp([self.latent_dim, *reversed(self.hidden_widths), n], act),
            self.seed, "init", "decoder")

    def encode(self, spins: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance (B, latent_dim) of q(z | s)."""
        assert self.encoder is not None
        mean, log_var = self.encoder(spins).chunk(2, dim=1)
        return mean, log_var

    def decode(self, z: Tensor) -> Tensor:
        """Bernoulli logits (B, n) of p(s_i = +1 | z)."""
        assert self.decoder is not None
        return self.decoder(z)

    def loss_terms(self, spins: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
        """Per-pattern mean reconstruction NLL and KL, with z = mean + std * noise."""
        mean, log_var = self.encode(spins)
        z = mean + torch.exp(0.5 * log_var) * noise
        target = (spins + 1.0) / 2.0
        recon = functional.binary_cross_entropy_with_logits(self.decode(z), target,
                                                            reduction="none")
        kl = 0.5 * (mean.square() + log_var.exp() - 1.0 - log_var)
        return recon.sum(1).mean(), kl.sum(1).mean()

    @torch.no_grad()
    def negative_elbo(self, spins: Tensor, rng: torch.Generator) -> float:
        """-ELBO per pattern in nats (beta=1), a one-draw Monte-Carlo estimate; for monitoring."""
        spins = spins.to(device=self.device, dtype=torch.float32)
        noise = torch.randn(spins.shape[0], self.latent_dim, device=self.device,
                            generator=rng)
        recon, kl = self.loss_terms(spins, noise)
        return float(recon + kl)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Negative (beta-)ELBO of this step's batch, with step-seeded reparameterisation noise."""
        spins = self.batch()
        noise = torch.randn(spins.shape[0], self.latent_dim, device=self.device,
                            generator=self.step_rng("noise"))
        recon, kl = self.loss_terms(spins, noise)
        loss = recon + self.beta * kl
        size = spins.shape[0]
        self.log("train/loss", loss, batch_size=size)
        self.log("train/recon", recon, batch_size=size)
        self.log("train/kl", kl, batch_size=size)
        return loss

    def configure_optimizers(self) -> Any:
        """Adam, with decoupled weight decay (AdamW) on every parameter when weight_decay > 0."""
        return self.with_schedule(torch.optim.AdamW(self.parameters(), lr=self.lr,
                                                    weight_decay=self.weight_decay))

    def generate(self, num: int, rng: torch.Generator) -> Tensor:
        """z ~ N(0, I), then every spin drawn from its decoder Bernoulli, mapped to +-1."""
        z = torch.randn(num, self.latent_dim, device=self.device, generator=rng)
        probs = torch.sigmoid(self.decode(z))
        return 2.0 * torch.bernoulli(probs, generator=rng) - 1.0
