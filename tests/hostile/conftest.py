from __future__ import annotations

import os
from pathlib import Path
import sys

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from forkserver import Pool  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="session")
def cli_pool():
    """Fork servers that run the netspec CLI, one per core (at most 4)."""
    pool = Pool(sys.executable, ROOT, size=max(1, min(4, os.cpu_count() or 1)))
    yield pool
    pool.close()
