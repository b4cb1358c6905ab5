"""The command line as a user meets it: a run writes its files; bad input fails cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SMALL = ["dataset.n=8", "dataset.M=500", "dataset.M_test=200", "device=cpu"]


def run_cli(args: list[str], run_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "isingaug", f"hydra.run.dir={run_dir}", *args],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=300)


def test_cli_run_writes_results(tmp_path):
    proc = run_cli([*SMALL, "solver=plm", "seed=3"], tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["run"] == {**results["run"], "n": 8, "M": 500, "M_test": 200, "seed": 3,
                              "solver": "plm", "generator": "none", "dataset": "sk"}
    metrics = results["metrics"]
    for key in ("mse_J/obs", "mse_h/obs", "mse_all/obs", "rel_err_J/obs", "var_E_train/obs",
                "var_E_test/obs", "test_loglik/obs", "test_pseudo_loglik/obs"):
        assert np.isfinite(metrics[key]), key
    assert metrics["mse_J/obs"] < 0.05
    params = np.load(tmp_path / "run" / "params.npz")
    assert params["J_obs"].shape == (8, 8) and params["h_true"].shape == (8,)
    assert (tmp_path / "run" / ".hydra" / "config.yaml").exists()
    assert (tmp_path / "run" / "csv" / "metrics.csv").read_text().count("mse_J/obs") == 1


def test_file_dataset_with_truth_reports_parameter_errors(tmp_path):
    from isingaug.data.sk import make_sk_dataset

    data = make_sk_dataset(n=8, g=1.0, M=500, M_test=200, data_seed=5,
                           sampler={"kind": "exact"}, device="cpu")
    path = tmp_path / "user.npz"
    np.savez(path, samples=(data.train.numpy() + 1) / 2, test=(data.test.numpy() + 1) / 2,
             h=data.truth.h.numpy(), J=data.truth.J.numpy())
    from_file = run_cli(["dataset=file", f"dataset.path={path}", "device=cpu"], tmp_path / "f")
    generated = run_cli([*SMALL, "dataset.data_seed=5", "dataset.sampler.kind=exact"],
                        tmp_path / "g")
    assert from_file.returncode == 0, from_file.stderr
    assert generated.returncode == 0, generated.stderr
    a = json.loads((tmp_path / "f" / "results.json").read_text())["metrics"]
    b = json.loads((tmp_path / "g" / "results.json").read_text())["metrics"]
    for key in ("mse_J/obs", "mse_h/obs", "mse_all/obs", "rel_err_J/obs", "test_loglik/obs"):
        assert a[key] == pytest.approx(b[key], rel=1e-9), key


def _write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content)
    return path


BAD = {
    "n<2": (["dataset.n=1"], "dataset.n must be an integer >= 2"),
    "M<1": (["dataset.M=0"], "dataset.M must be an integer >= 1"),
    "g<0": (["dataset.g=-1"], "dataset.g must be a finite number >= 0"),
    "unknown solver": (["solver=newton"], "Available options in 'solver'"),
    "missing file": (["dataset=file", "dataset.path={tmp}/nope.npz"], "nope.npz"),
    "no path": (["dataset=file"], "dataset.path is required"),
    "bad solver option": (["solver.l2=-1"], "solver.l2 must be a finite float >= 0"),
}
BAD_FILES = {
    "value 2": ("bad.csv", "1,0,1\n0,2,1\n", "found 2"),
    "NaN": ("nan.csv", "1,0,1\n0,nan,1\n", "NaN"),
    "ragged": ("ragged.csv", "1,0,1\n0,1\n1,1,1\n", "line 2 has 2 values"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_fails_cleanly(case, tmp_path):
    args, message = BAD[case]
    args = [arg.format(tmp=tmp_path) for arg in args]
    proc = run_cli(SMALL[3:] + args, tmp_path / "run")
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout
    assert not (tmp_path / "run" / "results.json").exists()
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_fails_cleanly(case, tmp_path):
    name, content, message = BAD_FILES[case]
    path = _write(tmp_path, name, content)
    proc = run_cli(["dataset=file", f"dataset.path={path}", "device=cpu"], tmp_path / "run")
    assert proc.returncode != 0
    assert message in proc.stderr and name in proc.stderr
    assert not (tmp_path / "run" / "results.json").exists()


#: What Lightning printed on every trained run before it was silenced at its source.
LIGHTNING_NOISE = ("litlogger", "GPU available", "TPU available", "LeafSpec", "srun")


def test_a_diverging_generator_stops_with_a_message_and_status_2(tmp_path):
    proc = run_cli([*SMALL, "generator=vae", "generator.hidden_widths=[16]",
                    "generator.latent_dim=2", "generator.lr=1e6", "trainer.max_steps=1000",
                    "M_plus=100"], tmp_path / "run")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "isingaug: error: generator=vae diverged at training step " in proc.stderr
    assert "lower generator.lr (now 1e+06)" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "run" / "results.json").exists()
    # no terminal: the training progress is a log line, and Lightning's noise is gone
    assert "training generator=vae on cpu for 1,000 steps, starting at step 0" in proc.stdout
    assert not [word for word in LIGHTNING_NOISE if word in proc.stdout + proc.stderr]
