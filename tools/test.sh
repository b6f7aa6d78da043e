#!/usr/bin/env bash
# The test command: the same set-up plus the test packages, then pytest (extra arguments go to pytest).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup.sh --test
exec .venv/bin/python -m pytest -q "$@"
