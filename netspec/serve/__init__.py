"""`netspec serve`: a local page that shows a spec's diagram, shape table and errors, redrawn when the file is saved.

Stdlib only: ``http.server`` in a thread; the page, its script and its style are files of this package (nothing is
fetched from the internet). The server is bound to 127.0.0.1 unless told otherwise and answers only GET requests
for a fixed set of paths; on a loopback address it also refuses requests whose Host header names another host (a
web page elsewhere cannot read it through DNS rebinding).

    Live (what the page shows, recomputed when a watched file changes)  <-  Handler (HTTP)  <-  the page (polls)

A poller thread compares the modification times of the spec and of every file it imported every ``POLL_S``
seconds; a change bumps ``Live.version``. The page asks for the version four times a second and fetches the new
state when it changes. ``netspec train --serve`` adds ``metrics_dir``: the page then also draws the curves of
``metrics.jsonl`` and the per-layer gradient norms of ``grad_norms.jsonl``.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ..errors import ErrorList, Loc, NetspecError

POLL_S = 0.2                      # how often the watched files' modification times are compared
MAX_SOURCE_LINES = 40             # spec lines shown for one clicked node
MAX_RECORDS = 20_000              # metrics records sent to the page (the newest)
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/app.css": ("app.css", "text/css; charset=utf-8")}


class ServeError(NetspecError):
    """The server could not start (the port is taken, the address is not ours)."""


# -- what the page shows ----------------------------------------------------------------------------------------

@dataclass
class Options:
    network: str | None = None
    params: dict = field(default_factory=dict)
    bind: dict = field(default_factory=dict)
    search_path: list = field(default_factory=list)


class Live:
    """The state of one spec: a version that changes when a watched file does, and the page's data per depth."""

    def __init__(self, spec: str | os.PathLike, options: Options | None = None, metrics_dir: Path | None = None):
        self.spec = str(spec)
        self.options = options or Options()
        self.metrics_dir = Path(metrics_dir) if metrics_dir is not None else None
        self.version = 1
        self._lock = threading.Lock()
        self._cache: dict = {}
        self._watched: dict[str, float | None] = {}
        self._stamp = self._stamps(self._files())

    # -- watching --------------------------------------------------------------------------------------------
    def _files(self) -> list[str]:
        """The spec, every file it imported, and their folders (a folder changes when a file appears in it: an
        import that was missing until now, or an editor's save by renaming)."""
        from ..io import inputs_read
        files = {os.path.realpath(self.spec)} | inputs_read()
        return sorted(files | {os.path.dirname(f) for f in files})

    @staticmethod
    def _stamps(files) -> dict:
        out = {}
        for f in files:
            try:
                st = os.stat(f)
                out[f] = (st.st_mtime_ns, st.st_size)
            except OSError:
                out[f] = None
        return out

    def poll(self) -> bool:
        """Compare the watched files with their last stamps; bump the version on a change. True when changed."""
        now = self._stamps(self._files())
        if now != self._stamp:
            with self._lock:
                self._stamp = now
                self.version += 1
                self._cache.clear()
            return True
        return False

    # -- the page's data ---------------------------------------------------------------------------------------
    def state(self, depth: int | None) -> dict:
        with self._lock:
            key = (self.version, depth)
            if key not in self._cache:
                self._cache = {key: self._compute(depth)}
            return self._cache[key]

    def _compute(self, depth: int | None) -> dict:
        from ..check import check
        from ..draw import to_dot
        from ..pipeline import networks_of
        from ..summary import summarize
        o = self.options
        started = time.perf_counter()
        before = self._stamps(self._files())
        res = check(self.spec, params=o.params or None, bindings=o.bind or None, search_path=o.search_path)
        out = {"version": self.version, "file": self.spec, "ok": res.ok, "errors": _lines(res.errors),
               "warnings": _lines(res.warnings), "report": [], "svg": "", "tables": [], "nodes": {}, "files": {},
               "max_depth": 0, "depth": depth, "training": self.metrics_dir is not None}
        # what was shown is the files as they were before the check; imports it read are watched from now on
        self._stamp = {**self._stamps(self._files()), **before}
        if not res.ok or not res.graphs:
            if res.ok:
                out["report"] = [f"{self.spec}: OK (a library of blocks: no network)"]
            return out
        graphs = list(res.graphs.values())
        if o.network is not None:
            try:
                spec = graphs[0].spec
                names = networks_of(spec, o.network)
            except NetspecError as e:
                out["ok"], out["errors"] = False, _lines([e])
                return out
            graphs = [g for g in graphs if g.name in names]
        out["report"] = _report(self.spec, graphs, res)
        try:
            drawing = to_dot(graphs, depth=depth)
            out["svg"] = drawing.svg()
        except NetspecError as e:
            out["errors"] = _lines([e])
        for g in graphs:
            out["tables"].append(summarize(g, o.bind).to_html())
        prefix_of = {g.name: (f"{g.name}/" if len(graphs) > 1 else "") for g in graphs}
        files: dict[str, list[str]] = {}
        for g in graphs:
            pre = prefix_of[g.name]
            out["max_depth"] = max(out["max_depth"], max((len(n.scope) for n in g.nodes.values()), default=0))
            for n in g.nodes.values():
                out["nodes"][pre + n.id] = _where(n.id, n.op.name, n.loc, files)
            for c in g.containers.values():
                what = c.block if c.kind == "block" else c.kind
                out["nodes"][pre + c.path] = _where(c.path, what, c.loc, files)
                out["nodes"]["cluster_" + pre + c.path] = out["nodes"][pre + c.path]
            for name, loc in g.output_locs.items():
                out["nodes"][f"{pre}@out.{name}"] = _where(f"output {name}", "output", loc, files)
        out["seconds"] = round(time.perf_counter() - started, 3)
        return out

    # -- training -----------------------------------------------------------------------------------------------
    def metrics(self) -> dict:
        if self.metrics_dir is None:
            return {"records": [], "grads": []}
        return {"records": _read_jsonl(self.metrics_dir / "metrics.jsonl"),
                "grads": _read_jsonl(self.metrics_dir / "grad_norms.jsonl")}


def _lines(errors) -> list[str]:
    """Errors as ``check`` prints them: ``file:line:col: error: ...`` and ``  hint: ...`` lines, the first
    ``MAX_SHOWN`` of them and a line counting the rest."""
    from ..cli import MAX_SHOWN
    flat = []
    for e in errors:
        flat.extend(e.errors if isinstance(e, ErrorList) else [e])
    lines = [line for e in flat[:MAX_SHOWN] for line in e.format().split("\n")]
    if len(flat) > MAX_SHOWN:
        lines.append(f"... and {len(flat) - MAX_SHOWN:,} more {flat[MAX_SHOWN].kind}s, not shown")
    return lines


def _report(spec: str, graphs, res) -> list[str]:
    """The lines ``netspec check`` prints for a spec that is OK."""
    lines = []
    for g in graphs:
        ins = ", ".join(f"{k} {t}" for k, t in g.input_types().items())
        outs = ", ".join(f"{k} {t}" for k, t in g.output_types().items())
        lines += [f"{spec}: OK {g.name}: {len(g.nodes)} nodes, {g.num_params():,} parameters",
                  f"  inputs:  {ins}", f"  outputs: {outs}"]
        if g.requirements:
            lines.append("  requires: " + ", ".join(r.text for r in g.requirements))
        if g.name in res.memory:
            lines.append("  memory:  " + res.memory[g.name].text())
    return lines


def _where(name: str, op: str, loc: Loc | None, files: dict) -> dict:
    """A node's location and the spec lines it spans (its entry: the line and those indented under it)."""
    if loc is None:
        return {"name": name, "op": op, "loc": "", "first": 0, "lines": []}
    text = files.get(loc.file)
    if text is None:
        text = files[loc.file] = _source_lines(loc.file)
    first = loc.line
    lines = []
    if 1 <= first <= len(text):
        indent = loc.col - 1
        lines.append(text[first - 1])
        for line in text[first:first - 1 + MAX_SOURCE_LINES]:
            body = line.strip()
            lead = len(line) - len(line.lstrip(" "))
            if body and (lead < indent or (lead == indent and body.startswith("-"))):
                break
            lines.append(line)
        while lines and not lines[-1].strip():
            lines.pop()
    return {"name": name, "op": op, "loc": str(loc), "first": first, "lines": lines}


def _source_lines(file: str) -> list[str]:
    """The lines of a spec file this process read (no other file is ever opened for the page)."""
    from ..io import inputs_read
    real = os.path.realpath(file)
    if real not in inputs_read():
        return []
    try:
        return Path(real).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _read_jsonl(path: Path) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError:
        return []
    out = []
    for line in lines[-MAX_RECORDS:]:
        try:
            r = json.loads(line)
        except ValueError:            # a line being written right now
            continue
        if isinstance(r, dict):
            out.append(r)
    return out


# -- HTTP ---------------------------------------------------------------------------------------------------------

def _asset(name: str) -> bytes:
    return resources.files(__name__).joinpath("static", name).read_bytes()


class Handler(BaseHTTPRequestHandler):
    live: Live                     # set on the subclass made by ``Server``
    allowed_hosts: frozenset | None = None
    server_version = "netspec"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):     # quiet: the terminal shows the URL and the errors, not every poll
        pass

    def do_GET(self):                          # noqa: N802 (http.server's name)
        host = (self.headers.get("Host") or "").lower()
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            return self._send(HTTPStatus.FORBIDDEN, b"forbidden host\n", "text/plain; charset=utf-8")
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        if url.path in STATIC:
            name, ctype = STATIC[url.path]
            return self._send(HTTPStatus.OK, _asset(name), ctype)
        if url.path == "/api/version":
            return self._json({"version": self.live.version})
        if url.path == "/api/state":
            depth = _depth(q.get("depth", [""])[0])
            try:
                return self._json(self.live.state(depth))
            except Exception as e:           # a bug: say so on the page, keep serving
                return self._json({"version": self.live.version, "ok": False, "report": [], "svg": "",
                                   "tables": [], "nodes": {}, "max_depth": 0, "warnings": [],
                                   "errors": [f"netspec: internal error: {type(e).__name__}: {e}",
                                              "this is a bug in netspec; please report it"]})
        if url.path == "/api/metrics":
            return self._json(self.live.metrics())
        return self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

    def _json(self, data) -> None:
        self._send(HTTPStatus.OK, json.dumps(data).encode("utf-8"), "application/json")

    def _send(self, status, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                                                    "style-src 'self' 'unsafe-inline'")
        self.end_headers()
        self.wfile.write(body)


def _depth(text: str) -> int | None:
    text = text.strip()
    if text.isdigit() and len(text) < 4:
        return int(text)
    return None


class Server:
    """The page's server: ``start()`` binds and serves in daemon threads; ``url``; ``stop()``."""

    def __init__(self, live: Live, host: str = "127.0.0.1", port: int = 0):
        self.live = live
        self.host, self.port = host, port
        self._httpd: ThreadingHTTPServer | None = None
        self._stop = threading.Event()

    def start(self) -> "Server":
        import ipaddress
        try:
            loopback = ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            loopback = self.host == "localhost"
        handler = type("LiveHandler", (Handler,), {"live": self.live})
        server_cls = ThreadingHTTPServer
        if ":" in self.host:
            import socket
            server_cls = type("V6Server", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
        try:
            self._httpd = server_cls((self.host.strip("[]"), self.port), handler)
        except OSError as e:
            raise ServeError(f"cannot listen on {self.host}:{self.port}: {e.strerror or e}", None,
                             ["--port 0 picks a free port", "--host 127.0.0.1 listens on this machine only"]) \
                from None
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        if loopback:
            handler.allowed_hosts = frozenset(f"{h}:{self.port}" for h in ("127.0.0.1", "localhost", "[::1]"))
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
                         name="netspec-serve").start()
        threading.Thread(target=self._watch, daemon=True, name="netspec-watch").start()
        return self

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        host = f"[{host.strip('[]')}]" if ":" in host else host
        return f"http://{host}:{self.port}/"

    def _watch(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self.live.poll()
            except Exception:       # a file vanishing between stat calls: try again next time
                pass

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


def serve(spec, *, host: str = "127.0.0.1", port: int = 0, options: Options | None = None,
          metrics_dir: Path | None = None) -> Server:
    """Start serving the page of ``spec`` in background threads; returns the running Server (``.url``, ``.stop()``)."""
    live = Live(spec, options, metrics_dir)
    return Server(live, host, port).start()
