"""One entry point for the benchmark groups.

    .venv/bin/python -m benchmarks all [--quick]          # every group below but gpu_check
    .venv/bin/python -m benchmarks samplers roofline      # some groups
    .venv/bin/python benchmarks/run.py scaling --quick    # the same, as a script

Groups: solvers (benchmarks/solvers.py), samplers, generators, kernels, roofline, scaling,
large_n, gpu_check.
Each prints a markdown table and writes benchmarks/results/<group>.json (`<group>-quick.json`
with --quick, a size that runs in a minute or two). --threads fixes torch's CPU threads (on a
shared machine, 1 thread per job avoids the large slow-downs of oversubscribed OpenMP threads);
--clock cpu (with --threads 1) times in-process kernels by CPU time, which other jobs on the
machine disturb far less than wall time (CLI runs, e.g. the generators group, report wall time);
--device picks cpu or cuda (auto: the GPU when present). Other options go to the group's own
parser (e.g. `generators --generators vae rbm`); `python -m benchmarks.<group> --help` lists them.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GROUPS = ("solvers", "samplers", "generators", "kernels", "roofline", "scaling", "large_n",
          "gpu_check")
ALL = ("solvers", "samplers", "generators", "kernels", "roofline", "scaling", "large_n")


def run_solvers(quick: bool, device: str, threads: int | None) -> int:
    """The solver benchmark is its own script (benchmarks/solvers.py); run it as one."""
    script = Path(__file__).resolve().parent / "solvers.py"
    if not script.is_file():
        print("benchmarks/solvers.py is not there; skipped", file=sys.stderr)
        return 1
    args = [sys.executable, str(script), *(["--quick"] if quick else [])]
    if device not in ("auto", "cpu"):
        print(f"benchmarks/solvers.py runs its solvers on the CPU; --device {device} is not "
              "passed on", file=sys.stderr)
    if threads:
        args += ["--threads", str(threads)]
    return subprocess.call(args, cwd=script.parent.parent)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("groups", nargs="*", default=["all"],
                        help=f"all or any of {', '.join(GROUPS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes (a minute or two)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                        help="in-process timings: wall or CPU time (with --threads 1)")
    args, rest = parser.parse_known_args(argv)
    groups = [g for name in args.groups for g in (ALL if name == "all" else (name,))]
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        parser.error(f"unknown group(s) {unknown}; choose from all, {', '.join(GROUPS)}")
    failed = []
    for group in groups:
        print(f"\n## {group}{' (quick)' if args.quick else ''}\n", flush=True)
        start = time.perf_counter()
        if group == "solvers":
            code = run_solvers(args.quick, args.device, args.threads)
            if code:
                failed.append(group)
        else:
            module = importlib.import_module(f"benchmarks.{group}")
            options = [*(["--quick"] if args.quick else []), "--device", args.device,
                       "--clock", args.clock, *rest]
            if args.threads:
                options += ["--threads", str(args.threads)]
            try:
                module.main(options)
            except Exception as err:  # one group's failure must not cost the others
                print(f"{group} failed: {type(err).__name__}: {err}", file=sys.stderr)
                failed.append(group)
        print(f"\n({group}: {time.perf_counter() - start:.0f} s)", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
