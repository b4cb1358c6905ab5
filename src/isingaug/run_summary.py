"""The one-screen table a run ends with: conditions as columns, the key metrics as rows.

Printed with rich to the console at the end of every single run (and logged as plain text in a
sweep job, whose console is a log file), so obs, obs with a tuned L2, aug and aug_obs are read
side by side without opening results.json.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from isingaug import results as res

#: Per-condition rows, in the order shown (a row appears when any condition has it).
CONDITION_ROWS = (res.MSE_J, res.MSE_H, res.MSE_ALL, res.REL_ERR_J, res.TEST_LOGLIK,
                  res.TEST_PSEUDO_LOGLIK, res.IMPUTE_ACC, res.IMPUTE_ACC_SPIKE,
                  res.IMPUTE_ACC_SILENCE, res.IMPUTE_COND_LOGLIK, res.SOLVER_SECONDS)
#: Generated-pattern rows shown under the table when present.
GENERATED_ROWS = (res.GEN_KL_EXACT, res.GEN_TEST_LOGLIK, res.GEN_CONN_CORR_ERR_TRUE,
                  res.GEN_CONN_CORR_ERR_TRUE_FLOOR, res.GEN_TV_TRUE, res.GEN_TV_TRUE_FLOOR,
                  res.GEN_CONN_CORR_ERR_TEST, res.GEN_CONN_CORR_ERR_TEST_TRAIN,
                  res.GEN_COPY_FRACTION, res.GEN_AAI, res.GEN_STEPS, res.GEN_TRAIN_SECONDS,
                  res.GEN_SAMPLE_SECONDS)


def summary_table(metrics: Mapping[str, float], diagnostics: Mapping[str, Any],
                  seconds: Mapping[str, float], title: str) -> Table:
    """The table of one run's results; unconverged solves are marked with a '!'."""
    conditions = [c for c in res.CONDITIONS
                  if any(res.key(stem, c) in metrics for stem in CONDITION_ROWS)]
    table = Table(title=title, title_justify="left", min_width=min(len(title), 100))
    table.add_column("metric")
    for condition in conditions:
        converged = diagnostics.get(f"solver/{condition}", {}).get("converged", True)
        label = res.CONDITION_LABELS.get(condition, condition)
        table.add_column(label if converged is not False else f"{label} (!)", justify="right")
    for stem in CONDITION_ROWS:
        values = [metrics.get(res.key(stem, c)) for c in conditions]
        if any(v is not None for v in values):
            table.add_row(stem, *(_fmt(v) for v in values))
    extras = [(stem, metrics[stem]) for stem in GENERATED_ROWS if stem in metrics]
    # generator_fit / generator_sample are the gen/ timings above
    extras += [(f"seconds/{name}", seconds[name]) for name in ("data", "total") if name in seconds]
    if extras:
        table.add_section()
        for name, value in extras:
            table.add_row(name, _fmt(value), *([""] * (len(conditions) - 1)))
    if any(diagnostics.get(f"solver/{c}", {}).get("converged") is False for c in conditions):
        table.caption = "(!) the solver stopped before converging: see the warning above"
    return table


def render(table: Table, width: int = 110) -> str:
    """The table as plain text (for log files)."""
    console = Console(width=width, record=True, file=_Null())
    console.print(table)
    return console.export_text()


def unconverged_warning(condition: str, solver: str, diagnostics: Mapping[str, Any]) -> str | None:
    """The warning for a solve that stopped before converging (None when it converged)."""
    if diagnostics.get("converged") is not False:
        return None
    limit = diagnostics.get("limit_key", "solver.max_iter")
    return (f"{condition}: solver={solver} stopped unconverged after "
            f"{diagnostics.get('iterations')} iterations; raise {limit}, or regularise "
            f"(solver.l2=auto) if the couplings grow without bound")


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.4g}"


class _Null:
    """A file that discards what rich writes (export_text keeps the record)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
