#!/usr/bin/env bash
# The main command: set everything up if needed, then run netspec on every bundled spec.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup.sh
NS=.venv/bin/netspec
echo "== netspec check specs/*.yaml"
$NS check specs/*.yaml
