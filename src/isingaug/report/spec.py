"""The figures a study declares (the `report:` block of its experiment file), checked against the
results vocabulary, and the default for sweeps that declare none.

A block, in a study's YAML (nothing in a run reads it; docs/report.md):

    report:
      generators: [bootstrap, rbm, diffusion]     # optional: the order of generators in figures
      figures:
        - name: mse_vs_M                  # figures/<name>.png
          title: ...                      # optional; caption: ... too
          x: dataset.M                    # a parameter; without x: bars per generator
          y: [mse_J, mse_all]             # declared metrics (isingaug.results), one panel each
          lines: [condition, generator]   # what tells lines (bars: groups) apart
          panels: [dataset.n]             # optional: a row of panels per value
          conditions: [obs, aug, aug_obs] # optional: the conditions drawn (default: all)
          relative_to: obs                # optional: per-condition metrics over the same run's obs
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from isingaug import results as res
from isingaug.report.params import CONFIG_RUN

CONDITION = "condition"
GENERATOR = "generator"
SPEC_KEYS = ("name", "title", "caption", "x", "y", "lines", "panels", "conditions",
             "relative_to")
BLOCK_KEYS = ("figures", "generators")
_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")
# The reference siblings of a metric: declared beside it, drawn with it, never a score.
REFERENCE_SUFFIXES = ("_floor", "_train")
# The default figures' metrics: the paper's parameter errors; imputation is its metric group.
HEADLINE_ERRORS = (res.MSE_J, res.MSE_ALL)
IMPUTATION_GROUP = res.METRICS[res.IMPUTE_ACC].group
# Sweep axes of the default figures, in page order (any other numeric parameter follows).
DEFAULT_AXES = ("M", "M_plus", "g", "g_h", "max_steps")


@dataclass(frozen=True)
class FigureSpec:
    """One declared figure (see the module docstring)."""

    name: str
    y: tuple[str, ...]
    x: str | None = None
    lines: tuple[str, ...] = ()
    panels: tuple[str, ...] = ()
    conditions: tuple[str, ...] | None = None
    relative_to: str | None = None
    title: str = ""
    caption: str = ""
    source: str = ""
    min_groups: int = 1              # bars: fewer generator settings than this draw nothing
    only_without: str | None = None  # drawn only when that figure has nothing to draw

    @property
    def file(self) -> str:
        return f"{self.name}.png"


@dataclass
class Declared:
    """Every study's figures (first declaration of a name wins) and generator order."""

    figures: list[FigureSpec] = field(default_factory=list)
    generators: list[str] = field(default_factory=list)


def block_problems(block: Any, where: str = "report") -> list[str]:
    """What is wrong with a `report:` block, each naming the key; [] when it is fine."""
    if not isinstance(block, dict):
        return [f"{where} must be a mapping with `figures` (and optionally `generators`)"]
    problems = [f"{where}.{key}: unknown key (allowed: {', '.join(BLOCK_KEYS)})"
                for key in block if key not in BLOCK_KEYS]
    order = block.get("generators", [])
    if not isinstance(order, list) or not all(isinstance(g, str) for g in order):
        problems.append(f"{where}.generators must be a list of generator names")
    figures = block.get("figures", [])
    if not isinstance(figures, list):
        return [*problems, f"{where}.figures must be a list of figures"]
    for index, figure in enumerate(figures):
        problems += _figure_problems(figure, f"{where}.figures[{index}]")
    return problems


def _figure_problems(figure: Any, where: str) -> list[str]:
    if not isinstance(figure, dict):
        return [f"{where} must be a mapping"]
    problems = [f"{where}.{key}: unknown key (allowed: {', '.join(SPEC_KEYS)})"
                for key in figure if key not in SPEC_KEYS]
    name = figure.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(f"{where}.name must be a file name (letters, digits, _ . + -); "
                        f"got {name!r}")
    y = figure.get("y")
    if not isinstance(y, list) or not y:
        problems.append(f"{where}.y must be a non-empty list of metrics")
    else:
        problems += [f"{where}.y: {stem!r} is not a declared metric (isingaug.results.METRICS)"
                     for stem in y if stem not in res.METRICS]
    for key in ("lines", "panels", "conditions"):
        value = figure.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"{where}.{key} must be a list of names")
    problems += [f"{where}.conditions: {c!r} is not a condition (one of "
                 f"{', '.join(res.CONDITIONS)})" for c in figure.get("conditions") or ()
                 if isinstance(c, str) and c not in res.CONDITIONS]
    relative = figure.get("relative_to")
    if relative is not None and relative not in res.SOLVED_CONDITIONS:
        problems.append(f"{where}.relative_to must be one of {', '.join(res.SOLVED_CONDITIONS)}; "
                        f"got {relative!r}")
    for key in ("x", "title", "caption"):
        if figure.get(key) is not None and not isinstance(figure[key], str):
            problems.append(f"{where}.{key} must be a string")
    return problems


def declared_figures(blocks: Sequence[tuple[str, dict[str, Any]]],
                     warn: Callable[[str], None]) -> Declared:
    """The figures of every study's block; a bad entry is reported and left out."""
    declared = Declared()
    seen: dict[str, FigureSpec] = {}
    for study, block in blocks:
        where = f"report of study {study or '(none)'}"
        for problem in block_problems(block, where):
            warn(f"warning: {problem}")
        if not isinstance(block, dict):
            continue
        order = block.get("generators")
        if isinstance(order, list):
            declared.generators += [g for g in order if isinstance(g, str)
                                    and g not in declared.generators]
        figures = block.get("figures")
        for figure in figures if isinstance(figures, list) else []:
            if _figure_problems(figure, ""):
                continue
            spec = FigureSpec(
                name=figure["name"], y=tuple(figure["y"]), x=figure.get("x"),
                lines=tuple(figure.get("lines") or ()), panels=tuple(figure.get("panels") or ()),
                conditions=tuple(figure["conditions"]) if figure.get("conditions") else None,
                relative_to=figure.get("relative_to"), title=figure.get("title") or "",
                caption=figure.get("caption") or "", source=study)
            earlier = seen.get(spec.name)
            if earlier is None:
                seen[spec.name] = spec
                declared.figures.append(spec)
            elif replace(earlier, source=study) != spec:
                warn(f"warning: {where}: figure {spec.name} is declared differently by study "
                     f"{earlier.source or '(none)'}; that first declaration is drawn")
    return declared


def column_of(param: str, frame: pd.DataFrame) -> str | None:
    """The column a declared parameter names: a column itself (`M`, `generator`), the run.*
    column that reports a config key (`dataset.M` -> `M`), or `config.<key>`."""
    for candidate in (param, CONFIG_RUN.get(param), f"config.{param}"):
        if candidate is not None and candidate in frame:
            return candidate
    return None


def default_figures(summary: pd.DataFrame, params: Sequence[str]) -> list[FigureSpec]:
    """For sweeps that declare nothing: the parameter errors against every scanned axis, the
    imputation scores against M, and generators side by side."""
    from isingaug.report.series import varying  # series imports this module

    axes = [a for a in DEFAULT_AXES if a in params]
    axes += [p for p in varying(summary, params) if p not in axes and p != GENERATOR
             and pd.api.types.is_numeric_dtype(summary[p])]
    imputation = tuple(stem for stem, metric in res.METRICS.items()
                       if metric.group == IMPUTATION_GROUP)
    specs = [FigureSpec(name=f"mse_vs_{axis.removeprefix('config.')}", x=axis, y=HEADLINE_ERRORS,
                        lines=(CONDITION, GENERATOR), source="default") for axis in axes]
    if "M" in params:
        specs.append(FigureSpec(name="impute_vs_M", x="M", y=imputation,
                                lines=(CONDITION, GENERATOR), source="default"))
    specs.append(FigureSpec(name="generators", y=(res.MSE_J, res.GEN_AAI, res.GEN_COPY_FRACTION),
                            lines=(GENERATOR, CONDITION), source="default", min_groups=2))
    specs.append(FigureSpec(name="impute_bars", y=imputation, lines=(GENERATOR, CONDITION),
                            source="default", only_without="impute_vs_M"))
    return specs


def references_of(stem: str) -> list[str]:
    """The declared reference siblings of a metric (`gen/kl_true_floor` of `gen/kl_true`)."""
    return [f"{stem}{suffix}" for suffix in REFERENCE_SUFFIXES
            if f"{stem}{suffix}" in res.METRICS
            and res.METRICS[f"{stem}{suffix}"].lower_is_better is None]


def reference_owner(stem: str) -> str | None:
    """The metric a reference sibling belongs to, or None for a metric of its own."""
    for suffix in REFERENCE_SUFFIXES:
        owner = stem.removesuffix(suffix)
        if owner != stem and owner in res.METRICS and stem in references_of(owner):
            return owner
    return None
