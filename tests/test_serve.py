"""`netspec serve` without a browser: the HTTP surface, what the page is sent, watching files, hostile requests.
(The page itself is tested in a real browser in test_serve_browser.py.)"""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from netspec.serve import Live, Options, Server, _where, serve

ROOT = Path(__file__).resolve().parent.parent
SPEC = """\
netspec: 1
name: net
inputs:
  x: [N, 8]
layers:
  - name: fc
    op: linear
    out: 4

  - {name: act, op: relu}
"""


@pytest.fixture
def live_server(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.yaml").write_text(SPEC)
    srv = serve("net.yaml", port=0)
    yield srv, tmp_path
    srv.stop()


def _get(url: str, host: str | None = None):
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_page_and_assets_are_bundled_and_local(live_server):
    srv, _ = live_server
    assert srv.url.startswith("http://127.0.0.1:") and srv.port > 0
    status, headers, body = _get(srv.url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert '<script src="/app.js"' in page and '<link rel="stylesheet" href="/app.css">' in page
    for asset in ("app.js", "app.css"):
        status, _, body = _get(srv.url + asset)
        assert status == 200 and len(body) > 500
    # nothing is fetched from elsewhere: no absolute URL in any asset (the SVG namespace is a name, not a fetch)
    for text in (page, _get(srv.url + "app.js")[2].decode(), _get(srv.url + "app.css")[2].decode()):
        assert [u for u in __import__("re").findall(r"https?://[^\s\"')]+", text)
                if u != "http://www.w3.org/2000/svg"] == []
    assert "default-src 'self'" in headers["Content-Security-Policy"]


def test_state_holds_report_diagram_table_and_node_lines(live_server):
    srv, _ = live_server
    status, _, body = _get(srv.url + "api/state")
    s = json.loads(body)
    assert status == 200 and s["ok"] and s["errors"] == []
    assert s["report"][:3] == ["net.yaml: OK net: 3 nodes, 36 parameters", "  inputs:  x [N, 8]",
                               "  outputs: out [N, 4]"]
    assert s["svg"].lstrip().startswith("<?xml") and "N×4" in s["svg"]
    assert 'data-name="fc"' in s["tables"][0]
    # a block-style entry spans its indented lines, and stops before the blank line and the next entry
    assert s["nodes"]["fc"] == {"name": "fc", "op": "linear", "loc": "net.yaml:6:5", "first": 6,
                                "lines": ["  - name: fc", "    op: linear", "    out: 4"]}
    assert s["nodes"]["act"]["lines"] == ["  - {name: act, op: relu}"]


def test_an_error_is_sent_as_check_prints_it(live_server):
    srv, d = live_server
    (d / "net.yaml").write_text(SPEC.replace("out: 4", "out: -4"))
    _wait_version(srv, 2)
    s = json.loads(_get(srv.url + "api/state")[2])
    r = subprocess.run([sys.executable, "-m", "netspec", "check", "net.yaml"], cwd=d, capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 1 and not s["ok"] and s["svg"] == ""
    assert s["errors"] == r.stderr.rstrip("\n").split("\n")
    assert s["errors"][0].startswith("net.yaml:8:10: error:")


def _wait_version(srv, want: int, timeout: float = 30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if json.loads(_get(srv.url + "api/version")[2])["version"] >= want:
            return
        time.sleep(0.05)
    raise AssertionError(f"the version never reached {want}")


def test_depth_folds_blocks(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    live = Live("specs/resnet18.yaml")
    full, folded = live.state(None), live.state(0)
    assert full["max_depth"] == 3      # layer2.0.downsample: a seq in a block in a repeat
    assert 'id="layer1.0.conv1"' in full["svg"] and 'id="layer1.0.conv1"' not in folded["svg"]
    assert 'class="node"' in folded["svg"] and 'id="layer1"' in folded["svg"]
    assert folded["nodes"]["layer1"]["op"] == "repeat" and folded["nodes"]["layer1.0"]["op"] == "basic"


def test_imports_are_watched(tmp_path):
    (tmp_path / "blocks.yaml").write_text("netspec: 1\nblocks:\n  b:\n    layers:\n      - {op: relu}\n")
    (tmp_path / "net.yaml").write_text("netspec: 1\nname: n\nimports: [blocks.yaml]\ninputs:\n  x: [N, 8]\n"
                                       "layers:\n  - {op: b}\n")
    live = Live(tmp_path / "net.yaml")
    assert live.state(None)["ok"]
    assert not live.poll()
    st = os.stat(tmp_path / "blocks.yaml")
    os.utime(tmp_path / "blocks.yaml", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert live.poll() and live.version == 2


def test_node_lines_never_come_from_a_file_netspec_did_not_read(tmp_path):
    from netspec.errors import Loc
    secret = tmp_path / "secret.txt"
    secret.write_text("password\n")
    assert _where("x", "linear", Loc(str(secret), 1, 1), {})["lines"] == []


def test_foreign_hosts_unknown_paths_and_other_methods_are_refused(live_server):
    srv, _ = live_server
    assert _get(srv.url + "api/version", host="evil.example:80")[0] == 403      # DNS rebinding
    assert _get(srv.url + "api/version", host=f"localhost:{srv.port}")[0] == 200
    for path in ("etc/passwd", "../net.yaml", "net.yaml", "app.js/../../net.yaml", "%2e%2e/net.yaml"):
        status, _, body = _get(srv.url + path)
        assert status == 404 and b"netspec" not in body, path
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("POST", "/api/state", body=b"{}")
    assert conn.getresponse().status == 501
    conn.close()


def test_a_taken_port_is_a_clear_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        (tmp_path / "net.yaml").write_text(SPEC)
        r = subprocess.run([sys.executable, "-m", "netspec", "serve", "net.yaml", "--port", str(port)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"error: cannot listen on 127.0.0.1:{port}" in r.stderr and "--port 0" in r.stderr


def test_the_cli_prints_the_url_and_serves(tmp_path):
    from serve_helpers import Served
    (tmp_path / "net.yaml").write_text(SPEC)
    srv = Served(["serve", "net.yaml", "--port", "0", "--depth", "1"], tmp_path)
    try:
        assert srv.url.startswith("http://127.0.0.1:") and srv.url.endswith("/?depth=1")
        base = srv.url.split("?")[0]
        assert _get(srv.url)[0] == 200
        s = json.loads(_get(base + "api/state?depth=1")[2])
        assert s["ok"] and s["report"][2] == "  outputs: out [N, 4]"
    finally:
        srv.stop()


def test_metrics_are_read_as_they_grow(tmp_path):
    (tmp_path / "net.yaml").write_text(SPEC)
    run = tmp_path / "run"
    run.mkdir()
    live = Live(tmp_path / "net.yaml", Options(), metrics_dir=run)
    assert live.metrics() == {"records": [], "grads": []}
    (run / "metrics.jsonl").write_text('{"step": 5, "split": "train", "loss": 2.0}\n{"step": 10, "spl')  # mid-write
    (run / "grad_norms.jsonl").write_text('{"step": 5, "norms": {"fc": 0.5}}\n')
    assert live.metrics() == {"records": [{"step": 5, "split": "train", "loss": 2.0}],
                              "grads": [{"step": 5, "norms": {"fc": 0.5}}]}
    assert live.state(None)["training"] is True


def test_server_stops(tmp_path):
    (tmp_path / "net.yaml").write_text(SPEC)
    srv = Server(Live(tmp_path / "net.yaml"), port=0).start()
    url = srv.url
    srv.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "api/version", timeout=5)


def test_many_errors_are_cut_as_check_cuts_them(tmp_path):
    layers = "".join(f"  - {{name: l{k}, op: nosuch{k}}}\n" for k in range(60))
    (tmp_path / "net.yaml").write_text("netspec: 1\nname: net\ninputs:\n  x: [N, 8]\nlayers:\n" + layers)
    s = Live(tmp_path / "net.yaml").state(None)
    r = subprocess.run([sys.executable, "-m", "netspec", "check", "net.yaml"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    shown = [line.replace(str(tmp_path / "net.yaml"), "net.yaml") for line in s["errors"]]
    assert r.returncode == 1 and shown == r.stderr.rstrip("\n").split("\n")
    assert shown[-1].startswith("... and 10 more errors")


def test_a_missing_import_that_appears_is_picked_up(tmp_path):
    (tmp_path / "net.yaml").write_text("netspec: 1\nname: n\nimports: [blocks.yaml]\ninputs:\n  x: [N, 8]\n"
                                       "layers:\n  - {op: b}\n")
    live = Live(tmp_path / "net.yaml")
    assert not live.state(None)["ok"]
    (tmp_path / "blocks.yaml").write_text("netspec: 1\nblocks:\n  b:\n    layers:\n      - {op: relu}\n")
    d = os.stat(tmp_path)
    os.utime(tmp_path, ns=(d.st_atime_ns, d.st_mtime_ns + 10**9))     # as creating it did, on a coarse clock too
    assert live.poll()
    assert live.state(None)["ok"]


@pytest.mark.parametrize("arg,why", [("nope.yaml", "No such file or directory"), (".", "it is not a file")])
def test_a_path_that_is_no_file_is_an_error_at_once(arg, why, tmp_path):
    r = subprocess.run([sys.executable, "-m", "netspec", "serve", arg, "--port", "0"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 1 and r.stderr.startswith(f"{arg}:1:1: error: cannot read '{arg}': {why}"), r.stderr
    assert "http://" not in r.stdout
