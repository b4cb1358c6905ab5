"""What every learned generator shares: its data, step-seeded batches, batched sampling, and the
safety of long trainings (periodic checkpoints, checked resumes, divergence stops).

Training randomness (which patterns form a batch, the diffusion noise, the Gibbs chains' starts)
is drawn from streams seeded by (seed, global_step, purpose). A run resumed from a checkpoint
therefore sees exactly the draws it would have seen had it never stopped, with no data-loader
state to save; `PeriodicCheckpoint` keeps `last.ckpt` fresh so a killed job loses minutes, not
its training.

A checkpoint carries what it belongs to (the generator, n, its settings, a digest of the training
patterns), so resuming from another generator's or another size's checkpoint stops with a message
naming both instead of a state_dict traceback. A loss, gradient or sample that becomes NaN/inf
stops training with `DivergenceError`, naming the generator, the step and the setting to lower.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from isingaug import progress
from isingaug.device import resolve_device
from isingaug.errors import (
    ConfigError,
    DivergenceError,
    check_options,
    is_int,
    is_number,
)
from isingaug.generators.base import FitContext, check_sample_count, fitted
from isingaug.seeding import derived_seed, stream

log = logging.getLogger(__name__)

#: Where a checkpoint records what it belongs to (beside Lightning's `hyper_parameters`).
CHECKPOINT_KEY = "isingaug"
#: Settings that do not change what a checkpoint holds (left out of identity messages).
LR_SCHEDULES = ("constant", "cosine")
BOOKKEEPING = ("device", "sample_batch_size", "max_steps")
#: On an accelerator the finiteness of loss and gradients is read back (a device sync) only every
#: this many steps; the first bad step is tracked on the device, so the message stays exact.
DEVICE_CHECK_EVERY = 25
#: Devices whose values are read back every step (no sync to avoid), with a precise message.
HOST_CHECK_DEVICES = ("cpu",)


def ema_decay_option(ema_decay: Any) -> tuple[str, Any, bool, str]:
    """The check_options entry of `generator.ema_decay`, for every generator that keeps one."""
    return ("generator.ema_decay", ema_decay,
            ema_decay is None or (is_number(ema_decay) and 0 < ema_decay < 1),
            "null (off) or a number in (0, 1)")


def ema_step(averages: Iterable[Tensor], params: Iterable[Tensor], decay: float) -> None:
    """Move each moving average (1 - decay) of the way towards its parameter, in place."""
    with torch.no_grad():
        for average, param in zip(averages, params, strict=True):
            average.lerp_(param, 1.0 - decay)


class _StepTicks(IterableDataset):
    """An endless stream of placeholders; each training step draws its own batch (see batch())."""

    def __iter__(self) -> Iterator[int]:
        return itertools.repeat(0)


def data_digest(patterns: Tensor) -> str:
    """A short digest of training patterns (shape and values), saved in checkpoints."""
    array = patterns.detach().to(device="cpu", dtype=torch.int8).contiguous()
    digest = hashlib.blake2b(digest_size=8)
    digest.update(str(tuple(array.shape)).encode())
    digest.update(array.numpy().tobytes())
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """Tuples as lists (a default tuple and a config list are the same setting)."""
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def _settings_text(settings: Mapping[str, Any], keys: list[str] | None = None) -> str:
    keys = [k for k in (settings if keys is None else keys) if k not in BOOKKEEPING]
    return ", ".join(f"{k}={settings.get(k)!r}" for k in keys)


def load_checkpoint(path: str | Path, key: str = "resume_from") -> dict[str, Any]:
    """A Lightning checkpoint as a dict (on the CPU, memory-mapped when possible); ConfigError
    naming `key` when the file is missing or is not a checkpoint."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{key}={path}: no such checkpoint file")
    try:
        try:
            checkpoint = torch.load(file, map_location="cpu", weights_only=False, mmap=True)
        except RuntimeError:  # not the zip format: no memory map
            checkpoint = torch.load(file, map_location="cpu", weights_only=False)
    except Exception as err:
        raise ConfigError(f"{key}={path} is not a readable checkpoint "
                          f"({type(err).__name__}: {err})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(f"{key}={path} is not a Lightning checkpoint of a generator "
                          "(it has no state_dict)")
    return checkpoint


class PeriodicCheckpoint(ModelCheckpoint):
    """`last.ckpt` in `dirpath`, rewritten (atomically, by Lightning) every `every_n_minutes` of
    training and/or every `every_n_train_steps` optimizer steps, whichever comes first, and at
    the end of training, so a killed job resumes from its latest save.

    With `keep_steps` every save is also kept as `step_<N>.ckpt` (no '=' in the name, so the path
    can be pasted into `resume_from=`). Unlike ModelCheckpoint's own triggers these work the same
    for manual optimisation (the RBMs) and never add a `-v1` copy beside an existing last.ckpt.
    """

    FILE_LAST = "last.ckpt"

    def __init__(self, dirpath: str, every_n_minutes: float | None = 5.0,
                 every_n_train_steps: int | None = None, keep_steps: bool = False) -> None:
        check_options([
            ("callbacks.model_checkpoint.every_n_minutes", every_n_minutes,
             every_n_minutes is None or (is_number(every_n_minutes)
                                         and math.isfinite(every_n_minutes)
                                         and every_n_minutes > 0),
             "null (off) or a number of minutes > 0"),
            ("callbacks.model_checkpoint.every_n_train_steps", every_n_train_steps,
             every_n_train_steps is None or (is_int(every_n_train_steps)
                                             and every_n_train_steps >= 1),
             "null (off) or an integer >= 1"),
            ("callbacks.model_checkpoint.keep_steps", keep_steps, isinstance(keep_steps, bool),
             "true or false"),
        ])
        super().__init__(dirpath=dirpath, filename="step_{step}", save_last=True,
                         save_top_k=0, auto_insert_metric_name=False,
                         enable_version_counter=False)
        self.every_s = None if every_n_minutes is None else 60.0 * float(every_n_minutes)
        self.every_steps = None if every_n_train_steps is None else int(every_n_train_steps)
        self.keep_steps = keep_steps
        self._last_save = 0.0
        self._saved_step: int | None = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(every_s=self.every_s, every_steps=self.every_steps)

    def last_path(self) -> Path:
        return Path(str(self.dirpath)) / self.FILE_LAST

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_save = time.monotonic()
        self._saved_step = int(trainer.global_step) if self.last_path().is_file() else None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        step = int(trainer.global_step)
        due = ((self.every_steps is not None and step % self.every_steps == 0)
               or (self.every_s is not None
                   and time.monotonic() - self._last_save >= self.every_s))
        if due and step != self._saved_step:
            self.save(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Nothing: saves follow steps and time (the step stream has no epochs)."""

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Nothing: there is no validation loop."""

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if int(trainer.global_step) != self._saved_step or not self.last_path().is_file():
            self.save(trainer)

    def save(self, trainer: pl.Trainer) -> None:
        """Write last.ckpt (and step_<N>.ckpt with keep_steps) for the current step."""
        step = int(trainer.global_step)
        if self.keep_steps:
            trainer.save_checkpoint(Path(str(self.dirpath)) / f"step_{step}.ckpt",
                                   weights_only=False)
        self.last_model_path = str(self.last_path())
        trainer.save_checkpoint(self.last_model_path, weights_only=False)
        self._saved_step = step
        self._last_save = time.monotonic()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing to restore: the paths are this run's (a resume from another folder is
        normal, so ModelCheckpoint's warning about a changed dirpath is not given)."""


class LearnedGenerator(pl.LightningModule, ABC):
    """Base of diffusion, vae, rbm and ff_rbm: subclasses define build(), generate() and the
    training step; fit(context) and sample() are the interface of generators/base.py.

    The networks are created in fit(), once the number of spins is known from the data. Every
    constructor argument (of the whole class chain) is saved as Lightning hyper-parameters, so
    checkpoints name the settings they were trained with.
    """

    name = ""
    produces_samples = True
    trainable = True
    tractable = False

    def __init__(self, batch_size: int = 256, sample_batch_size: int = 10000, seed: int = 0,
                 device: str = "auto", max_steps: int = 1000, lr_schedule: str = "constant",
                 lr_final_factor: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        for key, value in (("batch_size", batch_size), ("sample_batch_size", sample_batch_size),
                           ("max_steps", max_steps)):
            if not is_int(value) or int(value) < 1:
                raise ConfigError(f"generator.{key} must be an integer >= 1; got {value!r}")
        check_options([
            ("generator.lr_schedule", lr_schedule, lr_schedule in LR_SCHEDULES,
             f"one of {list(LR_SCHEDULES)}"),
            ("generator.lr_final_factor", lr_final_factor,
             is_number(lr_final_factor) and 0 <= lr_final_factor <= 1, "a number in [0, 1]"),
        ])
        self.lr_schedule = lr_schedule
        self.lr_final_factor = float(lr_final_factor)
        self.batch_size = int(batch_size)
        self.max_steps = int(max_steps)
        self.sample_batch_size = int(sample_batch_size)
        self.seed = int(seed)
        self.sample_device = resolve_device(device)
        self.n = 0
        self.first_step: int | None = None  # set by on_train_start; None: nothing was trained
        self.register_buffer("train_data", torch.empty(0, 0), persistent=False)
        self._fitting = False
        self._data_digest: str | None = None
        self._watched_loss: Tensor | None = None
        self._first_bad: Tensor | None = None

    @abstractmethod
    def build(self, n: int) -> None:
        """Create the networks and buffers for patterns of n spins."""

    @abstractmethod
    def generate(self, num: int, rng: torch.Generator) -> Tensor:
        """`num` new +-1 patterns on self.device (called under no_grad, in eval mode)."""

    def fit(self, context: FitContext) -> None:
        """Train for this generator's own `max_steps` optimizer steps, or `trainer.max_steps`
        when set (continuing from a checkpoint if given, after checking that it is one of this
        generator at this size)."""
        train = context.train
        if context.training is None:
            raise ConfigError(f"generator={self.name} is trained and needs a training session")
        if train.ndim != 2 or train.shape[0] < 1:
            raise ConfigError(f"generator={self.name}: training patterns must be (M, n) with "
                              f"M >= 1; got shape {tuple(train.shape)}")
        progress.quiet_lightning()
        self.n = int(train.shape[1])
        self.build(self.n)
        self.train_data = train.float()
        self._data_digest = data_digest(train)
        resume = context.training.resume_from
        if resume:
            self.check_checkpoint(resume)
        trainer = context.training.make_trainer(self.max_steps)
        self.first_step = None
        self._fitting = True
        try:
            trainer.fit(self, train_dataloaders=DataLoader(_StepTicks(), batch_size=None),
                        ckpt_path=str(resume) if resume else None)
        finally:
            self._fitting = False
            self._watched_loss = None
        # A checkpoint already at max_steps skips on_train_start: nothing was trained here.
        first = int(self.global_step) if self.first_step is None else self.first_step
        context.training.finish(self, first)
        self.to(self.sample_device)

    # -- what a checkpoint belongs to -----------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        """What this generator's checkpoints record about it (besides the hyper-parameters)."""
        return {"generator": self.name, "n": self.n, "data": self._data_digest}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = self.identity()

    def check_checkpoint(self, path: str | Path) -> dict[str, Any]:
        """Refuse a checkpoint of another generator or shape, with both identities in the
        message; warn about settings that differ but fit (e.g. another learning rate)."""
        checkpoint = load_checkpoint(path)
        saved = checkpoint.get(CHECKPOINT_KEY) or {}
        theirs = {k: _plain(v) for k, v in (checkpoint.get("hyper_parameters") or {}).items()}
        mine = {k: _plain(v) for k, v in self.hparams.items()}
        name = saved.get("generator")
        n = saved.get("n")
        mine_shapes = {k: tuple(v.shape) for k, v in self.state_dict().items()}
        their_shapes = {k: tuple(v.shape) for k, v in checkpoint["state_dict"].items()}
        step = checkpoint.get("global_step")
        at = f", step {step}" if step is not None else ""
        if (name is not None and name != self.name) or mine_shapes != their_shapes:
            if name is None:
                belongs = f"an unknown generator (the file has no {CHECKPOINT_KEY!r} record{at})"
            else:
                belongs = f"generator={name} (n={n}, {_settings_text(theirs)}{at})"
            if name == self.name:
                keys = [k for k in mine if k not in BOOKKEEPING and theirs.get(k) != mine[k]]
                differs = [f"n ({n} vs {self.n})"] if n != self.n else []
                differs += [f"{k} ({theirs.get(k)!r} vs {mine[k]!r})" for k in keys]
                hint = (f"they differ in {', '.join(differs)}" if differs
                        else "their parameters have other shapes")
            else:
                hint = "use a checkpoint of the same generator"
            raise ConfigError(
                f"resume_from={path} is a checkpoint of {belongs}; this run trains "
                f"generator={self.name} (n={self.n}, {_settings_text(mine)}): {hint}, or set "
                "resume_from=null to train from the start")
        changed = [k for k in mine if k not in (*BOOKKEEPING, "seed") and k in theirs
                   and theirs[k] != mine[k]]
        if changed:
            log.warning("resume_from=%s was trained with %s; continuing with this run's %s",
                        path, _settings_text(theirs, changed), _settings_text(mine, changed))
        if theirs.get("seed", self.seed) != self.seed:
            log.warning("resume_from=%s was trained with seed=%s; this run's seed=%s draws the "
                        "remaining steps' batches", path, theirs.get("seed"), self.seed)
        if saved.get("data") not in (None, self._data_digest):
            log.warning("resume_from=%s was trained on other patterns than this run's "
                        "(another dataset, M or seed?); continuing on this run's", path)
        return checkpoint

    # -- training -------------------------------------------------------------------------------

    def with_schedule(self, optimizer: torch.optim.Optimizer) -> Any:
        """What configure_optimizers returns: the optimizer with its per-step lr schedule.

        `cosine` decays the learning rate from lr to lr * lr_final_factor over the Trainer's
        max_steps (a half cosine); resuming to a larger max_steps stretches the rest of the decay,
        so a cosine run resumes exactly only to the same length.
        """
        if self.lr_schedule == "constant":
            return optimizer
        total = max(int(self.trainer.max_steps), 1)
        final = self.lr_final_factor

        def factor(step: int) -> float:
            done = min(step / total, 1.0)
            return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * done))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_train_start(self) -> None:
        """Remember the step this process starts training at (after a checkpoint is restored),
        so speeds count only the steps trained here."""
        self.first_step = int(self.global_step)
        self._first_bad = None

    def on_before_backward(self, loss: Tensor) -> None:
        self._watched_loss = loss.detach()

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Stop when this step's loss or gradients are not finite (before they reach the
        weights, on the CPU): read back every step on the CPU, every DEVICE_CHECK_EVERY steps
        on an accelerator."""
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]
                 if p.grad is not None]
        loss, self._watched_loss = self._watched_loss, None
        values = []
        if loss is not None:
            values.append(loss.float().sum())
        if grads:
            values.append(torch.nn.utils.get_total_norm(grads))
        if not values:
            return
        step = int(self.global_step) + 1
        if values[0].device.type in HOST_CHECK_DEVICES:
            loss_ok = loss is None or bool(torch.isfinite(values[0]))
            grads_ok = not grads or bool(torch.isfinite(values[-1]))
            if not (loss_ok and grads_ok):
                what = []
                if not loss_ok:
                    what.append(f"the training loss is {float(values[0])}")
                if not grads_ok:
                    what.append("its gradients are not finite" if not loss_ok
                                else "the gradients are not finite")
                raise self.diverged(" and ".join(what), step)
            return
        total = torch.stack([v.to(values[0].device) for v in values]).sum()
        if self._first_bad is None:
            self._first_bad = torch.full((), -1, dtype=torch.long, device=total.device)
        fresh = (self._first_bad < 0) & ~torch.isfinite(total)
        self._first_bad = torch.where(fresh, torch.full_like(self._first_bad, step),
                                      self._first_bad)
        if step % DEVICE_CHECK_EVERY == 0:
            self._raise_if_bad()

    def on_train_end(self) -> None:
        self._raise_if_bad()

    def _raise_if_bad(self) -> None:
        if self._first_bad is not None and int(self._first_bad) >= 0:
            raise self.diverged("the training loss or its gradients are not finite",
                                int(self._first_bad))

    def diverged(self, what: str, step: int | None = None) -> DivergenceError:
        """The error of a diverged generator: which, where, and what to lower."""
        lr = getattr(self, "lr", None)
        setting = (f"lower generator.lr (now {lr:g})" if is_number(lr)
                   else "lower its learning rate")
        where = (f"at training step {step}" if step is not None
                 else f"after {int(self.global_step)} training steps")
        return DivergenceError(f"generator={self.name} diverged {where}: {what}; {setting} "
                                "and run again")

    def step_rng(self, purpose: str) -> torch.Generator:
        """The random stream of this training step for one purpose (e.g. 'batch', 'noise')."""
        return stream(self.seed, "train", self.global_step, purpose, device=self.device)

    def batch(self) -> Tensor:
        """`batch_size` training patterns drawn uniformly with replacement for this step."""
        rows = torch.randint(self.train_data.shape[0], (self.batch_size,), device=self.device,
                             generator=self.step_rng("batch"))
        return self.train_data[rows]

    # -- sampling -------------------------------------------------------------------------------

    def weights_finite(self) -> bool:
        return all(bool(torch.isfinite(p).all()) for p in self.parameters())

    def _generate_checked(self, num: int, rng: torch.Generator) -> Tensor:
        """generate(), with non-finite weights or samples reported as a divergence."""
        step = int(self.global_step) if self._fitting else None
        try:
            part = self.generate(num, rng)
        except RuntimeError as err:
            if "p_in" not in str(err) and self.weights_finite():
                raise
            if self._fitting:
                self._raise_if_bad()
            raise self.diverged("sampling met non-finite probabilities (its weights are "
                                f"{'finite' if self.weights_finite() else 'not finite'})",
                                step) from err
        if not bool(torch.isfinite(part).all()):
            raise self.diverged("it generated non-finite values", step)
        return part.to(device="cpu", dtype=torch.float32)

    @torch.no_grad()
    def sample(self, num: int, rng: torch.Generator | None = None) -> Tensor:
        """`num` +-1 patterns (on the CPU) in batches of at most sample_batch_size, with
        progress shown outside training (the energy-variance evaluations stay quiet)."""
        check_sample_count(num)
        fitted(self.n or None, self.name)
        seed = (int(torch.randint(0, 2**62, (1,), generator=rng)) if rng is not None
                else derived_seed(self.seed, "sample"))
        device_rng = torch.Generator(device=self.device).manual_seed(seed)
        was_training = self.training
        self.eval()
        parts: list[Tensor] = []
        try:
            with progress.task(f"generator={self.name}: generating", total=num,
                               unit="patterns", enabled=not self._fitting) as bar:
                for start in range(0, num, self.sample_batch_size):
                    parts.append(self._generate_checked(
                        min(self.sample_batch_size, num - start), device_rng))
                    bar.update(start + parts[-1].shape[0])
        finally:
            self.train(was_training)
        return torch.cat(parts) if parts else torch.empty(0, self.n)

