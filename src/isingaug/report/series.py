"""From the summary table to what a figure draws: lines, bar groups and curves (no matplotlib).

Parameters split in two: data-side ones (n, M, g, solver, ...) change the obs result, generator-side
ones (generator, M_plus, max_steps, generator.*/trainer.* config) do not. So the obs line of a
setting is drawn once, however many generators ran on the same data, and against a
generator-side x axis (M_plus, training steps) it is a horizontal reference line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from isingaug.report.aggregate import CONDITIONS
from isingaug.report.collect import is_varying

AUG_CONDITIONS = ("aug", "aug_obs")
GENERATOR_SIDE = ("generator", "M_plus", "max_steps")
GENERATOR_PREFIXES = ("config.generator.", "config.trainer.", "config.callbacks.")
GENERATOR_ORDER = ("none", "bootstrap", "oracle", "diffusion", "vae", "rbm", "ff_rbm")
CONDITION_LABELS = {"obs": "obs", "aug": "aug", "aug_obs": "aug+obs",
                    "baseline_freq": "baseline: frequency",
                    "baseline_indep": "baseline: independent"}
SHORT_NAMES = {"M_plus": "M⁺", "max_steps": "steps"}


@dataclass
class Line:
    """One plotted line: x None means a horizontal reference (its single y over the whole axis)."""

    label: str
    condition: str
    x: np.ndarray | None
    y: np.ndarray
    err: np.ndarray
    data_key: tuple[Any, ...] = ()
    gen_key: tuple[Any, ...] = ()

    @property
    def points(self) -> int:
        return 0 if self.x is None else len(self.x)


@dataclass
class Bars:
    """Grouped bars of one metric: `mean`/`sem` are (group x condition) tables."""

    metric: str
    mean: pd.DataFrame
    sem: pd.DataFrame
    fixed: str = ""
    setting: dict[str, Any] = field(default_factory=dict)
    references: list[Line] = field(default_factory=list)


def is_generator_side(column: str) -> bool:
    return column in GENERATOR_SIDE or column.startswith(GENERATOR_PREFIXES)


def varying(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The columns with more than one value in `frame`."""
    return [c for c in columns if c in frame and is_varying(frame[c])]


def dependent_on(frame: pd.DataFrame, x: str, columns: Sequence[str]) -> list[str]:
    """Columns in one-to-one correspondence with x: they move with it (g_h = g by default, or
    M_plus scaled with M), so they split no line. A column that is merely constant per x value
    (a study run at its own M) is not one: merging it would join unrelated studies."""
    if not columns or frame.empty:
        return []
    pairs = frame[[x, *columns]].drop_duplicates()
    forward = pairs.groupby(x, dropna=False)[list(columns)].nunique(dropna=False)
    return [c for c in columns if (forward[c] <= 1).all()
            and (pairs.groupby(c, dropna=False)[x].nunique(dropna=False) <= 1).all()]


def short_name(column: str) -> str:
    return SHORT_NAMES.get(column, column.removeprefix("config."))


def fmt_value(value: Any) -> str:
    """Compact parameter values: 4000 not 4000.0, 0.5 not 0.500000, '–' for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else f"{value:g}"
    return str(value)


def key_label(keys: Sequence[str], values: Sequence[Any]) -> str:
    return ", ".join(f"{short_name(k)}={fmt_value(v)}" for k, v in zip(keys, values, strict=True))


def label_column(frame: pd.DataFrame, keys: Sequence[str], generator: bool = True) -> pd.Series:
    """A readable label per row ('diffusion · steps=1000, n=40'), built once per distinct
    setting; missing values and M⁺ of generator=none (meaningless there) are left out."""
    columns = (["generator"] if generator and "generator" in frame else [])
    columns += [k for k in keys if k != "generator" and k in frame]
    if not columns:
        return pd.Series("all runs", index=frame.index)
    codes = frame.groupby(columns, dropna=False, sort=False).ngroup()
    labels = [_setting_label(setting) for setting in
              frame[columns].drop_duplicates().to_dict("records")]
    return codes.map(dict(enumerate(labels)))


def _setting_label(setting: dict[str, Any]) -> str:
    name = setting.pop("generator", None)
    shown = {k: v for k, v in setting.items() if fmt_value(v) != "–"
             and not (k == "M_plus" and name == "none")}
    text = key_label(list(shown), list(shown.values()))
    if name is None:
        return text or "all runs"
    return f"{fmt_value(name)} · {text}" if text else fmt_value(name)


def generator_rank(values: pd.Series) -> pd.Series:
    """Sort order of generator names: the baselines first, then the paper's, then the rest."""
    order = {name: index for index, name in enumerate(GENERATOR_ORDER)}
    return values.map(lambda name: order.get(name, len(order)))


def _prefer_no_generator(frame: pd.DataFrame) -> pd.DataFrame:
    """generator=none rows first: their obs is the plain obs-only result."""
    if "generator" not in frame:
        return frame
    return frame.assign(_pref=(frame["generator"] != "none").astype(int)).sort_values(
        "_pref", kind="stable").drop(columns="_pref")


def condition_lines(summary: pd.DataFrame, params: Sequence[str], metric: str, x: str,
                    conditions: Sequence[str] = CONDITIONS, baselines: bool = False,
                    positive_x: bool = False) -> list[Line]:
    """Lines of `metric` against parameter x: one per setting of the other varying parameters
    and condition; obs (and baselines) once per data-side setting.

    Only settings with two or more x values make lines (pooled sweeps hold many settings that a
    given figure does not scan), and labels name only the parameters that differ between them.
    """
    if x not in summary:
        return []
    rows = summary[summary["metric"] == metric]
    wanted = rows["condition"].isin(list(conditions))
    if baselines:
        wanted |= rows["condition"].fillna("").str.startswith("baseline_")
    rows = rows[wanted]
    with_x = rows[rows[x].notna()]
    if positive_x:
        with_x = with_x[pd.to_numeric(with_x[x], errors="coerce") > 0]
    if with_x.empty:
        return []
    horizontal = is_generator_side(x)
    others = [p for p in varying(with_x, params) if p != x]
    moving = dependent_on(with_x, x, others)
    others = [p for p in others if p not in moving]
    data_all = [p for p in others if not is_generator_side(p)]
    is_aug = with_x["condition"].isin(AUG_CONDITIONS)
    aug = _with_trend(with_x[is_aug], x, [*others, "condition"])
    if horizontal:
        reference = rows[~rows["condition"].isin(AUG_CONDITIONS)]
        settings = aug[data_all].drop_duplicates()
        reference = reference.merge(settings, on=data_all) if data_all else reference
        if aug.empty:
            reference = reference.iloc[:0]
    else:
        reference = _with_trend(_prefer_no_generator(with_x[~is_aug])
                                .drop_duplicates([*data_all, "condition", x]),
                                x, [*data_all, "condition"])
    basis = aug if horizontal else pd.concat([aug, reference])
    if basis.empty:  # nothing has a trend: single points, which has_trend() reports as no figure
        aug, reference, basis = with_x[is_aug], with_x[~is_aug], with_x
    shown = [p for p in others if p in varying(basis, others)]
    data_keys = [p for p in shown if not is_generator_side(p)]
    gen_keys = [p for p in shown if is_generator_side(p) and p != "generator"]

    lines: list[Line] = []
    reference = _prefer_no_generator(reference).drop_duplicates(
        [*data_keys, "condition"] + ([] if horizontal else [x]))
    for key, part in reference.groupby(["condition", *data_keys], dropna=False, sort=False):
        condition, data_values = key[0], tuple(key[1:])
        label = CONDITION_LABELS.get(condition, condition)
        if data_keys:
            label += f" · {key_label(data_keys, data_values)}"
        lines.append(_line(part, None if horizontal else x, label, condition, data_values, ()))

    if not aug.empty:
        aug = aug.assign(_rank=generator_rank(aug["generator"]) if "generator" in aug else 0)
        aug = aug.sort_values("_rank", kind="stable")
        group_keys = [k for k in ("generator",) if k in aug] + gen_keys + data_keys
        for key, part in aug.groupby([*group_keys, "condition"], dropna=False, sort=False):
            values = dict(zip([*group_keys, "condition"], key, strict=True))
            condition = values["condition"]
            label = CONDITION_LABELS.get(condition, condition)
            if "generator" in values:
                label += f" · {fmt_value(values['generator'])}"
            named = gen_keys + data_keys
            if named:
                label += f" · {key_label(named, [values[k] for k in named])}"
            gen_values = tuple(values[k] for k in group_keys if k not in data_keys)
            lines.append(_line(part, x, label, condition,
                               tuple(values[k] for k in data_keys), gen_values))
    return [line for line in lines if line.x is None or line.points > 0]


def _with_trend(frame: pd.DataFrame, x: str, keys: Sequence[str]) -> pd.DataFrame:
    """The rows of the settings (grouped by keys) that have two or more x values."""
    if frame.empty:
        return frame
    counts = frame.groupby(list(keys), dropna=False, sort=False)[x].transform("nunique")
    return frame[counts >= 2]


def has_trend(lines: Sequence[Line], aug_only: bool = False) -> bool:
    """Whether some line (an aug line when aug_only) has two or more x values to connect."""
    return any(line.points >= 2 and (not aug_only or line.condition in AUG_CONDITIONS)
               for line in lines)


def _line(part: pd.DataFrame, x: str | None, label: str, condition: str,
          data_key: tuple[Any, ...], gen_key: tuple[Any, ...]) -> Line:
    part = part[part["mean"].notna()]
    if x is None:
        first = part.iloc[:1]
        return Line(label, condition, None, first["mean"].to_numpy(float),
                    first["sem"].to_numpy(float), data_key, gen_key)
    part = part.assign(_x=pd.to_numeric(part[x], errors="coerce")).sort_values("_x")
    return Line(label, condition, part["_x"].to_numpy(float), part["mean"].to_numpy(float),
                part["sem"].to_numpy(float), data_key, gen_key)


def reference_setting(rows: pd.DataFrame, params: Sequence[str]) -> dict[str, Any]:
    """The data-side setting most generators ran on (then the one with most rows), so that bars
    compare generators on equal terms; {} when no data-side parameter varies."""
    data_keys = [p for p in varying(rows, params) if not is_generator_side(p)]
    if not data_keys or rows.empty:
        return {}
    generators = rows["generator"] if "generator" in rows else pd.Series(0, index=rows.index)
    scores = (rows.assign(_gen=generators)
              .groupby(data_keys, dropna=False, sort=False)
              .agg(gens=("_gen", "nunique"), size=("_gen", "size")))
    best = scores.sort_values(["gens", "size"], ascending=False, kind="stable").index[0]
    best = best if isinstance(best, tuple) else (best,)
    return dict(zip(data_keys, best, strict=True))


def at_setting(frame: pd.DataFrame, setting: dict[str, Any]) -> pd.DataFrame:
    """The rows of one setting (missing values match missing values)."""
    mask = pd.Series(True, index=frame.index)
    for key, value in setting.items():
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        mask &= frame[key].isna() if missing else frame[key] == value
    return frame[mask]


def describe_setting(rows: pd.DataFrame, params: Sequence[str], setting: dict[str, Any]) -> str:
    """'n=40, M=2000': the setting's varying keys, or the constant headline parameters."""
    if setting:
        shown = {k: v for k, v in setting.items() if fmt_value(v) != "–"}
        return key_label(list(shown), list(shown.values()))
    fixed = [p for p in ("dataset", "n", "M", "g") if p in params and p in rows and len(rows)]
    return key_label(fixed, [rows[p].iloc[0] for p in fixed])


def bar_table(summary: pd.DataFrame, params: Sequence[str], metric: str,
              conditions: Sequence[str] = CONDITIONS,
              setting: dict[str, Any] | None = None) -> Bars | None:
    """Bars of `metric` per generator setting (generator + other generator-side parameters that
    vary) and condition, at one data-side setting; baselines as horizontal references."""
    rows = summary[summary["metric"] == metric]
    if rows.empty:
        return None
    if setting is None:
        setting = reference_setting(rows, params)
    fixed = describe_setting(rows, params, setting)
    rows = at_setting(rows, setting)
    gen_keys = [p for p in varying(rows, params) if is_generator_side(p) and p != "generator"]
    rows = rows.assign(_group=label_column(rows, gen_keys),
                       _condition=rows["condition"].fillna("value"),
                       _rank=generator_rank(rows["generator"]) if "generator" in rows else 0)
    rows = rows.sort_values("_rank", kind="stable")
    baseline = rows["_condition"].str.startswith("baseline_")
    shown = rows[~baseline & (rows["_condition"].isin(list(conditions))
                              | (rows["_condition"] == "value"))]
    if shown.empty:
        return None
    groups = list(dict.fromkeys(shown["_group"]))
    order = [c for c in (*conditions, "value") if c in set(shown["_condition"])]
    table = shown.drop_duplicates(["_group", "_condition"]).set_index(["_group", "_condition"])
    mean = table["mean"].unstack("_condition").reindex(index=groups, columns=order)
    sem = table["sem"].unstack("_condition").reindex(index=groups, columns=order)
    references = []
    refs = _prefer_no_generator(rows[baseline]).drop_duplicates("_condition")
    for condition, part in refs.groupby("_condition", sort=False):
        references.append(_line(part, None, CONDITION_LABELS.get(condition, condition),
                                str(condition), (), ()))
    return Bars(metric=metric, mean=mean, sem=sem, fixed=fixed, setting=setting,
                references=references)


@dataclass
class CurveGroup:
    """Energy-variance curves of one setting, averaged over seeds, with its reference values."""

    label: str
    steps: np.ndarray
    values: dict[str, tuple[np.ndarray, np.ndarray]]
    references: dict[str, tuple[float, float]]
    selected_step: float | None = None


CURVE_VALUES = ("var_E_gen/obs", "var_E_gen/true", "copy_fraction")


def curve_groups(curves: pd.DataFrame, params: Sequence[str]) -> list[CurveGroup]:
    """Mean ± sem over seeds of each curve value at each step, per setting."""
    values = [c for c in CURVE_VALUES if c in curves and curves[c].notna().any()]
    if curves.empty or not values:
        return []
    keys = [p for p in varying(curves, params) if p != "generator"]
    curves = curves.assign(_group=label_column(curves, keys))
    stats = curves.groupby(["_group", "step"], sort=True)[values].agg(["mean", "sem"])
    per_run = curves.drop_duplicates("run_dir")
    ref_columns = [c for c in per_run.columns if c.startswith("ev.var_E_")]
    ref_stats = per_run.groupby("_group")[ref_columns].agg(["mean", "sem"]) if ref_columns else None
    selected = None
    if "ev.selected_step" in per_run and "ev.select" in per_run:
        chosen = per_run[per_run["ev.select"] == "energy_variance"]
        selected = chosen.groupby("_group")["ev.selected_step"].mean()
    groups = []
    for label in dict.fromkeys(curves.sort_values("_group")["_group"]):
        block = stats.loc[label]
        refs: dict[str, tuple[float, float]] = {}
        if ref_stats is not None and label in ref_stats.index:
            refs = {c.removeprefix("ev."): (float(ref_stats.loc[label, (c, "mean")]),
                                            float(ref_stats.loc[label, (c, "sem")]))
                    for c in ref_columns}
        groups.append(CurveGroup(
            label=str(label), steps=block.index.to_numpy(float),
            values={v: (block[(v, "mean")].to_numpy(float), block[(v, "sem")].to_numpy(float))
                    for v in values},
            references=refs,
            selected_step=(float(selected[label]) if selected is not None
                           and label in selected.index else None)))
    return groups


def representatives(runs: pd.DataFrame, limit: int = 12) -> pd.DataFrame:
    """One run per (generator, max_steps) with saved parameters: the lowest seed. generator=none
    is left out when others exist, since their panels show the same obs fit."""
    have = runs[runs["params_file"].notna()] if "params_file" in runs else runs.iloc[:0]
    if have.empty:
        return have
    keys = [k for k in ("generator", "max_steps") if k in have]
    if "generator" in have and (have["generator"] != "none").any():
        have = have[have["generator"] != "none"]
    order = [k for k in ("seed",) if k in have]
    picked = have.sort_values(order, kind="stable").drop_duplicates(keys) if keys else have[:1]
    if "generator" in picked:
        rank = generator_rank(picked["generator"])
        steps = picked.get("max_steps", 0)
        picked = picked.assign(_rank=rank, _steps=steps).sort_values(["_rank", "_steps"])
        picked = picked.drop(columns=["_rank", "_steps"])
    return picked.head(limit)
