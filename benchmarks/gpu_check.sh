#!/usr/bin/env bash
# The GPU check: train the paper-size MSD500 config for a few hundred steps in fp32 and bf16 on synthetic crops,
# embed 500 synthetic 30-s files, search them; prints triplets/s, audio-s/s, ms/query and peak GPU memory.
# Needs no data and no network: it builds its inputs. Runs with whatever Python has torch here (a checkout's
# .venv first, else $PYTHON, else python3) and lists the packages it lacks.
#
#   bash benchmarks/gpu_check.sh            # on a CUDA machine (a few minutes on one GPU)
#   bash benchmarks/gpu_check.sh --cpu      # the same code path at a tiny size (make test runs it)
#   bash benchmarks/gpu_check.sh --steps 200 --files 500 --seconds 30
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in "$root/.venv/bin/python" python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import torch" >/dev/null 2>&1; then
      python="$candidate"; break
    fi
  done
fi
if [ -z "$python" ]; then
  echo "gpu_check: no Python with torch found (tried \$PYTHON, $root/.venv/bin/python, python3, python);" >&2
  echo "  install torch (the CUDA build) and rerun, or set PYTHON=/path/to/python" >&2
  exit 2
fi
cd "$root"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
uptime
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "$python" "$root/benchmarks/gpu_check.py" "$@"
