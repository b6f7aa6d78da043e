"""tools/gpu_check.sh runs on a CPU in its dry-run mode and prints the benchmark table."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_dry_run(tmp_path):
    out = tmp_path / "gpu.md"
    env = dict(os.environ, PYTHON=sys.executable)
    r = subprocess.run(["bash", str(ROOT / "tools" / "gpu_check.sh"), "--dry-run", "--output", str(out)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    table = out.read_text()
    assert table == r.stdout
    for row in ("| resnet50 train eager | netspec |", "| resnet50 train eager | torchvision |",
                "| resnet50 train eager | ratio |", "| transformer LM train |", "| unet train |"):
        assert row in table
    overhead = (tmp_path / "overhead_cuda.md").read_text()     # tools/bench_overhead.py, same weights, compared
    assert "| resnet18 | cpu | eager | 1 | 2 | fwd |" in overhead
    assert "| resnet18 | cpu | channels_last | 1 | 2 | fwd+bwd |" in overhead
    assert "| resnet18 | cpu | cuda_graph | 1 | 2 | fwd | - | - | not run: CUDA graphs need a CUDA device |" in overhead
    r2 = subprocess.run(["bash", str(ROOT / "tools" / "gpu_check.sh"), "--bogus"], capture_output=True, text=True)
    assert r2.returncode == 2 and "unknown argument" in r2.stderr
