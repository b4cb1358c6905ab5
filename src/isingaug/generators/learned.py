"""What every learned generator shares: its data, step-seeded batches, and batched sampling.

Training randomness (which patterns form a batch, the diffusion noise, the Gibbs chains' starts)
is drawn from streams seeded by (seed, global_step, purpose). A run resumed from a checkpoint
therefore sees exactly the draws it would have seen had it never stopped, with no data-loader
state to save.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterator

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from isingaug.device import resolve_device
from isingaug.errors import ConfigError, is_int
from isingaug.generators.base import FitContext, check_sample_count, fitted
from isingaug.seeding import derived_seed, stream


class _StepTicks(IterableDataset):
    """An endless stream of placeholders; each training step draws its own batch (see batch())."""

    def __iter__(self) -> Iterator[int]:
        return itertools.repeat(0)


class LearnedGenerator(pl.LightningModule, ABC):
    """Base of diffusion, vae, rbm and ff_rbm: subclasses define build(), generate() and the
    training step; fit(context) and sample() are the interface of generators/base.py.

    The networks are created in fit(), once the number of spins is known from the data.
    """

    name = ""
    produces_samples = True
    trainable = True
    tractable = False

    def __init__(self, batch_size: int = 256, sample_batch_size: int = 10000, seed: int = 0,
                 device: str = "auto", max_steps: int = 1000) -> None:
        super().__init__()
        for key, value in (("batch_size", batch_size), ("sample_batch_size", sample_batch_size),
                           ("max_steps", max_steps)):
            if not is_int(value) or int(value) < 1:
                raise ConfigError(f"generator.{key} must be an integer >= 1; got {value!r}")
        self.batch_size = int(batch_size)
        self.max_steps = int(max_steps)
        self.sample_batch_size = int(sample_batch_size)
        self.seed = int(seed)
        self.sample_device = resolve_device(device)
        self.n = 0
        self.first_step = 0
        self.register_buffer("train_data", torch.empty(0, 0), persistent=False)

    @abstractmethod
    def build(self, n: int) -> None:
        """Create the networks and buffers for patterns of n spins."""

    @abstractmethod
    def generate(self, num: int, rng: torch.Generator) -> Tensor:
        """`num` new +-1 patterns on self.device (called under no_grad, in eval mode)."""

    def fit(self, context: FitContext) -> None:
        """Train for this generator's own `max_steps` optimizer steps, or `trainer.max_steps`
        when set (continuing from a checkpoint if given)."""
        train = context.train
        if context.training is None:
            raise ConfigError(f"generator={self.name} is trained and needs a training session")
        if train.ndim != 2 or train.shape[0] < 1:
            raise ConfigError(f"generator={self.name}: training patterns must be (M, n) with "
                              f"M >= 1; got shape {tuple(train.shape)}")
        self.n = int(train.shape[1])
        self.build(self.n)
        self.train_data = train.float()
        trainer = context.training.make_trainer(self.max_steps)
        trainer.fit(self, train_dataloaders=DataLoader(_StepTicks(), batch_size=None),
                    ckpt_path=context.training.resume_from)
        context.training.finish(self, self.first_step)
        self.to(self.sample_device)

    def on_train_start(self) -> None:
        """Remember the step this process starts training at (after a checkpoint is restored),
        so speeds count only the steps trained here."""
        self.first_step = int(self.global_step)

    def step_rng(self, purpose: str) -> torch.Generator:
        """The random stream of this training step for one purpose (e.g. 'batch', 'noise')."""
        return stream(self.seed, "train", self.global_step, purpose, device=self.device)

    def batch(self) -> Tensor:
        """`batch_size` training patterns drawn uniformly with replacement for this step."""
        rows = torch.randint(self.train_data.shape[0], (self.batch_size,), device=self.device,
                             generator=self.step_rng("batch"))
        return self.train_data[rows]

    @torch.no_grad()
    def sample(self, num: int, rng: torch.Generator | None = None) -> Tensor:
        """`num` +-1 patterns (on the CPU) in batches of at most sample_batch_size."""
        check_sample_count(num)
        fitted(self.n or None, self.name)
        seed = (int(torch.randint(0, 2**62, (1,), generator=rng)) if rng is not None
                else derived_seed(self.seed, "sample"))
        device_rng = torch.Generator(device=self.device).manual_seed(seed)
        was_training = self.training
        self.eval()
        try:
            parts = [self.generate(min(self.sample_batch_size, num - start), device_rng)
                     .to(device="cpu", dtype=torch.float32)
                     for start in range(0, num, self.sample_batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(parts) if parts else torch.empty(0, self.n)
