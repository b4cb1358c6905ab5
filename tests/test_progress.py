"""Progress a person can watch: the log lines and bars, the training progress callbacks with
the loss and the energy-variance score, and Lightning's noise silenced at its source only."""

from __future__ import annotations

import logging
import math
import time
import warnings

import pytest
import torch

from isingaug import progress
from isingaug.config import compose_config
from isingaug.errors import ConfigError
from isingaug.generators.learned import LearnedGenerator
from isingaug.pipeline import run

TINY = ["dataset.n=6", "dataset.M=200", "dataset.M_test=100", "device=cpu", "generator=vae",
        "M_plus=200", "trainer.max_steps=40", "generator.hidden_widths=[16]",
        "generator.latent_dim=2", "callbacks.energy_variance.eval_every=20",
        "callbacks.energy_variance.eval_samples=100"]


@pytest.fixture(autouse=True)
def fresh_progress(monkeypatch):
    """Every test starts with no progress line written and the default settings."""
    monkeypatch.setattr(progress, "_last_line", [-math.inf])
    monkeypatch.setattr(progress, "_settings", progress.Settings())


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "isingaug.progress"]


def test_progress_line_reads_like_a_sentence():
    line = progress.progress_line("sampling data (MCMC)", 400, 1000, "sweeps", 12.0,
                                  {"acceptance": 0.41234})
    # 400 done in 12 s: 600 left at 33.3/s -> 18 s
    assert line == ("sampling data (MCMC): 400/1,000 sweeps (40%), 12 s, ~18 s left, "
                    "acceptance=0.4123")
    assert progress.progress_line("x", 7, None, "it", 200.0) == "x: 7 it, 3.3 min"


def test_log_mode_writes_a_line_per_interval_and_a_closing_one(caplog):
    caplog.set_level(logging.INFO, logger="isingaug.progress")
    with progress.Task("cross-validation", total=6, unit="strengths", mode="log",
                       log_every_s=0.05) as bar:
        for done in range(1, 7):
            time.sleep(0.06)
            bar.update(done, l2=10.0 ** -done)
    got = lines(caplog)
    assert got[-1].startswith("cross-validation: 6/6 strengths (100%)") and "(done)" in got[-1]
    assert 3 <= len(got) <= 7
    assert all(line.startswith("cross-validation: ") for line in got)


def test_a_short_task_stays_silent_and_lines_are_shared_by_the_process(caplog):
    caplog.set_level(logging.INFO, logger="isingaug.progress")
    with progress.Task("quick", total=3, mode="log", log_every_s=30.0) as bar:
        for done in range(1, 4):
            bar.update(done)
    assert lines(caplog) == []
    progress._last_line[0] = time.monotonic()   # another task just wrote a line
    with progress.Task("second", total=2, mode="log", log_every_s=0.05) as bar:
        time.sleep(0.03)
        bar.update(1)   # due for this task, but the process wrote a line 0.03 s ago
    assert lines(caplog) == []


def test_auto_is_log_lines_in_a_sweep_or_without_a_terminal(monkeypatch):
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: False, raising=False)
    assert progress.resolve_mode("auto") == "log"
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(progress, "in_multirun", lambda: False)
    assert progress.resolve_mode("auto") == "bar"
    monkeypatch.setattr(progress, "in_multirun", lambda: True)
    assert progress.resolve_mode("auto") == "log"
    assert progress.resolve_mode("off") == "off"
    assert isinstance(progress.training_progress("log"), progress.GeneratorProgressLog)
    assert progress.training_progress("off").is_disabled


def test_bad_progress_settings_name_the_key():
    with pytest.raises(ConfigError, match=r"callbacks\.progress\.mode must be one of"):
        progress.configure("loud")
    with pytest.raises(ConfigError, match=r"callbacks\.progress\.log_every_s must be"):
        progress.training_progress("log", log_every_s=0)


def test_training_logs_its_progress_with_loss_and_energy_variance(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="isingaug.progress")
    cfg = compose_config([*TINY, f"paths.output_dir={tmp_path}", "callbacks.progress.mode=log",
                          "callbacks.progress.log_every_s=0.01"])
    run(cfg, tmp_path)
    got = lines(caplog)
    assert got[0] == "training generator=vae on cpu for 40 steps, starting at step 0"
    assert got[-1].startswith("generator=vae trained to step 40 (40 steps here in ")
    # the monitor's last point (step 40) and the training data's Var[E] are in the last line
    assert "loss=" in got[-1] and "var_E=" in got[-1] and "var_E_data=" in got[-1]
    middle = [line for line in got[1:-1] if line.startswith("training generator=vae: ")]
    assert middle and all("/40 steps" in line and "loss=" in line for line in middle)


def test_the_bar_shows_steps_loss_and_energy_variance(tmp_path, capsys):
    cfg = compose_config([*TINY, f"paths.output_dir={tmp_path}", "callbacks.progress.mode=bar"])
    run(cfg, tmp_path)
    err = capsys.readouterr().err
    last = [part for part in err.split("\r") if "training generator=vae" in part][-1]
    assert "40/40" in last and "loss=" in last and "var_E=" in last and "var_E_data=" in last


class _Slow(LearnedGenerator):
    """A stand-in generator whose batches take a while (to see the sampling progress)."""

    name = "slow"

    def build(self, n: int) -> None:
        self.n = n

    def generate(self, num: int, rng: torch.Generator) -> torch.Tensor:
        time.sleep(0.03)
        return torch.ones(num, self.n)


def test_sampling_shows_progress_outside_training_only(caplog):
    caplog.set_level(logging.INFO, logger="isingaug.progress")
    progress.configure("log", 0.02)
    gen = _Slow(sample_batch_size=10, device="cpu")
    gen.build(4)
    gen._fitting = True          # as during the energy-variance evaluations
    gen.sample(60)
    assert lines(caplog) == []
    gen._fitting = False
    assert gen.sample(60).shape == (60, 4)
    got = lines(caplog)
    assert got and got[-1].startswith("generator=slow: generating: 60/60 patterns (100%)")


def _rank_zero_records(logger_name: str) -> list[logging.LogRecord]:
    """Records that reach a handler on Lightning's rank-zero logger itself (filters on a logger
    act before its handlers, whatever propagates where)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logging.getLogger(logger_name).addHandler(Keep())
    return records


def test_lightnings_noise_is_silenced_and_nothing_else(monkeypatch):
    import pytorch_lightning as pl
    from lightning_fabric.utilities.warnings import PossibleUserWarning
    from pytorch_lightning.utilities.rank_zero import rank_zero_info
    from torch.utils._pytree import LeafSpec

    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("SLURM_JOBID", raising=False)
    name = "pytorch_lightning.utilities.rank_zero"
    records = _rank_zero_records(name)
    logger = logging.getLogger(name)
    monkeypatch.setattr(logger, "level", logging.INFO)
    monkeypatch.setattr(logger, "filters", [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        progress.quiet_lightning()
        pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False)
        rank_zero_info("a line that is the run's business")
        LeafSpec()
        warnings.warn("The `srun` command is available on your system but is not used. HINT",
                      PossibleUserWarning, stacklevel=1)
        warnings.warn("another deprecation", FutureWarning, stacklevel=1)
    messages = [r.getMessage() for r in records]
    assert messages == ["a line that is the run's business"]
    assert [str(w.message) for w in caught] == ["another deprecation"]


def test_the_srun_hint_stays_under_slurm(monkeypatch):
    from lightning_fabric.utilities.warnings import PossibleUserWarning

    monkeypatch.setenv("SLURM_JOB_ID", "123")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        progress.quiet_lightning()
        warnings.warn("The `srun` command is available on your system but is not used.",
                      PossibleUserWarning, stacklevel=1)
    assert len(caught) == 1
