#!/usr/bin/env bash
# Upload the offline wandb runs under the given folders (default: outputs/) once online:
#   bash scripts/wandb_sync.sh outputs/multirun/sizes
# Runs already synced are skipped by wandb itself (--no-include-synced).
set -euo pipefail
cd "$(dirname "$0")/.."
WANDB=wandb
[ -x .venv/bin/wandb ] && WANDB=.venv/bin/wandb
mapfile -d '' runs < <(find "${@:-outputs}" -type d -name 'offline-run-*' -print0)
if [ "${#runs[@]}" -eq 0 ]; then
  echo "no offline wandb runs under ${*:-outputs}" >&2
  exit 0
fi
echo "syncing ${#runs[@]} offline run(s)" >&2
"$WANDB" sync --no-include-synced "${runs[@]}"
