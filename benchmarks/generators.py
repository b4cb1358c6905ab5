"""Generator speed through the public CLI: training steps/s, generated patterns/s, peak memory.

Run: .venv/bin/python -m benchmarks generators [--quick] [--device cpu|cuda] [--threads N]

Every generator in conf/generator/ (new files join by themselves; `none` produces nothing and is
left out) runs as its own `python -m isingaug generator=G dataset.n=N trainer.max_steps=S
M_plus=P ...` process, so the numbers are what a user's run reports and no internal API is
touched: `gen/steps_per_second` and `gen/patterns_per_second` are read from the run's
results.json, peak resident memory from the finished process (wait4), and a failing generator is
a row with its error, not the end of the benchmark. --quick runs all generators in one
`isingaug -m generator=a,b,...` sweep per n instead (one start-up; memory is the sweep's).
SK data (g = 1, M = M_test = 1,000; 500 with --quick; MCMC at these n) are built once per n in a
private cache.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import (
    generator_names,
    group_parser,
    isingaug_command,
    machine,
    parse_group_args,
    quiet_env,
    run_and_measure,
    shown_path,
    table,
    write_results,
)
from isingaug import results as res
from isingaug.device import resolve_device

FULL = {"ns": [40, 100], "steps": 500, "M_plus": 1000, "M": 1000}
QUICK = {"ns": [40], "steps": 50, "M_plus": 200, "M": 500}
SKIPPED = ("none",)
COLUMNS = ["generator", "n", "steps", "M_plus", "steps_per_s", "patterns_per_s", "train_s",
           "sample_s", "run_s", "peak_rss_mib", "error"]


def device_overrides(device: str) -> list[str]:
    """The CLI's device keys: device=cuda also trains on the GPU (trainer.accelerator=gpu)."""
    if device.startswith("cuda"):
        return [f"device={device}", "trainer.accelerator=gpu"]
    if device == "cpu":
        return ["device=cpu", "trainer.accelerator=cpu"]
    return []


def cli_generator_run(generator: str, n: int, steps: int, M_plus: int, M: int, device: str,
                      out: Path, cache: Path, threads: int | None = None,
                      extra: list[str] | None = None, timeout: float | None = None
                      ) -> dict[str, Any]:
    """One `isingaug generator=...` run; its timings and memory as a row."""
    run_dir = out / f"{generator}_n{n}"
    overrides = [f"generator={generator}", f"dataset.n={n}", f"dataset.M={M}",
                 f"dataset.M_test={M}", f"trainer.max_steps={steps}", f"M_plus={M_plus}",
                 "solver=plm", f"hydra.run.dir={run_dir}", *device_overrides(device),
                 *(extra or [])]
    if threads:
        overrides.append(f"threads={threads}")
    measured = run_and_measure(isingaug_command(overrides), env=quiet_env(cache, threads),
                               timeout=timeout)
    row: dict[str, Any] = {"generator": generator, "n": n, "steps": steps, "M_plus": M_plus,
                           "run_s": measured["seconds"], "peak_rss_mib": measured["peak_rss_mib"],
                           "overrides": overrides}
    results_file = run_dir / res.RESULTS_FILE
    if measured["returncode"] != 0 or not results_file.is_file():
        lines = [x for x in measured["output_tail"].splitlines() if x.strip()]
        row["error"] = (lines[-1] if lines else f"exit {measured['returncode']}")[:300]
        return row
    metrics = json.loads(results_file.read_text())["metrics"]
    row.update({
        "steps_per_s": metrics.get(res.GEN_STEPS_PER_SECOND),
        "patterns_per_s": metrics.get(res.GEN_PATTERNS_PER_SECOND),
        "train_s": metrics.get(res.GEN_TRAIN_SECONDS),
        "sample_s": metrics.get(res.GEN_SAMPLE_SECONDS),
        "trained_steps": metrics.get(res.GEN_STEPS),
    })
    return row


def _row_from_results(results: dict[str, Any]) -> dict[str, Any]:
    metrics, run_info = results["metrics"], results["run"]
    return {"generator": run_info["generator"], "n": run_info["n"],
            "steps": run_info.get("max_steps"), "M_plus": run_info["M_plus"],
            "steps_per_s": metrics.get(res.GEN_STEPS_PER_SECOND),
            "patterns_per_s": metrics.get(res.GEN_PATTERNS_PER_SECOND),
            "train_s": metrics.get(res.GEN_TRAIN_SECONDS),
            "sample_s": metrics.get(res.GEN_SAMPLE_SECONDS),
            "trained_steps": metrics.get(res.GEN_STEPS),
            "run_s": results.get("seconds", {}).get("total")}


def _job_override(job_dir: Path, key: str) -> str | None:
    """The value of `key` in a job's .hydra/overrides.yaml (None when absent)."""
    path = job_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return None
    for item in yaml.safe_load(path.read_text()) or []:
        name, _, value = str(item).partition("=")
        if name.lstrip("+~") == key:
            return value
    return None


def cli_generator_sweep(names: list[str], n: int, steps: int, M_plus: int, M: int, device: str,
                        out: Path, cache: Path, threads: int | None = None,
                        extra: list[str] | None = None, timeout: float | None = None
                        ) -> dict[str, Any]:
    """All generators in one `isingaug -m generator=a,b,...` process (one start-up instead of
    one per generator; memory is then the whole sweep's). Returns the rows and the process's
    seconds and peak memory; a failed job is a row with the message of its error.json."""
    sweep_dir = out / f"sweep_n{n}"
    overrides = [f"generator={','.join(names)}", f"dataset.n={n}", f"dataset.M={M}",
                 f"dataset.M_test={M}", f"trainer.max_steps={steps}", f"M_plus={M_plus}",
                 "solver=plm", f"hydra.sweep.dir={sweep_dir}", *device_overrides(device),
                 *(extra or [])]
    if threads:
        overrides.append(f"threads={threads}")
    measured = run_and_measure(isingaug_command(overrides, multirun=True),
                               env=quiet_env(cache, threads), timeout=timeout)
    rows, seen = [], set()
    for path in sorted(sweep_dir.rglob(res.RESULTS_FILE)):
        row = _row_from_results(json.loads(path.read_text()))
        # the config group's option (diffusion_ddim), not the generator's own name (diffusion)
        row["generator"] = _job_override(path.parent, "generator") or row["generator"]
        rows.append(row)
        seen.add(row["generator"])
    for path in sorted(sweep_dir.rglob(res.ERROR_FILE)):
        error = json.loads(path.read_text())
        name = next((o.split("=", 1)[1] for o in error.get("overrides", [])
                     if o.startswith("generator=")), path.parent.name)
        rows.append({"generator": name, "n": n, "error": str(error.get("error"))[:300]})
        seen.add(name)
    for name in names:
        if name not in seen:
            rows.append({"generator": name, "n": n,
                         "error": f"no result (sweep exit {measured['returncode']})"})
    return {"rows": rows, "seconds": measured["seconds"],
            "peak_rss_mib": measured["peak_rss_mib"], "returncode": measured["returncode"],
            "output_tail": measured["output_tail"]}


def run(quick: bool = False, device: str = "auto", threads: int | None = None,
        names: list[str] | None = None) -> dict[str, Any]:
    """Full: one process per generator (its own peak memory). Quick: one sweep process per n."""
    sizes = QUICK if quick else FULL
    info = machine(str(resolve_device(device)))
    names = names or [g for g in generator_names() if g not in SKIPPED]
    rows = []
    with tempfile.TemporaryDirectory(prefix="isingaug-bench-") as tmp:
        out, cache = Path(tmp) / "runs", Path(tmp) / "cache"
        for n in sizes["ns"]:
            if quick:
                sweep = cli_generator_sweep(names, n, sizes["steps"], sizes["M_plus"],
                                            sizes["M"], device, out, cache, threads)
                for row in sweep["rows"]:
                    row["peak_rss_mib"] = f"{sweep['peak_rss_mib']:.0f} (whole sweep)"
                rows += sweep["rows"]
                print(json.dumps(sweep["rows"]), file=sys.stderr, flush=True)
                continue
            for name in names:
                row = cli_generator_run(name, n, sizes["steps"], sizes["M_plus"], sizes["M"],
                                        device, out, cache, threads)
                row.pop("overrides")
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    print(table(rows, COLUMNS))
    path = write_results("generators", quick, {**sizes, "device": device,
                                               "generators": names}, rows, info)
    print(f"\nwrote {shown_path(path)}")
    return {"rows": rows, "path": path}


def main(argv: list[str] | None = None) -> None:
    parser = group_parser(__doc__)
    parser.add_argument("--generators", nargs="*", default=None,
                        help="a subset (default: every conf/generator/ file but none)")
    args = parse_group_args(parser, argv)
    run(args.quick, args.device, args.threads, args.generators)


if __name__ == "__main__":
    main()
