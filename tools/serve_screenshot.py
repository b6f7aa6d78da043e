"""Take docs/serve.png: `netspec serve` on specs/resnet18.yaml in headless Chromium (the browser test's set-up),
blocks folded to depth 1, one block clicked so that its spec lines show.

    .venv/bin/python tools/serve_screenshot.py [OUT.png]
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from serve_helpers import Served, chromium  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


def main(out: str = "docs/serve.png") -> None:
    srv = Served(["serve", "specs/resnet18.yaml", "--port", "0"], ROOT)
    drv = chromium()
    try:
        drv.set_window_size(1400, 900)
        drv.get(srv.url)
        wait = WebDriverWait(drv, 60, poll_frequency=0.05)
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#diagram svg"))
        Select(drv.find_element(By.ID, "depth")).select_by_value("1")
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, '#diagram g.node[id="layer1.0"]'))
        drv.find_element(By.CSS_SELECTOR, '#diagram g.node[id="layer1.0"]').click()
        wait.until(lambda b: not b.execute_script("return document.getElementById('source').hidden"))
        drv.execute_script("document.getElementById('diagram').scrollTop = 0; window.scrollTo(0, 0)")
        drv.save_screenshot(str(ROOT / out))
        print(f"wrote {out}")
    finally:
        drv.quit()
        srv.stop()


if __name__ == "__main__":
    main(*sys.argv[1:])
