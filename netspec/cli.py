"""The commands. Thin: parse arguments, call the API, print. Exit 0 ok, 1 the input is wrong, 2 usage."""
from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .errors import ErrorList, NetspecError
from .limits import LIMITS

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="netspec: neural networks written as data. Check, draw, summarise and compile YAML/JSON specs.",
                  pretty_exceptions_enable=False)

class _LazyConsole:
    """A rich Console made on first use (importing rich costs more than `--help` should)."""

    def __init__(self, **kw):
        self._kw = kw
        self._console = None

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
    """Text for rich: markup escaped, control characters (ESC, ...) made visible."""
    from rich.markup import escape
    from .errors import visible
    return escape(visible(s))


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
    symbolic = sorted({str(x) for s in res if s.symbolic for x in s.totals.macs.free_symbols()},
                      key=lambda x: (order.get(x, 5), x))
    if fmt == "table" and symbolic:
        example = ",".join(f"{x}={1 if x == 'N' else 224}" for x in symbolic)
        _err.print(f"[cyan]  hint: MACs depend on {', '.join(symbolic)}; bind them for numbers, "
                   f"e.g. --bind {example}[/cyan]")


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
    output: Path = typer.Option(..., "--output", "-o", help="the .onnx file to write"),
    network: Optional[str] = typer.Option(None, "--network", help="which network of the file (default: the first)"),
    param: Optional[List[str]] = typer.Option(None, "--param", "-p", metavar="NAME=VALUE", help="set network parameters"),
    bind: Optional[List[str]] = typer.Option(None, "--bind", metavar="SYM=INT", help="fix symbols, e.g. --bind H=224"),
    opset: Optional[int] = typer.Option(None, "--opset", help="ONNX opset version"),
    weights: Optional[Path] = typer.Option(None, "--weights", help="trained weights to export (.safetensors or "
                                                                   "torch.save); checked in full before loading"),
) -> None:
    """Export a network to ONNX (needs onnx + onnxscript), checked with onnx.checker and onnxruntime if installed."""
    from .export import export_onnx
    from .io import is_stdout, output_target
    if is_stdout(output):
        from .errors import Loc, OutputError
        raise OutputError("cannot write ONNX to standard output: it is binary", Loc("-", 1, 1),
                          "name a file with -o model.onnx")
    output_target(output)
    rep = export_onnx(str(spec), output, network, bindings=_parse_kv(bind, "--bind") or None, opset=opset,
                      weights=weights, **_parse_kv(param, "--param"))
    dyn = f", dynamic: {', '.join(rep.dynamic)}" if rep.dynamic else ""
    cmp = f", max |onnxruntime - torch| = {rep.max_abs_diff:.2e}" if rep.max_abs_diff is not None else ""
    _out.print(_esc(f"wrote {rep.path}: opset {rep.opset}, {rep.nbytes:,} bytes{dyn}{cmp}"))


@app.command()
def schema(
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="write to this file instead of stdout"),
) -> None:
    """Print the JSON Schema (draft 2020-12) of the spec language, for editors (YAML language server)."""
    from .io import is_stdout, output_target, write_output
    from .spec.models import json_schema
    if output and not is_stdout(output):
        output_target(output)
    text = json.dumps(json_schema(), indent=2, sort_keys=False)
    write_output(output or "-", text + "\n")


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
    resume: bool = typer.Option(False, "--resume", help="continue from the newest checkpoint in the output folder"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output"),
) -> None:
    """Train a spec's network(s) as its 'train:' section says; checkpoints, metrics.jsonl, curves.png, weights.

    Under torchrun (torchrun --nproc_per_node=K -m netspec train ...) every process trains its share (DDP).
    """
    from .train.loop import train as run_train
    res = run_train(spec, config=config, resume=resume, quiet=quiet, epochs=epochs, steps=steps, lr=lr,
                    batch_size=batch_size, device=device, seed=seed, out=out, compile=compile_ or None)
    if res.out is not None and int(os.environ.get("RANK", 0)) == 0:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in res.metrics.items())
        _out.print(_esc(f"trained in {res.seconds:.1f}s; test: {shown or '-'}; wrote {res.out}/"))


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
    from .train.use import evaluate as run_evaluate
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
    from .train.use import predict as run_predict
    lines, warnings = run_predict(spec, weights, inputs, output=output, network=network,
                                  params=_parse_kv(param, "--param"), device=device)
    for w in warnings:
        _err.print(f"[yellow]warning: {_esc(w)}[/yellow]")
    for line in lines:
        sys.stdout.write(line + "\n")


def zoo_dir() -> Path:
    here = Path(__file__).resolve().parent
    for cand in (here.parent / "specs", here / "specs"):
        if cand.is_dir():
            return cand
    return here.parent / "specs"


@app.command()
def zoo() -> None:
    """List the bundled specs in specs/, one line each."""
    d = zoo_dir()
    for p in sorted(d.glob("*.yaml")) + sorted(d.glob("*.json")):
        first = ""
        try:
            from .spec.parse import load_file
            doc = load_file(p).data.get("doc")
            first = doc.strip().split("\n")[0] if isinstance(doc, str) else ""
        except NetspecError:
            pass
        if not first:
            for line in p.read_text(encoding="utf-8").splitlines():
                if line.startswith("#"):
                    first = line.lstrip("# ").strip()
                    break
        _out.print(f"{p.stem:<18} {_esc(first)}")


@app.command()
def ops() -> None:
    """List the built-in ops by family, with what each becomes in PyTorch."""
    from .ops.base import all_ops
    fam: dict = {}
    for name, op in all_ops().items():
        fam.setdefault(op.family, []).append(op)
    for f in sorted(fam):
        _out.print(f"[bold]{f}[/bold]")
        for op in sorted(fam[f], key=lambda o: o.name):
            alias = f" (also {', '.join(op.aliases)})" if op.aliases else ""
            doc = (op.__doc__ or op.doc or "").strip().split("\n")[0]
            _out.print(f"  {op.name:<30} {_esc(doc)}{_esc(alias)}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `netspec` script and `python -m netspec`. Returns the exit code."""
    # A spec becomes many small long-lived objects and few reference cycles; with the default thresholds the cyclic
    # GC rescans them over and over (a third of the time of a large check). mypy's main does the same.
    gc.set_threshold(200_000, 30, 30)
    from . import cache
    cache.ENABLED = True          # repeated calls on an unchanged spec reuse its expansion (--no-cache: not)
    try:
        app(args=argv, standalone_mode=False, prog_name="netspec")
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


def _script() -> None:
    sys.exit(main())


if __name__ == "__main__":
    _script()
