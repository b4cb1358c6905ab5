"""What figures are planned from: the report's tables, and a planned figure (its name, caption,
how to draw it and the results keys it shows)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
from matplotlib.figure import Figure

from isingaug.report.series import GeneratorInfo
from isingaug.report.spec import Declared


@dataclass
class ReportData:
    """The tables figures are drawn from, and what the studies declare."""

    runs: pd.DataFrame
    summary: pd.DataFrame
    curves: pd.DataFrame
    params: list[str]
    info: GeneratorInfo = field(default_factory=GeneratorInfo)
    declared: Declared = field(default_factory=Declared)


@dataclass
class FigurePlan:
    """A figure the data support: its file name, caption, how to draw it, and the results keys
    it shows."""

    name: str
    title: str
    caption: str
    draw: Callable[[], Figure]
    keys: list[str] = field(default_factory=list)
    x: str | None = None
