"""From the summary table to what a figure draws: lines, bar groups and curves (no matplotlib).

Parameters split in two: data-side ones (n, M, g, solver, ...) change the obs result, generator-side
ones (generator, M_plus, max_steps, generator.*/trainer.* config) do not. So the obs line of a
setting is drawn once, however many generators ran on the same data, and against a
generator-side x axis (M_plus, training steps) it is a horizontal reference line. Scores of the
generated patterns (gen/...) have no condition: they are drawn as one "value" per generator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from isingaug import results as res
from isingaug.report.collect import is_varying

VALUE = "value"          # the pseudo-condition of a gen/ score (one value per run)
#: What is drawn per generator: the conditions that vary with it and its gen/ values.
PER_GENERATOR = (*res.GENERATOR_CONDITIONS, VALUE)
GENERATOR_SIDE = ("generator", "M_plus", "max_steps")
GENERATOR_PREFIXES = ("config.generator.", "config.trainer.", "config.callbacks.")
SHORT_NAMES = {"M_plus": "M⁺", "max_steps": "steps"}


@dataclass(frozen=True)
class GeneratorInfo:
    """What the runs say about each generator: their order in figures, and which produce no
    samples (their runs hold only the observed conditions). Read from results.json `run`
    (`trainable`, `produces_samples`), never from a list of names."""

    rank: dict[str, int] = field(default_factory=dict)
    plain: frozenset[str] = frozenset()

    def order(self, values: pd.Series) -> pd.Series:
        return values.map(lambda name: self.rank.get(name, len(self.rank)))

    def is_plain(self, name: Any) -> bool:
        return name in self.plain


def generator_info(runs: pd.DataFrame, declared: Sequence[str] = ()) -> GeneratorInfo:
    """Generators in the study's declared order, else: those that produce no samples, then the
    untrained baselines (run.trainable false), then the rest, alphabetically within each."""
    if "generator" not in runs or runs.empty:
        return GeneratorInfo()
    aug_keys = [c for c in runs.columns if res.split_key(c)[1] in res.GENERATOR_CONDITIONS]
    has_aug = runs[aug_keys].notna().any(axis=1) if aug_keys else pd.Series(False, runs.index)
    samples = runs["produces_samples"] if "produces_samples" in runs else \
        pd.Series(np.nan, index=runs.index)
    samples = samples.where(samples.notna(), has_aug).astype(bool)
    trainable = runs["trainable"] if "trainable" in runs else pd.Series(np.nan, index=runs.index)
    names = runs["generator"].astype(str)
    plain, kind = set(), {}
    for name, rows in runs.groupby(names, sort=False):
        if not samples[rows.index].any():
            plain.add(name)
        known = trainable[rows.index].dropna()
        kind[name] = 0 if name in plain else 1 if len(known) and not known.astype(bool).any() \
            else 2
    ordered = sorted(kind, key=lambda name: (name not in declared,
                                             list(declared).index(name) if name in declared
                                             else kind[name], name))
    return GeneratorInfo({name: index for index, name in enumerate(ordered)}, frozenset(plain))


def condition_label(condition: Any) -> str:
    """The page's name of a condition (the vocabulary's), '' for a gen/ value."""
    if condition is None or condition == VALUE or (isinstance(condition, float)
                                                   and math.isnan(condition)):
        return ""
    return res.CONDITION_LABELS.get(condition, str(condition))


def metric_label(stem: str) -> str:
    """The declared label of a metric, or its stem for an undeclared one."""
    metric = res.METRICS.get(stem)
    return metric.label if metric is not None else stem


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
    reference: bool = False     # a noise floor or a training-data score drawn beside a metric

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
    floors: dict[str, pd.DataFrame] = field(default_factory=dict)  # label -> group x condition


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


def label_column(frame: pd.DataFrame, keys: Sequence[str], info: GeneratorInfo | None = None,
                 generator: bool = True) -> pd.Series:
    """A readable label per row ('diffusion · steps=1000, n=40'), built once per distinct
    setting; missing values and the M⁺ of a generator without samples are left out."""
    info = info or GeneratorInfo()
    columns = (["generator"] if generator and "generator" in frame else [])
    columns += [k for k in keys if k != "generator" and k in frame]
    if not columns:
        return pd.Series("all runs", index=frame.index)
    codes = frame.groupby(columns, dropna=False, sort=False).ngroup()
    labels = [_setting_label(setting, info) for setting in
              frame[columns].drop_duplicates().to_dict("records")]
    return codes.map(dict(enumerate(labels)))


def _setting_label(setting: dict[str, Any], info: GeneratorInfo) -> str:
    name = setting.pop("generator", None)
    shown = {k: v for k, v in setting.items() if fmt_value(v) != "–"
             and not (k == "M_plus" and info.is_plain(name))}
    text = key_label(list(shown), list(shown.values()))
    if name is None:
        return text or "all runs"
    return f"{fmt_value(name)} · {text}" if text else fmt_value(name)


def _prefer_plain(frame: pd.DataFrame, info: GeneratorInfo) -> pd.DataFrame:
    """Rows of generators without samples first: their obs is the plain obs-only result."""
    if "generator" not in frame:
        return frame
    plain = frame["generator"].map(info.is_plain).astype(bool)
    return frame.assign(_pref=(~plain).astype(int)).sort_values(
        "_pref", kind="stable").drop(columns="_pref")


def _is_aug(conditions: pd.Series) -> pd.Series:
    """Rows drawn per generator: the augmented conditions and the gen/ values."""
    return conditions.isin(list(PER_GENERATOR)) | conditions.isna()


def _within_generator(frame: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """The keys that take more than one value for some generator: a key fixed by the generator
    (the training length of a study where every learned generator trains alike) names nothing
    the generator does not already."""
    if "generator" not in frame:
        return list(keys)
    return [k for k in keys
            if (frame.groupby("generator", dropna=False)[k].nunique(dropna=False) > 1).any()]


def metric_rows(summary: pd.DataFrame, metric: str,
                conditions: Sequence[str] | None = None) -> pd.DataFrame:
    """The summary rows of one metric, gen/ values with condition VALUE; `conditions` keeps
    only those (baselines are kept when any baseline is listed or conditions is None)."""
    rows = summary[summary["metric"] == metric]
    rows = rows.assign(condition=rows["condition"].fillna(VALUE))
    if conditions is not None:
        rows = rows[rows["condition"].isin([*conditions, VALUE])]
    return rows


def condition_lines(summary: pd.DataFrame, params: Sequence[str], metric: str, x: str,
                    conditions: Sequence[str] | None = None, info: GeneratorInfo | None = None,
                    positive_x: bool = False) -> list[Line]:
    """Lines of `metric` against parameter x: one per setting of the other varying parameters
    and condition; obs, obs_l2 and the baselines once per data-side setting.

    Only settings with two or more x values make lines (pooled sweeps hold many settings that a
    given figure does not scan), and labels name only the parameters that differ between them.
    """
    info = info or GeneratorInfo()
    if x not in summary:
        return []
    rows = metric_rows(summary, metric, conditions)
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
    is_aug = _is_aug(with_x["condition"])
    aug = _with_trend(with_x[is_aug], x, [*others, "condition"])
    if horizontal:
        reference = rows[~_is_aug(rows["condition"])]
        settings = aug[data_all].drop_duplicates()
        reference = reference.merge(settings, on=data_all) if data_all else reference
        if aug.empty:
            reference = reference.iloc[:0]
    else:
        reference = _with_trend(_prefer_plain(with_x[~is_aug], info)
                                .drop_duplicates([*data_all, "condition", x]),
                                x, [*data_all, "condition"])
    basis = aug if horizontal else pd.concat([aug, reference])
    if basis.empty:  # nothing has a trend: single points, which has_trend() reports as no figure
        aug, reference, basis = with_x[is_aug], with_x[~is_aug], with_x
    shown = [p for p in others if p in varying(basis, others)]
    data_keys = [p for p in shown if not is_generator_side(p)]
    gen_keys = [p for p in shown if is_generator_side(p) and p != "generator"]

    lines: list[Line] = []
    order = {c: i for i, c in enumerate(res.CONDITIONS)}
    reference = _prefer_plain(reference, info).drop_duplicates(
        [*data_keys, "condition"] + ([] if horizontal else [x]))
    reference = reference.assign(_c=reference["condition"].map(order)).sort_values(
        "_c", kind="stable")
    for key, part in reference.groupby(["condition", *data_keys], dropna=False, sort=False):
        condition, data_values = key[0], tuple(key[1:])
        label = condition_label(condition)
        if data_keys:
            label += f" · {key_label(data_keys, data_values)}"
        lines.append(_line(part, None if horizontal else x, label, condition, data_values, ()))

    if not aug.empty:
        aug = aug.assign(_rank=info.order(aug["generator"]) if "generator" in aug else 0,
                         _c=aug["condition"].map(order))
        aug = aug.sort_values(["_rank", "_c"], kind="stable")
        group_keys = [k for k in ("generator",) if k in aug] + gen_keys + data_keys
        for key, part in aug.groupby([*group_keys, "condition"], dropna=False, sort=False):
            values = dict(zip([*group_keys, "condition"], key, strict=True))
            condition = values["condition"]
            label = " · ".join(t for t in (condition_label(condition),
                                           fmt_value(values["generator"])
                                           if "generator" in values else "") if t)
            named = _within_generator(aug, gen_keys) + data_keys
            if named:
                label += f" · {key_label(named, [values[k] for k in named])}"
            gen_values = tuple(values[k] for k in group_keys if k not in data_keys)
            lines.append(_line(part, x, label or metric_label(metric), condition,
                               tuple(values[k] for k in data_keys), gen_values))
    return [line for line in lines if line.x is None or line.points > 0]


def _with_trend(frame: pd.DataFrame, x: str, keys: Sequence[str]) -> pd.DataFrame:
    """The rows of the settings (grouped by keys) that have two or more x values."""
    if frame.empty:
        return frame
    counts = frame.groupby(list(keys), dropna=False, sort=False)[x].transform("nunique")
    return frame[counts >= 2]


def has_trend(lines: Sequence[Line], aug_only: bool = False) -> bool:
    """Whether some line (a per-generator line when aug_only) has two or more x values."""
    return any(line.points >= 2 and (not aug_only or line.condition in PER_GENERATOR)
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
              conditions: Sequence[str] | None = None, setting: dict[str, Any] | None = None,
              info: GeneratorInfo | None = None) -> Bars | None:
    """Bars of `metric` per generator setting (generator + other generator-side parameters that
    vary) and condition, at one data-side setting; baselines as horizontal references."""
    info = info or GeneratorInfo()
    rows = metric_rows(summary, metric, conditions)
    if rows.empty:
        return None
    if setting is None:
        setting = reference_setting(rows, params)
    fixed = describe_setting(rows, params, setting)
    rows = at_setting(rows, setting)
    gen_keys = [p for p in varying(rows, params) if is_generator_side(p) and p != "generator"]
    rows = rows.assign(_group=label_column(rows, _within_generator(rows, gen_keys), info),
                       _rank=info.order(rows["generator"]) if "generator" in rows else 0)
    rows = rows.sort_values("_rank", kind="stable")
    baseline = rows["condition"].isin(list(res.BASELINE_CONDITIONS))
    shown = rows[~baseline]
    if shown.empty:
        return None
    groups = list(dict.fromkeys(shown["_group"]))
    order = [c for c in (*res.CONDITIONS, VALUE) if c in set(shown["condition"])]
    table = shown.drop_duplicates(["_group", "condition"]).set_index(["_group", "condition"])
    mean = table["mean"].unstack("condition").reindex(index=groups, columns=order)
    sem = table["sem"].unstack("condition").reindex(index=groups, columns=order)
    references = []
    refs = _prefer_plain(rows[baseline], info).drop_duplicates("condition")
    for condition, part in refs.groupby("condition", sort=False):
        references.append(_line(part, None, condition_label(condition), str(condition), (), ()))
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


CURVE_STEP = "step"


def curve_values(curves: pd.DataFrame, params: Sequence[str]) -> list[str]:
    """The values a curve holds (whatever the callback recorded at each step)."""
    skip = {CURVE_STEP, "run_dir", *params, "seed", "data_seed"}
    return [c for c in curves.columns if c not in skip and not c.startswith("ev.")
            and pd.api.types.is_numeric_dtype(curves[c]) and curves[c].notna().any()]


def curve_groups(curves: pd.DataFrame, params: Sequence[str],
                 info: GeneratorInfo | None = None) -> list[CurveGroup]:
    """Mean ± sem over seeds of each curve value at each step, per setting."""
    values = curve_values(curves, params) if not curves.empty else []
    if not values:
        return []
    keys = [p for p in varying(curves, params) if p != "generator"]
    curves = curves.assign(_group=label_column(curves, keys, info))
    stats = curves.groupby(["_group", CURVE_STEP], sort=True)[values].agg(["mean", "sem"])
    per_run = curves.drop_duplicates("run_dir")
    ref_columns = [c for c in per_run.columns if c.startswith("ev.")
                   and res.split_key(c.removeprefix("ev."))[0] in (res.VAR_E_TRAIN,
                                                                   res.VAR_E_TEST)]
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


def representatives(runs: pd.DataFrame, info: GeneratorInfo | None = None,
                    limit: int = 12) -> pd.DataFrame:
    """One run per (generator, max_steps) with saved parameters: the lowest seed. Generators
    without samples are left out when others exist, since their panels show the same obs fit."""
    info = info or GeneratorInfo()
    have = runs[runs["params_file"].notna()] if "params_file" in runs else runs.iloc[:0]
    if have.empty:
        return have
    keys = [k for k in ("generator", "max_steps") if k in have]
    if "generator" in have:
        plain = have["generator"].map(info.is_plain).astype(bool)
        if (~plain).any():
            have = have[~plain]
    order = [k for k in ("seed",) if k in have]
    picked = have.sort_values(order, kind="stable").drop_duplicates(keys) if keys else have[:1]
    if "generator" in picked:
        steps = picked.get("max_steps", 0)
        picked = picked.assign(_rank=info.order(picked["generator"]), _steps=steps)
        picked = picked.sort_values(["_rank", "_steps"]).drop(columns=["_rank", "_steps"])
    return picked.head(limit)
