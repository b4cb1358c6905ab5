"""Sweep reports: collect run folders into tables, aggregate over seeds, draw figures, write HTML.

`isingaug-report SWEEP_DIR [...]` (report/cli.py) is the entry point; each module does one step:
collect (files -> one row per run), params (a run's parameters from Hydra's overrides.yaml),
spec (the figures a study's `report:` block declares, and the default), aggregate (mean ± sem over
seeds, ratios to a condition), series (summary -> plotted lines and bars), plots (matplotlib
primitives), plan (a planned figure), figures (which figures the data support, and the keys
each shows), standard (couplings scatter, energy-variance curve), html (the page),
build (the whole flow, every file written atomically, report/index.json last but one). Every
result name comes from isingaug.results; the report never imports torch. docs/report.md.
"""
