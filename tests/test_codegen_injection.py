"""No spec text reaches generated source except as a sanitised identifier or an escaped literal.

Every hostile string below goes into each free-text place of a spec (network name, docs, block names, string
parameters); the spec is compiled, the file imported and run in a fresh interpreter, and nothing may execute.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import netspec
from netspec.errors import NetspecError

ROOT = Path(__file__).parent.parent


def hostile(canary: Path) -> list[str]:
    act = f"open({str(canary)!r}, 'w').write('pwned')"
    return [
        f'"""\n{act}\n"""',
        f"'''\n{act}\n'''",
        f"\n{act}\n",
        f"\\\n{act}",
        f"# \n{act}",
        f"x\r{act}",
        f"\u2028{act}",
        f"{{{act}}}",
        f"\"); {act}; (\"",
        f"'); {act}; ('",
        f"\\x00{act}",
        f"__import__('os').system('touch {canary}')",
        "forward", "self", "__init__", "import", "class", "nn", "torch", "F", "math", "super",
        "naïve", "ｍａｘ", "a.b", "a b", "1abc", "", " ", "\t",
    ]


def spec_text(s: str) -> str:
    doc = json.dumps(s)
    return json.dumps({
        "netspec": 1,
        "name": s,
        "doc": s,
        "params": {"mode": "nearest"},
        "inputs": {"x": ["N", 3, 8, 8]},
        "blocks": {"unit": {"doc": s, "layers": [{"op": "conv2d", "out": 4, "kernel": 3, "padding": 1, "doc": s}]}},
        "layers": [
            {"name": "stem", "op": "unit", "doc": s},
            {"name": "up", "op": "upsample", "scale": 2, "mode": "nearest", "doc": s},
        ],
    })


def test_hostile_text_compiles_to_inert_source(tmp_path):
    canary = tmp_path / "pwned"
    files = []
    for k, s in enumerate(hostile(canary)):
        try:
            src = netspec.compile_source(netspec.load(spec_text(s), name=f"h{k}.json"))
        except NetspecError as e:   # refused with a located error is fine too
            assert e.loc is not None
            continue
        compile(src, f"h{k}.py", "exec")          # always valid Python
        f = tmp_path / f"h{k}.py"
        f.write_text(src)
        files.append(f)
    assert files, "every hostile spec was refused; the test would prove nothing"
    runner = f"""
import importlib.util, sys, torch
for path in {json.dumps([str(f) for f in files])}:
    spec = importlib.util.spec_from_file_location("m", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    classes = [v for v in vars(mod).values() if isinstance(v, type) and issubclass(v, torch.nn.Module)
               and v.__module__ == "m"]
    out = classes[-1]()(torch.randn(1, 3, 8, 8))
    assert tuple(out.shape) == (1, 4, 16, 16), out.shape
print("ok", len({json.dumps([str(f) for f in files])}))
"""
    r = subprocess.run([sys.executable, "-c", runner], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("ok")
    assert not canary.exists()


@pytest.mark.parametrize("name", ["forward", "self", "__init__", "import", "a.b", "a b", "ｍａｘ", "-1abc", "a:b", ""])
def test_hostile_layer_names_are_refused_with_a_location(name):
    text = json.dumps({"netspec": 1, "inputs": {"x": ["N", 4]}, "layers": [{"name": name, "op": "linear", "out": 2}]})
    try:
        res = netspec.check(netspec.load(text, name="n.json"))
    except NetspecError as e:
        errors = getattr(e, "errors", [e])
    else:
        assert not res.ok
        errors = res.errors
    assert errors and all(e.loc is not None and e.loc.file == "n.json" for e in errors)
