"""Faults survived without lost work: periodic checkpoints and the automatic resume of a killed
job (the same numbers as an uninterrupted run), diverging generators stopped with a message,
checkpoints of another generator refused, job folders whose paths paste into overrides, and
concurrent sweeps over one folder. The subprocess tests kill real sweeps (marked slow)."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from conftest import fit_context
from isingaug import results as res
from isingaug.cli import JOB_RECORD, finished, resume_point
from isingaug.config import compose_config
from isingaug.errors import ConfigError, DivergenceError, IsingaugError
from isingaug.generators.learned import (
    CHECKPOINT_KEY,
    LearnedGenerator,
    PeriodicCheckpoint,
    data_digest,
)
from isingaug.generators.rbm import Rbm
from isingaug.generators.vae import Vae
from isingaug.io import write_json_atomic
from isingaug.sweep import SUMMARY_FILE, is_running, job_folder_name, job_lock

BIN = Path(sys.executable).parent

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def train() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.where(torch.rand(120, 6, generator=gen) < 0.4, -1.0, 1.0)


def make_trainer(steps: int, callbacks: list | None = None) -> pl.Trainer:
    return pl.Trainer(max_steps=steps, accelerator="cpu", logger=False,
                      enable_checkpointing=bool(callbacks), enable_progress_bar=False,
                      enable_model_summary=False, callbacks=callbacks or [])


def tiny_vae(**kwargs) -> Vae:
    return Vae(**{"latent_dim": 2, "hidden_widths": [8], "batch_size": 32, "device": "cpu",
                  **kwargs})


def tiny_rbm(**kwargs) -> Rbm:
    return Rbm(**{"hidden": 4, "batch_size": 32, "k": 2, "gibbs_steps": 5, "lr": 0.01,
                  "device": "cpu", **kwargs})


# ---- diverging generators ---------------------------------------------------------------------

def test_a_vae_with_a_huge_learning_rate_stops_with_a_message(train):
    gen = tiny_vae(lr=1e6)
    with pytest.raises(DivergenceError, match=r"generator=vae diverged at training step \d+: "
                       r"the training loss is (nan|inf).*lower generator\.lr \(now 1e\+06\)"):
        gen.fit(fit_context(train, make_trainer(50)))
    assert issubclass(DivergenceError, IsingaugError)   # the CLI prints it and exits 2
    assert gen.weights_finite()    # on the CPU the bad step never reached the weights


class _BlowsUp(LearnedGenerator):
    """A one-weight generator whose loss turns infinite at its fifth optimizer step."""

    name = "blows_up"
    lr = 0.1

    def build(self, n: int) -> None:
        self.w = torch.nn.Parameter(torch.ones(n))

    def training_step(self, batch, batch_idx):
        scale = math.inf if self.global_step == 4 else 1.0
        return (self.w ** 2).sum() * scale

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def generate(self, num, rng):
        return torch.ones(num, self.n)


def test_the_first_non_finite_step_is_the_one_named(train):
    gen = _BlowsUp(device="cpu")
    with pytest.raises(DivergenceError, match=r"generator=blows_up diverged at training step 5:"
                       r" the training loss is inf"):
        gen.fit(fit_context(train, make_trainer(10)))


def test_on_an_accelerator_the_first_bad_step_is_tracked_between_read_backs(train,
                                                                            monkeypatch):
    """The accelerator path (no device sync per step), taken here on the CPU: the loss turns
    infinite at step 5, the flag is read back at step 6, and the message names step 5."""
    import isingaug.generators.learned as learned

    monkeypatch.setattr(learned, "HOST_CHECK_DEVICES", ())
    monkeypatch.setattr(learned, "DEVICE_CHECK_EVERY", 3)
    gen = _BlowsUp(device="cpu")
    trainer = make_trainer(10)
    with pytest.raises(DivergenceError, match=r"diverged at training step 5: the training loss "
                       r"or its gradients are not finite"):
        gen.fit(fit_context(train, trainer))
    assert trainer.global_step == 5     # step 5 (bad) was taken; step 6 read the flag back


def test_nan_weights_fail_sampling_with_the_divergence_message(train):
    """What a user saw as `Expected p_in >= 0 && p_in <= 1` from torch.bernoulli."""
    gen = tiny_vae()
    gen.fit(fit_context(train, make_trainer(3)))
    with torch.no_grad():
        gen.decoder[-1].weight.fill_(math.nan)
    with pytest.raises(DivergenceError, match=r"generator=vae diverged after 3 training steps: "
                       r"sampling met non-finite probabilities \(its weights are not finite\)"
                       ) as caught:
        gen.sample(10)
    assert isinstance(caught.value.__cause__, RuntimeError)


# ---- what a checkpoint belongs to --------------------------------------------------------------

@pytest.fixture(scope="module")
def rbm_checkpoint(train, tmp_path_factory) -> Path:
    gen = tiny_rbm()
    trainer = make_trainer(3)
    gen.fit(fit_context(train, trainer))
    path = tmp_path_factory.mktemp("rbm") / "last.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_a_checkpoint_records_its_generator_and_settings(rbm_checkpoint, train):
    saved = torch.load(rbm_checkpoint, weights_only=False)
    assert saved[CHECKPOINT_KEY] == {"generator": "rbm", "n": 6, "data": data_digest(train)}
    assert saved["hyper_parameters"]["hidden"] == 4 and saved["hyper_parameters"]["k"] == 2


def test_resuming_another_generator_names_both(rbm_checkpoint, train):
    with pytest.raises(ConfigError) as caught:
        tiny_vae().fit(fit_context(train, make_trainer(6), resume_from=str(rbm_checkpoint)))
    message = str(caught.value)
    assert message.startswith(f"resume_from={rbm_checkpoint} is a checkpoint of generator=rbm "
                              "(n=6, batch_size=32, seed=0, ")
    assert "hidden=4, lr=0.01," in message
    assert "step 3); this run trains generator=vae (n=6, " in message
    assert "latent_dim=2" in message and "resume_from=null" in message


@pytest.mark.parametrize(("change", "data_n", "differs"), [
    ({"hidden": 5}, 6, "they differ in hidden (4 vs 5)"),
    ({}, 7, "they differ in n (6 vs 7)"),
])
def test_resuming_another_shape_names_the_difference(rbm_checkpoint, change, data_n, differs):
    data = torch.ones(50, data_n)
    with pytest.raises(ConfigError, match="is a checkpoint of generator=rbm") as caught:
        tiny_rbm(**change).fit(fit_context(data, make_trainer(6),
                                           resume_from=str(rbm_checkpoint)))
    assert differs in str(caught.value)


def test_other_settings_that_fit_resume_with_a_warning(rbm_checkpoint, train, caplog):
    gen = tiny_rbm(lr=0.05)
    trainer = make_trainer(5)
    gen.fit(fit_context(train, trainer, resume_from=str(rbm_checkpoint)))
    assert trainer.global_step == 5
    assert "was trained with lr=0.01; continuing with this run's lr=0.05" in caplog.text


def test_a_missing_or_foreign_file_is_refused(tmp_path, train):
    with pytest.raises(ConfigError, match=r"resume_from=.*nope\.ckpt: no such checkpoint file"):
        tiny_vae().fit(fit_context(train, make_trainer(2), resume_from=str(tmp_path / "nope.ckpt")))
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    with pytest.raises(ConfigError, match=r"notes\.ckpt is not a readable checkpoint"):
        tiny_vae().fit(fit_context(train, make_trainer(2), resume_from=str(text)))


# ---- periodic checkpoints ----------------------------------------------------------------------

def test_checkpoints_every_n_steps_under_manual_optimisation(train, tmp_path):
    saver = PeriodicCheckpoint(str(tmp_path), every_n_minutes=None, every_n_train_steps=4,
                               keep_steps=True)
    (tmp_path / "last.ckpt").write_bytes(b"an older run's")   # overwritten, never last-v1.ckpt
    tiny_rbm().fit(fit_context(train, make_trainer(10, [saver])))
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == [
        "last.ckpt", "step_10.ckpt", "step_4.ckpt", "step_8.ckpt"]
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["global_step"] == 10
    assert torch.load(tmp_path / "step_4.ckpt", weights_only=False)["global_step"] == 4


def test_checkpoints_every_n_minutes(train, tmp_path):
    saver = PeriodicCheckpoint(str(tmp_path), every_n_minutes=1e-7, keep_steps=True)
    tiny_vae().fit(fit_context(train, make_trainer(5, [saver])))
    assert sorted(p.name for p in tmp_path.glob("step_*.ckpt")) == [
        f"step_{k}.ckpt" for k in range(1, 6)]
    assert torch.load(tmp_path / "last.ckpt", weights_only=False)["global_step"] == 5
    with pytest.raises(ConfigError, match=r"callbacks\.model_checkpoint\.every_n_minutes must"):
        PeriodicCheckpoint(str(tmp_path), every_n_minutes=0)


# ---- job folders -------------------------------------------------------------------------------

def test_job_folders_paste_into_overrides_and_stay_unique(tmp_path):
    parser = OverridesParser.create()
    dirnames = ["design=n40_M2000,seed=3", "generator=rbm,seed=1",
                "dataset.path=/data/a b.npz,generator.hidden_widths=[16,16]",
                "dataset.path=/data/a-b.npz,generator.hidden_widths=[16,16]",
                "generator.ddim_steps=-1"]
    names = [job_folder_name(d) for d in dirnames]
    assert names[0].startswith("design-n40_M2000_seed-3_")
    assert len(set(names)) == len(names)              # the last two differ only in a hash
    assert names == [job_folder_name(d) for d in dirnames]   # stable: a rerun finds them
    for name in names:
        assert "=" not in name and "," not in name
        path = f"/runs/multirun/sizes/{name}/checkpoints/last.ckpt"
        parsed = parser.parse_override(f"resume_from={path}")
        assert parsed.value() == path
        assert parser.parse_override(f"dataset.path={path}").value() == path


def test_a_sweep_written_with_the_older_names_keeps_its_folders(tmp_path):
    (tmp_path / "design=n40_M2000,seed=3" / ".hydra").mkdir(parents=True)
    assert job_folder_name("design=n40_M2000,seed=3", str(tmp_path)) == "design=n40_M2000,seed=3"
    assert job_folder_name("design=n40_M2000,seed=4", str(tmp_path)).startswith(
        "design-n40_M2000_seed-4_")


def test_one_process_runs_a_job_folder_at_a_time(tmp_path):
    with job_lock(tmp_path) as first:
        assert first and is_running(tmp_path)
        with job_lock(tmp_path) as second:
            assert not second
    assert not is_running(tmp_path)


# ---- the decision to resume --------------------------------------------------------------------

def job_cfg(out: Path, *extra: str):
    return compose_config(["generator=vae", "dataset.n=6", f"paths.output_dir={out}", *extra])


def fake_checkpoint(path: Path, step: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, "global_step": step}, path)


def test_a_killed_job_resumes_from_its_own_last_checkpoint(tmp_path):
    cfg = job_cfg(tmp_path)
    assert resume_point(cfg, tmp_path) is None            # a fresh job claims its folder
    assert (tmp_path / "checkpoints" / JOB_RECORD).is_file()
    last = tmp_path / "checkpoints" / "last.ckpt"
    fake_checkpoint(last, 40)                             # ...and is killed after a save
    assert resume_point(job_cfg(tmp_path), tmp_path) == str(last)
    # how progress is shown does not change the numbers: still the same job
    assert resume_point(job_cfg(tmp_path, "callbacks.progress.log_every_s=5"), tmp_path) == str(
        last)


def test_checkpoints_of_another_config_are_never_resumed(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    resume_point(job_cfg(tmp_path, "seed=1"), tmp_path)
    last = tmp_path / "checkpoints" / "last.ckpt"
    fake_checkpoint(last, 40)
    fake_checkpoint(tmp_path / "checkpoints" / "energy_variance_best.ckpt", 20)
    assert resume_point(job_cfg(tmp_path, "seed=2"), tmp_path) is None
    assert not list((tmp_path / "checkpoints").glob("*.ckpt"))   # a restart cannot pick them
    assert "removing 2 checkpoint(s) of another config" in caplog.text


def test_an_unreadable_last_checkpoint_trains_from_the_start(tmp_path, caplog):
    resume_point(job_cfg(tmp_path), tmp_path)
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"\x00cut off")
    assert resume_point(job_cfg(tmp_path), tmp_path) is None
    assert "cannot be read" in caplog.text


def test_an_explicit_resume_from_wins_and_untrained_generators_have_no_checkpoints(tmp_path):
    other = tmp_path / "elsewhere.ckpt"
    cfg = job_cfg(tmp_path / "a", f"resume_from={other}")
    assert resume_point(cfg, tmp_path / "a") == str(other)
    assert resume_point(compose_config(["generator=bootstrap"]), tmp_path / "b") is None
    assert not (tmp_path / "b").exists()


def test_finished_ignores_progress_settings_and_resume_from(tmp_path):
    cfg = job_cfg(tmp_path)
    saved = OmegaConf.to_container(cfg, resolve=True)
    saved["resume_from"] = str(tmp_path / "checkpoints" / "last.ckpt")
    write_json_atomic(tmp_path / res.RESULTS_FILE, {"config": saved})
    assert finished(tmp_path, job_cfg(tmp_path, "callbacks.progress.mode=off"))
    assert not finished(tmp_path, job_cfg(tmp_path, "seed=5"))


# ---- real sweeps, killed and resumed (slow) ----------------------------------------------------

# Two jobs (seed=1,2) of a tiny VAE trained long enough to be killed after its first periodic
# checkpoint, with the energy-variance selection (its best checkpoint must survive the kill too).
ARGS = ["dataset.n=6", "dataset.M=200", "dataset.M_test=100", "device=cpu", "threads=1",
        "generator=vae", "generator.hidden_widths=[16]", "generator.latent_dim=2",
        "M_plus=300", "trainer.max_steps=150", "callbacks.model_checkpoint.every_n_train_steps=20",
        "callbacks.energy_variance.eval_every=50", "callbacks.energy_variance.eval_samples=100",
        "callbacks.energy_variance.select=energy_variance", "task_name=faults",
        "callbacks.progress.log_every_s=1"]
SEEDS = "seed=1,2"
NOISE = ("litlogger", "GPU available", "TPU available", "LeafSpec", "srun", "Traceback")


def env_for(out: Path) -> dict[str, str]:
    return {**os.environ, "ISINGAUG_OUTPUT_DIR": str(out), "ISINGAUG_CACHE_DIR": str(out / "cache")}


def start_sweep(out: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "isingaug", "-m", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env_for(out), start_new_session=True)


def sweep(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "isingaug", "-m", *args], capture_output=True,
                          text=True, env=env_for(out), timeout=900)


def kill_after_first_checkpoint(proc: subprocess.Popen, sweep_dir: Path, finished_jobs: int,
                                timeout: float = 600) -> Path:
    """SIGKILL the sweep once `finished_jobs` jobs are done and the next one has written its
    first periodic checkpoint; return that job's folder."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = list(sweep_dir.glob(f"*/{res.RESULTS_FILE}"))
        running = [p.parents[1] for p in sweep_dir.glob("*/checkpoints/last.ckpt")
                   if not (p.parents[1] / res.RESULTS_FILE).exists()]
        if len(done) == finished_jobs and running:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return running[0]
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended before it could be killed:\n{proc.stdout.read()}")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("no periodic checkpoint appeared")


def metrics_without_timing(result: dict) -> dict:
    return {k: v for k, v in result["metrics"].items()
            if getattr(res.metric_of(k), "group", None) != "timing"}


def by_seed(sweep_dir: Path) -> dict[int, dict]:
    return {json.loads(p.read_text())["run"]["seed"]: json.loads(p.read_text())
            for p in sweep_dir.glob(f"*/{res.RESULTS_FILE}")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[int, dict]:
    """The same sweep, never interrupted."""
    out = tmp_path_factory.mktemp("reference")
    proc = sweep(out, *ARGS, SEEDS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not [word for word in NOISE if word in proc.stdout + proc.stderr]
    assert "\r" not in proc.stderr       # log lines in a sweep, no bars
    assert "training generator=vae on cpu for 150 steps, starting at step 0" in proc.stdout
    return by_seed(out / "multirun" / "faults")


@pytest.mark.slow
def test_a_killed_sweep_resumes_and_gives_the_uninterrupted_numbers(tmp_path, reference):
    sweep_dir = tmp_path / "multirun" / "faults"
    killed = kill_after_first_checkpoint(start_sweep(tmp_path, *ARGS, SEEDS), sweep_dir, 1)
    assert not (killed / res.RESULTS_FILE).exists()
    again = sweep(tmp_path, *ARGS, SEEDS)
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-3000:]
    assert log.count("skipped:") == 1 and "already holds results" in log
    resumed = [line for line in log.splitlines() if "from its last checkpoint" in line]
    assert len(resumed) == 1 and killed.name in resumed[0]
    step = int(resumed[0].rsplit("(step ", 1)[1].rstrip(")"))
    assert 20 <= step < 150
    assert f"for 150 steps, resuming at step {step:,}" in log   # the step counter continues
    got = by_seed(sweep_dir)
    assert sorted(got) == [1, 2]
    for seed, result in got.items():
        assert metrics_without_timing(result) == metrics_without_timing(reference[seed]), seed
        assert (result["diagnostics"]["energy_variance"]
                == reference[seed]["diagnostics"]["energy_variance"])
    assert got[2]["config"]["resume_from"] == str(killed / "checkpoints" / "last.ckpt")
    summary = json.loads((sweep_dir / SUMMARY_FILE).read_text())
    assert summary["counts"] == {"finished": 2, "failed": 0, "unfinished": 0}


@pytest.mark.slow
def test_isingaug_rerun_resumes_an_unfinished_job_in_its_folder(tmp_path, reference):
    sweep_dir = tmp_path / "multirun" / "faults"
    killed = kill_after_first_checkpoint(start_sweep(tmp_path, *ARGS, "seed=2"), sweep_dir, 0)
    proc = subprocess.run([str(BIN / "isingaug-rerun"), str(killed)], capture_output=True,
                          text=True, env=env_for(tmp_path), timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "is unfinished: running it again in its own folder" in log
    assert "from its last checkpoint" in log
    result = json.loads((killed / res.RESULTS_FILE).read_text())
    assert metrics_without_timing(result) == metrics_without_timing(reference[2])
    # the job's own .hydra is kept (its sweep overrides), not replaced by the rerun's
    overrides = [str(o) for o in OmegaConf.load(killed / ".hydra" / "overrides.yaml")]
    assert "seed=2" in overrides and "generator=vae" in overrides
    # the sweep command now finds the job finished
    again = sweep(tmp_path, *ARGS, "seed=2")
    assert again.returncode == 0 and (again.stdout + again.stderr).count("skipped:") == 1


@pytest.mark.slow
def test_a_diverging_job_fails_alone_and_the_sweep_goes_on(tmp_path):
    small = [a for a in ARGS if not a.startswith(("trainer.max_steps", "callbacks."))]
    proc = sweep(tmp_path, *small, "trainer.max_steps=30", "generator.lr=1e6,1e-3", "seed=1")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "1 of 2 jobs failed" in proc.stderr
    sweep_dir = tmp_path / "multirun" / "faults"
    [failed] = [p.parent for p in sweep_dir.glob(f"*/{res.ERROR_FILE}")]
    error = json.loads((failed / res.ERROR_FILE).read_text())
    assert error["type"] == "DivergenceError" and "generator.lr=1000000.0" in error["overrides"]
    assert error["error"].startswith("generator=vae diverged at training step ")
    assert "lower generator.lr (now 1e+06)" in error["error"]
    assert len(list(sweep_dir.glob(f"*/{res.RESULTS_FILE}"))) == 1


@pytest.mark.slow
def test_two_sweeps_over_one_folder_at_once_keep_every_result(tmp_path):
    fast = [a for a in ARGS if not a.startswith(("generator", "M_plus", "trainer", "callbacks"))]
    first = start_sweep(tmp_path, *fast, "seed=0,1,2")
    second = start_sweep(tmp_path, *fast, "seed=2,1,3")
    outputs = [p.communicate(timeout=900)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    sweep_dir = tmp_path / "multirun" / "faults"
    got = by_seed(sweep_dir)
    assert sorted(got) == [0, 1, 2, 3]
    assert all(r["config"]["seed"] == seed for seed, r in got.items())
    summary = json.loads((sweep_dir / SUMMARY_FILE).read_text())
    assert summary["counts"] == {"finished": 4, "failed": 0, "unfinished": 0}
    assert len(list((tmp_path / "cache" / "sk").glob("*.npz"))) == 4
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.slow
def test_the_cli_refuses_a_checkpoint_of_another_generator(rbm_checkpoint, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "isingaug", f"hydra.run.dir={tmp_path}",
                           "dataset.n=6", "dataset.M=120", "device=cpu", "generator=vae",
                           "M_plus=50", f"resume_from={rbm_checkpoint}"],
                          capture_output=True, text=True, env=env_for(tmp_path), timeout=600)
    assert proc.returncode == 2
    assert "isingaug: error: resume_from=" in proc.stderr
    assert "is a checkpoint of generator=rbm (n=6" in proc.stderr
    assert "Traceback" not in proc.stderr
