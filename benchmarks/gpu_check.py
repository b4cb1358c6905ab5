"""GPU check: one script that exercises every CUDA path and times what the studies need.

Run (one GPU, about 5-8 minutes):  python -m benchmarks.gpu_check
Run (no GPU, reduced sizes, a minute or two): python -m benchmarks.gpu_check --cpu-smoke
(--cpu-smoke is chosen by itself when torch sees no GPU.) Writes results/gpu_check.json (or
gpu_check-cpu-smoke.json) and prints a table of the checks and the targets.

Stages (each timed; a failing stage is recorded with its error and the others still run; a stage
is skipped once the --budget seconds are spent):
1. generators: every generator of conf/generator/ but `none` trains 500 steps (20 on the CPU)
   through the CLI, `isingaug -m generator=a,b,... device=cuda trainer.accelerator=gpu`, one
   sweep process; steps/s and patterns/s from each run's results.json.
2. mcmc: mcmc_sample with 10^5 chains (10^3 on the CPU) at n = 100, and the bare sweep at
   several block sizes (the default block for CUDA is a guess until this measures it).
3. plm: solver=plm (built from the config, as a run builds it) on M = 300,000 patterns at
   n = 100 (30,000 on the CPU), drawn by the MCMC sampler on the same device.
4. diffusion: 10,000 training steps at n = 40, batch 256 (50 on the CPU) and M+ = 100,000
   ancestral (T = 1,000) patterns (200 on the CPU) through the CLI; projects 1M steps.
5. smoke_sweep: `isingaug -m experiment=sizes scale=smoke seed=0` on the device (one job on the
   CPU).
6. estimate: the full `sizes` study (conf/experiment/sizes.yaml, every design point and seed)
   costed from the measured rates: training, energy-variance evaluations, generation, PLM fits.

Targets printed against: diffusion 1M steps < 10 min; 100,000 ancestral patterns < 2 min; the
sizes study overnight (< 12 h) on one GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import (
    CONF,
    fmt,
    generator_names,
    isingaug_command,
    machine,
    quiet_env,
    run_and_measure,
    shown_path,
    synchronize,
    table,
    write_results,
)
from benchmarks.generators import cli_generator_run, cli_generator_sweep, device_overrides
from benchmarks.samplers import sk_model
from isingaug.sampling import McmcSettings, SweepKernel, Uniforms, mcmc_sample

GPU = {"gen_steps": 500, "gen_n": 40, "gen_M_plus": 2000, "gen_M": 1000,
       "mcmc_n": 100, "mcmc_chains": 100_000, "mcmc_blocks": [16, 32, 64, 128],
       "plm_n": 100, "plm_M": 300_000, "diff_n": 40, "diff_steps": 10_000,
       "diff_M_plus": 100_000, "smoke": ["seed=0"], "budget": 480}
CPU = {"gen_steps": 20, "gen_n": 12, "gen_M_plus": 200, "gen_M": 300,
       "mcmc_n": 40, "mcmc_chains": 1000, "mcmc_blocks": [8, 16],
       "plm_n": 40, "plm_M": 30_000, "diff_n": 12, "diff_steps": 50,
       "diff_M_plus": 200,
       "smoke": ["seed=0", "dataset.n=8", "dataset.M=300", "M_plus=300",
                 "trainer.max_steps=20", "callbacks.energy_variance.eval_every=10",
                 "callbacks.energy_variance.eval_samples=100"],
       "budget": 300}
TARGETS = {"diffusion_1M_steps_s": 600.0, "ancestral_100k_s": 120.0, "sizes_study_h": 12.0}
SKIPPED_GENERATORS = ("none",)


class Stage:
    """Runs the check's stages in order, each timed, failures and the time budget recorded."""

    def __init__(self, budget: float) -> None:
        self.budget, self.start = budget, time.perf_counter()
        self.results: dict[str, dict[str, Any]] = {}

    def run(self, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        spent = time.perf_counter() - self.start
        if spent > self.budget:
            result = {"status": "skipped", "error": f"budget of {self.budget:.0f} s spent"}
        else:
            began = time.perf_counter()
            try:
                result = {"status": "ok", **fn()}
            except Exception as err:  # record and go on: the other checks still tell something
                result = {"status": "failed", "error": f"{type(err).__name__}: {err}",
                          "traceback": traceback.format_exc()[-2000:]}
            result["stage_seconds"] = time.perf_counter() - began
        self.results[name] = result
        shown = {k: v for k, v in result.items()
                 if k not in ("traceback", "rows", "per_design")}
        print(f"[{name}] {json.dumps(shown, default=str)}", file=sys.stderr, flush=True)
        return result


def stage_generators(sizes: dict[str, Any], device: str, tmp: Path) -> dict[str, Any]:
    names = [g for g in generator_names() if g not in SKIPPED_GENERATORS]
    sweep = cli_generator_sweep(names, sizes["gen_n"], sizes["gen_steps"], sizes["gen_M_plus"],
                                sizes["gen_M"], device, tmp / "generators", tmp / "cache")
    failed = [r["generator"] for r in sweep["rows"] if r.get("error")]
    if failed and sweep["returncode"] != 0 and not any("error" not in r for r in sweep["rows"]):
        raise RuntimeError(f"the sweep failed: {sweep['output_tail'][-1500:]}")
    return {"rows": sweep["rows"], "failed": failed, "seconds": sweep["seconds"],
            "peak_rss_mib": sweep["peak_rss_mib"]}


def stage_mcmc(sizes: dict[str, Any], device: torch.device) -> dict[str, Any]:
    n, chains = sizes["mcmc_n"], sizes["mcmc_chains"]
    params = sk_model(n, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    settings = McmcSettings(chains=chains, burn_in=200, thin=10)
    start = time.perf_counter()
    gen = torch.Generator(device=device).manual_seed(0)
    result = mcmc_sample(params, 5 * chains, settings, gen)
    synchronize(device)
    seconds = time.perf_counter() - start
    sweeps = result.diagnostics["sweeps"]
    out: dict[str, Any] = {
        "n": n, "chains": chains, "samples": int(result.samples.shape[0]), "sweeps": sweeps,
        "seconds": seconds, "sweeps_per_s": sweeps / seconds,
        "updates_per_s": sweeps * n * chains / seconds,
        "tau_int_energy": result.diagnostics["tau_int_energy"],
        "ok_spins": bool(((result.samples == 1) | (result.samples == -1)).all()),
    }
    if device.type == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    by_block = {}
    for block in sizes["mcmc_blocks"]:
        kernel = SweepKernel(params, chains, "heat_bath", block=block)
        uniforms = Uniforms(torch.Generator(device=device).manual_seed(1), device)
        kernel.sweep(uniforms)
        synchronize(device)
        reps = 10
        start = time.perf_counter()
        for _ in range(reps):
            kernel.sweep(uniforms)
        synchronize(device)
        per_sweep = (time.perf_counter() - start) / reps
        by_block[str(block)] = {"sweeps_per_s": 1 / per_sweep,
                                "updates_per_s": n * chains / per_sweep,
                                "gflops": 2 * n * n * chains / per_sweep / 1e9}
    out["by_block"] = by_block
    out["best_block"] = max(by_block, key=lambda b: by_block[b]["sweeps_per_s"])
    return out


def stage_plm(sizes: dict[str, Any], device: torch.device) -> dict[str, Any]:
    from isingaug.config import build, compose_config

    n, M = sizes["plm_n"], sizes["plm_M"]
    truth = sk_model(n, device=device)
    chains = min(M, 100_000 if device.type == "cuda" else 1000)
    settings = McmcSettings(chains=chains, burn_in=300, thin=10)
    start = time.perf_counter()
    samples = mcmc_sample(truth, M, settings, torch.Generator(device=device).manual_seed(2))
    sampling_s = time.perf_counter() - start
    solver = build(compose_config(["solver=plm", f"device={device}"]).solver, "solver")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    fitted = solver.fit(samples.samples)
    diagnostics = solver.diagnostics
    mse_J = float(((fitted.J.double().cpu() - truth.J.double().cpu()) ** 2).sum()
                  / (n * (n - 1)))
    out = {"n": n, "M": M, "sampling_s": sampling_s, "fit_s": diagnostics["seconds"],
           "iterations": diagnostics.get("iterations"), "converged": diagnostics.get("converged"),
           "mse_J": mse_J}
    if device.type == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def stage_diffusion(sizes: dict[str, Any], device: str, tmp: Path) -> dict[str, Any]:
    row = cli_generator_run("diffusion", sizes["diff_n"], sizes["diff_steps"],
                            sizes["diff_M_plus"], 1000, device, tmp / "diffusion", tmp / "cache")
    if row.get("error"):
        raise RuntimeError(row["error"])
    steps_per_s, patterns_per_s = row["steps_per_s"], row["patterns_per_s"]
    return {**{k: v for k, v in row.items() if k != "overrides"},
            "projected_1M_steps_s": 1e6 / steps_per_s if steps_per_s else None,
            "projected_100k_ancestral_s": 1e5 / patterns_per_s if patterns_per_s else None}


def smoke_study() -> list[str]:
    """The sizes study's smoke sweep, as this checkout spells it (scale=smoke, or the older
    experiment=sizes_smoke)."""
    if (CONF / "scale" / "smoke.yaml").is_file():
        return ["experiment=sizes", "scale=smoke"]
    return ["experiment=sizes_smoke"]


def stage_smoke_sweep(sizes: dict[str, Any], device: str, tmp: Path) -> dict[str, Any]:
    sweep_dir = tmp / "smoke"
    overrides = [*smoke_study(), *sizes["smoke"], f"hydra.sweep.dir={sweep_dir}",
                 *device_overrides(device)]
    measured = run_and_measure(isingaug_command(overrides, multirun=True),
                               env=quiet_env(tmp / "cache"))
    done = len(list(sweep_dir.rglob("results.json")))
    failed = len(list(sweep_dir.rglob("error.json")))
    if measured["returncode"] != 0 or failed or not done:
        lines = [x for x in measured["output_tail"].splitlines() if x.strip()]
        raise RuntimeError(f"exit {measured['returncode']}, {done} finished, {failed} failed; "
                           f"{' / '.join(lines[-2:])[:400]}")
    return {"jobs": done, "seconds": measured["seconds"],
            "peak_rss_mib": measured["peak_rss_mib"], "overrides": overrides}


def _seeds(spec: Any) -> int:
    """How many seeds a sweeper's `seed` entry names (range(a,b[,s]) or a comma list)."""
    text = str(spec)
    match = re.fullmatch(r"range\((\d+),\s*(\d+)(?:,\s*(\d+))?\)", text.replace(" ", ""))
    if match:
        a, b, step = int(match[1]), int(match[2]), int(match[3] or 1)
        return len(range(a, b, step))
    return len(text.split(","))


def estimate_sizes_study(rates: dict[str, float]) -> dict[str, Any]:
    """Hours of the full sizes study on this device, from measured rates.

    Per job: training (max_steps / steps_per_s), the energy-variance evaluations
    (max_steps / eval_every of them, eval_samples patterns each, at the generation rate),
    generating M_plus patterns, and three PLM fits (obs on M, aug on M_plus, aug_obs on both),
    each costed from the measured PLM seconds per n^2 M. The denoiser's cost is taken as
    independent of n (its hidden widths, 128-512, dwarf n = 20-60). Data sampling is left out
    (seconds, and cached across the generators of a point).
    """
    from isingaug.config import compose_config

    cfg = compose_config(["experiment=sizes"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    designs = str(params.design).split(",")
    seeds = _seeds(params.seed)
    per_design = []
    for design in designs:
        cfg.design = design  # the design point's n, M and M_plus are interpolations of it
        n, M, M_plus = int(cfg.dataset.n), int(cfg.dataset.M), int(cfg.M_plus)
        steps = int(cfg.trainer.max_steps or cfg.generator.max_steps)
        ev = cfg.callbacks.energy_variance
        evals = steps // int(ev.eval_every) if ev.eval_every else 0
        train = steps / rates["steps_per_s"]
        evaluate = evals * int(ev.eval_samples) / rates["patterns_per_s"]
        generate = M_plus / rates["patterns_per_s"]
        plm = rates["plm_s_per_n2M"] * n * n * (M + M_plus + (M + M_plus))
        per_design.append({"design": design, "n": n, "M": M, "M_plus": M_plus,
                           "train_s": train, "evaluate_s": evaluate, "generate_s": generate,
                           "plm_s": plm, "job_s": train + evaluate + generate + plm})
    total = seeds * sum(d["job_s"] for d in per_design)
    return {"designs": len(designs), "seeds": seeds, "jobs": len(designs) * seeds,
            "hours": total / 3600, "per_seed_hours": total / seeds / 3600,
            "per_design": per_design, "rates": rates}


STAGES = ("mcmc", "plm", "diffusion", "generators", "smoke_sweep", "estimate")


def run(cpu_smoke: bool | None = None, budget: float | None = None,
        stages: tuple[str, ...] = STAGES, results_dir: Path | None = None) -> dict[str, Any]:
    """The chosen stages in order (estimate needs diffusion and plm); writes the JSON."""
    on_gpu = torch.cuda.is_available() and not cpu_smoke
    sizes = GPU if on_gpu else CPU
    device = torch.device("cuda") if on_gpu else torch.device("cpu")
    info = machine(str(device))
    runner = Stage(budget if budget is not None else sizes["budget"])
    steps: dict[str, Callable[[Path], dict[str, Any]]] = {
        "mcmc": lambda tmp: stage_mcmc(sizes, device),
        "plm": lambda tmp: stage_plm(sizes, device),
        "diffusion": lambda tmp: stage_diffusion(sizes, str(device), tmp),
        "generators": lambda tmp: stage_generators(sizes, str(device), tmp),
        "smoke_sweep": lambda tmp: stage_smoke_sweep(sizes, str(device), tmp),
    }
    with tempfile.TemporaryDirectory(prefix="isingaug-gpu-check-") as name:
        for stage in stages:
            if stage in steps:
                runner.run(stage, lambda stage=stage: steps[stage](Path(name)))
    results = runner.results
    if "estimate" in stages:
        diffusion, plm = results.get("diffusion", {}), results.get("plm", {})
        if diffusion.get("status") == "ok" and plm.get("status") == "ok":
            rates = {"steps_per_s": diffusion["steps_per_s"],
                     "patterns_per_s": diffusion["patterns_per_s"],
                     "plm_s_per_n2M": plm["fit_s"] / (plm["n"] ** 2 * plm["M"])}
            runner.run("estimate", lambda: estimate_sizes_study(rates))
        else:
            results["estimate"] = {"status": "skipped",
                                   "error": "needs the diffusion and plm stages"}
    summary = summarise(results, on_gpu)
    print(table(summary, ["check", "status", "measured", "target", "meets"]))
    path = write_results("gpu_check" if on_gpu else "gpu_check-cpu-smoke", False,
                         {**sizes, "device": str(device), "targets": TARGETS,
                          "stages": list(stages)},
                         summary, info, {"stages": results}, directory=results_dir)
    print(f"\nwrote {shown_path(path)}")
    return {"summary": summary, "stages": results, "path": path}


def _meets(value: float | None, target: float) -> str:
    if value is None or not math.isfinite(value):
        return ""
    return "yes" if value < target else "no"


def summarise(results: dict[str, dict[str, Any]], on_gpu: bool) -> list[dict[str, Any]]:
    """One line per check: what was measured and, where there is one, the target."""
    lines = []
    gen = results.get("generators", {"status": "not run"})
    for row in gen.get("rows", []):
        lines.append({"check": f"train {row['generator']}",
                      "status": "failed" if row.get("error") else "ok",
                      "measured": row.get("error") or (
                              ", ".join(f"{fmt(row[key])} {unit}" for key, unit in
                                    (("steps_per_s", "steps/s"),
                                     ("patterns_per_s", "patterns/s"))
                                    if row.get(key) is not None))})
    if "rows" not in gen:
        lines.append({"check": "generators", "status": gen.get("status"),
                      "measured": gen.get("error")})
    mcmc = results.get("mcmc", {"status": "not run"})
    lines.append({"check": f"mcmc {mcmc.get('chains')} chains n={mcmc.get('n')}",
                  "status": mcmc["status"], "measured": mcmc.get("error") or (
                      f"{fmt(mcmc.get('updates_per_s'))} spin updates/s, best block "
                      f"{mcmc.get('best_block')}")})
    plm = results.get("plm", {"status": "not run"})
    lines.append({"check": f"plm n={plm.get('n')} M={plm.get('M')}", "status": plm["status"],
                  "measured": plm.get("error") or (
                      f"{fmt(plm.get('fit_s'))} s, {plm.get('iterations')} iterations")})
    diff = results.get("diffusion", {"status": "not run"})
    steps_1m = diff.get("projected_1M_steps_s")
    anc = diff.get("projected_100k_ancestral_s")
    lines.append({"check": "diffusion 1M steps (projected)", "status": diff["status"],
                  "measured": diff.get("error") or f"{fmt(steps_1m)} s",
                  "target": f"< {TARGETS['diffusion_1M_steps_s']:.0f} s",
                  "meets": _meets(steps_1m, TARGETS["diffusion_1M_steps_s"]) if on_gpu else ""})
    lines.append({"check": "100,000 ancestral patterns", "status": diff["status"],
                  "measured": diff.get("error") or f"{fmt(anc)} s",
                  "target": f"< {TARGETS['ancestral_100k_s']:.0f} s",
                  "meets": _meets(anc, TARGETS["ancestral_100k_s"]) if on_gpu else ""})
    smoke = results.get("smoke_sweep", {"status": "not run"})
    lines.append({"check": "smoke sweep", "status": smoke["status"],
                  "measured": smoke.get("error") or (
                      f"{smoke.get('jobs')} jobs in {fmt(smoke.get('seconds'))} s")})
    est = results.get("estimate", {"status": "not run"})
    hours = est.get("hours")
    lines.append({"check": f"sizes study ({est.get('jobs')} jobs)", "status": est.get("status"),
                  "measured": est.get("error") or f"{fmt(hours)} h",
                  "target": f"< {TARGETS['sizes_study_h']:.0f} h",
                  "meets": _meets(hours, TARGETS["sizes_study_h"]) if on_gpu else ""})
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="the reduced CPU run (automatic without a GPU)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds after which the remaining stages are skipped")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated subset of {','.join(STAGES)}")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="where the JSON goes (default benchmarks/results/)")
    # the options `python -m benchmarks gpu_check` passes every group
    parser.add_argument("--quick", action="store_true", help="the same as --cpu-smoke")
    parser.add_argument("--device", default="auto", help="cpu: the same as --cpu-smoke")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--clock", default="wall", choices=["wall"])
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    stages = tuple(s for s in args.stages.split(",") if s)
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stage(s) {unknown}; choose from {', '.join(STAGES)}")
    result = run(args.cpu_smoke or args.quick or args.device == "cpu", args.budget, stages,
                 args.results_dir)
    if any(s.get("status") == "failed" for s in result["stages"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
