"""Matplotlib primitives shared by the figures: panels, lines with error bars, grouped bars, PNG.

Figures are built on the Agg canvas directly (no pyplot), so nothing global is touched, no window
opens and every figure is freed when it goes out of scope.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from isingaug import results as res
from isingaug.report.series import PER_GENERATOR, VALUE, Bars, Line, condition_label

PALETTE = [tuple(c) for c in colormaps["tab10"].colors]
GRAYS = ("black", "0.45", "0.7", "0.3", "0.6")
CONDITION_STYLE = {res.OBS: ("-", "o"), res.OBS_L2: ((0, (3, 1, 1, 1)), "D"),
                   res.AUG: ("--", "s"), res.AUG_OBS: (":", "^"), res.AUG_L2: ("--", "v"),
                   res.AUG_OBS_L2: (":", "<"), VALUE: ("-", "o")}
BASELINE_STYLE = {res.BASELINE_FREQ: ("-.", "x", "0.35"),
                  res.BASELINE_INDEP: ((0, (5, 2, 1, 2, 1, 2)), "+", "0.6")}
OTHER_BASELINE = (":", "*", "0.5")
CONDITION_COLORS = {res.OBS: "0.55", res.OBS_L2: "0.3", res.AUG: "tab:blue",
                    res.AUG_OBS: "tab:orange", res.AUG_L2: "tab:cyan", res.AUG_OBS_L2: "tab:red",
                    VALUE: "tab:green"}
REFERENCE_STYLE = (0, (2, 2))       # noise floors and training-data scores beside a metric
DPI = 100


def panels(count: int, ncols: int | None = None,
           size: tuple[float, float] = (5.0, 3.8)) -> tuple[Figure, list[Axes]]:
    """A figure of `count` axes in a grid (at most 3 per row unless told)."""
    ncols = ncols or min(count, 3)
    nrows = math.ceil(count / ncols)
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[count:]:
        fig.delaxes(ax)
    return fig, axes[:count]


def line_colors(lines: Sequence[Line]) -> list[object]:
    """One colour per setting. With a single generator setting, obs and its aug lines share the
    colour of their data setting (line style tells the condition apart); with several, obs lines
    are black/grey and each generator setting gets a colour."""
    gen_settings = list(dict.fromkeys(line.gen_key for line in lines
                                      if line.condition in PER_GENERATOR))
    data_settings = list(dict.fromkeys(line.data_key for line in lines))
    colors: list[object] = []
    for line in lines:
        if line.condition in res.BASELINE_CONDITIONS:
            colors.append(_baseline_style(line.condition)[2])
        elif len(gen_settings) <= 1 and line.condition != VALUE:
            colors.append(PALETTE[data_settings.index(line.data_key) % len(PALETTE)])
        elif line.condition in PER_GENERATOR:
            index = gen_settings.index(line.gen_key) * max(1, len(data_settings))
            index += data_settings.index(line.data_key)
            colors.append(PALETTE[index % len(PALETTE)])
        else:
            colors.append(GRAYS[data_settings.index(line.data_key) % len(GRAYS)])
    return colors


def draw_lines(ax: Axes, lines: Sequence[Line]) -> None:
    """Each line with its sem error bars; horizontal references with a ±sem band."""
    for line, color in zip(lines, line_colors(lines), strict=True):
        if line.condition in res.BASELINE_CONDITIONS:
            style, marker, _ = _baseline_style(line.condition)
        else:
            style, marker = CONDITION_STYLE.get(line.condition, ("-", "o"))
        if line.reference:
            style, marker = REFERENCE_STYLE, ""
        err = np.nan_to_num(line.err, nan=0.0)
        if line.x is None:
            if not len(line.y) or not np.isfinite(line.y[0]):
                continue
            ax.axhline(line.y[0], color=color, linestyle=style, linewidth=1.6, label=line.label)
            if err[0] > 0:
                ax.axhspan(line.y[0] - err[0], line.y[0] + err[0], color=color, alpha=0.12,
                           linewidth=0)
        else:
            ax.errorbar(line.x, line.y, yerr=err, color=color, linestyle=style, marker=marker,
                        markersize=5, capsize=3, linewidth=1.6, label=line.label)


def draw_bars(ax: Axes, bars: Bars) -> None:
    """Grouped bars (groups on x, one bar per condition) with sem error bars and references;
    points instead of bars when a value is negative."""
    groups = list(bars.mean.index)
    conditions = list(bars.mean.columns)
    width = 0.8 / max(1, len(conditions))
    centers = np.arange(len(groups), dtype=float)
    # bars grow from zero: for negative scores (log-likelihoods) points show the differences
    values = bars.mean.to_numpy(float)
    as_points = bool((values[np.isfinite(values)] < 0).any())
    for j, condition in enumerate(conditions):
        offsets = centers + (j - (len(conditions) - 1) / 2) * width
        heights = bars.mean[condition].to_numpy(float)
        errors = np.nan_to_num(bars.sem[condition].to_numpy(float), nan=0.0)
        present = np.isfinite(heights)
        label = condition_label(condition) or None
        color = CONDITION_COLORS.get(condition, "tab:green")
        if as_points:
            ax.errorbar(offsets[present], heights[present], yerr=errors[present], fmt="o",
                        capsize=3, color=color, label=label)
        else:
            ax.bar(offsets[present], heights[present], width * 0.95, yerr=errors[present],
                   capsize=3, color=color, label=label)
    for index, (label, floors) in enumerate(bars.floors.items()):
        for j, condition in enumerate(conditions):
            if condition not in floors:
                continue
            offsets = centers + (j - (len(conditions) - 1) / 2) * width
            heights = floors[condition].reindex(groups).to_numpy(float)
            present = np.isfinite(heights)
            ax.hlines(heights[present], offsets[present] - width * 0.48,
                      offsets[present] + width * 0.48, colors=GRAYS[index % len(GRAYS)],
                      linestyles=REFERENCE_STYLE, linewidth=1.6, label=label)
    for line in bars.references:
        style, _, color = _baseline_style(line.condition)
        if line.condition in res.SOLVED_CONDITIONS:     # the condition a ratio is taken to
            style, color = CONDITION_STYLE[line.condition][0], "black"
        elif line.reference:
            style, color = REFERENCE_STYLE, "black"
        if len(line.y) and np.isfinite(line.y[0]):
            ax.axhline(line.y[0], color=color, linestyle=style, linewidth=1.4, label=line.label)
    rotate = max((len(g) for g in groups), default=0) > 12 or len(groups) > 5
    ax.set_xticks(centers, groups, rotation=25 if rotate else 0, ha="right" if rotate else "center")


def auto_log_y(ax: Axes, values: Sequence[float] | np.ndarray, span: float = 20.0) -> None:
    """Log y when every value is positive and they span more than `span`."""
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    if array.size and (array > 0).all() and array.max() / array.min() > span:
        ax.set_yscale("log")


def auto_log_x(ax: Axes, values: Sequence[float] | np.ndarray, span: float = 20.0) -> None:
    array = np.asarray(values, dtype=float)
    array = array[np.isfinite(array)]
    if array.size and (array > 0).all() and array.max() / array.min() > span:
        ax.set_xscale("log")


def finish(fig: Figure, axes: Sequence[Axes], title: str) -> Figure:
    """The figure's title and its one shared legend: the last step of every multi-panel draw."""
    fig.suptitle(title)
    figure_legend(fig, axes)
    return fig


def figure_legend(fig: Figure, axes: Sequence[Axes]) -> None:
    """One legend for the whole figure, outside the axes on the right, each label once."""
    seen: dict[str, object] = {}
    for ax in axes:
        handles, labels = ax.get_legend_handles_labels()
        for handle, label in zip(handles, labels, strict=True):
            seen.setdefault(label, handle)
    if seen:
        width, height = fig.get_size_inches()
        longest = max(len(label) for label in seen)
        # room for the legend beside the panels, and for every entry in its height
        fig.set_size_inches(width + min(7.0, 0.9 + 0.065 * longest),
                            max(height, 0.21 * len(seen) + 0.8))
        fig.legend(list(seen.values()), list(seen), loc="outside right center",
                   fontsize="small", frameon=False)


def value_ticks(ax: Axes, values: Sequence[float] | np.ndarray, limit: int = 8) -> None:
    """Ticks at the scanned values (200, 400, 800, 4k, 100k) when they are few: easier to
    read than 2×10² on a log axis."""
    array = np.unique(np.asarray(values, dtype=float))
    array = array[np.isfinite(array)]
    if 0 < array.size <= limit:
        ax.set_xticks(array, [compact_number(v) for v in array])
        ax.xaxis.set_minor_formatter(NullFormatter())


def compact_number(value: float) -> str:
    """4000 -> 4000, 32000 -> 32k, 1e6 -> 1M, 0.5 -> 0.5."""
    if value >= 1e6 and value % 1e5 == 0:
        return f"{value / 1e6:g}M"
    if value >= 1e4 and value % 100 == 0:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def png_bytes(fig: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes, for an atomic write."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


def _baseline_style(condition: str) -> tuple[object, str, str]:
    return BASELINE_STYLE.get(condition, OTHER_BASELINE)
