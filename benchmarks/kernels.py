"""The generators' hot kernels in process, each beside the version it replaced.

    .venv/bin/python -m benchmarks kernels [--quick] [--threads 1 --clock cpu]

- rbm_gibbs: one block-Gibbs sweep of 1,000 chains (n = 20, H = 64 and 256), the RBM's kernel
  (`isingaug.generators.rbm.gibbs_steps`, a uniform below each probability) against the same
  sweep drawn with `torch.bernoulli` (the previous kernel).
- diffusion_train_step: one Adam step of the default denoiser at n = 40, batch 256 (forward,
  backward, update): plain Adam in fp32 (the previous step), fused Adam, and fused Adam with the
  denoiser under bf16 autocast (`generator.train_precision=bf16`).
- ddim_sampling: DDIM-100 patterns per second at n = 40 (untrained default network: the cost
  does not depend on the weights): the time step repeated per row (the previous sampler), one
  shared step (the current one), and with `generator.sample_precision=bf16`.
Writes results/kernels.json (kernels-quick.json with --quick).
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from torch import Tensor, nn
from torch.nn import functional

from benchmarks.common import (
    best_time,
    group_parser,
    machine,
    parse_group_args,
    shown_path,
    table,
    write_results,
)
from isingaug.generators import rbm
from isingaug.generators.diffusion import Denoiser, Diffusion


def bernoulli_sweeps(v: Tensor, params: rbm.RbmParams, k: int, gen: torch.Generator) -> Tensor:
    """The previous kernel: k block-Gibbs sweeps drawn with torch.bernoulli."""
    for _ in range(k):
        h = torch.bernoulli(rbm.hidden_probs(v, params.W, params.c), generator=gen)
        v = torch.bernoulli(rbm.visible_probs(h, params.W, params.b), generator=gen)
    return v


def rbm_rows(repeats: int) -> list[dict[str, Any]]:
    """ms per Gibbs sweep, the kernel against torch.bernoulli draws."""
    rows = []
    for hidden in (64, 256):
        gen = torch.Generator().manual_seed(0)
        params = rbm.RbmParams(0.1 * torch.randn(20, hidden, generator=gen), torch.zeros(20),
                               torch.zeros(hidden))
        chains = torch.bernoulli(torch.full((1000, 20), 0.5), generator=gen)
        for kernel, sweeps in (("torch.bernoulli (before)", bernoulli_sweeps),
                               ("uniform threshold (now)", rbm.gibbs_steps)):
            seconds = best_time(partial(sweeps, chains, params, 10, gen), repeats) / 10
            rows.append({"kernel": "rbm_gibbs", "variant": kernel, "n": 20, "hidden": hidden,
                         "chains": 1000, "ms": 1e3 * seconds})
    return rows


def train_steps(net: nn.Module, optimizer: torch.optim.Optimizer, bf16: bool, steps: int,
                gen: torch.Generator) -> None:
    """`steps` denoiser training steps on a fixed batch of 256 random patterns."""
    x0 = torch.where(torch.rand(256, 40, generator=gen) < 0.5, 1.0, -1.0)
    for _ in range(steps):
        t = torch.randint(1000, (256,), generator=gen)
        noise = torch.randn(256, 40, generator=gen)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            predicted = net(0.7 * x0 + 0.7 * noise, t)
        loss = functional.mse_loss(predicted.float(), noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def train_step_rows(steps: int) -> list[dict[str, Any]]:
    """ms per denoiser training step in fp32 / fused Adam / bf16 autocast."""
    rows = []
    for variant, fused, bf16 in (("fp32, Adam (before)", False, False),
                                 ("fp32, fused Adam", True, False),
                                 ("bf16 autocast, fused Adam", True, True)):
        net = Denoiser(40)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, fused=fused)
        run = partial(train_steps, net, optimizer, bf16, steps, torch.Generator().manual_seed(0))
        rows.append({"kernel": "diffusion_train_step", "variant": variant, "n": 40,
                     "batch": 256, "ms": 1e3 * best_time(run, 2) / steps})
    return rows


class _PerRowStep(nn.Module):
    """The previous sampler's call: the shared step repeated for every row."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.net(x, t.expand(x.shape[0]))


def sampling_rows(patterns: int) -> list[dict[str, Any]]:
    """DDIM-100 patterns/s at n = 40: per-row step, shared step, shared step in bf16."""
    model = Diffusion(sampler="ddim", ddim_steps=100, ema_decay=None, seed=0, device="cpu")
    model.n = 40
    model.build(40)
    shared = model.denoiser
    rows = []
    for variant, net, precision in (("fp32, step per row (before)", _PerRowStep(shared), "fp32"),
                                    ("fp32, one shared step", shared, "fp32"),
                                    ("bf16 autocast, one shared step", shared, "bf16")):
        model.denoiser, model.sample_precision = net, precision
        with torch.inference_mode():
            seconds = best_time(partial(model.generate, patterns, torch.Generator()), 1)
        rows.append({"kernel": "ddim_sampling", "variant": variant, "n": 40,
                     "patterns": patterns, "patterns_per_s": patterns / seconds})
    model.denoiser = shared
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = group_parser(__doc__)
    args = parse_group_args(parser, argv)
    if str(args.device).startswith("cuda"):
        raise SystemExit("kernels times the CPU kernels; the GPU ones are in gpu_check")
    info = machine("cpu")
    settings = {"quick": args.quick, "clock": args.clock}
    rows = [*rbm_rows(3 if args.quick else 10),
            *train_step_rows(10 if args.quick else 50),
            *sampling_rows(1000 if args.quick else 10000)]
    print(table(rows, ["kernel", "variant", "n", "hidden", "chains", "batch", "patterns", "ms",
                       "patterns_per_s"]))
    path = write_results("kernels", args.quick, settings, rows, info)
    print(f"\nwrote {shown_path(path)}")


if __name__ == "__main__":
    main()
