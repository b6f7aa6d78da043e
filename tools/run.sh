#!/usr/bin/env bash
# The main command: set everything up if needed, then run netspec on every bundled spec:
# check them, compile each to standalone PyTorch source and draw each as SVG, into out/ (git-ignored).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup.sh
NS=.venv/bin/netspec
mkdir -p out
echo "== netspec check specs/*"
$NS check specs/*.yaml
for spec in specs/*.yaml; do
  name=$(basename "$spec" .yaml)
  $NS compile "$spec" -o "out/$name.py"
  $NS draw "$spec" -o "out/$name.svg"
done
echo "== outputs in out/: model sources (*.py) and diagrams (*.svg)"
