#!/usr/bin/env bash
# Set up netspec on a fresh Debian machine: Graphviz's `dot` (system package) when missing, a virtual
# environment at .venv in the repository root, and the exact package versions from requirements*.lock.
# Idempotent: a second run only compares a stamp and returns in well under a second.
#   bash tools/setup.sh          runtime packages
#   bash tools/setup.sh --test   runtime + test packages
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LOCK=requirements.lock
[[ "${1:-}" == "--test" ]] && LOCK=requirements-test.lock

if ! command -v dot >/dev/null 2>&1; then
  echo "setup: installing Graphviz (dot) from the system packages" >&2
  if [[ $(id -u) -eq 0 ]]; then SUDO=""; else SUDO="sudo"; fi
  if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq graphviz >/dev/null
  else
    echo "setup: warning: no apt-get; install Graphviz yourself for PNG/SVG/PDF diagrams (.dot still works)" >&2
  fi
fi

# the browser test of `netspec serve` (tests/test_serve_browser.py) drives the system's Chromium with selenium
if [[ "$LOCK" == requirements-test.lock ]] && ! { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }; then
  echo "setup: installing Chromium and chromedriver from the system packages (for the browser test)" >&2
  if [[ $(id -u) -eq 0 ]]; then SUDO=""; else SUDO="sudo"; fi
  if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null \
      || echo "setup: warning: could not install chromium; the browser test will be skipped (loudly)" >&2
  else
    echo "setup: warning: no apt-get; install Chromium and chromedriver for the browser test" >&2
  fi
fi

PY="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv" >&2
  "$PY" -m venv .venv
fi
STAMP=".venv/.netspec-$(cat requirements.lock requirements-test.lock pyproject.toml tools/setup.sh | sha256sum | cut -c1-16)-$(basename $LOCK .lock)"
if [[ ! -f "$STAMP" ]]; then
  echo "setup: installing packages from $LOCK (the first time takes a few minutes)" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$LOCK"
  # compat mode: a .pth line with the checkout's path, instead of an import-hook module that every command would
  # import first (15 ms of each `netspec` call); the zoo is found in the checkout's specs/ (netspec/zoo.py)
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . \
    --config-settings editable_mode=compat
  # a test stamp implies the runtime one
  touch "$STAMP"
  if [[ "$LOCK" == requirements-test.lock ]]; then touch "${STAMP%-requirements-test}-requirements"; fi
fi
exit 0
