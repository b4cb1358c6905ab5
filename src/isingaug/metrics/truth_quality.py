"""Generated patterns scored against what they should resemble: the truth and held-out patterns.

Scores against the training patterns (samples.sample_quality) measure fit and reward copying. This
module adds (docs/science.md, "Generator quality"):

- against the truth, when it is known and n <= `metrics.exact_quality_max_n`: its exact moments
  over all 2^n states (magnetisations, connected correlations, connected three-point correlations
  on the triplets sample_quality scores, Var[E]) and the generated patterns' errors against them,
  with the total variation and a KL distance of their empirical distribution; beside each, the
  same statistic of as many exact samples of the truth (the sampling-noise floor);
- for generators with a tractable likelihood: KL(p_true || p_gen) by enumeration and the
  held-out log-likelihood (any n);
- against the held-out test patterns (any n): sample_quality's scores, beside those of the
  training patterns.

The truth's distribution is held as three float64 vectors over all 2^n states (energies, log p,
p: 8 * 2^n bytes each, 8 MB at n = 20), built in one blocked pass (ising.EnergyBlocks); every
moment of every order then comes from one fast Walsh-Hadamard transform of p. Pattern sets are
reduced to their distinct states, so the distances cost O(M log M) whatever n is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from isingaug import results as res
from isingaug.errors import check_options, is_int
from isingaug.ising import DEFAULT_MAX_ENUMERATION_N, EnergyBlocks, IsingParams, enumerate_states
from isingaug.metrics.samples import (
    check_spins,
    connected_third,
    draw_triplets,
    energy_variance,
    mean_sq,
    pattern_moments,
    sample_quality,
    third_moments,
)
from isingaug.sampling import exact_sample
from isingaug.seeding import stream

#: States per chunk when a generator's log_prob is evaluated on all 2^n states.
STATE_CHUNK = 1 << 16
#: Bits per Kronecker factor of the Walsh-Hadamard transform (32 x 32 matrices).
_WHT_GROUP_BITS = 5
#: Truth statistics and their (score, floor) keys.
TRUTH_KEYS = {
    "mag_err": (res.GEN_MAG_ERR_TRUE, res.GEN_MAG_ERR_TRUE_FLOOR),
    "conn_corr_err": (res.GEN_CONN_CORR_ERR_TRUE, res.GEN_CONN_CORR_ERR_TRUE_FLOOR),
    "three_point_err": (res.GEN_THREE_POINT_ERR_TRUE, res.GEN_THREE_POINT_ERR_TRUE_FLOOR),
    "var_E_err": (res.GEN_VAR_E_ERR_TRUE, res.GEN_VAR_E_ERR_TRUE_FLOOR),
    "tv": (res.GEN_TV_TRUE, res.GEN_TV_TRUE_FLOOR),
    "kl": (res.GEN_KL_TRUE, res.GEN_KL_TRUE_FLOOR),
}
#: Held-out statistics and their (generated, training-data) keys; var_E_err is this module's,
#: the others are sample_quality's against the test patterns.
TEST_KEYS = {
    "mag_err": (res.GEN_MAG_ERR_TEST, res.GEN_MAG_ERR_TEST_TRAIN),
    "conn_corr_err": (res.GEN_CONN_CORR_ERR_TEST, res.GEN_CONN_CORR_ERR_TEST_TRAIN),
    "three_point_err": (res.GEN_THREE_POINT_ERR_TEST, res.GEN_THREE_POINT_ERR_TEST_TRAIN),
    "spectrum_err": (res.GEN_SPECTRUM_ERR_TEST, res.GEN_SPECTRUM_ERR_TEST_TRAIN),
    "entropy_err": (res.GEN_ENTROPY_ERR_TEST, res.GEN_ENTROPY_ERR_TEST_TRAIN),
    "aai": (res.GEN_AAI_TEST, res.GEN_AAI_TEST_TRAIN),
    "var_E_err": (res.GEN_VAR_E_ERR_TEST, res.GEN_VAR_E_ERR_TEST_TRAIN),
}


# ----------------------------------------------------------------------------- states


def state_index(spins: Tensor) -> Tensor:
    """k = sum_i [s_i = +1] 2^i for every pattern: its position in ising.enumerate_states."""
    n = spins.shape[1]
    if n > 62:
        raise ValueError(f"state_index needs n <= 62 spins (int64 indices); got {n}")
    powers = torch.ones(n, dtype=torch.int64, device=spins.device) << torch.arange(
        n, device=spins.device)
    return ((spins > 0).to(torch.int64) * powers).sum(1)


def hadamard(bits: int, dtype: torch.dtype = torch.float64,
             device: torch.device | str = "cpu") -> Tensor:
    """The (2^bits, 2^bits) Sylvester-Hadamard matrix H_kS = (-1)^popcount(k & S)."""
    index = torch.arange(1 << bits, device=device)
    common = index[:, None] & index[None, :]
    parity = torch.zeros_like(common)
    for bit in range(bits):
        parity ^= (common >> bit) & 1
    return (1 - 2 * parity).to(dtype)


def walsh_hadamard(x: Tensor) -> Tensor:
    """F(S) = sum_k x_k (-1)^popcount(k & S) for every S in {0..2^n-1}.

    With s_i = 2 bit_i(k) - 1 = -(-1)^bit_i(k), the moment <prod_{i in S} s_i> of a distribution
    x is (-1)^|S| F(S), so one transform gives every moment of every order. H_{2^n} is the
    Kronecker product of small Hadamard matrices over groups of bits: x as a tensor with one axis
    per group, each axis multiplied by its dense H in turn (one matmul per group, O(2^n 2^g) for
    groups of g bits; 10x faster than n strided butterfly passes on the CPU).
    """
    size = x.shape[0]
    bits = size.bit_length() - 1
    if x.ndim != 1 or size < 1 or 1 << bits != size:
        raise ValueError(f"walsh_hadamard needs a vector of length 2^n; got {tuple(x.shape)}")
    if bits == 0:
        return x.clone()
    groups = [min(_WHT_GROUP_BITS, bits - start) for start in range(0, bits, _WHT_GROUP_BITS)]
    y = x.reshape([1 << g for g in groups])
    for g in groups:  # contracting axis 0 moves the transformed axis last: a full turn at the end
        y = torch.tensordot(y, hadamard(g, x.dtype, x.device), dims=([0], [0]))
    return y.reshape(-1)


@dataclass(frozen=True)
class Moments:
    """<s_i> (n,), <s_i s_j> (n, n) and raw <s_i s_j s_k> on `triplets` (T, 3), float64."""

    first: Tensor
    second: Tensor
    third: Tensor
    triplets: Tensor

    @classmethod
    def of_patterns(cls, spins: Tensor, triplets: Tensor) -> Moments:
        """Exact moments of a set of patterns (samples.py's integer-exact passes)."""
        first, second = pattern_moments(spins)
        return cls(first, second, third_moments(spins, triplets), triplets.to(spins.device))

    def connected(self) -> tuple[Tensor, Tensor]:
        """C_ij for i < j (flat) and the connected three-point C_ijk on the triplets."""
        n = self.first.shape[0]
        pairs = torch.triu_indices(n, n, offset=1, device=self.first.device)
        cov = self.second - torch.outer(self.first, self.first)
        return (cov[pairs[0], pairs[1]],
                connected_third(self.first, self.second, self.third, self.triplets))

    def errors(self, reference: Moments) -> dict[str, float]:
        """Mean squared errors of the magnetisations, connected pairs and connected triplets."""
        pairs, three = self.connected()
        ref = reference.to(self.first.device)
        ref_pairs, ref_three = ref.connected()
        return {"mag_err": mean_sq(self.first, ref.first),
                "conn_corr_err": mean_sq(pairs, ref_pairs),
                "three_point_err": mean_sq(three, ref_three)}

    def to(self, device: torch.device | str) -> Moments:
        return Moments(self.first.to(device), self.second.to(device), self.third.to(device),
                       self.triplets.to(device))


@dataclass(frozen=True)
class ExactDistribution:
    """An Ising model tabulated over all 2^n states in enumerate_states order (float64).

    Built only up to `max_n` (a ConfigError above, before anything is allocated).
    """

    params: IsingParams
    energies: Tensor
    log_z: float
    log_p: Tensor
    p: Tensor
    var_energy: float

    @classmethod
    def of(cls, params: IsingParams, max_n: int = DEFAULT_MAX_ENUMERATION_N,
           chunk: int = STATE_CHUNK) -> ExactDistribution:
        params = params.to(dtype=torch.float64)
        blocks = EnergyBlocks.of(params, chunk, max_n)  # checks n <= max_n first
        energies = torch.cat([e.reshape(-1) for _, e in blocks])
        log_z = torch.logsumexp(-energies, 0)
        log_p = -energies - log_z
        p = torch.exp(log_p)
        var_energy = float(p @ (energies - p @ energies) ** 2)  # two-pass: no cancellation
        return cls(params, energies, float(log_z), log_p, p, var_energy)

    @property
    def n(self) -> int:
        return self.params.n

    def moments(self, triplets: Tensor) -> Moments:
        """Exact moments from one Walsh-Hadamard transform of p."""
        f = walsh_hadamard(self.p)
        device = f.device
        powers = torch.ones(self.n, dtype=torch.int64, device=device) << torch.arange(
            self.n, device=device)
        second = f[powers[:, None] | powers[None, :]]
        second.fill_diagonal_(1.0)
        triplets = triplets.to(device)
        third = -f[powers[triplets[:, 0]] | powers[triplets[:, 1]] | powers[triplets[:, 2]]]
        return Moments(-f[powers], second, third, triplets)

    def distances(self, spins: Tensor) -> tuple[float, float]:
        """(TV, KL(p_hat || p)) of the patterns' empirical distribution p_hat from the model.

        TV = 1/2 sum_x |p_hat - p| needs p only at the states that occur: the states never seen
        contribute their total mass 1 - sum_seen p. KL(p_hat || p) is finite since p > 0.
        """
        states, counts = torch.unique(state_index(spins.to(self.log_p.device)),
                                      return_counts=True)
        q = counts.to(torch.float64) / spins.shape[0]
        log_p = self.log_p[states]
        p = torch.exp(log_p)
        unseen = (1.0 - p.sum()).clamp_min(0.0)
        tv = 0.5 * (float((q - p).abs().sum()) + float(unseen))
        kl = float((q * (torch.log(q) - log_p)).sum())
        return tv, kl


def relative_gap(value: float, reference: float) -> float:
    """|value / reference - 1|, with 0/0 = 0 and x/0 = inf."""
    if reference != 0:
        return abs(value / reference - 1.0)
    return 0.0 if value == 0 else math.inf


# ----------------------------------------------------------------------------- likelihoods


def is_tractable(generator: object) -> bool:
    """Whether the generator declares an exact normalised `log_prob` (at its current size)."""
    return bool(getattr(generator, "tractable", False)) and callable(
        getattr(generator, "log_prob", None))


def exact_kl(truth: ExactDistribution, log_prob: Callable[[Tensor], Tensor],
             chunk: int = STATE_CHUNK) -> float:
    """KL(p_true || q) = sum_x p_true(x) (log p_true(x) - log q(x)) in nats, over all 2^n states.

    `log_prob` gets +-1 states (chunk, n) and returns log q of each; states where p_true
    underflows to 0 contribute 0 (even where log q = -inf).
    """
    total = torch.zeros((), dtype=torch.float64, device=truth.log_p.device)
    start = 0
    for states in enumerate_states(truth.n, chunk, dtype=torch.float32, max_n=truth.n):
        stop = start + states.shape[0]
        log_q = log_prob(states).to(device=total.device, dtype=torch.float64).reshape(-1)
        log_p = truth.log_p[start:stop]
        p = torch.exp(log_p)
        total += torch.where(p > 0, p * (log_p - log_q), 0.0).sum()
        start = stop
    return float(total)


def mean_log_prob(generator: object, spins: Tensor) -> float:
    """Mean log p_gen of the patterns (the generator's held-out log-likelihood)."""
    return float(generator.log_prob(spins).to(torch.float64).mean())


# ----------------------------------------------------------------------------- the scores


def truth_scores(spins: Tensor, truth: ExactDistribution, reference: Moments) -> dict[str, float]:
    """The TRUTH_KEYS statistics of one pattern set against the tabulated truth."""
    spins = spins.to(truth.log_p.device)
    out = Moments.of_patterns(spins, reference.triplets).errors(reference)
    energies = truth.energies[state_index(spins)]
    out["var_E_err"] = relative_gap(float(torch.var(energies, correction=0)), truth.var_energy)
    out["tv"], out["kl"] = truth.distances(spins)
    return out


def check_exact_quality_max_n(value: object) -> int:
    """The validated `metrics.exact_quality_max_n` (callable at startup, before any training)."""
    check_options([
        ("metrics.exact_quality_max_n", value,
         is_int(value) and 0 <= value <= DEFAULT_MAX_ENUMERATION_N,
         f"an integer in [0, {DEFAULT_MAX_ENUMERATION_N}]"),
    ])
    return int(value)


def truth_quality(samples: Tensor, *, train: Tensor, test: Tensor | None,
                  truth: IsingParams | None, params_obs: IsingParams,
                  generator: object | None = None, seed: int = 0, exact_max_n: int = 20,
                  max_patterns: int = 5000, max_triplets: int = 20000) -> dict[str, float]:
    """`gen/...` scores of the generated patterns against the truth and the held-out patterns.

    - truth known and n <= exact_max_n: TRUTH_KEYS (score and `_floor`) and GEN_VAR_E_EXACT. The
      floor draws len(samples) exact samples of the truth from stream(seed, "quality", "floor").
    - a tractable generator (`tractable` and `log_prob`): GEN_KL_EXACT (truth known,
      n <= exact_max_n) and GEN_TEST_LOGLIK (test patterns given).
    - test patterns given: TEST_KEYS, for the generated and for the training patterns.
    Everything else is left out by design (never an enumeration above exact_max_n).

    Triplets (and sample_quality's subsamples) are drawn from stream(seed, "quality"), first, as
    augment.generated_quality's sample_quality draws them, so every three-point score, against
    the training patterns, the test patterns or the truth, is on the same triplets.
    """
    exact_max_n = check_exact_quality_max_n(exact_max_n)
    samples = check_spins(samples, "generated")
    n = samples.shape[1]
    out: dict[str, float] = {}
    if truth is not None and n <= exact_max_n:
        exact = ExactDistribution.of(truth, max_n=exact_max_n)
        triplets = draw_triplets(n, max_triplets, stream(seed, "quality"))
        reference = exact.moments(triplets)
        floor_rng = stream(seed, "quality", "floor", device=exact.params.device)
        floor = exact_sample(exact.params, samples.shape[0], floor_rng, max_n=exact_max_n)
        for scores, which in ((truth_scores(samples, exact, reference), 0),
                              (truth_scores(floor, exact, reference), 1)):
            out.update({TRUTH_KEYS[name][which]: value for name, value in scores.items()})
        out[res.GEN_VAR_E_EXACT] = exact.var_energy
        if is_tractable(generator):
            out[res.GEN_KL_EXACT] = exact_kl(exact, generator.log_prob)
    if test is not None and test.shape[0] > 0:
        if is_tractable(generator):
            out[res.GEN_TEST_LOGLIK] = mean_log_prob(generator, test)
        var_test = energy_variance(params_obs, test)
        for patterns, which in ((samples, 0), (train, 1)):
            scores = sample_quality(patterns, test, rng=stream(seed, "quality"),
                                    max_patterns=max_patterns, max_triplets=max_triplets)
            scores["var_E_err"] = relative_gap(energy_variance(params_obs, patterns), var_test)
            out.update({keys[which]: scores[name] for name, keys in TEST_KEYS.items()})
    return out
