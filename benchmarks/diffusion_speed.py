"""Time the diffusion generator: training steps/s and generated patterns/s (ancestral and DDIM).

Run: .venv/bin/python benchmarks/diffusion_speed.py [--device cpu|cuda|auto] [--n 40]
    [--samplers ancestral ddim] [--sample-precision fp32|bf16]
Trains the default network (generator=diffusion defaults) through the public CLI, then samples
with T=1000 ancestral steps (generator=diffusion) and, in a second run, with 100 DDIM steps
(generator=diffusion_ddim), with the denoiser's matmuls in fp32 or bf16; the rates are the
runs' own gen/steps_per_second and gen/patterns_per_second (results.json), so the script follows
the generator code wherever it moves. Prints one JSON line and appends it to
benchmarks/results/diffusion_speed.jsonl.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from benchmarks.generators import cli_generator_run
from isingaug.device import resolve_device

RESULTS = Path(__file__).resolve().parent / "results" / "diffusion_speed.jsonl"
#: The generator run for each sampler.
GENERATORS = {"ancestral": "diffusion", "ddim": "diffusion_ddim"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--patterns", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--samplers", nargs="+", choices=list(GENERATORS), default=list(GENERATORS))
    parser.add_argument("--sample-precision", choices=["fp32", "bf16"], default="fp32")
    args = parser.parse_args()
    device = resolve_device(args.device)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="isingaug-diffusion-speed-") as tmp:
        for sampler in args.samplers:
            generator = GENERATORS[sampler]
            rows[sampler] = cli_generator_run(
                generator, args.n, args.steps, args.patterns, 1000, str(device),
                Path(tmp) / "runs", Path(tmp) / "cache", args.threads,
                extra=[f"generator.sample_precision={args.sample_precision}"])
            if rows[sampler].get("error"):
                raise SystemExit(f"{generator}: {rows[sampler]['error']}")
    first = rows[args.samplers[0]]
    row = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "threads": args.threads or torch.get_num_threads(),
        "n": args.n,
        "train_steps": args.steps,
        "steps_per_s": first["steps_per_s"],
        "patterns": args.patterns,
        "sample_precision": args.sample_precision,
        **{f"{sampler}_patterns_per_s": rows[sampler]["patterns_per_s"] for sampler in rows},
        **{f"{sampler}_sample_s": rows[sampler]["sample_s"] for sampler in rows},
        "source": "CLI gen/steps_per_second, gen/patterns_per_second",
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    line = json.dumps(row)
    print(line, flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as handle:
        handle.write(line + "\n")


if __name__ == "__main__":
    main()
