"""Progress a person can watch: bars at a terminal, one log line every few seconds elsewhere.

A single run at a terminal gets bars (tqdm, on stderr): the generator's training through
Lightning's own progress-bar callback (with the loss and the energy-variance score), the sampling
of the generated patterns, and any long loop that reports through `task` (the MCMC data sampler,
the solver's L2 cross-validation). A sweep job (Hydra multirun) or a run without a terminal gets
plain log lines instead, at most one every `log_every_s` seconds for the whole job, so a job log
shows it is alive without a bar's carriage returns filling it.

`quiet_lightning` silences, at their source, the lines Lightning prints on every Trainer that say
nothing about this run (its litlogger tip, the GPU/TPU availability lines, the srun hint outside
SLURM, the LeafSpec deprecation it triggers in torch), leaving every other warning alone.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pytorch_lightning as pl
from pytorch_lightning.callbacks.progress import ProgressBar, TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm
from tqdm import tqdm

from isingaug.errors import check_options, is_int, is_number

log = logging.getLogger(__name__)

MODES = ("auto", "bar", "log", "off")
T = TypeVar("T")


@dataclass
class Settings:
    """How progress is shown: `mode` (auto: bars at a terminal outside a sweep, log lines
    otherwise) and the interval of the log lines."""

    mode: str = "auto"
    log_every_s: float = 30.0


_settings = Settings()
#: time.monotonic() of the last progress log line of this process (one line per interval in all).
_last_line = [-math.inf]


def check_settings(mode: object, log_every_s: object, key: str = "callbacks.progress") -> None:
    check_options([
        (f"{key}.mode", mode, mode in MODES, f"one of {list(MODES)}"),
        (f"{key}.log_every_s", log_every_s,
         is_number(log_every_s) and math.isfinite(log_every_s) and log_every_s > 0,
         "a number of seconds > 0"),
    ])


def configure(mode: str = "auto", log_every_s: float = 30.0) -> None:
    """Set how the progress of this process is shown (the CLI calls it from the run's config)."""
    check_settings(mode, log_every_s)
    _settings.mode = mode
    _settings.log_every_s = float(log_every_s)


def settings() -> Settings:
    return Settings(_settings.mode, _settings.log_every_s)


def in_multirun() -> bool:
    """True inside a job of a Hydra multirun (any launcher)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode
    except ImportError:  # pragma: no cover - hydra is a dependency
        return False
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def resolve_mode(mode: str | None = None) -> str:
    """bar, log or off: `auto` is bar at a terminal (stderr a TTY) outside a sweep, else log."""
    mode = _settings.mode if mode is None else mode
    if mode != "auto":
        return mode
    interactive = sys.stderr.isatty() and not in_multirun()
    return "bar" if interactive else "log"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def progress_line(description: str, done: int, total: int | None, unit: str, elapsed: float,
                  info: Mapping[str, object] | None = None, start: int = 0) -> str:
    """`description: 400/1,000 steps (40%), 12 s, ~18 s left, loss=0.31` (the log form)."""
    text = f"{description}: {done:,}"
    if total:
        text += f"/{total:,} {unit} ({100.0 * done / total:.0f}%)"
    else:
        text += f" {unit}"
    text += f", {_duration(elapsed)}"
    rate = (done - start) / elapsed if elapsed > 0 else math.nan
    if total and done < total and rate > 0:
        text += f", ~{_duration((total - done) / rate)} left"
    if info:
        text += ", " + ", ".join(f"{k}={_fmt(v)}" for k, v in info.items())
    return text


def _line_due(now: float, every_s: float) -> bool:
    return now - _last_line[0] >= every_s


def _emit(line: str) -> None:
    _last_line[0] = time.monotonic()
    log.info("%s", line)


class Task:
    """The progress of one loop: `update(done, **info)` as it goes (cheap enough per iteration:
    it only looks at the clock until a line or a bar refresh is due), `close()` at the end.

    In log mode a line is written when `log_every_s` have passed since the last progress line of
    the process, and a closing line only if the task wrote one before (short tasks stay silent).
    """

    #: seconds between refreshes of a bar
    BAR_INTERVAL = 0.2

    def __init__(self, description: str, total: int | None = None, unit: str = "it",
                 mode: str | None = None, log_every_s: float | None = None) -> None:
        self.description = description
        self.total = int(total) if total else None
        self.unit = unit
        self.mode = resolve_mode(mode)
        self.every_s = _settings.log_every_s if log_every_s is None else float(log_every_s)
        self.done = 0
        self.info: dict[str, object] = {}
        self.started = time.monotonic()
        self._next = self.started + (self.BAR_INTERVAL if self.mode == "bar" else 0.0)
        self._lines = 0
        self._bar: tqdm | None = None
        if self.mode == "bar":
            self._bar = tqdm(total=self.total, desc=description, unit=f" {unit}", leave=False,
                             file=sys.stderr, dynamic_ncols=True, mininterval=self.BAR_INTERVAL)

    def __enter__(self) -> Task:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(failed=exc[0] is not None)

    def update(self, done: int, **info: object) -> None:
        """`done` units of `total` are finished; `info` is shown beside (e.g. l2=0.01)."""
        self.done = int(done)
        if info:
            self.info.update(info)
        if self.mode == "off":
            return
        now = time.monotonic()
        if now < self._next:
            return
        if self._bar is not None:
            self._bar.n = self.done
            if self.info:
                self._bar.set_postfix({k: _fmt(v) for k, v in self.info.items()}, refresh=False)
            self._bar.refresh()
            self._next = now + self.BAR_INTERVAL
            return
        self._next = now + min(1.0, self.every_s)  # when to look at the clock again
        if _line_due(now, self.every_s) and now - self.started >= self.every_s:
            self._lines += 1
            _emit(progress_line(self.description, self.done, self.total, self.unit,
                                now - self.started, self.info))

    def advance(self, count: int = 1, **info: object) -> None:
        self.update(self.done + count, **info)

    def close(self, failed: bool = False) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._lines and not failed:
            self._lines = 0
            _emit(progress_line(self.description, self.done, self.total, self.unit,
                                time.monotonic() - self.started, self.info) + " (done)")


def task(description: str, total: int | None = None, unit: str = "it",
         enabled: bool = True) -> Task:
    """The progress of one loop, as a context manager:

        with progress.task("sampling data (MCMC)", total=sweeps, unit="sweeps") as bar:
            for step in range(sweeps):
                ...
                bar.update(step + 1)
    """
    return Task(description, total, unit, mode=None if enabled else "off")


def track(items: Iterable[T], description: str, total: int | None = None,
          unit: str = "it") -> Iterator[T]:
    """`for x in progress.track(items, "...")`: `task` for a loop that runs to its end."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with task(description, total, unit) as bar:
        for index, item in enumerate(items):
            yield item
            bar.update(index + 1)


# ---- the generator's training --------------------------------------------------------------

def training_metrics(trainer: pl.Trainer) -> dict[str, float]:
    """What the training progress shows: every `train/...` value the generator logs (its loss)
    and, once the energy-variance monitor has a point, the generated patterns' Var[E] under
    theta_obs beside the training data's (`var_E`, `var_E_data`)."""
    out: dict[str, float] = {}
    for name, value in trainer.callback_metrics.items():
        if name.startswith("train/"):
            out[name.removeprefix("train/")] = float(value)
    for callback in trainer.callbacks:
        curve = getattr(callback, "curve", None)
        if curve and isinstance(curve, list) and "var_E_gen/obs" in curve[-1]:
            out["var_E"] = float(curve[-1]["var_E_gen/obs"])
            reference = getattr(callback, "reference_values", {}).get("var_E_train/obs")
            if reference is not None:
                out["var_E_data"] = float(reference)
    return out


def _generator_name(pl_module: pl.LightningModule) -> str:
    return str(getattr(pl_module, "name", "") or type(pl_module).__name__)


class GeneratorProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar counted in optimizer steps (up to max_steps, from the restored step
    when resumed), on stderr, with the generator's loss and energy-variance score beside it."""

    def __init__(self, refresh_rate: int = 1, min_interval_s: float = 0.2) -> None:
        super().__init__(refresh_rate=refresh_rate)
        self.min_interval_s = float(min_interval_s)
        self._next = 0.0

    @property
    def train_description(self) -> str:
        return f"training generator={_generator_name(self.trainer.lightning_module)}"

    def init_train_tqdm(self) -> Tqdm:
        return Tqdm(desc=self.train_description, position=2 * self.process_position,
                    disable=self.is_disabled, leave=True, dynamic_ncols=True, file=sys.stderr,
                    smoothing=0, bar_format=self.BAR_FORMAT)

    def get_metrics(self, trainer: pl.Trainer,
                    pl_module: pl.LightningModule) -> dict[str, Any]:
        return training_metrics(trainer)

    def on_train_epoch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        bar = self.train_progress_bar
        bar.reset(total=trainer.max_steps if trainer.max_steps and trainer.max_steps > 0
                  else None)
        bar.initial = bar.n = trainer.global_step
        bar.set_description(self.train_description, refresh=False)
        if not bar.disable:
            bar.refresh()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        bar = self.train_progress_bar
        step = trainer.global_step
        now = time.monotonic()
        if bar is None or bar.disable or not self._should_update(step, bar.total):
            return
        if now < self._next and step != bar.total:
            return
        self._next = now + self.min_interval_s
        bar.n = step
        bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
        bar.refresh()


class GeneratorProgressLog(ProgressBar):
    """The training progress as log lines: where it starts (or resumes), then at most one line
    every `log_every_s` seconds (step, rate, time left, loss, Var[E]), and how it ended."""

    def __init__(self, log_every_s: float = 30.0) -> None:
        super().__init__()
        self.log_every_s = float(log_every_s)
        self._enabled = True
        self._start_step = 0
        self._started = 0.0
        self._next = 0.0

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._enabled:
            return
        self._start_step = int(trainer.global_step)
        self._started = time.monotonic()
        self._next = self._started + min(1.0, self.log_every_s)
        name = _generator_name(pl_module)
        where = (f"resuming at step {self._start_step:,}" if self._start_step
                 else "starting at step 0")
        _emit(f"training generator={name} on {pl_module.device} for "
              f"{trainer.max_steps:,} steps, {where}")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + min(1.0, self.log_every_s)
        if _line_due(now, self.log_every_s):
            _emit(self._line(trainer, pl_module, now))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        steps = int(trainer.global_step) - self._start_step
        rate = steps / (now - self._started) if now > self._started and steps else math.nan
        info = ", ".join(f"{k}={_fmt(v)}" for k, v in training_metrics(trainer).items())
        _emit(f"generator={_generator_name(pl_module)} trained to step "
              f"{trainer.global_step:,} ({steps:,} steps here in {_duration(now - self._started)}"
              f", {rate:.3g} steps/s){', ' + info if info else ''}")

    def _line(self, trainer: pl.Trainer, pl_module: pl.LightningModule, now: float) -> str:
        return progress_line(f"training generator={_generator_name(pl_module)}",
                             int(trainer.global_step), trainer.max_steps or None, "steps",
                             now - self._started, training_metrics(trainer),
                             start=self._start_step)


def training_progress(mode: str = "auto", log_every_s: float = 30.0,
                      refresh_rate: int = 1) -> ProgressBar:
    """The progress-bar callback of a generator's Trainer (`callbacks.progress` in YAML): the
    tqdm bar in bar mode, log lines in log mode, a disabled bar with `off` (so Lightning adds
    no bar of its own)."""
    check_settings(mode, log_every_s)
    check_options([("callbacks.progress.refresh_rate", refresh_rate,
                    is_int(refresh_rate) and refresh_rate >= 0, "an integer >= 0")])
    kind = resolve_mode(mode)
    if kind == "log":
        return GeneratorProgressLog(log_every_s)
    return GeneratorProgressBar(refresh_rate=int(refresh_rate) if kind == "bar" else 0)


# ---- Lightning's noise ---------------------------------------------------------------------

#: Lines Lightning logs on every Trainer that say nothing about the run (the run's own
#: progress says where it trains and when it stopped).
QUIET_PREFIXES = ("💡 Tip:", "GPU available:", "TPU available:", "HPU available:",
                  "`Trainer.fit` stopped: `max_steps=", "`weights_only` was not set")
#: Lightning's loggers that print them: its rank-zero loggers (lightning_utilities logs through
#: whichever was set last) and the checkpoint connector (every save_checkpoint call).
QUIET_LOGGERS = ("pytorch_lightning.utilities.rank_zero",
                 "lightning_fabric.utilities.rank_zero",
                 "lightning.pytorch.utilities.rank_zero",
                 "lightning.fabric.utilities.rank_zero",
                 "lightning_utilities.core.rank_zero",
                 "pytorch_lightning.trainer.connectors.checkpoint_connector")
#: Warnings that are known and not ours to act on: (message regex, category).
QUIET_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    # torch's deprecation of LeafSpec, triggered inside Lightning's _pytree helper
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
    # batches are drawn from (seed, step) streams, so a mid-epoch resume is exact
    (r"You're resuming from a checkpoint that ended before the epoch ended", UserWarning),
)


class _DropLines(logging.Filter):
    """Drops the records whose message starts with one of QUIET_PREFIXES."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(QUIET_PREFIXES)


def quiet_lightning() -> None:
    """Silence Lightning's tips, device-availability lines and known deprecations at their
    source (a filter on its rank-zero loggers, warning filters on the exact messages); the srun
    hint too when the process does not run under SLURM. Idempotent."""
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLines) for f in logger.filters):
            logger.addFilter(_DropLines())
    for message, category in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    if not any(key in os.environ for key in ("SLURM_JOB_ID", "SLURM_JOBID")):
        warnings.filterwarnings("ignore", message=r"The `srun` command is available on your "
                                                  r"system but is not used")
