"""The model core against definitions and brute force."""

from __future__ import annotations

import pytest
import torch

from conftest import all_states, brute_force, random_model
from isingaug.errors import ConfigError
from isingaug.ising import (
    IsingParams,
    conditional_log_prob,
    energy,
    enumerate_states,
    exact_statistics,
    local_fields,
    log_likelihood,
    moments,
)


def test_flat_vector_is_h_then_upper_triangle_row_major():
    params = random_model(4, seed=1)
    vec = params.to_vector()
    expected = [params.h[i] for i in range(4)] + [params.J[i, j] for i in range(4)
                                                   for j in range(i + 1, 4)]
    assert torch.equal(vec, torch.stack(expected))
    back = IsingParams.from_vector(vec)
    assert torch.equal(back.h, params.h) and torch.equal(back.J, params.J)


def test_from_vector_rejects_impossible_length():
    with pytest.raises(ValueError, match="not n \\+ n\\(n-1\\)/2"):
        IsingParams.from_vector(torch.zeros(5))


def test_from_couplings_symmetrises_and_clears_diagonal():
    params = IsingParams.from_couplings(torch.zeros(3), torch.arange(9.0).reshape(3, 3))
    assert torch.equal(params.J, params.J.T)
    assert torch.all(torch.diagonal(params.J) == 0)


def test_energy_and_fields_match_the_definition():
    params = random_model(5, seed=2)
    s = all_states(5)[7]
    direct = -sum(params.h[i] * s[i] for i in range(5)) - sum(
        params.J[i, j] * s[i] * s[j] for i in range(5) for j in range(i + 1, 5))
    assert torch.isclose(energy(params, s), direct)
    field_2 = params.h[2] + sum(params.J[2, j] * s[j] for j in range(5) if j != 2)
    assert torch.isclose(local_fields(params, s)[2], field_2)
    # flipping spin i changes E by 2 s_i H_i
    flipped = s.clone()
    flipped[2] = -flipped[2]
    assert torch.isclose(energy(params, flipped) - energy(params, s), 2 * s[2] * field_2)


@pytest.mark.parametrize("chunk", [1, 7, 1 << 16])
def test_exact_statistics_equal_brute_force(chunk):
    params = random_model(9, g=1.5, seed=3)
    log_z, first, second = brute_force(params)
    stats = exact_statistics(params, chunk=chunk)
    assert torch.isclose(stats.log_z, log_z, atol=1e-12)
    assert torch.allclose(stats.first, first, atol=1e-12)
    assert torch.allclose(stats.second, second, atol=1e-12)


def test_exact_statistics_survive_huge_energies():
    params = random_model(6, seed=4)
    big = IsingParams(params.h * 500, params.J * 500)
    stats = exact_statistics(big, chunk=5)
    assert torch.isfinite(stats.log_z) and torch.isfinite(stats.first).all()
    log_z, first, _ = brute_force(big)
    assert torch.isclose(stats.log_z, log_z) and torch.allclose(stats.first, first)


def test_enumeration_limit_is_a_clear_error():
    with pytest.raises(ConfigError, match="2\\^25 states is above the limit n <= 24"):
        next(enumerate_states(25))
    with pytest.raises(ConfigError, match="limit n <= 10"):
        exact_statistics(random_model(11), max_n=10)


def test_log_likelihood_normalises_and_conditionals_match_ratios():
    params = random_model(6, seed=5)
    states = all_states(6)
    assert torch.isclose(torch.logsumexp(log_likelihood(params, states), 0),
                         torch.tensor(0.0, dtype=torch.float64), atol=1e-12)
    s = states[11]
    flipped = s.clone()
    flipped[3] = -flipped[3]
    ratio = torch.exp(-energy(params, s)) / (torch.exp(-energy(params, s))
                                              + torch.exp(-energy(params, flipped)))
    assert torch.isclose(conditional_log_prob(params, s[None])[0, 3], torch.log(ratio))


def test_weighted_moments_equal_repeated_rows():
    states = all_states(3)[[0, 3, 5]]
    counts = torch.tensor([1.0, 3.0, 2.0])
    repeated = torch.repeat_interleave(states, counts.long(), 0)
    m_w, c_w = moments(states, counts)
    m_r, c_r = moments(repeated)
    assert torch.allclose(m_w, m_r) and torch.allclose(c_w, c_r)
