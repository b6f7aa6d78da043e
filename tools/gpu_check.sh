#!/usr/bin/env bash
# GPU check: one prepared script for a machine with an NVIDIA GPU and no network (a Python 3.12 image with torch and
# torchvision). It installs netspec's other dependencies from wheels that travel with it (--wheels DIR, default
# tools/wheels: fill it beforehand with `pip download -d tools/wheels pydantic pyyaml networkx typer rich safetensors
# graphviz` on a machine with a network), then runs tools/gpu_bench.py under a time limit: resnet50 training (bf16,
# channels-last) netspec vs torchvision eager and compiled, a transformer LM (tokens/s, MFU) and the U-Net; then
# tools/bench_overhead.py on CUDA (spec-built vs torchvision/torch.nn with the same weights, forward and
# forward+backward, eager / channels-last / bf16 / CUDA graph / torch.compile) into OUTPUT's sibling
# overhead_cuda.md. Paste the tables it prints into BENCHMARKS.md with the card's name.
#
#   bash tools/gpu_check.sh [--wheels DIR] [--output FILE] [--dry-run]
#
# --dry-run: no GPU needed; every row runs on the CPU at toy sizes (what the tests run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

WHEELS=tools/wheels
OUTPUT=gpu_check.md
DRY=()
LIMIT=480            # seconds: the whole check fits in 8 minutes
while [[ $# -gt 0 ]]; do
  case "$1" in
    --wheels) WHEELS="$2"; shift 2 ;;
    --output) OUTPUT="$2"; shift 2 ;;
    --dry-run) DRY=(--dry-run); LIMIT=300; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

PY=${PYTHON:-python3}
[[ -x .venv/bin/python && -z "${PYTHON:-}" ]] && PY=.venv/bin/python

missing=$("$PY" - <<'EOF'
import importlib.util
need = {"pydantic": "pydantic", "yaml": "pyyaml", "networkx": "networkx", "typer": "typer", "rich": "rich",
        "safetensors": "safetensors", "graphviz": "graphviz", "torch": "torch", "torchvision": "torchvision"}
print(" ".join(pkg for mod, pkg in need.items() if importlib.util.find_spec(mod) is None))
EOF
)
if [[ -n "$missing" ]]; then
  if [[ ! -d "$WHEELS" ]]; then
    echo "gpu_check.sh: missing $missing and no wheel folder '$WHEELS' (see the header of this script)" >&2
    exit 1
  fi
  echo "installing $missing from $WHEELS (no network)" >&2
  "$PY" -m pip install --no-index --find-links "$WHEELS" $missing >&2
fi

timeout "$LIMIT" "$PY" tools/gpu_bench.py "${DRY[@]}" --output "$OUTPUT"

OVERHEAD="$(dirname "$OUTPUT")/overhead_cuda.md"
if [[ ${#DRY[@]} -gt 0 ]]; then    # the same script on the CPU at toy sizes: its CUDA-only rows say why they did not run
  timeout 240 "$PY" tools/bench_overhead.py --dry-run --models resnet18 --variants eager,channels_last,cuda_graph \
    --out "$OVERHEAD" >&2
else                               # rows are written as they finish: a run stopped by the time limit keeps them
  timeout 300 "$PY" tools/bench_overhead.py --device cuda --models resnet50,transformer --batch 32 --rounds 5 \
    --reps 5 --variants eager,channels_last,bf16,cuda_graph,compile --out "$OVERHEAD" >&2 || \
    echo "gpu_check.sh: the overhead benchmark stopped early (time limit); its finished rows are in $OVERHEAD" >&2
fi
