"""The whole report: collect -> summarize -> tables -> figures -> index.html, written atomically.

Files are replaced one by one (temporary file + rename), so a reader such as a browser that is
open on the page never sees a half-written file; figures an earlier report made that this one does
not are removed, so index.html and figures/ always agree.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from isingaug.errors import DataError
from isingaug.io import write_bytes_atomic, write_json_atomic
from isingaug.report.aggregate import summarize
from isingaug.report.collect import INTEGER_COLUMNS, collect
from isingaug.report.figures import (
    ReportData,
    plan_figures,
    present_keys,
    stale_figures,
    undeclared_keys,
)
from isingaug.report.html import FigureEntry, render_page
from isingaug.report.plots import png_bytes
from isingaug.report.series import generator_info
from isingaug.report.spec import declared_figures

Message = Callable[[str], None]
FIGURES_DIR = "figures"
FAILURES_FILE = "failures.csv"
# What the report drew, for programs (and tests): each figure and the results keys it shows.
INDEX_FILE = "index.json"


def build_report(sweeps: Sequence[Path], out: Path | None = None,
                 progress: Message | None = None, warn: Message | None = None) -> Path:
    """Write the report for the runs under `sweeps` into `out` (default: first sweep/report)
    and return the path of its index.html."""
    say = progress or (lambda _message: None)
    alert = warn or (lambda _message: None)
    sweeps = [Path(s) for s in sweeps]
    out = Path(out) if out is not None else sweeps[0] / "report"
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: exists and is not a directory")

    collection = collect(sweeps, say)
    runs, params = collection.runs, collection.params
    summary = summarize(runs, params)
    seeds = [column for column in ("seed", "data_seed") if column in runs]
    repeated = int(runs.duplicated([*params, *seeds]).sum())
    notes = list(collection.notes)
    if repeated:
        notes.append(f"{repeated} runs repeat the setting and seed of another run (the same "
                     "job in two sweeps?); each counts as a seed of its own.")
        alert(f"warning: {notes[-1]}")
    say(f"aggregated {len(runs)} runs into {len(summary)} summary rows")

    files = [*write_table(out / "runs", runs, INTEGER_COLUMNS),
             *write_table(out / "summary", summary, INTEGER_COLUMNS)]
    failures_path = out / FAILURES_FILE
    if len(collection.failures):
        write_bytes_atomic(failures_path, collection.failures.to_csv(index=False).encode())
        files.append(FAILURES_FILE)
        say(f"{len(collection.failures)} failed or unfinished jobs listed in {failures_path}")
    else:
        with contextlib.suppress(FileNotFoundError):
            failures_path.unlink()

    declared = declared_figures(collection.blocks, alert)
    info = generator_info(runs, declared.generators)
    plans = plan_figures(ReportData(runs=runs, summary=summary, curves=collection.curves,
                                    params=params, info=info, declared=declared), warn=alert)
    made: list[FigureEntry] = []
    for index, plan in enumerate(plans, 1):
        say(f"figure {index}/{len(plans)}: {plan.name}")
        try:
            data = png_bytes(plan.draw())
        except Exception as err:  # one bad figure must not cost the rest of the report
            alert(f"warning: figure {plan.name} failed: {type(err).__name__}: {err}")
            notes.append(f"Figure {plan.name} could not be drawn: {err}")
            continue
        write_bytes_atomic(out / FIGURES_DIR / plan.name, data)
        made.append(FigureEntry(plan.name, plan.title, plan.caption, plan.keys, plan.x))
    figures_dir = out / FIGURES_DIR
    if figures_dir.is_dir():
        for path in stale_figures(figures_dir, [entry.name for entry in made]):
            path.unlink()

    drawn = {key for entry in made for key in entry.keys}
    undrawn = [key for key in present_keys(runs) if key not in drawn]
    if undrawn:
        notes.append(f"Declared metrics found in the runs but drawn in no figure: "
                     f"{', '.join(undrawn)}.")
        alert(f"warning: {notes[-1]}")
    undeclared = undeclared_keys(runs)
    if undeclared:
        notes.append(f"Keys that isingaug.results does not declare (in the tables, in no "
                     f"figure): {', '.join(undeclared)}.")
    write_json_atomic(out / INDEX_FILE, {
        "figures": [{"name": e.name, "title": e.title, "x": e.x, "keys": e.keys}
                    for e in made],
        "undrawn": undrawn, "undeclared": undeclared, "trials": collection.trials})
    files.append(INDEX_FILE)

    page = render_page(sources=collection.sources, runs=runs, summary=summary,
                       failures=collection.failures, params=params, figures=made, files=files,
                       notes=notes, trials=collection.trials)
    index_path = out / "index.html"
    write_bytes_atomic(index_path, page.encode())
    say(f"report written to {index_path}")
    return index_path


def write_table(stem: Path, frame: pd.DataFrame, integer_columns: Sequence[str]) -> list[str]:
    """`stem`.csv and `stem`.parquet, whole-number columns as nullable integers."""
    table = _integers(frame, integer_columns)
    csv_path, parquet_path = stem.with_suffix(".csv"), stem.with_suffix(".parquet")
    write_bytes_atomic(csv_path, table.to_csv(index=False).encode())
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    write_bytes_atomic(parquet_path, buffer.getvalue())
    return [csv_path.name, parquet_path.name]


def _integers(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Float columns holding only whole numbers (NaN aside) as Int64: 4000, not 4000.0."""
    converted = {}
    for column in dict.fromkeys(columns):
        if column in frame and pd.api.types.is_float_dtype(frame[column]):
            values = frame[column].dropna()
            if len(values) and (values == values.round()).all():
                converted[column] = frame[column].astype("Int64")
    return frame.assign(**converted) if converted else frame
