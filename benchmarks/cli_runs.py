"""Run isingaug commands through the real CLI and tabulate their results.json.

Run: .venv/bin/python benchmarks/cli_runs.py anchor      # PLM vs exact MLE, n=20, 3 seeds
     .venv/bin/python benchmarks/cli_runs.py sizes       # n = 40 (MCMC data) and n = 100
Each case runs in a fresh process (so timings include nothing cached in memory); the data cache
is a fresh temporary folder, so sampling is timed too. Prints a markdown table and writes the
rows to benchmarks/results/<suite>.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SUITES = {
    "anchor": [
        [f"seed={seed}", "dataset.n=20", "dataset.g=1", "dataset.M=4000", f"solver={solver}"]
        for seed in (0, 1, 2) for solver in ("plm", "mle")
    ],
    "sizes": [
        ["dataset.n=40", "dataset.M=4000", "solver=plm"],
        ["dataset.n=40", "dataset.M=4000", "solver=mle"],
        ["dataset.n=100", "dataset.M=4000", "solver=plm"],
        ["dataset.n=100", "dataset.M=4000", "solver=mle"],
    ],
}
COLUMNS = ("n", "M", "seed", "solver", "mse_J/obs", "mse_all/obs", "rel_err_J/obs",
           "solver_seconds/obs", "data_seconds", "sampling", "tau_int_energy")


def run_case(args: list[str], root: Path, cache: Path) -> dict:
    run_dir = root / "_".join(a.replace("=", "") for a in args)
    env = {**os.environ, "ISINGAUG_CACHE_DIR": str(cache), "WANDB_MODE": "disabled"}
    proc = subprocess.run([sys.executable, "-m", "isingaug", f"hydra.run.dir={run_dir}", *args],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{args} failed:\n{proc.stderr[-2000:]}")
    results = json.loads((run_dir / "results.json").read_text())
    sampling = results["diagnostics"]["data"]["sampling"]
    return {**results["run"], **results["metrics"], "data_seconds": results["seconds"]["data"],
            "sampling": sampling["sampler"], "tau_int_energy": sampling.get("tau_int_energy"),
            "solver_diagnostics": results["diagnostics"]["solver/obs"], "args": args}


def cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def main() -> None:
    suite = sys.argv[1] if len(sys.argv) > 1 else "anchor"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for args in SUITES[suite]:
            rows.append(run_case(args, Path(tmp), Path(tmp) / "cache"))
            print("| " + " | ".join(cell(rows[-1].get(c)) for c in COLUMNS) + " |", flush=True)
    out = Path(__file__).parent / "results" / f"{suite}.json"
    out.write_text(json.dumps(rows, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
