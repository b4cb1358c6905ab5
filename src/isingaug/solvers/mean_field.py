"""Mean-field inversions (naive and TAP): closed forms in the magnetisations and correlations."""

from __future__ import annotations

import warnings

import torch

from isingaug.errors import check_options
from isingaug.ising import IsingParams, connected_correlations, moments
from isingaug.solvers.base import Samples, Solver, choice_check, positive_check

METHODS = ("naive", "tap")


class MeanField(Solver):
    """Naive mean field (J = -C^-1 off the diagonal) or its TAP correction; fast references.

    Degenerate data are repaired, not rejected, and the repair is reported: magnetisations with
    |m_i| > 1 - `clip` (frozen spins, for which atanh m is infinite) are clamped there with a
    warning, and `ridge`·I is added to C before inverting it, so a frozen spin (a zero row of C)
    decouples instead of making C singular; with fewer patterns than spins C is singular in
    any case and the ridge sets the scale of the (then meaningless) couplings. Where TAP's
    discriminant 1 - 8 A_ij m_i m_j is negative it is clamped to 0 (the TAP formula's
    continuous limit, J_ij = -2 A_ij); the number of such pairs is in the diagnostics.
    """

    name = "mean_field"
    limit_key = None  # a closed form: no iterations to limit

    def __init__(self, device: str = "auto", dtype: str = "float64", method: str = "naive",
                 ridge: float = 1e-8, clip: float = 1e-6) -> None:
        super().__init__(device, dtype)
        check_options([choice_check("method", method, METHODS),
                       positive_check("ridge", ridge, strict=False),
                       ("solver.clip", clip, positive_check("clip", clip)[2] and clip < 1,
                        "a float in (0, 1)")], f"solver={self.name}")
        self.method = method
        self.ridge = float(ridge)
        self.clip = float(clip)

    def _fit(self, data: Samples) -> IsingParams:
        first, second = moments(data.spins, data.weights, self.dtype)
        n = first.shape[0]
        eye = torch.eye(n, dtype=self.dtype, device=self.device)
        inverse = torch.linalg.inv(connected_correlations(first, second) + self.ridge * eye)
        inverse = 0.5 * (inverse + inverse.T)
        bound = 1.0 - self.clip
        clamped = int((first.abs() > bound).sum())
        if clamped:
            warnings.warn(f"{self.name}: {clamped} spin(s) have |<s_i>| > {bound} (frozen or "
                          f"nearly); their magnetisations are clamped to ±{bound}",
                          RuntimeWarning, stacklevel=4)
        m = first.clamp(-bound, bound)
        off = 1.0 - eye
        negative_pairs = 0
        if self.method == "naive":
            J = -inverse * off
            h = torch.atanh(m) - J @ m
        else:
            discriminant = 1.0 - 8.0 * inverse * torch.outer(m, m)
            negative_pairs = int(((discriminant < 0) & (off > 0)).sum()) // 2
            J = -2.0 * inverse * off / (1.0 + torch.sqrt(discriminant.clamp_min(0.0)))
            h = torch.atanh(m) - J @ m + m * ((J * J) @ (1.0 - m * m))
        self.diagnostics.update(iterations=0, converged=True, max_iter=None, method=self.method,
                                clamped_spins=clamped, tap_clamped_pairs=negative_pairs)
        return IsingParams(h, J)
