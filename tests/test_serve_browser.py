"""`netspec serve` end to end in a real headless Chromium: load, edit, break, fix, click, fold.

Every wait is an explicit condition on the page (WebDriverWait); the timeouts only bound a failure. Skipped, with a
loud message, only when Chromium itself cannot start (not installed, no libraries): see serve_helpers.chromium.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serve_helpers import ROOT, Served, chromium

try:                      # without selenium the browser fixture skips, loudly (tools/setup.sh --test installs it)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:
    By = Select = WebDriverWait = None

WAIT_S = 60          # an upper bound for a failing wait, never a pause

BLOCKS = """\
netspec: 1
blocks:
  mlp:
    params: {width: int}
    layers:
      - {name: fc, op: linear, out: width}
      - {name: act, op: relu}
"""

SPEC = """\
netspec: 1
name: live
imports: [blocks.yaml]
inputs:
  x: [N, 16]
layers:
  - {name: body, op: mlp, width: 32}
  - {name: head, op: linear, out: 10}
"""


def _save(path: Path, text: str) -> None:
    """Write the file as an editor does, with a modification time that surely differs from the last one."""
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    st = path.stat()
    if st.st_mtime_ns <= old:
        os.utime(path, ns=(st.st_atime_ns, old + 1_000_000))


@pytest.fixture(scope="module")
def browser():
    drv = chromium()
    yield drv
    drv.quit()


@pytest.fixture
def served(tmp_path):
    (tmp_path / "blocks.yaml").write_text(BLOCKS)
    (tmp_path / "net.yaml").write_text(SPEC)
    s = Served(["serve", "net.yaml", "--port", "0"], tmp_path)
    yield s, tmp_path
    s.stop()


def _text(drv, element_id: str) -> str:
    return drv.execute_script(f"return document.getElementById('{element_id}').textContent")


def _hidden(drv, element_id: str) -> bool:
    return drv.execute_script(f"return document.getElementById('{element_id}').hidden")


def _svg_texts(drv) -> str:
    return drv.execute_script("const s = document.querySelector('#diagram svg'); "
                              "return s ? [...s.querySelectorAll('text')].map(t => t.textContent).join('|') : ''")


def _until(drv, what: str, cond):
    """Wait for ``cond(drv)``; on timeout, fail with what was awaited and what the page shows."""
    try:
        return WebDriverWait(drv, WAIT_S, poll_frequency=0.05).until(cond)
    except Exception:
        pytest.fail(f"the page never showed {what}; status: {_text(drv, 'status')!r}; report: "
                    f"{_text(drv, 'report')!r}; errors: {_text(drv, 'errors')!r}")


def _check_stderr(cwd: Path) -> list[str]:
    r = subprocess.run([sys.executable, "-m", "netspec", "check", "net.yaml"], cwd=cwd, capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 1
    return [line for line in r.stderr.splitlines() if line.strip()]


def test_live_page(browser, served):
    srv, d = served
    drv = browser
    drv.get(srv.url)
    # 1. the page shows the check report and the diagram, with shapes
    _until(drv, "the output shape [N, 10]", lambda b: "outputs: out [N, 10]" in _text(b, "report"))
    _until(drv, "the diagram's edge N×32", lambda b: "N×32" in _svg_texts(b))
    assert "body" in _text(drv, "tables") and "head" in _text(drv, "tables")
    assert _hidden(drv, "errors")
    version = int(drv.execute_script("return document.body.dataset.version"))

    # 2. edit the spec: a new shape
    t0 = time.perf_counter()
    _save(d / "net.yaml", SPEC.replace("out: 10", "out: 7"))
    _until(drv, "the new output shape [N, 7]", lambda b: "outputs: out [N, 7]" in _text(b, "report"))
    _until(drv, "the redrawn edge N×7", lambda b: "N×7" in _svg_texts(b))
    print(f"\nredrawn {time.perf_counter() - t0:.2f} s after the save")
    assert int(drv.execute_script("return document.body.dataset.version")) > version

    # 3. edit the imported file: the page follows it too
    _save(d / "blocks.yaml", BLOCKS.replace("out: width}", "out: width * 2}"))
    _until(drv, "the block's new width N×64", lambda b: "N×64" in _svg_texts(b))

    # 4. introduce an error: located, exactly as `netspec check` prints it; the last diagram stays, dimmed
    broken = SPEC.replace("out: 10", "out: 7").replace("op: linear, out: 7", "op: linaer, out: 7")
    _save(d / "net.yaml", broken)
    _until(drv, "the error", lambda b: not _hidden(b, "errors") and "error:" in _text(b, "errors"))
    shown = drv.execute_script("return [...document.querySelectorAll('#errors div')].map(e => e.textContent)")
    assert shown[0] == "net.yaml:8:22: error: unknown op 'linaer'", shown
    assert shown == _check_stderr(d)
    assert "stale" in drv.find_element(By.ID, "diagram").get_attribute("class")

    # 5. fix it: the error clears and the diagram is current again
    _save(d / "net.yaml", SPEC.replace("out: 10", "out: 5"))
    _until(drv, "the errors cleared", lambda b: _hidden(b, "errors") and "[N, 5]" in _text(b, "report"))
    assert "stale" not in drv.find_element(By.ID, "diagram").get_attribute("class")

    # 6. click a node: its spec lines, with the location
    drv.find_element(By.CSS_SELECTOR, '#diagram g.node[id="head"]').click()
    _until(drv, "the clicked node's lines", lambda b: not _hidden(b, "source"))
    assert _text(drv, "source-head").startswith("net.yaml:8:5  head (linear)")
    assert _text(drv, "source-lines") == "   8    - {name: head, op: linear, out: 5}"
    drv.find_element(By.CSS_SELECTOR, '#diagram g.node[id="body.fc"]').click()
    _until(drv, "the block layer's lines", lambda b: "blocks.yaml:6:9  body.fc (linear)" in _text(b, "source-head"))
    assert "{name: fc, op: linear, out: width * 2}" in _text(drv, "source-lines")

    # 7. fold the blocks with the page's depth control
    assert drv.find_elements(By.CSS_SELECTOR, '#diagram g.cluster[id="cluster_body"]')
    Select(drv.find_element(By.ID, "depth")).select_by_value("0")
    _until(drv, "the folded block", lambda b: b.find_elements(By.CSS_SELECTOR, '#diagram g.node[id="body"]'))
    assert not drv.find_elements(By.CSS_SELECTOR, '#diagram g.node[id="body.fc"]')
    drv.find_element(By.CSS_SELECTOR, '#diagram g.node[id="body"]').click()
    _until(drv, "the folded block's lines", lambda b: "net.yaml:7:5  body (mlp)" in _text(b, "source-head"))


TRAIN_SPEC = """\
netspec: 1
name: tiny
inputs:
  x: [N, 64]
layers:
  - {name: fc1, op: linear, out: 16}
  - {name: act, op: relu}
  - {name: fc2, op: linear, out: 10}
train:
  method: classify
  data: {source: digits}
  optimizer: {name: adamw, lr: 0.01}
  steps: 40
  log_every: 5
  eval_every: 20
  batch_size: 32
  metrics: [accuracy]
"""


def test_train_serve_shows_curves_and_gradient_norms(browser, tmp_path):
    (tmp_path / "net.yaml").write_text(TRAIN_SPEC)
    srv = Served(["train", "net.yaml", "--serve", "--port", "0", "--out", "run", "-q", "--device", "cpu"], tmp_path)
    try:
        drv = browser
        drv.get(srv.url)
        _until(drv, "the diagram", lambda b: "N×16" in _svg_texts(b))
        _until(drv, "the training panel", lambda b: not _hidden(b, "training"))
        _until(drv, "the loss curve", lambda b: b.find_elements(By.CSS_SELECTOR, '#curves svg[data-name="loss"]'))
        _until(drv, "the gradient norms", lambda b: len(b.find_elements(By.CSS_SELECTOR, "#grads .bar")) == 2)
        names = drv.execute_script("return [...document.querySelectorAll('#grads .name')].map(e => e.textContent)")
        assert names == ["fc1", "fc2"]
        _until(drv, "the last step's norms", lambda b: "(step 40)" in _text(b, "grads-step"))
        _until(drv, "the validation accuracy", lambda b: b.find_elements(By.CSS_SELECTOR,
                                                                         '#curves svg[data-name="accuracy"]'))
    finally:
        srv.stop()
