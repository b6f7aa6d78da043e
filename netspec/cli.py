"""The commands. Thin: parse arguments, call the API, print. Exit 0 ok, 1 the input is wrong, 2 usage."""
from __future__ import annotations

import gc
import json
import os
import re
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .errors import ErrorList, NetspecError
from .limits import LIMITS

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="netspec: neural networks written as data. Check, draw, summarise and compile YAML/JSON specs.",
                  pretty_exceptions_enable=False)

# rich's console markup: a tag is [a-z#/@...] after an even number of backslashes (rich.markup.RE_TAGS)
_TAG = re.compile(r"((\\*)\[([a-z#/@][^[]*?)])")
_TAG_ESCAPE = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")
_COLOUR_ENV = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS", "JPY_PARENT_PID")


def _plain(markup: str) -> str:
    """What rich prints for ``markup`` where it prints no styles: the text with its tags removed and escaped
    brackets unescaped (rich.markup's reading of it; tests/test_cli.py compares the two)."""
    if "[" not in markup:
        return markup
    out, pos = [], 0
    for m in _TAG.finditer(markup):
        full, escapes, _tag = m.groups()
        start, end = m.span()
        out.append(markup[pos:start])
        pos = end
        if escapes:
            backslashes, escaped = divmod(len(escapes), 2)
            out.append("\\" * backslashes)
            if escaped:
                out.append(full[len(escapes):])
    out.append(markup[pos:])
    # rich also unescapes a bracket that opens no tag, in every piece of text
    return "".join(piece.replace("\\[", "[") for piece in out)


class _LazyConsole:
    """A rich Console made on first use. Text printed to a file or pipe (no styles to show) is written directly:
    importing rich costs 15-25 ms, more than a `netspec check` of a small spec spends on the spec."""

    def __init__(self, **kw):
        self._kw = kw
        self._console = None

    def _stream(self):
        return sys.stderr if self._kw.get("stderr") else sys.stdout

    def print(self, *objects, **kw):
        stream = self._stream()
        if self._console is None and not kw and all(type(o) is str and "\t" not in o for o in objects) and \
                not any(os.environ.get(v) for v in _COLOUR_ENV):
            try:
                tty = stream.isatty()
            except (AttributeError, ValueError):
                tty = True
            if not tty:
                stream.write(" ".join(_plain(o) for o in objects) + "\n")
                return
        self.__getattr__("print")(*objects, **kw)

    def __getattr__(self, name):
        if self._console is None:
            from rich.console import Console
            self._console = Console(**self._kw)
        return getattr(self._console, name)


# emoji=False: rich would print 'net.yaml:100:5' as 'net.yaml💯5' (':100:' is an emoji code)
_out = _LazyConsole(highlight=False, soft_wrap=True, emoji=False)
_err = _LazyConsole(stderr=True, highlight=False, soft_wrap=True, emoji=False)


class UserError(Exception):
    """Raised inside commands to exit 1 after the messages were printed."""


MAX_SHOWN = 50   # errors (and warnings) printed per file: the first ones are the ones to fix, and rich is slow


def _print_errors(errors: list) -> None:
    for e in errors[:MAX_SHOWN]:
        _print_error(e)
    if len(errors) > MAX_SHOWN:
        kind = errors[MAX_SHOWN].kind
        _err.print(f"... and {len(errors) - MAX_SHOWN:,} more {kind}s, not shown")


def _print_error(e: NetspecError) -> None:
    if isinstance(e, ErrorList):
        return _print_errors(e.errors)
    for line in e.format().split("\n"):
        if line.startswith("  hint:"):
            _err.print(f"[cyan]{_esc(line)}[/cyan]")
        elif ": warning:" in line:
            _err.print(f"[yellow]{_esc(line)}[/yellow]")
        else:
            _err.print(f"[bold red]{_esc(line)}[/bold red]" if ": error:" in line else _esc(line))


def _esc(s: str) -> str:
    """Text for rich: markup escaped (as rich.markup.escape does), control characters (ESC, ...) made visible."""
    from .errors import visible
    s = _TAG_ESCAPE.sub(lambda m: f"{m.group(1)}{m.group(1)}\\{m.group(2)}", visible(s))
    return s + "\\" if s.endswith("\\") and not s.endswith("\\\\") else s


def _parse_kv(items: list[str] | None, what: str) -> dict:
    out = {}
    for item in items or []:
        for part in item.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise typer.BadParameter(f"expected NAME=VALUE, got {part!r}", param_hint=what)
            k, v = part.split("=", 1)
            k, v = k.strip(), v.strip()
            try:
                out[k] = json.loads(v)
            except ValueError:
                out[k] = v
    return out


def _say_which(spec) -> None:
    """A spec argument that names both a file and a bundled spec: say which one is read (a file always wins)."""
    from .zoo import resolve
    note = resolve(spec).note
    if note:
        _err.print(f"[cyan]note: {_esc(note)}[/cyan]")


@app.callback()
def _main(
    limit: Optional[List[str]] = typer.Option(None, "--limit", metavar="NAME=VALUE",
                                              help="override a safety limit, e.g. --limit max_nodes=500000 "
                                                   "(names: " + ", ".join(LIMITS.names()) + ")"),
    no_cache: bool = typer.Option(False, "--no-cache", help="do not use or fill the cache of expanded specs "
                                                            "(also: NETSPEC_NO_CACHE=1)"),
) -> None:
    if no_cache:
        from . import cache
        cache.ENABLED = False
    for k, v in _parse_kv(limit, "--limit").items():
        if k not in LIMITS.names():
            raise typer.BadParameter(f"unknown limit {k!r}; limits: {', '.join(LIMITS.names())}", param_hint="--limit")
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise typer.BadParameter(f"limit {k} needs a positive integer, got {v!r}", param_hint="--limit")
        LIMITS.set(k, v)


@app.command()
def check(
    specs: List[Path] = typer.Argument(..., help="spec files (.yaml, .yml, .json)"),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", metavar="NAME=VALUE", help="set network parameters"),
    bind: Optional[List[str]] = typer.Option(None, "--bind", metavar="SYM=INT", help="fix symbols, e.g. --bind H=224,W=224"),
    search_path: Optional[List[Path]] = typer.Option(None, "--search-path", help="also allow imports from this folder"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print errors only"),
    strict: bool = typer.Option(False, "--strict", help="treat warnings (unused layers or inputs) as errors"),
) -> None:
    """Validate, expand and shape-check specs; print input/output shapes, or every error with its location."""
    from .check import check as run_check
    params = _parse_kv(param, "--param")
    bindings = _parse_kv(bind, "--bind")
    failed = 0
    for path in specs:
        _say_which(path)
        res = run_check(path, params=params or None, bindings=bindings or None,
                        search_path=[str(s) for s in search_path or []])
        if strict and res.warnings:
            from .errors import GraphError
            res.errors = [GraphError(w.message, w.loc, w.hints) for w in res.warnings] + res.errors
            res.warnings = []
        if not quiet:
            _print_errors(res.warnings)
        if not res.ok:
            failed += 1
            _print_errors(res.errors)
            continue
        if quiet:
            continue
        if not res.graphs:
            _out.print(f"{path}: [green]OK[/green] (a library of blocks: no network)")
        for name, g in res.graphs.items():
            ins = ", ".join(f"{k} {t}" for k, t in g.input_types().items())
            outs = ", ".join(f"{k} {t}" for k, t in g.output_types().items())
            nparams = g.num_params()
            _out.print(f"{_esc(str(path))}: [green]OK[/green] {_esc(name)}: {len(g.nodes)} nodes, {nparams:,} parameters")
            _out.print(f"  inputs:  {_esc(ins)}")
            _out.print(f"  outputs: {_esc(outs)}")
            if g.requirements:
                _out.print("  requires: " + _esc(", ".join(r.text for r in g.requirements)))
            if name in res.memory:
                _out.print("  memory:  " + _esc(res.memory[name].text()))
    if len(specs) > 1 and not quiet:
        _out.print(f"{len(specs)} files checked: {len(specs) - failed} ok, {failed} with errors")
    if failed:
        raise UserError()


@app.command()
def summary(
    spec: Path = typer.Argument(..., help="spec file (.yaml, .yml, .json)"),
    bind: Optional[List[str]] = typer.Option(None, "--bind", metavar="SYM=INT",
                                             help="fix symbols so shapes and MACs are numbers, "
                                                  "e.g. --bind N=1,H=224,W=224"),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json, csv or markdown"),
    network: Optional[str] = typer.Option(None, "--network", help="only this network of a file with several"),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", metavar="NAME=VALUE", help="set network parameters"),
    search_path: Optional[List[Path]] = typer.Option(None, "--search-path", help="also allow imports from this folder"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="write the table to this file (- or none: "
                                                                       "stdout)"),
) -> None:
    """Table of layers: structural name, op, output shape, parameters, MACs; totals. No weights, no forward pass."""
    from .io import is_stdout, output_target, write_output
    from .summary import FORMATS, summaries
    _say_which(spec)
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise typer.BadParameter(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}", param_hint="--format")
    if output is not None and not is_stdout(output):
        output_target(output)
    res = summaries(spec, bind=_parse_kv(bind, "--bind") or None, network=network,
                    params=_parse_kv(param, "--param") or None, search_path=[str(s) for s in search_path or []])
    for s in res:
        _print_errors(s.warnings)
    if fmt == "csv" and len(res) > 1:
        _print_error(NetspecError(f"{spec} has {len(res)} networks ({', '.join(s.network for s in res)}); "
                                  "a CSV table holds one", None, "choose one with --network NAME"))
        raise UserError()
    if fmt == "json":
        data = res[0].to_dict() if len(res) == 1 else [s.to_dict() for s in res]
        write_output(output or "-", json.dumps(data, indent=2) + "\n")
        return
    if output is not None and not is_stdout(output):
        write_output(output, "\n".join(s.render(fmt) for s in res))
        return
    for k, s in enumerate(res):
        if k:
            sys.stdout.write("\n")
        if fmt == "table" and _out.is_terminal:
            _out.print(s.to_text(rich=True))
        else:
            sys.stdout.write(s.render(fmt))
    order = {"N": 0, "C": 1, "T": 2, "H": 3, "W": 4}
    data = {x for s in res for x in s.data_symbols}
    symbolic = sorted({str(x) for s in res if s.symbolic for x in s.totals.macs.free_symbols()} - data,
                      key=lambda x: (order.get(x, 5), x))
    if fmt == "table" and symbolic:
        example = ",".join(f"{x}={1 if x == 'N' else 224}" for x in symbolic)
        _err.print(f"[cyan]  hint: MACs depend on {', '.join(symbolic)}; bind them for numbers, "
                   f"e.g. --bind {example}[/cyan]")
    shown = sorted(x for s in res if s.symbolic for x in s.data_symbols if x in map(str, s.totals.macs.free_symbols()))
    if fmt == "table" and shown:
        _err.print(f"[cyan]  note: {', '.join(shown)} are sizes the data decides when the network runs "
                   f"(an op's own symbols), so their MACs stay symbolic[/cyan]")


@app.command()
def draw(
    spec: Path = typer.Argument(..., help="spec file (.yaml, .yml, .json)"),
    output: Path = typer.Option(..., "--output", "-o", help="diagram file; the format comes from the suffix: "
                                                            ".svg, .png, .pdf or .dot; - writes DOT to stdout"),
    depth: Optional[int] = typer.Option(None, "--depth", min=0,
                                        help="draw K levels of blocks as clusters, fold deeper ones into one node "
                                             "(0 folds every block); default: every level that fits "
                                             "max_drawn_nodes"),
    rankdir: str = typer.Option("TB", "--rankdir", help="TB (top to bottom) or LR (left to right)"),
    network: Optional[str] = typer.Option(None, "--network", help="only this network (default: all, side by side)"),
    bind: Optional[List[str]] = typer.Option(None, "--bind", metavar="SYM=INT", help="fix symbols, e.g. --bind H=224,W=224"),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", metavar="NAME=VALUE", help="set network parameters"),
    search_path: Optional[List[Path]] = typer.Option(None, "--search-path", help="also allow imports from this folder"),
    legend: bool = typer.Option(True, "--legend/--no-legend", help="title line and colour legend"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print errors only"),
) -> None:
    """Draw a network with Graphviz: shapes on the edges, blocks as clusters, op families in colour."""
    from .draw import RANKDIRS, draw as run_draw
    _say_which(spec)
    rankdir = rankdir.upper()
    if rankdir not in RANKDIRS:
        raise typer.BadParameter(f"unknown direction {rankdir!r}; use TB or LR (or BT, RL)", param_hint="--rankdir")
    d = run_draw(spec, output, depth=depth, rankdir=rankdir, network=network, bind=_parse_kv(bind, "--bind") or None,
                 params=_parse_kv(param, "--param") or None, legend=legend,
                 search_path=[str(s) for s in search_path or []])
    if not quiet and str(output) != "-":
        folded = f", {len(d.folded)} folded blocks" if d.folded else ""
        if depth is None and d.depth is not None:
            folded += f" (depth {d.depth} chosen to fit max_drawn_nodes={LIMITS.max_drawn_nodes:,}; --depth K to choose)"
        if d.units:
            folded += f", {len(d.units)} unit{'s' if len(d.units) > 1 else ''} of the network drawn as one box each"
        if d.fans:
            folded += f", {len(d.fans)} wide fan{'s' if len(d.fans) > 1 else ''} drawn shortened"
        if d.runs or d.fans:
            folded += (f", {len(d.runs)} long chain{'s' if len(d.runs) != 1 else ''} drawn shortened" if d.runs else
                       "") + " to fit the limits ('netspec summary' lists every layer)"
        _out.print(f"wrote {_esc(str(output))}: {d.nodes} nodes, {d.clusters} clusters, {d.edges} edges{folded}")


@app.command("compile")
def compile_(
    spec: Path = typer.Argument(..., help="spec file (.yaml, .yml, .json)"),
    output: Path = typer.Option(..., "--output", "-o", help="the Python file to write (e.g. model.py); - for stdout"),
    network: Optional[str] = typer.Option(None, "--network", help="which network of a file with several"),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", metavar="NAME=VALUE", help="set network parameters"),
    bind: Optional[List[str]] = typer.Option(None, "--bind", metavar="SYM=INT", help="fix symbols, e.g. --bind H=224,W=224"),
    class_name: Optional[str] = typer.Option(None, "--class-name", help="name of the network's class"),
    search_path: Optional[List[Path]] = typer.Option(None, "--search-path", help="also allow imports from this folder"),
    weights: Optional[Path] = typer.Option(None, "--weights", help="trained weights (.safetensors or a torch state "
                                           "dict): also write them beside the source as MODEL.pt, with a "
                                           "load_trained() function in the source"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print errors only"),
) -> None:
    """Write standalone, readable PyTorch source for a spec: one nn.Module class per block, importing only torch.

    A file with several networks (a GAN) gives one module with a class for each, unless --network picks one.
    With --weights, the trained weights go beside it (model.py -> model.pt, torch.load(weights_only=True)) and the
    source gets load_trained(), which builds the network and loads them: a trained model.py that needs only torch.
    """
    from .codegen.source import generate_module
    _say_which(spec)
    from .io import is_stdout, output_target, write_output
    from .pipeline import graphs as pipeline_graphs
    if class_name is not None and not (class_name.isidentifier() and class_name.isascii()):
        raise typer.BadParameter(f"{class_name!r} is not a Python identifier", param_hint="--class-name")
    if not is_stdout(output):
        output_target(output)       # a device, FIFO or folder is refused before any work
    graphs = pipeline_graphs(spec, network, params=_parse_kv(param, "--param") or None,
                             bind=_parse_kv(bind, "--bind") or None, search_path=[str(x) for x in search_path or []])
    if class_name is not None and len(graphs) > 1:
        raise typer.BadParameter(f"the file has {len(graphs)} networks; --class-name needs --network",
                                 param_hint="--class-name")
    if weights is not None:
        if len(graphs) > 1:
            raise typer.BadParameter(f"the file has {len(graphs)} networks; --weights needs --network",
                                     param_hint="--weights")
        if is_stdout(output):
            raise typer.BadParameter("the weights are written beside the source: give a file", param_hint="--output")
    src, tops = generate_module(graphs, class_names=[class_name] * len(graphs),
                                weights_file=output.with_suffix(".pt").name if weights is not None else None)
    if weights is not None:
        _write_trained_weights(graphs[0], weights, output.with_suffix(".pt"))
    write_output(output, src)
    if quiet or is_stdout(output):
        return
    if weights is not None:
        _out.print(f"wrote {_esc(str(output.with_suffix('.pt')))}: the weights of {_esc(str(weights))}")
    if len(graphs) == 1:
        _out.print(f"wrote {_esc(str(output))}: class {tops[0]}, {graphs[0].num_params():,} parameters")
    else:
        each = ", ".join(f"{t} ({g.num_params():,} parameters)" for t, g in zip(tops, graphs))
        _out.print(f"wrote {_esc(str(output))}: classes {_esc(each)}")


def _write_trained_weights(g, weights: Path, target: Path) -> None:
    """Load the weights into the built network (all or nothing, checked against the spec), then save its state dict
    for torch.load(weights_only=True), atomically."""
    import io as _bytes_io

    import torch

    from .codegen.build import build
    from .io import atomic_write_bytes, output_target
    from .weights import load_weights
    output_target(target)
    model = build(g)
    load_weights(model, weights)
    buf = _bytes_io.BytesIO()
    torch.save(model.state_dict(), buf)
    atomic_write_bytes(target, buf.getvalue())


@app.command()
def export(
    spec: Path = typer.Argument(..., help="spec file"),
    output: Path = typer.Option(..., "--output", "-o", help="the file to write: .onnx, or .json (the graph as data; "
                                                            "- for stdout)"),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="onnx or json (default: from the suffix)"),
    network: Optional[str] = typer.Option(None, "--network", help="which network of the file (default: the first)"),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", metavar="NAME=VALUE", help="set network parameters"),
    bind: Optional[List[str]] = typer.Option(None, "--bind", metavar="SYM=INT", help="fix symbols, e.g. --bind H=224"),
    search_path: Optional[List[Path]] = typer.Option(None, "--search-path", help="also allow imports from this folder"),
    opset: Optional[int] = typer.Option(None, "--opset", help="ONNX opset version"),
    weights: Optional[Path] = typer.Option(None, "--weights", help="trained weights to export (.safetensors or "
                                                                   "torch.save); checked in full before loading"),
) -> None:
    """Export a network to ONNX (needs onnx + onnxscript), checked with onnx.checker and onnxruntime if installed;
    or (--format json, or a .json output) its expanded graph as data, described by `netspec schema --graph`."""
    gc.enable()                 # torch's exporters make cyclic garbage: the cyclic GC back on (see main)
    from .export import export_onnx
    _say_which(spec)
    from .io import is_stdout, output_target
    fmt = (fmt or ("json" if output.suffix.lower() == ".json" else "onnx")).lower()
    if fmt not in ("onnx", "json"):
        raise typer.BadParameter(f"unknown format {fmt!r}; formats: onnx, json", param_hint="--format")
    if fmt == "json":
        _export_json(spec, output, network, _parse_kv(param, "--param"), _parse_kv(bind, "--bind"), search_path,
                     opset=opset, weights=weights)
        return
    if is_stdout(output):
        from .errors import Loc, OutputError
        raise OutputError("cannot write ONNX to standard output: it is binary", Loc("-", 1, 1),
                          ["name a file with -o model.onnx", "or write the graph as JSON: --format json -o -"])
    output_target(output)
    rep = export_onnx(str(spec), output, network, bindings=_parse_kv(bind, "--bind") or None, opset=opset,
                      weights=weights, **_parse_kv(param, "--param"))
    dyn = f", dynamic: {', '.join(rep.dynamic)}" if rep.dynamic else ""
    cmp = f", max |onnxruntime - torch| = {rep.max_abs_diff:.2e}" if rep.max_abs_diff is not None else ""
    _out.print(_esc(f"wrote {rep.path}: opset {rep.opset}, {rep.nbytes:,} bytes{dyn}{cmp}"))


def _export_json(spec: Path, output: Path, network, params: dict, bind: dict, search_path, *, opset, weights) -> None:
    """`export --format json`: the expanded graph as a document of netspec/graph.schema.json."""
    from .graph.data import to_json
    from .io import is_stdout, output_target, write_output
    from .pipeline import graphs as pipeline_graphs
    for name, value in (("--opset", opset), ("--weights", weights)):
        if value is not None:
            raise typer.BadParameter("the graph as JSON holds no weights or opset; this option is for ONNX",
                                     param_hint=name)
    if not is_stdout(output):
        output_target(output)       # a device, FIFO, folder or the spec itself is refused before any work
    gs = pipeline_graphs(spec, network, params=params or None, bind=bind or None,
                         search_path=[str(x) for x in search_path or []])
    if len(gs) > 1:
        from .errors import Loc, SpecError
        raise SpecError(f"{spec} has {len(gs)} networks ({', '.join(g.name for g in gs)}); a graph document "
                        "holds one", Loc(str(spec), 1, 1), "choose one with --network NAME")
    write_output(output, to_json(gs[0]))
    if not is_stdout(output):
        _out.print(_esc(f"wrote {output}: network {gs[0].name}, {len(gs[0].nodes)} nodes, "
                        f"{gs[0].num_params():,} parameters"))


@app.command()
def schema(
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="write to this file instead of stdout"),
    graph: bool = typer.Option(False, "--graph", help="the schema of the graph document (export --format json) "
                                                      "instead of the spec language's"),
) -> None:
    """Print the JSON Schema (draft 2020-12) of the spec language, for editors (YAML language server); with --graph,
    the schema of the graph document that `export --format json` writes."""
    from .io import is_stdout, output_target, write_output
    from .spec.models import json_schema
    if output and not is_stdout(output):
        output_target(output)
    if graph:
        from .graph.data import graph_schema
        write_output(output or "-", json.dumps(graph_schema(), indent=2) + "\n")
        return
    text = json.dumps(json_schema(), indent=2, sort_keys=False)
    write_output(output or "-", text + "\n")


@app.command()
def serve(
    spec: Path = typer.Argument(..., help="spec file (.yaml, .yml, .json)"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (default: this machine only)"),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="port; 0 picks a free one"),
    depth: Optional[int] = typer.Option(None, "--depth", min=0, help="fold blocks deeper than K at first (the page "
                                                                     "can change it)"),
    network: Optional[str] = typer.Option(None, "--network", help="only this network (default: all, side by side)"),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", metavar="NAME=VALUE", help="set network parameters"),
    bind: Optional[List[str]] = typer.Option(None, "--bind", metavar="SYM=INT", help="fix symbols, e.g. --bind H=224,W=224"),
    search_path: Optional[List[Path]] = typer.Option(None, "--search-path", help="also allow imports from this folder"),
) -> None:
    """A local page with the diagram, the shape table and the errors, redrawn when the spec (or an import) is saved.

    Click a layer or block to see its spec lines; choose --depth folding in the page. Ctrl-C stops it.
    """
    gc.enable()                 # a long-running command: the cyclic GC back on (see main)
    from .zoo import resolve
    _say_which(spec)
    spec = Path(resolve(spec).path)  # a bundled name ('resnet18') serves the bundled file (read-only there)
    if not spec.is_file():           # a typo is an error here; errors inside the file are shown (and fixed) live
        from .errors import Loc, SpecError
        raise SpecError(f"cannot read '{spec}': " + ("it is not a file" if spec.exists() else
                                                     "No such file or directory"), Loc(str(spec), 1, 1),
                        "give the path of a spec file (.yaml, .yml, .json)")
    srv = _start_server(spec, host, port, network=network, params=_parse_kv(param, "--param"),
                        bind=_parse_kv(bind, "--bind"), search_path=search_path, depth=depth)
    _serve_until_interrupted(srv)


def _start_server(spec: Path, host: str, port: int, *, network=None, params=None, bind=None, search_path=None,
                  metrics_dir=None, depth: int | None = None):
    from .serve import Options, serve as run_serve
    from .pipeline import parse_bind
    opts = Options(network=network, params=params or {}, bind=parse_bind(bind or None),
                   search_path=[str(x) for x in search_path or []])
    srv = run_serve(spec, host=host, port=port, options=opts, metrics_dir=metrics_dir)
    url = srv.url + (f"?depth={depth}" if depth is not None else "")
    _out.print(f"serving {_esc(str(spec))} at {url}  (Ctrl-C stops)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        _err.print(f"[yellow]warning: listening on {_esc(host)}: other machines can read this spec[/yellow]")
    sys.stdout.flush()
    return srv


def _serve_until_interrupted(srv) -> None:
    import time
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()


@app.command()
def train(
    spec: Path = typer.Argument(..., help="spec file with a 'train:' section"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="a file with the 'train:' section to use"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="override train.epochs"),
    steps: Optional[int] = typer.Option(None, "--steps", help="override train.steps (optimizer steps in all)"),
    lr: Optional[float] = typer.Option(None, "--lr", help="override the optimizer's learning rate"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="override train.batch_size (global)"),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N"),
    seed: Optional[int] = typer.Option(None, "--seed", help="override train.seed"),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="output folder (checkpoints, metrics, weights)"),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the network"),
    strategy: Optional[str] = typer.Option(None, "--strategy",
                                           help="under torchrun: ddp, or fsdp to shard a network too big for one device"),
    resume: bool = typer.Option(False, "--resume", help="continue from the newest checkpoint in the output folder"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output"),
    serve_: bool = typer.Option(False, "--serve", help="also serve the page of `netspec serve`, with live loss and "
                                                       "metric curves and per-layer gradient norms"),
    host: str = typer.Option("127.0.0.1", "--host", help="with --serve: address to listen on"),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="with --serve: port; 0 picks a free one"),
) -> None:
    """Train a spec's network(s) as its 'train:' section says; checkpoints, metrics.jsonl, curves.png, weights.

    Under torchrun (torchrun --nproc_per_node=K -m netspec train ...) every process trains its share (DDP, or
    FSDP2 with --strategy fsdp). With --serve the page stays up after training until Ctrl-C.
    """
    gc.enable()                 # a long-running command: the cyclic GC back on (see main)
    from .train.loop import train as run_train
    _say_which(spec)
    overrides = dict(epochs=epochs, steps=steps, lr=lr, batch_size=batch_size, device=device, seed=seed, out=out,
                     compile=compile_ or None, strategy=strategy)
    srv = None
    if serve_ and int(os.environ.get("RANK", 0)) == 0:
        from .spec.load import load
        from .train.loop import resolve_config
        loaded = load(spec)
        cfg, _ = resolve_config(loaded, config, overrides)
        from .zoo import resolve
        srv = _start_server(Path(resolve(spec).path), host, port,
                            metrics_dir=Path(cfg.out.format(name=loaded.name)))
    res = run_train(spec, config=config, resume=resume, quiet=quiet, **overrides)
    if res.out is not None and int(os.environ.get("RANK", 0)) == 0:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in res.metrics.items())
        _out.print(_esc(f"trained in {res.seconds:.1f}s; test: {shown or '-'}; wrote {res.out}/"))
    if srv is not None:
        _out.print(f"training done; the page stays at {srv.url} until Ctrl-C")
        sys.stdout.flush()
        _serve_until_interrupted(srv)


@app.command()
def evaluate(
    spec: Path = typer.Argument(..., help="spec file with a 'train:' section"),
    weights: Path = typer.Option(..., "--weights", "-w", help="trained weights (.safetensors)"),
    split: str = typer.Option("test", "--split", help="train, val or test"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="a file with the 'train:' section to use"),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", metavar="NAME=VALUE", help="set network parameters"),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N"),
) -> None:
    """Report the metrics of trained weights on the data of the spec's 'train:' section."""
    gc.enable()                 # a long-running command: the cyclic GC back on (see main)
    from .train.use import evaluate as run_evaluate
    _say_which(spec)
    if split not in ("train", "val", "test"):
        raise typer.BadParameter(f"unknown split {split!r}; use train, val or test", param_hint="--split")
    res, warnings = run_evaluate(spec, weights, split=split, config=config, params=_parse_kv(param, "--param"),
                                 device=device)
    for w in warnings:
        _err.print(f"[yellow]warning: {_esc(w)}[/yellow]")
    sys.stdout.write(json.dumps({"split": split, **res}) + "\n")


@app.command()
def predict(
    spec: Path = typer.Argument(..., help="spec file"),
    weights: Path = typer.Option(..., "--weights", "-w", help="trained weights (.safetensors)"),
    inputs: Path = typer.Option(..., "--inputs", "-i", help=".npz file with one array per spec input (by name), "
                                                             "or a .csv of feature rows"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="write the outputs to this .npz"),
    network: Optional[str] = typer.Option(None, "--network", help="which network of the file"),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", metavar="NAME=VALUE", help="set network parameters"),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N"),
) -> None:
    """Run trained weights on inputs; print the predicted classes (or values), or write all outputs to --output."""
    gc.enable()                 # a long-running command: the cyclic GC back on (see main)
    from .train.use import predict as run_predict
    _say_which(spec)
    lines, warnings = run_predict(spec, weights, inputs, output=output, network=network,
                                  params=_parse_kv(param, "--param"), device=device)
    for w in warnings:
        _err.print(f"[yellow]warning: {_esc(w)}[/yellow]")
    for line in lines:
        sys.stdout.write(line + "\n")


@app.command()
def zoo(
    names: Optional[List[str]] = typer.Argument(None, help="only these bundled specs"),
) -> None:
    """List the bundled specs: parameters, MACs, the file, and what each reproduces. Any command takes a bundled
    spec's name where it takes a file (netspec check resnet18): a file of that name always wins."""
    from . import zoo as bundled
    known = bundled.names()
    for n in names or []:
        if n not in known:
            from .errors import SpecError, did_you_mean
            raise SpecError(f"no bundled spec named '{n}'", None,
                            [h for h in [did_you_mean(n, known)] if h] + [f"bundled: {', '.join(known)}"])
    for k, n in enumerate(names or known):
        if k:
            _out.print("")
        for line in bundled.text(bundled.entry(bundled.bundled(n))).split("\n"):
            _out.print(_esc(line))


@app.command()
def ops(
    name: Optional[str] = typer.Argument(None, help="one op: its parameters, defaults, shape rule, torch class and "
                                                    "an example layer"),
    fmt: str = typer.Option("text", "--format", "-f", help="text, or markdown (the whole reference, docs/ops.md)"),
) -> None:
    """List the built-in ops by family, with what each becomes in PyTorch; or show one op."""
    from .ops import reference
    from .ops.base import all_names, all_ops, plugin_problems
    if fmt not in ("text", "markdown"):
        raise typer.BadParameter(f"unknown format {fmt!r}; formats: text, markdown", param_hint="--format")
    if fmt == "markdown":
        if name is not None:
            raise typer.BadParameter("--format markdown writes the whole reference; leave out NAME",
                                     param_hint="--format")
        sys.stdout.write(reference.markdown())
        return
    if name is not None:
        op = reference.find(name)
        if op is None:
            from .errors import SpecError, did_you_mean
            raise SpecError(f"unknown op '{name}'", None,
                            [h for h in [did_you_mean(name, all_names())] if h] +
                            ["run 'netspec ops' for the list of ops"])
        for line in reference.text(op).split("\n"):
            _out.print(_esc(line))
        return
    fam: dict = {}
    for op in all_ops().values():
        fam.setdefault(op.family, []).append(op)
    for f in sorted(fam):
        _out.print(f"[bold]{_esc(f)}[/bold]")
        for op in sorted(fam[f], key=lambda o: o.name):
            alias = f" (also {', '.join(op.aliases)})" if op.aliases else ""
            doc = (op.__doc__ or op.doc or "").strip().split("\n")[0]
            _out.print(f"  {op.name:<30} {_esc(f'[{op.package}]'):<16} {_esc(doc)}{_esc(alias)}")
    _out.print("netspec ops NAME shows one op: parameters, defaults, shape rule, torch class, an example")
    problems = plugin_problems()
    if problems:        # listed above are the ops that work; a broken plugin is an error here
        global _plugins_reported
        _plugins_reported = True
        _print_errors([p.error() for p in problems])
        raise UserError()


_plugins_reported = False


def _warn_plugin_problems() -> None:
    """After a command other than 'ops': name the plugins that failed to load, as warnings, if the registry was
    loaded (a spec that uses one of their ops got that plugin's error instead of 'unknown op')."""
    base = sys.modules.get("netspec.ops.base")    # not imported: no spec was read, no plugin loaded
    if base is None or _plugins_reported or not base._loaded or not base.PROBLEMS:
        return
    from .errors import Warning_
    _print_errors([Warning_(p.message, None, list(p.hints)) for p in base.PROBLEMS if p not in base.REPORTED])


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `netspec` script and `python -m netspec`. Returns the exit code."""
    # A spec becomes many small long-lived objects and few reference cycles; with the default thresholds the cyclic
    # GC rescans them over and over (a third of the time of a large check). mypy's main does the same.
    gc.set_threshold(200_000, 30, 30)
    # The tooling commands build one big structure with almost no cycles and then end: the cyclic GC only rescans it
    # as it grows (10-25% of expanding a 100k-node spec). It is off for them; the commands that run torch (export,
    # train, evaluate, predict) and serve turn it back on.
    from .gcpause import paused
    with paused():
        return _run(argv)


def _run(argv: list[str] | None) -> int:
    from .entry_points import no_pydantic_plugins
    no_pydantic_plugins()
    global _plugins_reported
    _plugins_reported = False
    from . import cache
    cache.ENABLED = True          # repeated calls on an unchanged spec reuse its expansion (--no-cache: not)
    try:
        try:
            app(args=argv, standalone_mode=False, prog_name="netspec")
        finally:
            _warn_plugin_problems()
        return 0
    except UserError:
        return 1
    except NetspecError as e:
        _print_error(e)
        return 1
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        _err.print("aborted")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # click usage errors and internal bugs
        try:
            from typer import _click as click  # typer >= 0.20 vendors click
        except ImportError:  # pragma: no cover
            import click
        if isinstance(e, click.exceptions.ClickException):
            e.show()
            return e.exit_code
        if type(e).__name__ == "Exit" and hasattr(e, "exit_code"):
            return e.exit_code
        if os.environ.get("NETSPEC_DEBUG"):
            raise
        _err.print(f"netspec: internal error: {type(e).__name__}: {_esc(str(e))}")
        _err.print("this is a bug in netspec; rerun with NETSPEC_DEBUG=1 for a traceback and report it")
        return 3
    finally:
        cache.ENABLED = False


def _torchrun_worker() -> bool:
    from .train.distributed import world       # (asked only where torch is imported already)
    try:
        return world()[2] > 1
    except ValueError:      # a WORLD_SIZE that is not a number: the command said so; not a worker
        return False


def _script() -> None:
    # main() turns the cyclic GC off for the command and back on after it, as it found it; here the process ends
    # right after (below), and turning it back on made it collect at once: a full pass over everything the command
    # made (0.25 s after a 100k-node compile), for nothing. A command that needs the GC turns it on itself.
    gc.disable()
    code = main()
    # A big spec leaves millions of small objects; freeing them one by one at interpreter exit took a second or two
    # after the work was done (1.2 s of a 100k-node compile). The command has written and flushed everything, so
    # end the process at once, as mypy does; not where torch was imported (training, export: its native threads
    # and atexit hooks get a normal exit), except in a torchrun worker: there the process group is destroyed and all
    # written by then, and finalizing the interpreter while gloo's threads were still alive (the device mesh of a
    # sharded model keeps the group) aborted a rank now and then ("terminate called without an active exception",
    # SIGABRT), failing a run that had finished.
    if "torch" not in sys.modules or _torchrun_worker():
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):      # a closed pipe (netspec ops | head): nothing more to say
                pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    _script()
