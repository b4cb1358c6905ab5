"""The names of the files a run folder holds: one place for the pipeline that writes them and the
CLI, sweep summary and report that read them (kept free of torch, so the report starts fast)."""

RESULTS_FILE = "results.json"
PARAMS_FILE = "params.npz"
ERROR_FILE = "error.json"
SAMPLES_FILE = "samples/generated.npz"
