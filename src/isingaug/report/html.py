"""The static index.html: headline tables, every figure by relative path, failures, all runs.

The page is self-contained apart from the PNGs beside it, so the report folder can be copied or
served as it is. A small inline script records on window load how many images decoded and any
error, in `data-loaded` / `data-errors` on <body>, so a headless browser can check the page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from isingaug import results as res
from isingaug.report.series import fmt_value, short_name, varying

HEADLINE_METRICS = (res.MSE_J, res.MSE_ALL, res.MSE_H, res.REL_ERR_J, res.IMPUTE_ACC,
                    res.IMPUTE_ACC_SPIKE, res.IMPUTE_ACC_SILENCE, res.IMPUTE_COND_LOGLIK,
                    res.GEN_AAI, res.GEN_COPY_FRACTION, res.GEN_KL_EXACT,
                    res.GEN_CONN_CORR_ERR_TRUE)
MAX_ERROR_CHARS = 600

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1400px; padding: 1rem 2rem 3rem; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem;
margin-top: 2.2rem; } figure { margin: 1.5rem 0; } figure img { max-width: 100%; height: auto;
border: 1px solid #eee; } figcaption { color: #555; font-size: 0.92rem; max-width: 70rem; }
.meta { color: #555; font-size: 0.92rem; } .scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; position: sticky; top: 0; } tr:nth-child(even) td { background: #fafafa; }
table.failures td, table.failures th { text-align: left; white-space: normal; }
table.failures td { max-width: 60rem; font-family: ui-monospace, monospace; font-size: 0.8rem; }
nav a { margin-right: 1rem; } .ok { color: #2a7a2a; } .bad { color: #b02a2a; }
"""

# Records, for headless checks, how many images decoded and which errors happened.
LOAD_CHECK = """
(function () {
  var errors = [];
  window.onerror = function (message) { errors.push(String(message)); };
  window.addEventListener("error", function (event) {
    var target = event.target;
    if (target && target.tagName === "IMG") {
      errors.push("image failed to load: " + target.getAttribute("src"));
    }
  }, true);
  window.addEventListener("load", function () {
    var images = Array.prototype.slice.call(document.images);
    var loaded = images.filter(function (img) {
      return img.complete && img.naturalWidth > 0;
    }).length;
    document.body.dataset.loaded = loaded + "/" + images.length;
    document.body.dataset.errors = String(errors.length);
    if (errors.length) { document.body.dataset.errorMessages = errors.join(" | "); }
  });
})();
"""


@dataclass
class FigureEntry:
    """A figure on the page: file name under figures/, heading and caption."""

    name: str
    title: str
    caption: str
    keys: list[str] = field(default_factory=list)     # results keys the figure shows
    x: str | None = None


def render_page(*, sources: Sequence[Path], runs: pd.DataFrame, summary: pd.DataFrame,
                failures: pd.DataFrame, params: Sequence[str], figures: Sequence[FigureEntry],
                files: Sequence[str], notes: Sequence[str] = (),
                trials: Sequence[dict[str, Any]] = ()) -> str:
    """The whole page as a string."""
    settings = _settings_count(summary, params)
    failed = len(failures)
    status = (f'<span class="bad">{failed} failed or unfinished</span>' if failed
              else '<span class="ok">no failures</span>')
    links = " · ".join(f'<a href="{html.escape(name)}">{html.escape(name)}</a>' for name in files)
    source_list = "".join(f"<li><code>{html.escape(str(s))}</code></li>" for s in sources)
    nav = ['<a href="#figures">figures</a>', '<a href="#summary">summary</a>',
           '<a href="#failures">failures</a>', '<a href="#runs">runs</a>']
    if trials:
        nav.insert(0, '<a href="#optuna">best trial</a>')
    fixed = _fixed_parameters(runs, params)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>isingaug report</title>",
        f"<style>{STYLE}</style>",
        f"<script>{LOAD_CHECK}</script>",
        "</head><body>",
        "<h1>isingaug report</h1>",
        f'<p class="meta">{len(runs)} runs in {settings} settings · {status} · '
        f'{len(figures)} figures</p>',
        f'<p class="meta">Sources:</p><ul class="meta">{source_list}</ul>',
        f'<p class="meta">Fixed parameters: {html.escape(fixed)}</p>' if fixed else "",
        f'<p class="meta">Tables: {links}</p>',
        "".join(f'<p class="meta">{html.escape(note)}</p>' for note in notes),
        f"<nav>{''.join(nav)}</nav>",
        _trials(trials),
        '<h2 id="figures">Figures</h2>',
        _figures(figures),
        '<h2 id="summary">Summary (mean ± sem over seeds, n = seeds)</h2>',
        '<p class="meta">sem = std / √n with ddof = 1 (blank for a single seed). Every metric is '
        'in summary.csv; this table shows the headline ones.</p>',
        _headline(summary, params),
        '<h2 id="failures">Failures</h2>',
        _failures(failures),
        f'<h2 id="runs">Runs ({len(runs)})</h2>',
        _runs(runs, params),
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def _trials(trials: Sequence[dict[str, Any]]) -> str:
    """The best trial of each Optuna sweep (Hydra's optimization_results.yaml)."""
    if not trials:
        return ""
    parts = ['<h2 id="optuna">Best trial (Optuna sweep)</h2>']
    for trial in trials:
        parts.append(f'<p class="meta">Sweep <code>{html.escape(str(trial["sweep"]))}</code> '
                     f'({html.escape(str(trial.get("name", "")))})</p>')
        solutions = trial.get("solutions")
        if solutions is None:
            solutions = [{"params": trial.get("best_params") or {},
                          "values": [trial.get("best_value")]}]
        rows = [{**{"objective value(s)": ", ".join(fmt_value(v) for v in s.get("values", []))},
                 **{str(k): fmt_value(v) for k, v in (s.get("params") or {}).items()}}
                for s in solutions if isinstance(s, dict)]
        table = pd.DataFrame(rows).fillna("").to_html(index=False, border=0)
        parts.append(f'<div class="scroll">{table}</div>')
    return "\n".join(parts)


def _figures(figures: Sequence[FigureEntry]) -> str:
    if not figures:
        return "<p>No figure: no parameter varies enough to draw one.</p>"
    items = [f'<figure id="{html.escape(f.name)}"><h3>{html.escape(f.title)}</h3>'
             f'<img src="figures/{html.escape(f.name)}" alt="{html.escape(f.title)}">'
             f"<figcaption>{html.escape(f.caption)}</figcaption></figure>" for f in figures]
    return "\n".join(items)


def _settings_count(summary: pd.DataFrame, params: Sequence[str]) -> int:
    columns = [p for p in params if p in summary]
    if summary.empty:
        return 0
    return len(summary.drop_duplicates(columns)) if columns else 1


def _fixed_parameters(runs: pd.DataFrame, params: Sequence[str]) -> str:
    shown = varying(runs, params)
    fixed = [p for p in params if p in runs and p not in shown and runs[p].notna().any()]
    return ", ".join(f"{short_name(p)}={fmt_value(runs[p].iloc[0])}" for p in fixed)


def _display(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Parameter columns as compact strings (4000, not 4000.0; '–' for missing)."""
    return frame.assign(**{c: frame[c].map(fmt_value) for c in columns})


def _cell(mean: float, sem: float) -> str:
    if not math.isfinite(mean):
        return ""
    return f"{mean:.3g} ± {sem:.2g}" if math.isfinite(sem) else f"{mean:.3g}"


def headline_table(summary: pd.DataFrame, params: Sequence[str]) -> pd.DataFrame:
    """Headline metrics wide: one row per setting, one column per metric/condition key."""
    keep = summary["metric"].isin(HEADLINE_METRICS) & (
        summary["condition"].isin(list(res.CONDITIONS)) | summary["condition"].isna())
    rows = summary[keep]
    if rows.empty:
        return pd.DataFrame()
    shown = varying(summary, params)
    rows = _display(rows, shown).assign(
        cell=[_cell(m, s) for m, s in zip(rows["mean"], rows["sem"], strict=True)])
    index = shown or ["setting"]
    if not shown:
        rows = rows.assign(setting="all runs")
    order = rows.drop_duplicates(index)[index]
    key_order = list(dict.fromkeys(rows.sort_values(
        "metric", key=lambda m: m.map(HEADLINE_METRICS.index), kind="stable")["key"]))
    cells = rows.drop_duplicates([*index, "key"]).set_index([*index, "key"])["cell"]
    table = cells.unstack("key").reindex(columns=key_order)
    counts = rows.groupby(index, sort=False)["count"].max()
    table.insert(0, "seeds", counts)
    table = table.reindex(pd.MultiIndex.from_frame(order) if len(index) > 1
                          else pd.Index(order[index[0]]))
    table.index.names = [short_name(c) for c in index]
    table.columns.name = None
    return table.fillna("")


def _headline(summary: pd.DataFrame, params: Sequence[str]) -> str:
    table = headline_table(summary, params)
    if table.empty:
        return "<p>No headline metric in these runs; see summary.csv.</p>"
    return f'<div class="scroll">{table.reset_index().to_html(index=False, border=0)}</div>'


def _failures(failures: pd.DataFrame) -> str:
    if failures.empty:
        return '<p class="ok">No failed or unfinished jobs.</p>'
    columns = [c for c in ("run_dir", "type", "error", "overrides") if c in failures]
    shown = failures[columns].fillna("").astype(str)
    shown["error"] = shown["error"].str.slice(0, MAX_ERROR_CHARS)
    table = shown.to_html(index=False, border=0, classes="failures")
    return (f'<p class="bad">{len(failures)} jobs failed or did not finish '
            f'(all listed in failures.csv):</p><div class="scroll">{table}</div>')


def _runs(runs: pd.DataFrame, params: Sequence[str]) -> str:
    shown = varying(runs, params)
    seeds = [c for c in ("seed", "data_seed") if c in runs and c not in shown]
    metrics = [c for c in runs.columns if "/" in c and "." not in c
               and res.split_key(c)[0] in HEADLINE_METRICS]
    table = _display(runs[["run_dir", *shown, *seeds, *metrics]], [*shown, *seeds])
    body = table.to_html(index=False, border=0, float_format=lambda v: f"{v:.4g}", na_rep="")
    return f'<details><summary>show all runs</summary><div class="scroll">{body}</div></details>'
