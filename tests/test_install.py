"""The package is self-contained: a wheel built from the checkout, installed into a fresh venv,
runs the default experiment and reads the bundled recording from an empty folder (slow; CI runs
it). The venv borrows this interpreter's installed dependencies through a .pth file, so the test
costs no downloads beyond the build backend; isingaug itself comes only from the wheel.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


@pytest.mark.slow
def test_wheel_installs_and_runs_from_any_folder(tmp_path):
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels),
          str(REPO)], cwd=tmp_path)
    (wheel,) = wheels.glob("isingaug-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.check_output(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        text=True).strip())
    # Dependencies from this interpreter's site folders; a path in a .pth file is added as is,
    # so the .pth of this checkout's editable install there is never processed.
    # In this interpreter's order: the project venv's packages before the system's.
    borrowed = [path for path in sys.path if path in {*site.getsitepackages(),
                                                      sysconfig.get_paths()["purelib"]}]
    (purelib / "borrowed_dependencies.pth").write_text("\n".join(borrowed) + "\n")
    _run([str(python), "-m", "pip", "install", "--no-deps", "--quiet", str(wheel)], cwd=tmp_path)

    work = tmp_path / "empty"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISINGAUG_")}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    location = _run([str(python), "-c", "import isingaug; print(isingaug.__file__)"], cwd=work)
    assert str(purelib) in location and str(REPO / "src") not in location

    command = [str(venv / "bin" / "isingaug")]
    _run(command, cwd=work, env=env)
    _run([*command, "dataset=neural", "dataset.n=8", "dataset.M=400", "dataset.M_test=200",
          "imputation.k=3", "hydra.run.dir=outputs/neural"], cwd=work, env=env)
    results = sorted(work.glob("outputs/**/results.json"))
    assert len(results) == 2
    neural = json.loads((work / "outputs" / "neural" / "results.json").read_text())
    assert neural["run"]["dataset"] == "neural" and neural["run"]["n"] == 8
    assert "impute_acc/obs" in neural["metrics"]
