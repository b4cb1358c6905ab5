"""Time the diffusion generator: training steps/s and generated patterns/s (ancestral and DDIM).

Run: .venv/bin/python benchmarks/diffusion_speed.py [--device cpu|cuda|auto]
Trains the default network (generator=diffusion defaults) on random +-1 patterns through a
Lightning Trainer, then samples with T=1000 ancestral steps and with 100 DDIM steps. Prints one
JSON line and appends it to benchmarks/results/diffusion_speed.jsonl. steps_per_s leaves out the
first `--warmup` steps (Trainer start-up, first-call allocations).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch

from isingaug.device import resolve_device
from isingaug.generators.diffusion import Diffusion

RESULTS = Path(__file__).resolve().parent / "results" / "diffusion_speed.jsonl"


class _StepClock(pl.Callback):
    """Wall time from the end of step `warmup` to the end of training."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start: float | None = None
        self.end: float | None = None

    def _now(self, module: pl.LightningModule) -> float:
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)
        return time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: object, batch: object, batch_idx: int) -> None:
        if trainer.global_step == self.warmup:
            self.start = self._now(pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.end = self._now(pl_module)


def patterns_per_second(gen: Diffusion, num: int) -> float:
    """Generated patterns per second (sample() returns on the CPU, so GPU work is finished)."""
    gen.sample(min(num, 8), torch.Generator().manual_seed(1))  # warm-up
    start = time.perf_counter()
    gen.sample(num, torch.Generator().manual_seed(0))
    return num / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--patterns", type=int, default=2000)
    parser.add_argument("--ddim-steps", type=int, default=100)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="pytorch_lightning")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    device = resolve_device(args.device)

    train = torch.where(torch.rand(4000, args.n, generator=torch.Generator().manual_seed(0))
                        < 0.5, 1.0, -1.0)
    gen = Diffusion(batch_size=args.batch, ddim_steps=args.ddim_steps, device=str(device))
    clock = _StepClock(args.warmup)
    trainer = pl.Trainer(max_steps=args.steps, accelerator="gpu" if device.type == "cuda"
                         else "cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[clock])
    gen.fit(train, trainer)
    assert clock.start is not None and clock.end is not None
    steps_per_s = (args.steps - args.warmup) / (clock.end - clock.start)

    gen.sampler = "ancestral"
    ancestral = patterns_per_second(gen, args.patterns)
    gen.sampler = "ddim"
    ddim = patterns_per_second(gen, args.patterns)

    row = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "n": args.n,
        "batch": args.batch,
        "train_steps": args.steps,
        "steps_per_s": round(steps_per_s, 2),
        "timesteps": gen.timesteps,
        "ddim_steps": gen.ddim_steps,
        "patterns": args.patterns,
        "ancestral_patterns_per_s": round(ancestral, 1),
        "ddim_patterns_per_s": round(ddim, 1),
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    line = json.dumps(row)
    print(line, flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as handle:
        handle.write(line + "\n")


if __name__ == "__main__":
    main()
