"""What every benchmark group shares: the machine record, timing, tables and the results files.

Every group writes benchmarks/results/<group>.json (`<group>-quick.json` for a --quick run, so a
quick check never overwrites a committed full result) holding `machine` (what ran it and how
loaded it was), `settings` and `rows`, and prints its rows as a markdown table.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
CONF = ROOT / "conf"


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str = "cpu") -> dict[str, Any]:
    """What ran a benchmark: CPU, GPU, library versions, threads, date and the load average
    (other jobs on the machine slow every timing; the load says how much there were)."""
    import numpy as np
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "cuda_available": torch.cuda.is_available(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "clock": CLOCK["name"],
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def synchronize(device: Any) -> None:
    """Wait for queued GPU work, so wall-clock times are the work's (no-op on the CPU)."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


#: What best_time reads: "wall" (perf_counter) or "cpu" (this process's CPU time; with one
#: torch thread on a machine shared with other jobs it approximates a dedicated core).
CLOCK = {"name": "wall"}


def set_clock(name: str) -> None:
    if name not in ("wall", "cpu"):
        raise ValueError(f"--clock must be wall or cpu; got {name!r}")
    CLOCK["name"] = name


def now() -> float:
    return time.process_time() if CLOCK["name"] == "cpu" else time.perf_counter()


def best_time(fn: Callable[[], Any], repeats: int = 3, device: Any = "cpu",
              min_seconds: float = 0.0) -> float:
    """Best time of `fn` (CLOCK) over `repeats` calls after one warm-up call (the minimum is the
    least disturbed by other jobs); stops early once `min_seconds` of timing are spent. On CUDA
    it is always wall time (GPU work is no CPU time)."""
    clock = time.perf_counter if str(device).startswith("cuda") else now
    fn()
    synchronize(device)
    best, spent = math.inf, 0.0
    for _ in range(max(1, repeats)):
        start = clock()
        fn()
        synchronize(device)
        elapsed = clock() - start
        best, spent = min(best, elapsed), spent + elapsed
        if min_seconds and spent > min_seconds:
            break
    return best


def add_common_options(parser: Any) -> None:
    """--quick, --device, --threads, --clock: the options every group takes."""
    parser.add_argument("--quick", action="store_true", help="small sizes (a minute or two)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                        help="in-process timings: wall time, or CPU time (one thread only)")


def apply_common_options(args: Any) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu" and torch.get_num_threads() != 1:
        raise SystemExit("--clock cpu needs --threads 1 (CPU time adds up over threads)")
    if args.clock == "cpu" and str(args.device).startswith("cuda"):
        raise SystemExit("--clock cpu times CPU work; use the wall clock with --device cuda")
    set_clock(args.clock)


def group_parser(doc: str | None) -> Any:
    """A group's argument parser with the common options (the group may add its own)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    return parser


def parse_group_args(parser: Any, argv: list[str] | None) -> Any:
    """Parse a group's arguments and apply the common ones (threads, clock)."""
    args = parser.parse_args(argv)
    apply_common_options(args)
    return args


def fmt(value: Any) -> str:
    """A table cell: 4 significant digits for floats, empty for None."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A markdown table of the given columns."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def results_path(group: str, quick: bool, directory: Path | None = None) -> Path:
    """<directory>/<group>[-quick].json (default benchmarks/results/)."""
    return (RESULTS if directory is None else Path(directory)) / (
        f"{group}{'-quick' if quick else ''}.json")


def write_results(group: str, quick: bool, settings: dict[str, Any],
                  rows: Iterable[dict[str, Any]], info: dict[str, Any],
                  extra: dict[str, Any] | None = None, directory: Path | None = None) -> Path:
    """<directory>/<group>[-quick].json (default benchmarks/results/), with the machine record
    closed by the load average at the end."""
    info = {**info, "load_average_end": [round(x, 2) for x in os.getloadavg()]}
    payload = {"group": group, "quick": quick, "machine": info, "settings": settings,
               "rows": list(rows), **(extra or {})}
    path = results_path(group, quick, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    tmp.replace(path)
    return path


def shown_path(path: Path) -> str:
    """A results path relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


#: Prepended to a Python child's code: at exit it writes its own peak memory to the file named by
#: BENCH_PEAK_FILE: the resident peak (VmHWM, this process since its exec; the rusage of a child
#: also counts the parent's pages it was forked with) and torch's CUDA peak.
PEAK_HOOK = """
import atexit as _atexit, json as _json, os as _os, sys as _sys
def _bench_peak():
    out = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    out["rss_mib"] = int(line.split()[1]) / 1024
    except OSError:
        pass
    torch = _sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    if "BENCH_PEAK_FILE" in _os.environ:
        with open(_os.environ["BENCH_PEAK_FILE"], "w") as handle:
            _json.dump(out, handle)
_atexit.register(_bench_peak)
"""


def run_and_measure(args: list[str], env: dict[str, str] | None = None,
                    cwd: Path | None = None, timeout: float | None = None) -> dict[str, Any]:
    """Run a command; its exit code, wall seconds, the tail of its output and its peak memory
    (MiB): the child's own report when it runs PEAK_HOOK (as isingaug_command's do), else the
    rusage of the finished child (which can include the parent's pages at fork)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak.json"
        env = {**(os.environ if env is None else env), "BENCH_PEAK_FILE": str(peak_file)}
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=cwd or ROOT)
        deadline = None if timeout is None else start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        out.seek(0)
        text = out.read()
        peak = json.loads(peak_file.read_text()) if peak_file.is_file() else {}
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"returncode": proc.returncode, "seconds": time.perf_counter() - start,
            "peak_rss_mib": peak.get("rss_mib", usage.ru_maxrss / 1024.0),
            "cuda_peak_mib": peak.get("cuda_mib"), "output_tail": text[-3000:]}


def isingaug_command(overrides: list[str], multirun: bool = False) -> list[str]:
    """`python -m isingaug [-m] overrides...` with this interpreter, run through PEAK_HOOK."""
    code = PEAK_HOOK + ("import runpy, sys\nsys.argv[0] = 'isingaug'\n"
                        "runpy.run_module('isingaug', run_name='__main__', alter_sys=True)\n")
    return [sys.executable, "-c", code, *(["-m"] if multirun else []), *overrides]


def quiet_env(cache_dir: Path | None = None, threads: int | None = None) -> dict[str, str]:
    """The environment for CLI runs: wandb off, an optional private cache, fixed threads."""
    env = {**os.environ, "WANDB_MODE": "disabled", "WANDB_SILENT": "true",
           "PYTHONWARNINGS": "ignore", "HYDRA_FULL_ERROR": "1"}
    if cache_dir is not None:
        env["ISINGAUG_CACHE_DIR"] = str(cache_dir)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def generator_names() -> list[str]:
    """Every generator of conf/generator/ (new files join automatically)."""
    return sorted(p.stem for p in (CONF / "generator").glob("*.yaml"))


def log_log_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log y against log x (nan with fewer than two usable points)."""
    pairs = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True)
             if x > 0 and y > 0 and math.isfinite(y)]
    if len(pairs) < 2:
        return math.nan
    mx = sum(p[0] for p in pairs) / len(pairs)
    my = sum(p[1] for p in pairs) / len(pairs)
    sxx = sum((p[0] - mx) ** 2 for p in pairs)
    return sum((p[0] - mx) * (p[1] - my) for p in pairs) / sxx if sxx > 0 else math.nan
