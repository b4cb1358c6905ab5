"""The catalogue of figures: each is planned only when the data support it, then drawn.

Planning is cheap (pandas only) and decides the list up front, so progress can say "figure 3/7";
drawing happens one figure at a time and each PNG is written atomically before the next starts.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from isingaug.report.aggregate import CONDITIONS
from isingaug.report.plots import (
    CONDITION_COLORS,
    PALETTE,
    auto_log_x,
    auto_log_y,
    draw_bars,
    draw_lines,
    finish,
    panels,
    value_ticks,
)
from isingaug.report.series import (
    CONDITION_LABELS,
    Bars,
    CurveGroup,
    Line,
    at_setting,
    bar_table,
    condition_lines,
    curve_groups,
    fmt_value,
    has_trend,
    is_generator_side,
    representatives,
)

AXIS_LABELS = {"M": "observed patterns M", "M_plus": "generated patterns M⁺",
               "g": "coupling strength g", "g_h": "field strength g_h",
               "max_steps": "generator training steps"}
METRIC_LABELS = {"mse_J": "MSE of couplings J", "mse_all": "MSE of all parameters (h, J)",
                 "mse_h": "MSE of fields h", "gen/aai": "adversarial accuracy indicator",
                 "gen/copy_fraction": "fraction of copied training patterns",
                 "impute_acc": "imputation accuracy", "impute_spike_acc": "spike accuracy",
                 "impute_silence_acc": "silence accuracy",
                 "impute_cond_loglik": "conditional log-likelihood"}
LOG_X = ("M", "M_plus")
MSE_METRICS = ("mse_J", "mse_all")
IMPUTE_METRICS = ("impute_acc", "impute_spike_acc", "impute_silence_acc", "impute_cond_loglik")
CURVE_LABELS = {"var_E_gen/obs": "Var[E] under θ̂_obs", "var_E_gen/true": "Var[E] under θ_true",
                "copy_fraction": "copy fraction of generated patterns"}


@dataclass
class ReportData:
    """The tables figures are drawn from."""

    runs: pd.DataFrame
    summary: pd.DataFrame
    curves: pd.DataFrame
    params: list[str]


@dataclass
class FigurePlan:
    """A figure the data support: its file name, caption for the page, and how to draw it."""

    name: str
    title: str
    caption: str
    draw: Callable[[], Figure]


def plan_figures(data: ReportData,
                 warn: Callable[[str], None] | None = None) -> list[FigurePlan]:
    """Every figure the data support, in page order. A planner that fails on odd data is
    reported through `warn` and skipped: one figure must not cost the rest of the report."""
    planners: list[tuple[str, Callable[[], FigurePlan | None]]] = [
        ("mse_vs_M.png", lambda: _mse_vs(
            data, "M", "mse_vs_M.png", "Parameter error vs observed sample size",
            "MSE of the inferred couplings (and of all parameters) against M, one line per "
            "setting and condition; obs = observed data alone.")),
        ("mse_vs_M_plus.png", lambda: _mse_vs(
            data, "M_plus", "mse_vs_M_plus.png", "Parameter error vs generated sample size",
            "aug (generated only) and aug+obs against M⁺; the obs-only result is the "
            "horizontal line (band: ± sem).")),
        ("mse_vs_g.png", lambda: _mse_vs(
            data, "g", "mse_vs_g.png", "Parameter error vs coupling strength",
            "obs vs aug vs aug+obs against the coupling strength g.")),
        ("mse_vs_g_h.png", lambda: _mse_vs(
            data, "g_h", "mse_vs_g_h.png", "Parameter error vs field strength",
            "obs vs aug vs aug+obs against the field strength g_h.")),
        ("scatter_J.png", lambda: _scatter(data)),
        ("energy_variance.png", lambda: _energy_variance(data)),
        ("mse_vs_steps.png", lambda: _mse_vs(
            data, "max_steps", "mse_vs_steps.png", "Parameter error vs training steps",
            "MSE after augmenting with a generator trained for a given number of steps; "
            "the obs-only result is the horizontal line.")),
        ("generators.png", lambda: _generators(data)),
        ("impute.png", lambda: _imputation(data)),
    ]
    plans = []
    for name, planner in planners:
        try:
            plan = planner()
        except Exception as err:  # odd data in one figure must not stop the report
            if warn is not None:
                warn(f"warning: figure {name} skipped: {type(err).__name__}: {err}")
            continue
        if plan is not None:
            plans.append(plan)
    return plans


def _mse_vs(data: ReportData, x: str, name: str, title: str, caption: str) -> FigurePlan | None:
    """MSE panels (mse_J, mse_all) against parameter x, when some line has a trend in x."""
    summary = data.summary
    if x not in summary or (x == "g_h" and _same_axis(summary, "g", "g_h")):
        return None
    horizontal = is_generator_side(x)
    content = {metric: condition_lines(summary, data.params, metric, x,
                                       positive_x=x in LOG_X or x == "max_steps")
               for metric in MSE_METRICS}
    content = {m: lines for m, lines in content.items() if has_trend(lines, aug_only=horizontal)}
    if not content:
        return None

    def draw() -> Figure:
        fig, axes = panels(len(content))
        for ax, (metric, lines) in zip(axes, content.items(), strict=True):
            draw_lines(ax, lines)
            xs = np.concatenate([line.x for line in lines if line.x is not None])
            if x in LOG_X:
                ax.set_xscale("log")
            else:
                auto_log_x(ax, xs, span=50)
            value_ticks(ax, xs)
            auto_log_y(ax, np.concatenate([line.y for line in lines]), span=10)
            ax.set_xlabel(AXIS_LABELS.get(x, x))
            ax.set_ylabel(METRIC_LABELS.get(metric, metric))
            ax.grid(alpha=0.3, which="both")
        return finish(fig, axes, f"{title} (mean ± sem over seeds)")

    return FigurePlan(name, title, caption, draw)


def _same_axis(summary: pd.DataFrame, a: str, b: str) -> bool:
    """Whether two parameters move together one-to-one (g_h = g by default): one figure is
    enough."""
    if a not in summary or b not in summary:
        return False
    pairs = summary[[a, b]].dropna().drop_duplicates()
    return bool(len(pairs)) and not pairs[a].duplicated().any() and not pairs[b].duplicated().any()


def _scatter(data: ReportData) -> FigurePlan | None:
    """Inferred vs true couplings of one representative run per generator / training length."""
    picked = representatives(data.runs)
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
                           label=f"{CONDITION_LABELS[condition]} (MSE {mse:.2g})", linewidths=0)
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

    return FigurePlan("scatter_J.png", "Inferred vs true couplings",
                      "J_ij inferred per condition against the truth for one representative run "
                      "(lowest seed) per generator and training length; dashed: the diagonal.",
                      draw)


def _scatter_entry(row: dict) -> tuple[str, np.ndarray, dict[str, np.ndarray]] | None:
    """(panel title, true upper-triangle couplings, {condition: inferred ones}), or None when
    the file is unreadable or has no truth."""
    try:
        with np.load(row["params_file"]) as arrays:
            if "J_true" not in arrays.files:
                return None
            true = np.asarray(arrays["J_true"], dtype=float)
            upper = np.triu_indices(true.shape[0], 1)
            couplings = {c: np.asarray(arrays[f"J_{c}"], dtype=float)[upper]
                         for c in CONDITIONS if f"J_{c}" in arrays.files}
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


def _energy_variance(data: ReportData) -> FigurePlan | None:
    """Var[E] of generated patterns over training against the train/test references."""
    groups = curve_groups(data.curves, data.params)
    if not groups:
        return None
    values = [v for v in ("var_E_gen/obs", "var_E_gen/true", "copy_fraction")
              if any(v in g.values for g in groups)]

    def draw() -> Figure:
        fig, axes = panels(len(values))
        for ax, value in zip(axes, values, strict=True):
            _draw_curves(ax, groups, value)
        return finish(fig, axes,
                      "Energy variance of generated patterns during training (mean ± sem)")

    return FigurePlan("energy_variance.png", "Energy variance vs training steps",
                      "Var[E] of generated patterns during training, energies under the parameters "
                      "inferred from the observed data (θ̂_obs) and under the truth, against the "
                      "training (dashed) and test (dotted) patterns; dash-dot: the selected step.",
                      draw)


def _draw_curves(ax, groups: Sequence[CurveGroup], value: str) -> None:
    suffix = value.rsplit("/", 1)[-1] if value.startswith("var_E_gen/") else None
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
    if suffix is not None:
        _draw_references(ax, groups, suffix)
    auto_log_x(ax, steps[steps > 0], span=50)
    ax.set_xlabel("training step")
    ax.set_ylabel(CURVE_LABELS.get(value, value))
    ax.grid(alpha=0.3, which="both")


def _draw_references(ax, groups: Sequence[CurveGroup], suffix: str) -> None:
    """Train and test Var[E]; once in black/grey when every setting shares them."""
    for which, style in (("train", "--"), ("test", ":")):
        key = f"var_E_{which}/{suffix}"
        refs = [(g, g.references[key]) for g in groups if key in g.references
                and np.isfinite(g.references[key][0])]
        if not refs:
            continue
        shared = np.allclose([r[1][0] for r in refs], refs[0][1][0], rtol=1e-9)
        for index, (group, (mean, sem)) in enumerate(refs):
            if shared and index > 0:
                break
            color = ("black" if which == "train" else "0.5") if shared else \
                PALETTE[groups.index(group) % len(PALETTE)]
            label = f"{which} patterns" + ("" if shared else f" · {group.label}")
            ax.axhline(mean, color=color, linestyle=style, linewidth=1.4, label=label)
            if np.isfinite(sem) and sem > 0:
                ax.axhspan(mean - sem, mean + sem, color=color, alpha=0.1, linewidth=0)


def _generators(data: ReportData) -> FigurePlan | None:
    """Grouped bars per generator and condition, with generator-quality scores when present."""
    summary = data.summary
    if "generator" not in summary:
        return None
    main = bar_table(summary, data.params, "mse_J")
    if main is None:
        return None
    chosen = at_setting(summary[summary["metric"] == "mse_J"], main.setting)
    if chosen["generator"].nunique() < 2:
        return None
    extra = [bar_table(summary, data.params, metric, setting=main.setting)
             for metric in ("gen/aai", "gen/copy_fraction")]
    content = [main, *[bars for bars in extra if bars is not None]]

    def draw() -> Figure:
        fig, axes = panels(len(content), size=(5.5, 4.0))
        for ax, bars in zip(axes, content, strict=True):
            draw_bars(ax, bars)
            ax.set_ylabel(METRIC_LABELS.get(bars.metric, bars.metric))
            auto_log_y(ax, bars.mean.to_numpy(float).ravel(), span=100)
            ax.grid(alpha=0.3, axis="y")
        return finish(fig, axes, f"Generators compared ({main.fixed}; mean ± sem over seeds)"
                      if main.fixed else "Generators compared (mean ± sem over seeds)")

    return FigurePlan("generators.png", "Generators compared",
                      "Coupling MSE per generator and condition (and the generators' adversarial "
                      "accuracy indicator and copy fraction when measured), at the data setting "
                      "most generators share.", draw)


def _imputation(data: ReportData) -> FigurePlan | None:
    """Missing-value reconstruction vs M per generator and condition, with the baselines; bars
    when M does not vary."""
    summary = data.summary
    metrics = [m for m in IMPUTE_METRICS if (summary["metric"] == m).any()]
    if not metrics:
        return None
    lines = {m: condition_lines(summary, data.params, m, "M", baselines=True) for m in metrics}
    if any(has_trend(found) for found in lines.values()):
        content: dict[str, list[Line] | Bars] = {m: v for m, v in lines.items() if has_trend(v)}
        name, title = "impute_vs_M.png", "Missing-value reconstruction vs M"
        caption = ("Reconstruction of hidden test entries under θ̂ per condition against M, "
                   "with the frequency and independent-model baselines (grey).")
    else:
        bars = {m: bar_table(summary, data.params, m) for m in metrics}
        content = {m: b for m, b in bars.items() if b is not None}
        if not content:
            return None
        name, title = "impute_bars.png", "Missing-value reconstruction"
        caption = ("Reconstruction of hidden test entries under θ̂ per generator and condition, "
                   "with the frequency and independent-model baselines (grey lines).")

    def draw() -> Figure:
        fig, axes = panels(len(content), ncols=min(len(content), 2))
        for ax, (metric, item) in zip(axes, content.items(), strict=True):
            if isinstance(item, Bars):
                draw_bars(ax, item)
                finite = item.mean.to_numpy(float)
                finite = finite[np.isfinite(finite)]
                if finite.size and metric != "impute_cond_loglik":
                    low = min([float(finite.min())] + [float(r.y[0]) for r in item.references])
                    ax.set_ylim(bottom=max(0.0, low - 0.1 * (1 - low)))
            else:
                draw_lines(ax, item)
                ax.set_xscale("log")
                value_ticks(ax, np.concatenate([ln.x for ln in item if ln.x is not None]))
                ax.set_xlabel(AXIS_LABELS["M"])
            ax.set_ylabel(METRIC_LABELS.get(metric, metric))
            ax.grid(alpha=0.3, which="both")
        return finish(fig, axes, f"{title} (mean ± sem over seeds)")

    return FigurePlan(name, title, caption, draw)


def stale_figures(folder: Path, keep: Sequence[str]) -> list[Path]:
    """PNGs left in figures/ by an earlier report that this one does not make."""
    return [path for path in folder.glob("*.png") if path.name not in set(keep)]
