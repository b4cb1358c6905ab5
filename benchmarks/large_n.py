"""Every stage at n = 800: the default run on a real-sized recording, each generator at a smoke
budget, and the per-pattern metrics timed one by one.

Run: .venv/bin/python -m benchmarks large_n [--quick] [--generators vae rbm] [--threads N]

Data: the bundled retina recording tiled to n = 800 (160 units x 5 copies; see
benchmarks/solvers.py --scale), M = 4,000 training and 1,000 test patterns, written as a
`dataset=file` .npz (samples, test) so every run goes through the user's path.
- `default`: `isingaug dataset=file dataset.path=...` with nothing else: tune_l2=auto (PLM with
  a cross-validated L2 for data without a truth) and the reconstruction test; its wall time,
  peak memory, convergence and imputation scores against the independent-unit baseline.
- one row per generator: `generator=G trainer.max_steps=200 M_plus=10000 tune_l2=none
  solver=mean_field` (the solver kept cheap so the row times the generator), its training and
  sampling seconds and the process's peak memory.
- metrics: sample_quality (moments, sampled three-point, spectrum, gzip entropy, AAI on a
  5,000-pattern subsample), the held-out scores of truth_quality and the reconstruction scores,
  each timed once on 10,000 patterns (the training patterns resampled with 5 % of spins flipped,
  a stand-in for generated ones: the timing does not depend on where the patterns come from).
--quick: n = 320 (2 copies), 50 steps, M_plus = 2,000.
--parts default generators metrics: a subset; the rows of an earlier run of the other parts (same
sizes) are kept in the JSON, so the parts can be measured at different times. Each row records
when it was taken and the load average then.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    generator_names,
    group_parser,
    isingaug_command,
    machine,
    parse_group_args,
    quiet_env,
    results_path,
    run_and_measure,
    shown_path,
    table,
    write_results,
)
from benchmarks.solvers import tiled_retina
from isingaug import results as res

FULL = {"copies": 5, "steps": 200, "M_plus": 10_000, "metric_patterns": 10_000}
QUICK = {"copies": 2, "steps": 50, "M_plus": 2_000, "metric_patterns": 2_000}
SKIPPED = ("none",)
COLUMNS = ["run", "n", "seconds", "peak_rss_mib", "train_s", "sample_s", "converged",
           "impute_acc", "impute_acc_indep", "cond_loglik", "cond_loglik_indep", "l2", "error"]


def file_dataset(cache: Path, copies: int) -> Path:
    """The tiled recording as a dataset=file .npz (samples, test)."""
    arrays = np.load(tiled_retina(cache, copies=copies))
    out = cache / f"retina_tiled{copies}_file.npz"
    np.savez(out, samples=arrays["train"], test=arrays["test"])
    return out


def cli_row(name: str, overrides: list[str], out: Path, cache: Path,
            threads: int | None) -> dict[str, Any]:
    """One isingaug process; what its results.json and the process measured."""
    run_dir = out / name.replace("=", "-")
    measured = run_and_measure(isingaug_command([*overrides, f"hydra.run.dir={run_dir}"]),
                               env=quiet_env(cache, threads))
    row: dict[str, Any] = {"run": name, "seconds": measured["seconds"],
                           "peak_rss_mib": measured["peak_rss_mib"]}
    results_file = run_dir / res.RESULTS_FILE
    if measured["returncode"] != 0 or not results_file.is_file():
        lines = [x for x in measured["output_tail"].splitlines() if x.strip()]
        row["error"] = (lines[-1] if lines else f"exit {measured['returncode']}")[:300]
        return row
    results = json.loads(results_file.read_text())
    metrics, solver = results["metrics"], results["diagnostics"].get("solver/obs", {})
    row.update(n=results["run"]["n"], train_s=metrics.get(res.GEN_TRAIN_SECONDS),
               sample_s=metrics.get(res.GEN_SAMPLE_SECONDS),
               converged=solver.get("converged"), l2=solver.get("l2"),
               impute_acc=metrics.get(res.key(res.IMPUTE_ACC, res.OBS)),
               impute_acc_indep=metrics.get(res.key(res.IMPUTE_ACC, res.BASELINE_INDEP)),
               cond_loglik=metrics.get(res.key(res.IMPUTE_COND_LOGLIK, res.OBS)),
               cond_loglik_indep=metrics.get(res.key(res.IMPUTE_COND_LOGLIK,
                                                     res.BASELINE_INDEP)))
    return row


def metric_rows(data: Path, patterns: int) -> list[dict[str, Any]]:
    """Each per-pattern metric timed once at the data's n (see the module docstring)."""
    import torch

    from isingaug.metrics.imputation import ImputationSettings, imputation_scores
    from isingaug.metrics.samples import sample_quality
    from isingaug.metrics.truth_quality import truth_quality
    from isingaug.solvers.mean_field import MeanField

    arrays = np.load(data)
    train = torch.from_numpy(arrays["samples"].astype(np.float64))
    test = torch.from_numpy(arrays["test"].astype(np.float64))
    rng = torch.Generator().manual_seed(0)
    generated = train[torch.randint(len(train), (patterns,), generator=rng)]
    flips = torch.rand(generated.shape, generator=rng) < 0.05
    generated = torch.where(flips, -generated, generated)
    params = MeanField().fit(train)
    timed = {
        "sample_quality": lambda: sample_quality(generated, train, rng=torch.Generator()),
        "truth_quality (held-out scores)": lambda: truth_quality(
            generated, train=train, test=test, truth=None, params_obs=params),
        "imputation (k = 10, joint, exact)": lambda: imputation_scores(
            params, test, ImputationSettings()),
    }
    rows = []
    for name, fn in timed.items():
        start = time.perf_counter()
        fn()
        rows.append({"run": f"metric: {name}", "n": train.shape[1],
                     "seconds": time.perf_counter() - start})
    return rows


PARTS = ("default", "generators", "metrics")


def stamped(row: dict[str, Any]) -> dict[str, Any]:
    """A row with when it was taken and the machine's load then (parts run at different times)."""
    return {**row, "taken": time.strftime("%Y-%m-%d %H:%M"),
            "load_average": round(os.getloadavg()[0], 2)}


def earlier_rows(quick: bool, sizes: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of the recorded JSON when it was measured at the same sizes."""
    path = results_path("large_n", quick)
    if not path.is_file():
        return []
    recorded = json.loads(path.read_text())
    same = all(recorded.get("settings", {}).get(k) == v for k, v in sizes.items())
    return recorded.get("rows", []) if same else []


def run(quick: bool = False, threads: int | None = None, names: list[str] | None = None,
        parts: tuple[str, ...] = PARTS) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    names = names or [g for g in generator_names() if g not in SKIPPED]
    runs = ([("default", [])] if "default" in parts else []) + ([
        (f"generator={g}", [f"generator={g}", f"trainer.max_steps={sizes['steps']}",
                            f"M_plus={sizes['M_plus']}", "tune_l2=none", "solver=mean_field"])
        for g in names] if "generators" in parts else [])
    rows = []
    with tempfile.TemporaryDirectory(prefix="isingaug-bench-") as tmp:
        out, cache = Path(tmp) / "runs", Path(tmp) / "cache"
        data = file_dataset(cache, sizes["copies"])
        base = ["dataset=file", f"dataset.path={data}", "device=cpu", "trainer.accelerator=cpu"]
        for name, extra in runs:
            row = stamped(cli_row(name, [*base, *extra], out, cache, threads))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        if "metrics" in parts:
            rows += [stamped(row) for row in metric_rows(data, sizes["metric_patterns"])]
    print(table(rows, COLUMNS))
    measured = {row["run"] for row in rows}
    kept = [row for row in earlier_rows(quick, sizes) if row["run"] not in measured]
    path = write_results("large_n", quick, sizes, kept + rows, machine("cpu"))
    print(f"\nwrote {shown_path(path)} ({len(kept)} rows kept from the earlier run)")
    return {"rows": rows, "path": path}


def main(argv: list[str] | None = None) -> None:
    parser = group_parser(__doc__)
    parser.add_argument("--generators", nargs="*", default=None,
                        help="a subset (default: every conf/generator/ file but none)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        help="which rows to measure (default: all)")
    args = parse_group_args(parser, argv)
    run(args.quick, args.threads, args.generators, tuple(args.parts))


if __name__ == "__main__":
    main()
