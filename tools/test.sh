#!/usr/bin/env bash
# The test command: the same set-up plus the test packages, then pytest (extra arguments go to pytest).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup.sh --test
# tests run on every core (pytest-xdist, from requirements-test.lock); `bash tools/test.sh -n 0` runs them in one process
exec .venv/bin/python -m pytest -q -n auto "$@"
