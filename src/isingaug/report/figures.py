"""The catalogue of figures: what each study declares (its `report:` block, or the default), the
inferred-vs-true couplings and the energy-variance curve, then every declared metric that no figure
drew yet, grouped as the vocabulary groups them. Each is planned only when the data support it.

Planning is cheap (pandas only) and decides the list up front, so progress can say "figure 3/7";
drawing happens one figure at a time. Each plan lists the results keys it shows, which the report
writes to report/index.json: every declared metric found in a run is drawn somewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from isingaug import results as res
from isingaug.report.aggregate import relative_runs, summarize
from isingaug.report.plan import FigurePlan, ReportData
from isingaug.report.plots import (
    auto_log_x,
    auto_log_y,
    draw_bars,
    draw_lines,
    finish,
    panels,
    value_ticks,
)
from isingaug.report.series import (
    VALUE,
    Bars,
    GeneratorInfo,
    Line,
    bar_table,
    condition_label,
    condition_lines,
    has_trend,
    is_generator_side,
    key_label,
    metric_label,
    varying,
)
from isingaug.report.spec import (
    DEFAULT_AXES,
    FigureSpec,
    column_of,
    default_figures,
    reference_owner,
    references_of,
)
from isingaug.report.standard import ENERGY_VARIANCE, SCATTER, energy_variance, scatter

AXIS_LABELS = {"M": "observed patterns M", "M_plus": "generated patterns M⁺",
               "g": "coupling strength g", "g_h": "field strength g_h",
               "max_steps": "generator training steps"}
LOG_X = ("M", "M_plus", "max_steps")
CATCH_ALL = "metrics_"


Content = list[Line] | Bars


@dataclass
class Panel:
    """One axes of a figure: a metric's lines or bars, at one panel setting."""

    stem: str
    content: Content
    title: str = ""
    relative_to: str | None = None


def plan_figures(data: ReportData,
                 warn: Callable[[str], None] | None = None) -> list[FigurePlan]:
    """Every figure the data support, in page order. A figure that fails on odd data is
    reported through `warn` and skipped: one figure must not cost the rest of the report."""
    alert = warn or (lambda _message: None)
    specs = data.declared.figures or default_figures(data.summary, data.params)
    plans: list[FigurePlan] = []

    def attempt(name: str, planner: Callable[[], FigurePlan | None]) -> None:
        try:
            plan = planner()
        except Exception as err:  # odd data in one figure must not stop the report
            alert(f"warning: figure {name} skipped: {type(err).__name__}: {err}")
            return
        if plan is not None and plan.name not in {p.name for p in plans}:
            plans.append(plan)

    for spec in specs:
        if spec.only_without and any(p.name == f"{spec.only_without}.png" for p in plans):
            continue
        attempt(spec.file, lambda spec=spec: plan_spec(data, spec))
    attempt(f"{SCATTER}.png", lambda: scatter(data))
    attempt(f"{ENERGY_VARIANCE}.png", lambda: energy_variance(data))
    for spec in leftover_specs(data, plans):
        attempt(spec.file, lambda spec=spec: plan_spec(data, spec))
    return plans


def present_keys(runs: pd.DataFrame) -> list[str]:
    """The declared metrics' results keys that hold a value in some run."""
    return [c for c in runs.columns if res.metric_of(c) is not None and "/" in c
            and pd.to_numeric(runs[c], errors="coerce").notna().any()]


def undeclared_keys(runs: pd.DataFrame) -> list[str]:
    """Metric-like keys the vocabulary does not declare (drawn nowhere; listed on the page)."""
    return [c for c in runs.columns if "/" in c and "." not in c and res.metric_of(c) is None]


def leftover_specs(data: ReportData, plans: Sequence[FigurePlan]) -> list[FigureSpec]:
    """One figure per metric group for the declared metrics no figure drew: against the first
    scanned axis that gives them a trend, else as bars per generator."""
    drawn = {key for plan in plans for key in plan.keys}
    stems = list(dict.fromkeys(res.split_key(key)[0] for key in present_keys(data.runs)
                               if key not in drawn))
    stems = [s for s in stems if reference_owner(s) is None or reference_owner(s) not in stems]
    ordered = [s for s in res.METRICS if s in stems]
    groups: dict[str, list[str]] = {}
    for stem in ordered:
        groups.setdefault(res.METRICS[stem].group, []).append(stem)
    scanned = varying(data.summary, data.params)
    axes = [a for a in DEFAULT_AXES if a in scanned]
    axes += [p for p in scanned if p not in axes and p != "generator"
             and pd.api.types.is_numeric_dtype(data.summary[p])]
    specs = []
    for group, members in groups.items():
        base = FigureSpec(name=f"{CATCH_ALL}{group}", y=tuple(members), source="leftover",
                          title=f"More metrics: {group}",
                          caption=f"The {group} metrics that no figure above shows, "
                                  "as the vocabulary (isingaug.results) declares them.")
        specs += [replace(base, name=f"{base.name}_vs_{a.removeprefix('config.')}", x=a)
                  for a in axes[:1]]
        specs.append(replace(base, name=f"{base.name}_bars",
                             caption=base.caption + " Bars at the data setting most generators "
                                                    "share."))
    return _drop_drawn(specs, data, plans)


def _drop_drawn(specs: list[FigureSpec], data: ReportData,
                plans: Sequence[FigurePlan]) -> list[FigureSpec]:
    """Leftover bars only for the metrics the leftover lines could not draw."""
    out: list[FigureSpec] = []
    drawn = {key for plan in plans for key in plan.keys}
    for spec in specs:
        if spec.name.endswith("_bars"):
            lines = next((s for s in out if s.name.startswith(spec.name.removesuffix("_bars"))
                          and s.x), None)
            if lines is not None:
                plan = plan_spec(data, lines)
                shown = set(plan.keys) if plan else set()
                rest = tuple(stem for stem in spec.y
                             if not any(res.split_key(k)[0] == stem for k in shown | drawn))
                if not rest:
                    continue
                spec = replace(spec, y=rest)
        out.append(spec)
    return out


def plan_spec(data: ReportData, spec: FigureSpec) -> FigurePlan | None:
    """A declared figure: one panel per (panel setting, metric) that has something to draw."""
    summary = _summary_for(data, spec)
    x = column_of(spec.x, summary) if spec.x else None
    if spec.x and x is None:
        return None
    if x == "g_h" and _same_axis(summary, "g", "g_h"):
        return None
    panel_columns = [c for c in (column_of(p, summary) for p in spec.panels) if c is not None]
    stems = [s for s in spec.y if (summary["metric"] == s).any()]
    rows_any = summary[summary["metric"].isin(stems)]
    panel_columns = varying(rows_any, panel_columns)
    params = [p for p in data.params if p not in panel_columns]
    settings = (rows_any[panel_columns].drop_duplicates().to_dict("records")
                if panel_columns else [{}])
    found: list[Panel] = []
    keys: list[str] = []
    for setting in settings:
        part = summary
        for column, value in setting.items():
            part = part[part[column] == value] if pd.notna(value) else part[part[column].isna()]
        title = key_label(list(setting), list(setting.values())) if setting else ""
        for stem in stems:
            content, shown = _content(part, params, spec, stem, x, data.info)
            if content is not None:
                found.append(Panel(stem, content, title, spec.relative_to))
                keys += shown
    if not found:
        return None
    if x is None and spec.min_groups > 1 and isinstance(found[0].content, Bars) \
            and len(found[0].content.mean.index) < spec.min_groups:
        return None
    if spec.relative_to:
        keys += [res.key(stem, spec.relative_to) for stem in stems
                 if res.METRICS[stem].scope == "condition"
                 and res.key(stem, spec.relative_to) in data.runs]
    title = spec.title or _default_title(spec, x)
    caption = spec.caption or _default_caption(spec, x)
    bars = [p.content for p in found if isinstance(p.content, Bars)]
    fixed = bars[0].fixed if bars and not bars[0].setting else ""
    ncols = len(stems) if len(settings) > 1 and len(stems) <= 4 else min(len(found), 3)

    def draw() -> Figure:
        fig, axes = panels(len(found), ncols=ncols,
                           size=(5.5, 4.0) if x is None else (5.0, 3.8))
        for ax, panel in zip(axes, found, strict=True):
            _draw_panel(ax, panel, x)
        where = f"{fixed}; " if fixed else ""
        return finish(fig, axes, f"{title} ({where}mean ± sem over seeds)")

    return FigurePlan(spec.file, title, caption, draw, list(dict.fromkeys(keys)), x)


def _summary_for(data: ReportData, spec: FigureSpec) -> pd.DataFrame:
    """The summary a spec draws from: with relative_to, per-run ratios of its per-condition
    metrics (mean ± sem of the ratio over seeds), beside the plain rows of its gen/ metrics."""
    if not spec.relative_to:
        return data.summary
    stems = [s for s in spec.y if res.METRICS[s].scope == "condition"]
    ratios = summarize(relative_runs(data.runs, data.params, stems, spec.relative_to),
                       data.params)
    plain = data.summary[~data.summary["metric"].isin(stems)]
    return pd.concat([ratios, plain], ignore_index=True)


def _content(part: pd.DataFrame, params: Sequence[str], spec: FigureSpec, stem: str,
             x: str | None, info: GeneratorInfo) -> tuple[Content | None, list[str]]:
    """The lines (with x) or bars of one metric in one panel, and the keys they show."""
    conditions = list(spec.conditions) if spec.conditions else None
    if x is not None:
        positive = x in LOG_X
        lines = condition_lines(part, params, stem, x, conditions, info, positive_x=positive)
        if not has_trend(lines, aug_only=is_generator_side(x)):
            return None, []
        keys = [_key(stem, line.condition) for line in lines]
        for sibling in references_of(stem):
            extra = condition_lines(part, params, sibling, x, conditions, info,
                                    positive_x=positive)
            suffix = _reference_name(sibling)
            for line in extra:
                line.reference, line.label = True, f"{line.label} · {suffix}"
            lines += [line for line in extra if line.x is None or line.points]
            keys += [_key(sibling, line.condition) for line in extra]
        if spec.relative_to and res.METRICS[stem].scope == "condition":
            lines.append(Line(f"{condition_label(spec.relative_to)} (= 1)", spec.relative_to,
                              None, np.array([1.0]), np.array([0.0])))
        return lines, keys
    bars = bar_table(part, params, stem, conditions, info=info)
    if bars is None or bars.mean.isna().all().all():
        return None, []
    keys = [_key(stem, c) for c in bars.mean.columns if bars.mean[c].notna().any()]
    keys += [_key(stem, line.condition) for line in bars.references]
    for sibling in references_of(stem):
        floor = bar_table(part, params, sibling, conditions, setting=bars.setting, info=info)
        if floor is not None:
            bars.floors[_reference_name(sibling)] = floor.mean
            keys += [_key(sibling, c) for c in floor.mean.columns if floor.mean[c].notna().any()]
    if spec.relative_to and res.METRICS[stem].scope == "condition":
        bars.references.append(Line(f"{condition_label(spec.relative_to)} (= 1)",
                                    spec.relative_to, None, np.array([1.0]), np.array([0.0])))
    return bars, keys


def _key(stem: str, condition: str) -> str:
    return stem if condition == VALUE else res.key(stem, condition)


def _reference_name(stem: str) -> str:
    """'noise floor' from 'connected-correlation error vs truth: noise floor'."""
    return metric_label(stem).rsplit(": ", 1)[-1]


def _draw_panel(ax, panel: Panel, x: str | None) -> None:
    label = metric_label(panel.stem)
    metric = res.METRICS.get(panel.stem)
    if panel.relative_to and metric is not None and metric.scope == "condition":
        label = f"{label} / {condition_label(panel.relative_to)}"
    if metric is not None and metric.lower_is_better is not None:
        label += " (lower is better)" if metric.lower_is_better else " (higher is better)"
    if isinstance(panel.content, Bars):
        draw_bars(ax, panel.content)
        values = panel.content.mean.to_numpy(float).ravel()
        auto_log_y(ax, values, span=100)
        ax.grid(alpha=0.3, axis="y")
        fixed = panel.content.fixed if panel.content.setting else ""
        ax.set_title(" · ".join(t for t in (panel.title, fixed) if t), fontsize="small")
    else:
        lines = panel.content
        draw_lines(ax, lines)
        xs = np.concatenate([line.x for line in lines if line.x is not None])
        if x in LOG_X and x != "max_steps" and (xs > 0).all():
            ax.set_xscale("log")
        else:
            auto_log_x(ax, xs, span=50)
        value_ticks(ax, xs)
        auto_log_y(ax, np.concatenate([line.y for line in lines]), span=10)
        ax.set_xlabel(AXIS_LABELS.get(x or "", (x or "").removeprefix("config.")))
        ax.grid(alpha=0.3, which="both")
        if panel.title:
            ax.set_title(panel.title, fontsize="small")
    ax.set_ylabel(label, fontsize="small")


def _default_title(spec: FigureSpec, x: str | None) -> str:
    what = ", ".join(metric_label(s) for s in spec.y[:2]) + (" …" if len(spec.y) > 2 else "")
    return f"{what} vs {AXIS_LABELS.get(x, x)}" if x else f"{what} per generator"


def _default_caption(spec: FigureSpec, x: str | None) -> str:
    if x is None:
        return ("Per generator and condition at the data setting most generators share; "
                "grey lines: baselines; dashed: noise floors where measured.")
    return ("One line per setting and condition; obs = the observed data alone, drawn as a "
            "horizontal line (band: ± sem) against a generator-side axis.")


def _same_axis(summary: pd.DataFrame, a: str, b: str) -> bool:
    """Whether two parameters move together one-to-one (g_h = g by default): one figure is
    enough."""
    if a not in summary or b not in summary:
        return False
    pairs = summary[[a, b]].dropna().drop_duplicates()
    return bool(len(pairs)) and not pairs[a].duplicated().any() and not pairs[b].duplicated().any()


def stale_figures(folder, keep: Sequence[str]) -> list:
    """PNGs left in figures/ by an earlier report that this one does not make."""
    return [path for path in folder.glob("*.png") if path.name not in set(keep)]
