"""Inverse solvers: wall time, iterations, mse_J and peak memory, against ConIII 3.0.1 `Pseudo`.

    .venv/bin/python benchmarks/solvers.py --quick          # CI size: n in {20, 40}, M = 4,000
    .venv/bin/python benchmarks/solvers.py                  # n {20,40,100,200} x M {4e3,1e5,3e5}
    .venv/bin/python benchmarks/solvers.py --n 20 --M 100000 --solvers plm
    .venv/bin/python benchmarks/solvers.py --scale          # n = 800, M = 4,000, PLM l2=auto

Grid: SK truth at g = 1 (`dataset=sk`'s instance of data_seed 0), exact samples for n <= 20 and
the project's MCMC above (its defaults: 1,000 heat-bath chains, 1,000 sweeps burn-in, thin 10),
cached under outputs/cache. Every solver runs with its conf/solver/<name>.yaml defaults
(device cpu) in a fresh process, after a warm-up fit on 64 patterns, so its peak resident
memory is its own (`peak_rss_mib`; `rss_before_fit_mib` is the process with torch and the data
loaded). ConIII `Pseudo` runs on the same patterns in a throwaway virtualenv
(outputs/bench-venv-coniii: ConIII needs numpy < 2 and reads CONDA_PREFIX in its setup.py; it is
never a project dependency), after a warm-up solve, with the BLAS threads set to --threads.
ConIII cells whose estimate (the slowest measured time per n^2 M, times n^2 M) exceeds
--coniii-max-seconds are skipped and say so.

PLM's objective costs 4 U n^2 FLOPs per evaluation (two GEMMs over the U distinct patterns);
`plm_roofline` = the time those FLOPs take at the machine's measured torch.matmul peak (float32
for the work-dtype evaluations, float64 for the rest) divided by the fit's time.

--scale: the bundled retina recording tiled to n = 800 (160 units x 5 copies, copy c taking
repeat r + 47c of the training repeats, so the copies share the stimulus but not the noise; test
repeats likewise among themselves), M = 4,000 training and 1,000 test patterns; PLM with
l2 = auto (cross-validation included), its held-out pseudo-log-likelihood against independent
units (h = atanh m, J = 0), and MCMC MLE, interaction screening and mean field at that size.

Results go to benchmarks/results/solvers*.json with the machine, versions, threads, date and
load average.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SOLVERS = ("plm", "mle", "erasure", "mean_field", "interaction_screening")
GRID_N = (20, 40, 100, 200)
GRID_M = (4000, 100_000, 300_000)
CONIII_VENV = ROOT / "outputs" / "bench-venv-coniii"
#: Idle OpenMP threads sleep instead of spinning: on a loaded machine spinning threads fight the
#: other jobs (a 640k-element add took 52 ms with 2 spinning threads at load 10, 0.3 ms passive).
OMP_WAIT_POLICY = os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads
CONIII_REQUIREMENTS = ("numpy==1.23.5", "scipy==1.11.4", "numba==0.57.1", "multiprocess",
                       "mpmath", "dill", "matplotlib<3.9", "contourpy<1.3", "wheel")


def _rss_mib() -> float:
    """Peak resident memory of this process image so far, in MiB: VmHWM, which exec resets
    (getrusage's ru_maxrss would start at the forking parent's size)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _mse_J(h: np.ndarray, J: np.ndarray, J_true: np.ndarray) -> float:
    upper = np.triu_indices(J_true.shape[0], 1)
    return float(np.mean((J[upper] - J_true[upper]) ** 2))


# ---- workers (one process per fit) ------------------------------------------------------------


def worker_solver(args: argparse.Namespace) -> None:
    """Fit one project solver with its YAML defaults; write the row as JSON."""
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from isingaug.ising import pseudo_log_likelihood

    torch.set_num_threads(args.threads)
    arrays = np.load(args.data)
    node = OmegaConf.load(ROOT / "conf" / "solver" / f"{args.solver}.yaml")
    overrides = json.loads(args.options or "{}")
    for key in ("seed", "cv_seed"):
        if key in node:
            node[key] = 0
    node.device = "cpu"
    for key, value in overrides.items():
        node[key] = value
    spins = torch.from_numpy(arrays["train"].astype(np.float64))
    warm = instantiate(node)
    warm.fit(spins[:64])
    solver = instantiate(node)
    before = _rss_mib()
    start = time.perf_counter()
    params = solver.fit(spins)
    wall = time.perf_counter() - start
    diag = solver.diagnostics
    row: dict[str, Any] = {
        "solver": args.solver, "options": overrides, "seconds": diag["seconds"],
        "wall_seconds": wall, "iterations": diag.get("iterations"),
        "evaluations": diag.get("evaluations"), "converged": diag.get("converged"),
        "stop": diag.get("stop"), "peak_rss_mib": _rss_mib(), "rss_before_fit_mib": before,
        "distinct_patterns": diag.get("distinct_patterns"),
    }
    for key in ("work_evaluations", "l2", "cv_grid", "cv_scores", "cv_seconds",
                "cv_iterations", "cv_evaluations", "method", "epsilon", "init_seconds"):
        if key in diag:
            row[key] = diag[key]
    h, J = params.h.numpy(), params.J.numpy()
    if "J" in arrays:
        row["mse_J"] = _mse_J(h, J, arrays["J"])
    if "test" in arrays:
        test = torch.from_numpy(arrays["test"].astype(np.float64))
        row["test_pll"] = float(pseudo_log_likelihood(params, test).mean())
    Path(args.out).write_text(json.dumps(row))


def worker_coniii(args: argparse.Namespace) -> None:
    """Time ConIII's Pseudo (construction and solve) after a warm-up; write the row as JSON."""
    import coniii
    from coniii import Pseudo
    from coniii.utils import vec2mat

    arrays = np.load(args.data)
    X = arrays["train"].astype(np.int64)
    Pseudo(X[:64]).solve()  # numba compilation
    before = _rss_mib()
    start = time.perf_counter()
    theta = Pseudo(X).solve()
    seconds = time.perf_counter() - start
    h, J = vec2mat(theta, separate_fields=True)
    Path(args.out).write_text(json.dumps({
        "solver": "coniii_pseudo", "coniii": coniii.__version__ if hasattr(coniii, "__version__")
        else "3.0.1", "numpy": np.__version__, "seconds": seconds, "wall_seconds": seconds,
        "mse_J": _mse_J(h, J, arrays["J"]), "peak_rss_mib": _rss_mib(),
        "rss_before_fit_mib": before}))


# ---- the orchestrating process ----------------------------------------------------------------


def machine(threads: int) -> dict[str, Any]:
    import torch

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "platform": platform.platform(), "python": platform.python_version(),
            "cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "numpy": np.__version__, "threads": threads, "omp_wait_policy": OMP_WAIT_POLICY,
            "load_average": os.getloadavg()}


def matmul_peak(threads: int, size: int = 2048, repeats: int = 5) -> dict[str, float]:
    """Best-of-`repeats` GFLOP/s of a square torch.matmul, float32 and float64."""
    import torch

    torch.set_num_threads(threads)
    peaks = {}
    for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        a = torch.randn(size, size, dtype=dtype)
        b = torch.randn(size, size, dtype=dtype)
        a @ b
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
        peaks[name] = 2.0 * size**3 / best / 1e9
    return peaks


def sk_cell(n: int, M: int, cache: Path) -> Path:
    """The cell's data (cached by the project's SK cache), exported for the workers."""
    out = cache / "bench_solvers" / f"sk_n{n}_g1_M{M}_seed0.npz"
    if out.exists():
        return out
    from omegaconf import OmegaConf

    from isingaug.data.sk import make_sk_dataset

    sampler = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "dataset" / "sk.yaml"))[
        "sampler"]
    dataset = make_sk_dataset(n, 1.0, M, 0, 0, sampler, cache_dir=str(cache), device="cpu")
    out.parent.mkdir(parents=True, exist_ok=True)
    truth = dataset.truth.to_numpy()
    np.savez(out, train=dataset.train.numpy().astype(np.int8), h=truth["h"], J=truth["J"],
             sampling=json.dumps(dataset.meta.get("sampling", {})))
    return out


def tiled_retina(cache: Path, copies: int = 5, shift: int = 47, M: int = 4000,
                 M_test: int = 1000, seed: int = 0) -> Path:
    """n = 160 * copies units from the bundled recording (see the module docstring)."""
    out = cache / "bench_solvers" / f"retina_tiled{copies}_M{M}_seed{seed}.npz"
    if out.exists():
        return out
    from isingaug.data.neural import BUNDLED_PATH, read_recording

    spikes, _ = read_recording(BUNDLED_PATH)
    repeats, units, _ = spikes.shape
    rng = np.random.default_rng(seed)
    order = rng.permutation(repeats)
    test_repeats, train_repeats = np.sort(order[:60]), np.sort(order[60:])

    def tile(chosen: np.ndarray, step: int) -> np.ndarray:
        count = len(chosen)
        blocks = [spikes[chosen[(np.arange(count) + c * step) % count]] for c in range(copies)]
        return np.concatenate(blocks, 1).transpose(0, 2, 1).reshape(-1, units * copies)

    train = tile(train_repeats, shift)
    test = tile(test_repeats, shift % len(test_repeats) or 1)
    train = train[rng.choice(len(train), M, replace=False)]
    test = test[rng.choice(len(test), M_test, replace=False)]
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, train=np.where(train, 1, -1).astype(np.int8),
             test=np.where(test, 1, -1).astype(np.int8))
    return out


def run_worker(command: list[str], out: Path, threads: int, timeout: float) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "OPENBLAS_NUM_THREADS": str(threads), "NUMBA_NUM_THREADS": str(threads),
           "OMP_WAIT_POLICY": OMP_WAIT_POLICY}
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0 or not out.exists():
        return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
    row = json.loads(out.read_text())
    row["process_seconds"] = time.perf_counter() - start
    return row


def ensure_coniii() -> Path | None:
    """The throwaway ConIII virtualenv's python, built on first use (None if it fails)."""
    python = CONIII_VENV / "bin" / "python"
    check = [str(python), "-c", "import coniii, numpy; assert numpy.__version__ < '2'"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    env = {**os.environ, "CONDA_PREFIX": str(CONIII_VENV)}
    steps = [[sys.executable, "-m", "venv", "--clear", str(CONIII_VENV)],
             [str(python), "-m", "pip", "install", "-q", *CONIII_REQUIREMENTS],
             [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
              "coniii==3.0.1"]]
    for step in steps:
        print("coniii venv:", " ".join(step[-3:]), flush=True)
        proc = subprocess.run(step, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            return None
    return python if subprocess.run(check, capture_output=True).returncode == 0 else None


def roofline(row: dict[str, Any], n: int, peaks: dict[str, float]) -> dict[str, float]:
    """PLM objective GFLOP/s and the fraction of the matmul roofline (see the docstring)."""
    per_eval = 4.0 * row["distinct_patterns"] * n * n
    work = row.get("work_evaluations", row["evaluations"])
    rest = row["evaluations"] - work
    ideal = per_eval * (work / peaks["float32"] + rest / peaks["float64"]) / 1e9
    return {"plm_gflops": per_eval * row["evaluations"] / row["seconds"] / 1e9,
            "plm_roofline": ideal / row["seconds"]}


def grid(args: argparse.Namespace) -> dict[str, Any]:
    cache = Path(args.cache)
    peaks = matmul_peak(args.threads)
    print(f"matmul peak GFLOP/s: {peaks}", flush=True)
    coniii_python = ensure_coniii() if args.coniii else None
    cells = sorted(((n, M) for n in args.n for M in args.M), key=lambda c: c[0] ** 2 * c[1])
    rows: list[dict[str, Any]] = []
    coniii_rate = 0.0  # the slowest measured ConIII seconds per n^2 M
    scratch = cache / "bench_solvers" / "rows"
    scratch.mkdir(parents=True, exist_ok=True)
    for n, M in cells:
        started = time.perf_counter()
        data = sk_cell(n, M, cache)
        print(f"n={n} M={M}: data {time.perf_counter() - started:.1f} s", flush=True)
        for name in args.solvers:
            out = scratch / f"{name}_{n}_{M}.json"
            row = run_worker([sys.executable, __file__, "--worker-solver", name, "--data",
                              str(data), "--out", str(out), "--threads", str(args.threads)],
                             out, args.threads, args.solver_timeout)
            row.update(solver=name, n=n, M=M)
            if name == "plm" and "error" not in row:
                row.update(roofline(row, n, peaks))
            rows.append(row)
            print(_line(row), flush=True)
        if coniii_python is None:
            continue
        estimate = coniii_rate * n * n * M
        row = {"solver": "coniii_pseudo", "n": n, "M": M}
        if estimate > args.coniii_max_seconds:
            row["skipped"] = (f"estimated {estimate:.0f} s > --coniii-max-seconds "
                              f"{args.coniii_max_seconds:.0f}")
        else:
            out = scratch / f"coniii_{n}_{M}.json"
            row.update(run_worker([str(coniii_python), __file__, "--worker-coniii", "--data",
                                   str(data), "--out", str(out)], out, args.threads,
                                  max(args.coniii_max_seconds, 60.0)))
            if "seconds" in row:
                coniii_rate = max(coniii_rate, row["seconds"] / (n * n * M))
        rows.append(row)
        print(_line(row), flush=True)
    _compare(rows)
    return {"peaks_gflops": peaks, "rows": rows}


def _compare(rows: list[dict[str, Any]]) -> None:
    """PLM's speed-up over ConIII Pseudo and the error ratio, on the ConIII rows."""
    plm = {(r["n"], r["M"]): r for r in rows if r["solver"] == "plm" and "seconds" in r}
    for row in rows:
        mine = plm.get((row["n"], row["M"]))
        if row["solver"] == "coniii_pseudo" and "seconds" in row and mine:
            row["plm_speedup"] = row["seconds"] / mine["seconds"]
            row["plm_mse_ratio"] = mine["mse_J"] / row["mse_J"]


def scale(args: argparse.Namespace) -> dict[str, Any]:
    cache = Path(args.cache)
    data = tiled_retina(cache)
    arrays = np.load(data)
    train, test = arrays["train"].astype(np.float64), arrays["test"].astype(np.float64)
    m = np.clip(train.mean(0), -1 + 1e-6, 1 - 1e-6)
    p_up = (1 + m) / 2
    indep = float(np.mean(np.where(test > 0, np.log(p_up), np.log(1 - p_up)).sum(1)))
    rows = []
    runs = [("plm", {"l2": "auto"}), ("plm", {}), ("interaction_screening", {"l2": "auto"}),
            ("interaction_screening", {}), ("mean_field", {}), ("mle", {"l2": "auto"}),
            ("mle", {"method": "exact"})]
    for name, options in runs:
        if args.solvers and name not in args.solvers:
            continue
        out = cache / "bench_solvers" / "rows" / f"scale_{name}_{len(rows)}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        row = run_worker([sys.executable, __file__, "--worker-solver", name, "--data",
                          str(data), "--out", str(out), "--threads", str(args.threads),
                          "--options", json.dumps(options)], out, args.threads,
                         args.solver_timeout)
        row.update(solver=name, options=options, n=train.shape[1], M=train.shape[0])
        rows.append(row)
        print(_line(row), flush=True)
    return {"data": "retina tiled x5 (n=800)", "indep_test_pll": indep,
            "train_spike_rate": float((train > 0).mean()), "rows": rows}


def _line(row: dict[str, Any]) -> str:
    keys = ("solver", "n", "M", "seconds", "iterations", "converged", "mse_J", "test_pll", "l2",
            "peak_rss_mib", "plm_roofline", "error", "skipped")
    return "  ".join(f"{k}={_fmt(row[k])}" for k in keys if k in row)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def table(rows: list[dict[str, Any]]) -> str:
    """A markdown table of the grid: one line per (n, M, solver)."""
    head = "| n | M | solver | seconds | iterations | converged | mse_J | peak RSS MiB | note |"
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        note = r.get("error") or r.get("skipped") or ""
        if "plm_roofline" in r:
            note = f"{r['plm_gflops']:.1f} GFLOP/s, {100 * r['plm_roofline']:.0f}% of roofline"
        if "plm_speedup" in r:
            note = f"PLM {r['plm_speedup']:.1f}x faster, mse ratio {r['plm_mse_ratio']:.3f}"
        lines.append(f"| {r['n']} | {r['M']} | {r['solver']} | {_fmt(r.get('seconds', ''))} | "
                     f"{r.get('iterations', '')} | {r.get('converged', '')} | "
                     f"{_fmt(r.get('mse_J', ''))} | {_fmt(r.get('peak_rss_mib', ''))} | {note} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="n in {20, 40}, M = 4,000")
    parser.add_argument("--scale", action="store_true", help="the n = 800 check instead")
    parser.add_argument("--n", type=int, nargs="+", default=list(GRID_N))
    parser.add_argument("--M", type=int, nargs="+", default=list(GRID_M))
    parser.add_argument("--solvers", nargs="+", default=None, choices=SOLVERS)
    parser.add_argument("--no-coniii", dest="coniii", action="store_false")
    parser.add_argument("--coniii-max-seconds", type=float, default=3600.0)
    parser.add_argument("--solver-timeout", type=float, default=1800.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", default=str(ROOT / "outputs" / "cache"))
    parser.add_argument("--out", default=None, help="JSON file (default benchmarks/results/...)")
    # worker modes (internal)
    parser.add_argument("--worker-solver", default=None)
    parser.add_argument("--worker-coniii", action="store_true")
    parser.add_argument("--data", default=None)
    parser.add_argument("--options", default=None)
    args = parser.parse_args()
    if args.worker_solver:
        args.solver = args.worker_solver
        worker_solver(args)
        return
    if args.worker_coniii:
        worker_coniii(args)
        return
    if args.quick:
        args.n, args.M = [20, 40], [4000]
    header = machine(args.threads)
    if args.scale:
        result = {**header, **scale(args)}
        default = "solvers_scale.json"
    else:
        args.solvers = args.solvers or list(SOLVERS)
        result = {**header, "grid": {"n": args.n, "M": args.M}, **grid(args)}
        print(table(result["rows"]))
        default = "solvers_quick.json" if args.quick else "solvers.json"
    result["load_average_end"] = os.getloadavg()
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / default
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
