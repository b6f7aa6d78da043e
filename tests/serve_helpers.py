"""Helpers for the `netspec serve` tests: start the real command, and a headless Chromium driven by selenium."""
from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_NAMES = ("chromedriver",)


class Served:
    """A `netspec serve` (or `train --serve`) process; ``url`` is what it printed."""

    def __init__(self, argv: list[str], cwd: Path, timeout: float = 120):
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "netspec", *argv], cwd=cwd, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._collect, daemon=True).start()
        self.url = None
        while self.url is None:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                self.stop()
                raise AssertionError(f"no URL printed within {timeout} s; stderr: {''.join(self.stderr)[-2000:]}")
            if line is None:
                raise AssertionError(f"the server exited ({self.proc.wait()}): {''.join(self.stderr)[-2000:]}")
            if "http://" in line:
                self.url = line[line.index("http://"):].split()[0]

    @staticmethod
    def _read(stream, q):
        for line in stream:
            q.put(line)
        q.put(None)

    def _collect(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _which(names) -> str | None:
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    return None


def chromium():
    """A headless Chromium under selenium, or a loud skip when it cannot start for a reason outside netspec."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _skip_loudly("selenium is not installed (bash tools/setup.sh --test installs it)")
    browser, driver = _which(CHROMIUM_NAMES), _which(DRIVER_NAMES)
    if browser is None or driver is None:
        _skip_loudly("Chromium or chromedriver is not installed (bash tools/setup.sh --test installs the Debian "
                     "packages chromium and chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
              "--window-size=1400,1000", "--disable-extensions", "--disable-background-networking"):
        opts.add_argument(a)
    try:
        return webdriver.Chrome(options=opts, service=Service(executable_path=driver))
    except Exception as e:            # the browser itself failed to start (no display libraries, a broken install)
        _skip_loudly(f"Chromium ({browser}) did not start: {type(e).__name__}: {str(e).strip()[:500]}")


def _skip_loudly(why: str):
    msg = f"BROWSER TEST NOT RUN: {why}"
    print("\n" + "!" * 100 + "\n" + msg + "\n" + "!" * 100, file=sys.stderr)
    warnings.warn(msg)
    pytest.skip(msg)
