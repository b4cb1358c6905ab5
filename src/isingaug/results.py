"""The results vocabulary: the files a run folder holds, the conditions solved, every metric key
and the shape of results.json.

One torch-free module that the pipeline and the metrics write with and the sweep summary and the
report read with, so no name of a result is spelled twice (the report starts fast because it
never imports torch). A metric is declared once here, with its label and its direction; the
report draws every declared metric it finds in a run.

Keys in results.json's `metrics` are flat: `<metric>/<condition>` for scores of an inferred model
(`mse_J/obs`, `impute_acc_spike/aug_obs`), `gen/<metric>` for scores of the generated patterns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypedDict

# ---- files of a run folder -------------------------------------------------------------------
RESULTS_FILE = "results.json"
PARAMS_FILE = "params.npz"
ERROR_FILE = "error.json"
SAMPLES_FILE = "samples/generated.npz"

# ---- conditions ------------------------------------------------------------------------------
OBS = "obs"                     # the observed patterns alone
OBS_L2 = "obs_l2"               # the observed patterns with the solver's L2 tuned by validation
AUG = "aug"                     # the generated patterns alone
AUG_OBS = "aug_obs"             # generated and observed together
AUG_L2 = "aug_l2"               # aug with the solver's L2 tuned by validation (tune_l2=both)
AUG_OBS_L2 = "aug_obs_l2"       # aug_obs with the solver's L2 tuned by validation (tune_l2=both)
BASELINE_FREQ = "baseline_freq"     # imputation: each unit's most frequent training state
BASELINE_INDEP = "baseline_indep"   # imputation: the independent-unit model

AUGMENTED_CONDITIONS = (AUG, AUG_OBS)                       # the data sets augment builds
TUNED_TWINS = {OBS: OBS_L2, AUG: AUG_L2, AUG_OBS: AUG_OBS_L2}  # condition -> its tuned-L2 fit
GENERATOR_CONDITIONS = (*AUGMENTED_CONDITIONS,                # vary with the generator
                        *(TUNED_TWINS[c] for c in AUGMENTED_CONDITIONS))
SOLVED_CONDITIONS = (OBS, TUNED_TWINS[OBS], *GENERATOR_CONDITIONS)
BASELINE_CONDITIONS = (BASELINE_FREQ, BASELINE_INDEP)
CONDITIONS = (*SOLVED_CONDITIONS, *BASELINE_CONDITIONS)
CONDITION_LABELS = {OBS: "obs", OBS_L2: "obs, tuned L2", AUG: "aug", AUG_OBS: "aug+obs",
                    AUG_L2: "aug, tuned L2", AUG_OBS_L2: "aug+obs, tuned L2",
                    BASELINE_FREQ: "baseline: frequency", BASELINE_INDEP: "baseline: independent"}

GEN_PREFIX = "gen"


@dataclass(frozen=True)
class Metric:
    """A declared result: its key stem, what a figure calls it and which way is better.

    `scope` is "condition" for scores of an inferred model (one per condition) and "generated"
    for scores of the generated patterns (one per run, under gen/).
    """

    name: str
    label: str
    lower_is_better: bool | None
    group: str
    scope: Literal["condition", "generated"] = "condition"

    @property
    def stem(self) -> str:
        """The key without its condition: `mse_J`, or `gen/aai` for generated-pattern scores."""
        return f"{GEN_PREFIX}/{self.name}" if self.scope == "generated" else self.name


METRICS: dict[str, Metric] = {}


def _declare(name: str, label: str, lower_is_better: bool | None, group: str,
             scope: Literal["condition", "generated"] = "condition") -> str:
    metric = Metric(name, label, lower_is_better, group, scope)
    if metric.stem in METRICS:
        raise ValueError(f"metric {metric.stem} declared twice")
    METRICS[metric.stem] = metric
    return metric.stem


# ---- scores of an inferred model (per condition) ---------------------------------------------
MSE_J = _declare("mse_J", "MSE of couplings J", True, "parameters")
MSE_H = _declare("mse_h", "MSE of fields h", True, "parameters")
MSE_ALL = _declare("mse_all", "MSE of all parameters (h, J)", True, "parameters")
REL_ERR_J = _declare("rel_err_J", "relative error of J", True, "parameters")
VAR_E_TRAIN = _declare("var_E_train", "Var[E] of the training patterns", None, "energy")
VAR_E_TEST = _declare("var_E_test", "Var[E] of the test patterns", None, "energy")
TEST_LOGLIK = _declare("test_loglik", "test log-likelihood", False, "likelihood")
TEST_PSEUDO_LOGLIK = _declare("test_pseudo_loglik", "test pseudo-log-likelihood", False,
                              "likelihood")
TRAIN_PSEUDO_LOGLIK = _declare("train_pseudo_loglik", "training pseudo-log-likelihood", False,
                               "likelihood")
SOLVER_SECONDS = _declare("solver_seconds", "solver seconds", True, "timing")
SOLVER_CONVERGED = _declare("solver_converged", "solver converged (1) or not (0)", False,
                            "timing")
IMPUTE_ACC = _declare("impute_acc", "imputation accuracy", False, "imputation")
IMPUTE_ACC_SPIKE = _declare("impute_acc_spike", "spike accuracy", False, "imputation")
IMPUTE_ACC_SILENCE = _declare("impute_acc_silence", "silence accuracy", False, "imputation")
IMPUTE_SPIKE_FRAC = _declare("impute_spike_frac", "fraction of hidden entries that are spikes",
                             None, "imputation")
IMPUTE_COND_LOGLIK = _declare("impute_cond_loglik", "conditional log-likelihood", False,
                              "imputation")

# ---- scores of the generated patterns (gen/...) ----------------------------------------------


def _gen(name: str, label: str, lower_is_better: bool | None, group: str = "quality") -> str:
    return _declare(name, label, lower_is_better, group, "generated")


# against the training patterns: a fit score (rewards copying; read beside the copy fraction)
GEN_MAG_ERR = _gen("mag_err", "magnetisation error (fit to train)", True)
GEN_CORR_ERR = _gen("corr_err", "correlation error (fit to train)", True)
GEN_CONN_CORR_ERR = _gen("conn_corr_err", "connected-correlation error (fit to train)", True)
GEN_THREE_POINT_ERR = _gen("three_point_err", "three-point error (fit to train)", True)
GEN_SPECTRUM_ERR = _gen("spectrum_err", "covariance-spectrum error (fit to train)", True)
GEN_ENTROPY_ERR = _gen("entropy_err", "gzip entropy error (fit to train)", True)
GEN_AA_TRUE = _gen("aa_true", "AA_true", None)
GEN_AA_SYN = _gen("aa_syn", "AA_syn", None)
GEN_AAI = _gen("aai", "adversarial accuracy indicator", True)
GEN_COPY_FRACTION = _gen("copy_fraction", "fraction of copied training patterns", True)
GEN_VAR_E_OBS = _gen("var_E_obs", "Var[E] of generated patterns under θ̂_obs", None)
GEN_VAR_E_TRUE = _gen("var_E_true", "Var[E] of generated patterns under θ_true", None)
# timings and training bookkeeping
GEN_STEPS = _gen("steps", "generator training steps", None, "timing")
GEN_STEPS_PER_SECOND = _gen("steps_per_second", "generator training steps per second", False,
                            "timing")
GEN_TRAIN_SECONDS = _gen("train_seconds", "generator training seconds", True, "timing")
GEN_SAMPLE_SECONDS = _gen("sample_seconds", "generator sampling seconds", True, "timing")
GEN_PATTERNS_PER_SECOND = _gen("patterns_per_second", "generated patterns per second", False,
                               "timing")

# ---- truth, held-out and likelihood quality (metrics/truth_quality.py) -----------------------
# Against the truth: only when it is known and n <= metrics.exact_quality_max_n (exact moments of
# all 2^n states), absent otherwise. Each `_floor` is the same statistic of as many exact samples
# of the truth as there are generated patterns (one seeded draw): the sampling-noise level, not a
# score. Errors are mean squares over spins / pairs i<j / scored triplets; var_E_err is
# |Var_gen[E] / Var_ref[E] - 1|; tv is the total variation of the generated patterns' empirical
# distribution from p_true; kl is KL(p_hat_gen || p_true) in nats (finite: p_true > 0 everywhere;
# KL(p_true || p_hat) is infinite whenever a state is never generated).
GEN_MAG_ERR_TRUE = _gen("mag_err_true", "magnetisation error vs truth", True, "truth")
GEN_MAG_ERR_TRUE_FLOOR = _gen("mag_err_true_floor", "magnetisation error vs truth: noise floor",
                              None, "truth")
GEN_CONN_CORR_ERR_TRUE = _gen("conn_corr_err_true", "connected-correlation error vs truth", True,
                              "truth")
GEN_CONN_CORR_ERR_TRUE_FLOOR = _gen("conn_corr_err_true_floor",
                                    "connected-correlation error vs truth: noise floor", None,
                                    "truth")
GEN_THREE_POINT_ERR_TRUE = _gen("three_point_err_true", "three-point error vs truth", True,
                                "truth")
GEN_THREE_POINT_ERR_TRUE_FLOOR = _gen("three_point_err_true_floor",
                                      "three-point error vs truth: noise floor", None, "truth")
GEN_VAR_E_ERR_TRUE = _gen("var_E_err_true", "relative Var[E] error vs truth", True, "truth")
GEN_VAR_E_ERR_TRUE_FLOOR = _gen("var_E_err_true_floor",
                                "relative Var[E] error vs truth: noise floor", None, "truth")
GEN_TV_TRUE = _gen("tv_true", "total variation from the truth", True, "truth")
GEN_TV_TRUE_FLOOR = _gen("tv_true_floor", "total variation from the truth: noise floor", None,
                         "truth")
GEN_KL_TRUE = _gen("kl_true", "KL(empirical generated || truth)", True, "truth")
GEN_KL_TRUE_FLOOR = _gen("kl_true_floor", "KL(empirical generated || truth): noise floor", None,
                         "truth")
GEN_VAR_E_EXACT = _gen("var_E_exact", "exact Var[E] under θ_true", None, "truth")
# Tractable generators only (`tractable` and `log_prob`): kl_exact = KL(p_true || p_gen) in nats by
# enumeration (truth known, n <= metrics.exact_quality_max_n); test_loglik = mean log p_gen of the
# test patterns (any n with a test set). Absent otherwise.
GEN_KL_EXACT = _gen("kl_exact", "exact KL(truth || generator)", True, "likelihood")
GEN_TEST_LOGLIK = _gen("test_loglik", "generator's test log-likelihood", False, "likelihood")
# Against the held-out test patterns (any n, absent without a test set): sample_quality's scores
# against the test patterns, and var_E_err_test under θ̂_obs. Each `_test_train` is the same score
# of the training patterns against the test patterns (what copying the observed data scores).
GEN_MAG_ERR_TEST = _gen("mag_err_test", "magnetisation error vs test", True, "held_out")
GEN_CONN_CORR_ERR_TEST = _gen("conn_corr_err_test", "connected-correlation error vs test", True,
                              "held_out")
GEN_THREE_POINT_ERR_TEST = _gen("three_point_err_test", "three-point error vs test", True,
                                "held_out")
GEN_SPECTRUM_ERR_TEST = _gen("spectrum_err_test", "covariance-spectrum error vs test", True,
                             "held_out")
GEN_ENTROPY_ERR_TEST = _gen("entropy_err_test", "gzip entropy error vs test", True, "held_out")
GEN_AAI_TEST = _gen("aai_test", "adversarial accuracy indicator vs test", True, "held_out")
GEN_VAR_E_ERR_TEST = _gen("var_E_err_test", "relative Var[E] error vs test (under θ̂_obs)", True,
                          "held_out")
GEN_MAG_ERR_TEST_TRAIN = _gen("mag_err_test_train", "magnetisation error vs test: training data",
                              None, "held_out")
GEN_CONN_CORR_ERR_TEST_TRAIN = _gen("conn_corr_err_test_train",
                                    "connected-correlation error vs test: training data", None,
                                    "held_out")
GEN_THREE_POINT_ERR_TEST_TRAIN = _gen("three_point_err_test_train",
                                      "three-point error vs test: training data", None, "held_out")
GEN_SPECTRUM_ERR_TEST_TRAIN = _gen("spectrum_err_test_train",
                                   "covariance-spectrum error vs test: training data", None,
                                   "held_out")
GEN_ENTROPY_ERR_TEST_TRAIN = _gen("entropy_err_test_train",
                                  "gzip entropy error vs test: training data", None, "held_out")
GEN_AAI_TEST_TRAIN = _gen("aai_test_train", "adversarial accuracy indicator vs test: training data",
                          None, "held_out")
GEN_VAR_E_ERR_TEST_TRAIN = _gen("var_E_err_test_train",
                                "relative Var[E] error vs test: training data", None, "held_out")
# ---- end of truth, held-out and likelihood quality -------------------------------------------


def key(stem: str, condition: str) -> str:
    """The results key of a per-condition metric: key(MSE_J, OBS) == 'mse_J/obs'."""
    metric = METRICS.get(stem)
    if metric is not None and metric.scope == "generated":
        raise ValueError(f"{stem} scores the generated patterns and has no condition")
    return f"{stem}/{condition}"


def with_condition(scores: dict[str, float], condition: str) -> dict[str, float]:
    """Per-condition scores (keyed by stem) under their results keys."""
    return {key(stem, condition): value for stem, value in scores.items()}


def split_key(results_key: str) -> tuple[str, str | None]:
    """(stem, condition) of a results key; condition None for gen/ keys."""
    if results_key.startswith(f"{GEN_PREFIX}/"):
        return results_key, None
    stem, _, condition = results_key.rpartition("/")
    return (stem, condition) if stem else (results_key, None)


def metric_of(results_key: str) -> Metric | None:
    """The declared metric behind a results key (None for an undeclared one)."""
    return METRICS.get(split_key(results_key)[0])


# ---- shape of results.json -------------------------------------------------------------------


class RunSummary(TypedDict, total=False):
    """`run`: the facts that identify a run in tables, and what its generator is.

    The report reads `trainable` / `tractable` / `produces_samples` from here instead of keeping a
    list of generator names.
    """

    dataset: str
    generator: str
    solver: str
    study: str | None
    n: int
    M: int
    M_test: int
    M_plus: int
    seed: int
    max_steps: int
    g: float
    g_h: float
    data_seed: int
    trainable: bool
    tractable: bool
    produces_samples: bool


class Results(TypedDict):
    """The whole of results.json."""

    run: RunSummary
    metrics: dict[str, float]
    diagnostics: dict[str, Any]
    seconds: dict[str, float]
    config: dict[str, Any]


RESULTS_SECTIONS = tuple(Results.__annotations__)
