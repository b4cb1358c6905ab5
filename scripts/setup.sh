#!/usr/bin/env bash
# Set up isingaug in ./.venv: torch (the pinned CPU build unless a torch is already there or an
# NVIDIA GPU is present), then the package in editable mode with its dev, launchers and nwb
# extras.
# The venv sees the system's site-packages, so a GPU user's existing CUDA torch is used as is.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv --system-site-packages .venv
fi
py=.venv/bin/python
# pip's own exit status counts; only its noise about missing local index folders is dropped.
pip() { "$py" -m pip install --quiet --disable-pip-version-check "$@" \
    2> >(grep -v "^WARNING: Location" >&2); }

if "$py" -c "import torch" 2>/dev/null; then
    echo "setup: torch $("$py" -c 'import torch; print(torch.__version__)') already installed; left as it is"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: NVIDIA GPU found and no torch: installing the CUDA build of torch"
    pip torch
else
    echo "setup: no CUDA: installing the CPU build torch==2.13.0"
    pip torch==2.13.0
fi
pip -e ".[dev,launchers,nwb]"
"$py" -c "import isingaug, torch; print(f'setup: isingaug {isingaug.__version__} ready, torch {torch.__version__}, cuda={torch.cuda.is_available()}')"
