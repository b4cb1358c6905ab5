"""Sweep reports: collect run folders into tables, aggregate over seeds, draw figures, write HTML.

`isingaug-report SWEEP_DIR [...]` (report/cli.py) is the entry point; each module does one step:
collect (files -> one row per run), aggregate (mean ± sem over seeds), series (summary -> plotted
lines), plots (matplotlib primitives), figures (which figures the data support), html (the page),
build (the whole flow, every file written atomically).
"""
