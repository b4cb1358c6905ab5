"""The two figures every report draws when the runs hold their data: inferred vs true couplings
(params.npz) and the energy-variance curve recorded during training (results.json diagnostics)."""

from __future__ import annotations

import zipfile
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from isingaug import results as res
from isingaug.report.plan import FigurePlan, ReportData
from isingaug.report.plots import CONDITION_COLORS, PALETTE, auto_log_x, finish, panels
from isingaug.report.series import (
    CurveGroup,
    condition_label,
    curve_groups,
    fmt_value,
    metric_label,
    representatives,
)

SCATTER = "scatter_J"
ENERGY_VARIANCE = "energy_variance"


def scatter(data: ReportData) -> FigurePlan | None:
    """Inferred vs true couplings of one representative run per generator / training length."""
    picked = representatives(data.runs, data.info)
    entries = [entry for entry in (_scatter_entry(row) for row in picked.to_dict("records"))
               if entry is not None]
    if not entries:
        return None

    def draw() -> Figure:
        fig, axes = panels(len(entries), ncols=min(len(entries), 4), size=(4.0, 4.0))
        for ax, (title, true, couplings) in zip(axes, entries, strict=True):
            limit = max(float(np.abs(v).max()) for v in (true, *couplings.values()))
            for condition, values in couplings.items():
                mse = float(np.mean((values - true) ** 2))
                ax.scatter(true, values, s=7, alpha=0.6, color=CONDITION_COLORS[condition],
                           label=f"{condition_label(condition)} (MSE {mse:.2g})", linewidths=0)
            ax.axline((0, 0), slope=1, color="black", linewidth=0.8, linestyle="--")
            ax.set_xlim(-limit * 1.05, limit * 1.05)
            ax.set_ylim(-limit * 1.05, limit * 1.05)
            ax.set_aspect("equal")
            ax.set_xlabel("true J_ij")
            ax.set_ylabel("inferred J_ij")
            ax.set_title(title, fontsize="small")
            ax.legend(fontsize="x-small", loc="upper left", markerscale=2)
        fig.suptitle("Inferred vs true couplings (one run each, lowest seed)")
        return fig

    return FigurePlan(f"{SCATTER}.png", "Inferred vs true couplings",
                      "J_ij inferred per condition against the truth for one representative run "
                      "(lowest seed) per generator and training length; dashed: the diagonal.",
                      draw)


def _scatter_entry(row: dict) -> tuple[str, np.ndarray, dict[str, np.ndarray]] | None:
    """(panel title, true upper-triangle couplings, {condition: inferred ones}), or None when
    the file is unreadable or has no truth (params.npz: J_<condition>, J_true)."""
    try:
        with np.load(row["params_file"]) as arrays:
            if "J_true" not in arrays.files:
                return None
            true = np.asarray(arrays["J_true"], dtype=float)
            upper = np.triu_indices(true.shape[0], 1)
            couplings = {c: np.asarray(arrays[f"J_{c}"], dtype=float)[upper]
                         for c in res.SOLVED_CONDITIONS if f"J_{c}" in arrays.files}
    except (OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile):
        return None
    if not couplings:
        return None
    name = fmt_value(row.get("generator", "run"))
    if pd.notna(row.get("max_steps")):
        name += f" · {fmt_value(row['max_steps'])} steps"
    details = ", ".join(f"{label}={fmt_value(row[k])}" for k, label in
                        (("n", "n"), ("M", "M"), ("M_plus", "M⁺"), ("seed", "seed"))
                        if k in row and pd.notna(row[k]))
    return f"{name}\n{details}", true[upper], couplings


def energy_variance(data: ReportData) -> FigurePlan | None:
    """Every value of the energy-variance curve over training, with the train/test references."""
    groups = curve_groups(data.curves, data.params, data.info)
    if not groups:
        return None
    values = list(dict.fromkeys(v for g in groups for v in g.values))
    values.sort(key=lambda v: res.split_key(v)[1] is None)   # values with references first

    def draw() -> Figure:
        fig, axes = panels(len(values))
        for ax, value in zip(axes, values, strict=True):
            _draw_curves(ax, groups, value)
        return finish(fig, axes, "The energy-variance curve during training (mean ± sem)")

    return FigurePlan(f"{ENERGY_VARIANCE}.png", "Energy variance vs training steps",
                      "What the energy-variance callback recorded during training: Var[E] of "
                      "generated patterns under the parameters inferred from the observed data "
                      "(obs) and under the truth, against the training (dashed) and test (dotted) "
                      "patterns, and the copy fraction; dash-dot: the selected step.", draw)


def curve_label(value: str) -> str:
    """A curve value's label: its declared gen/ metric's when there is one."""
    declared = res.METRICS.get(f"{res.GEN_PREFIX}/{value}")
    if declared is not None:
        return declared.label
    stem, condition = res.split_key(value)
    return f"{stem} · {condition_label(condition) or condition}" if condition else stem


def _draw_curves(ax, groups: Sequence[CurveGroup], value: str) -> None:
    condition = res.split_key(value)[1]
    steps = np.concatenate([g.steps for g in groups])
    for index, group in enumerate(groups):
        if value not in group.values:
            continue
        color = PALETTE[index % len(PALETTE)]
        mean, sem = group.values[value]
        ax.errorbar(group.steps, mean, yerr=np.nan_to_num(sem, nan=0.0), color=color,
                    marker="o", markersize=3, capsize=2, label=f"generated · {group.label}")
        if group.selected_step is not None:
            ax.axvline(group.selected_step, color=color, linestyle="-.", linewidth=1,
                       label="selected step" if len(groups) == 1 else
                       f"selected step · {group.label}")
    if condition is not None:
        _draw_references(ax, groups, condition)
    auto_log_x(ax, steps[steps > 0], span=50)
    ax.set_xlabel("training step")
    ax.set_ylabel(curve_label(value), fontsize="small")
    ax.grid(alpha=0.3, which="both")


def _draw_references(ax, groups: Sequence[CurveGroup], condition: str) -> None:
    """Train and test Var[E]; once in black/grey when every setting shares them."""
    for stem, style in ((res.VAR_E_TRAIN, "--"), (res.VAR_E_TEST, ":")):
        key = res.key(stem, condition)
        refs = [(g, g.references[key]) for g in groups if key in g.references
                and np.isfinite(g.references[key][0])]
        if not refs:
            continue
        shared = np.allclose([r[1][0] for r in refs], refs[0][1][0], rtol=1e-9)
        for index, (group, (mean, sem)) in enumerate(refs):
            if shared and index > 0:
                break
            color = ("black" if stem == res.VAR_E_TRAIN else "0.5") if shared else \
                PALETTE[groups.index(group) % len(PALETTE)]
            label = metric_label(stem) + ("" if shared else f" · {group.label}")
            ax.axhline(mean, color=color, linestyle=style, linewidth=1.4, label=label)
            if np.isfinite(sem) and sem > 0:
                ax.axhspan(mean - sem, mean + sem, color=color, alpha=0.1, linewidth=0)
