"""Ops from installed packages (the 'netspec.ops' entry-point group), and the checks plugin authors run.

The example plugin (examples/netspec_plugin_example) is installed offline into a temporary folder (never into the
shared environment) and netspec runs as a subprocess with that folder on PYTHONPATH: the plugin's ops appear in
`netspec ops` with their package, pass `check_op`, and a spec using them checks, compiles (the standalone model.py
imports and runs) and builds. Broken and clashing plugins are small packages written here (a .dist-info folder and a
module), each giving its documented error.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import Field

from netspec.ops import Dim, Op, Params, call, lit, need_float
from netspec.testing import check_op

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "netspec_plugin_example"
SPEC = EXAMPLE / "blurnet.yaml"


def _run(args: list[str], *paths, code: str | None = None, cwd=ROOT) -> subprocess.CompletedProcess:
    """`python -m netspec ARGS` (or `python -c CODE`) with ``paths`` and this checkout first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(p) for p in paths] + [str(ROOT)])
    env.pop("NETSPEC_DEBUG", None)
    cmd = [sys.executable, "-c", code] if code is not None else [sys.executable, "-m", "netspec", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr
    return r


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example plugin, installed with pip into a temporary target, offline, from a copy of its folder (pip
    builds in place)."""
    import importlib.util
    assert importlib.util.find_spec("setuptools") is not None, \
        "installing the example plugin offline needs setuptools in the environment (requirements-test.lock pins it)"
    tmp = tmp_path_factory.mktemp("plugin")
    src = tmp / "src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                        "--no-build-isolation", "--target", str(target), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (target / "netspec_plugin_example" / "ops.py").exists()
    return target


def _fake_package(root: Path, dist: str, module: str, source: str, entry_points: dict) -> Path:
    """An installed package without pip: a module and a .dist-info folder declaring 'netspec.ops' entry points."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n", encoding="utf-8")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[netspec.ops]\n{lines}", encoding="utf-8")
    return root


# -- the example plugin ------------------------------------------------------------------------------------------

def test_plugin_ops_are_listed_with_their_package(site):
    r = _run(["ops"], site)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    blur = [ln for ln in lines if ln.split() and ln.split()[0] == "blur_pool2d"]
    swiglu = [ln for ln in lines if ln.split() and ln.split()[0] == "swiglu"]
    assert blur and "[netspec-plugin-example]" in blur[0] and "(also blurpool)" in blur[0]
    assert swiglu and "[netspec-plugin-example]" in swiglu[0]
    conv = [ln for ln in lines if ln.split() and ln.split()[0] == "conv2d"]
    assert conv and "[netspec]" in conv[0]
    assert r.stderr == ""


def test_without_the_plugin_its_ops_are_unknown():
    r = _run(["check", str(SPEC)])
    assert r.returncode == 1
    assert "blurnet.yaml:13:23: error" in r.stderr and "unknown op 'blur_pool2d'" in r.stderr


def test_check_op_passes_on_the_plugin_ops(site):
    r = _run([], site, code=textwrap.dedent("""
        from netspec.testing import check_op
        from netspec_plugin_example.ops import BlurPool2d, SwiGLU
        check_op(BlurPool2d)
        check_op(SwiGLU)
        print("checked")
    """))
    assert r.returncode == 0 and "checked" in r.stdout, r.stderr


def test_the_spec_checks_compiles_and_builds(site, tmp_path):
    r = _run(["check", str(SPEC)], site)
    assert r.returncode == 0, r.stderr
    assert "outputs: out [N, 10]" in r.stdout and "requires: H >= 2, W >= 2" in r.stdout
    out = tmp_path / "model.py"
    r = _run(["compile", str(SPEC), "-o", str(out)], site)
    assert r.returncode == 0, r.stderr
    text = out.read_text(encoding="utf-8")
    assert "class BlurPool2d(nn.Module):" in text                   # a helper class: torch only
    assert "import netspec_plugin_example.modules\n" in text         # Op.imports: the plugin's own module
    assert "netspec_plugin_example.modules.SwiGLU(64, 128)" in text
    # the standalone file runs without netspec: only torch and the plugin's torch module are imported
    r = _run([], site, cwd=tmp_path, code=textwrap.dedent("""
        import sys, torch
        import model
        m = model.Blurnet().eval()
        y = m(torch.randn(2, 3, 20, 18))
        assert tuple(y.shape) == (2, 10), y.shape
        assert not any(k == "netspec" or k.startswith("netspec.") for k in sys.modules), "model.py imported netspec"
        print(sum(p.numel() for p in m.parameters()))
    """))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["44618"]
    r = _run([], site, code=textwrap.dedent(f"""
        import torch, netspec
        m = netspec.build({str(SPEC)!r}, num_classes=7).eval()
        y = m(torch.randn(3, 3, 11, 9))
        assert tuple(y.shape) == (3, 7), y.shape
        print(sorted(k for k in m.state_dict() if k.startswith("ffn.")))
    """))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['ffn.w12.bias', 'ffn.w12.weight', 'ffn.w3.bias', 'ffn.w3.weight']" or \
        r.stdout.strip() == "['ffn.w12.weight', 'ffn.w3.weight']"


def test_blur_pool_matches_timm_and_swiglu_its_formula(site):
    """The plugin's ops against references: timm's BlurPool2d (strict state_dict load, same outputs) and SwiGLU's
    definition written out with torch.nn.functional."""
    pytest.importorskip("timm")
    r = _run([], site, code=textwrap.dedent("""
        import torch, torch.nn.functional as F, netspec
        from timm.layers import BlurPool2d
        for kernel, stride in [(3, 2), (5, 2), (4, 2), (2, 1)]:
            text = f'''
        netspec: 1
        inputs: {{x: [N, 8, H, W]}}
        layers:
          - {{name: blur, op: blur_pool2d, kernel: {kernel}, stride: {stride}}}
        '''
            ours = netspec.build(text).eval()
            ref = BlurPool2d(8, filt_size=kernel, stride=stride).eval()
            ours.load_state_dict(ref.state_dict(), strict=True)
            x = torch.randn(2, 8, 13, 10)
            assert (ours(x) - ref(x)).abs().max().item() <= 1e-5, (kernel, stride)
        m = netspec.build('''
        netspec: 1
        inputs: {x: [N, T, 16]}
        layers:
          - {name: ffn, op: swiglu, hidden: 24, out: 8, bias: true}
        ''').eval()
        x = torch.randn(2, 5, 16)
        sd = m.state_dict()
        a, b = F.linear(x, sd["ffn.w12.weight"], sd["ffn.w12.bias"]).chunk(2, dim=-1)
        want = F.linear(F.silu(a) * b, sd["ffn.w3.weight"], sd["ffn.w3.bias"])
        assert (m(x) - want).abs().max().item() <= 1e-5
        print("same")
    """))
    assert r.returncode == 0 and r.stdout.strip() == "same", r.stderr


# -- check_op itself: it fails, precisely ---------------------------------------------------------------------------

class _WrongWeights(Op):
    """A linear map whose weights() forgets the bias: check_op must say so."""

    name = "wrong_weights"
    cases = [({"out": 3}, [(Dim.sym("N"), 4)], [(Dim.sym("N"), 3)])]

    class Params(Params):
        out: int = Field(gt=0)

    @classmethod
    def infer(cls, ins, p, ctx):
        need_float(ins[0], cls.name)
        return [ins[0].with_shape(ins[0].shape[:-1] + (p.out,))]

    @classmethod
    def weights(cls, ins, p):
        return {"weight": ((p.out, ins[0].shape[-1]), "param")}

    @classmethod
    def macs(cls, ins, outs, p):
        return 0

    @classmethod
    def constructor(cls, ins, p):
        return call("nn.Linear", lit(ins[0].shape[-1]), lit(p.out))


class _WrongShape(_WrongWeights):
    """Its shape rule says the output keeps the input's features; torch disagrees."""

    name = "wrong_shape"

    @classmethod
    def infer(cls, ins, p, ctx):
        return [ins[0]]

    @classmethod
    def weights(cls, ins, p):
        return {"weight": ((p.out, ins[0].shape[-1]), "param"), "bias": ((p.out,), "param")}


def test_check_op_reports_what_differs():
    with pytest.raises(AssertionError, match=r"op 'wrong_weights' case 0 .*weights\(\) is .*'weight'.*state_dict is "
                                             r".*'bias'"):
        check_op(_WrongWeights, spec=False)
    with pytest.raises(AssertionError, match=r"op 'wrong_shape' case 0 .*inferred \[N, 4\], expected \[N, 3\]"):
        check_op(_WrongShape, spec=False)
    with pytest.raises(AssertionError, match="not a valid op"):
        check_op(int)
    with pytest.raises(AssertionError, match="the registry's op 'unregistered' is None.*install the plugin package"):
        check_op(_Unregistered)       # passes the direct checks; the spec checks need the op installed


class _Unregistered(_WrongShape):
    name = "unregistered"

    @classmethod
    def infer(cls, ins, p, ctx):
        return _WrongWeights.infer.__func__(cls, ins, p, ctx)


# -- broken and clashing plugins ---------------------------------------------------------------------------------

_GOOD = """
    from pydantic import Field
    from netspec.ops import Op, Params, call, lit

    class Scale(Op):
        '''Multiply by a constant.'''
        name = "{name}"
        cases = []

        class Params(Params):
            by: float = Field(2.0)

        @classmethod
        def weights(cls, ins, p):
            return {{}}

        @classmethod
        def macs(cls, ins, outs, p):
            return 0

        @classmethod
        def forward(cls, ins, p):
            from netspec.codegen.ir import binop, Operand
            return binop("*", Operand(0), lit(p.by, "by"))
"""

USES = """netspec: 1
inputs: {x: [N, 4]}
layers:
  - {op: linear, out: 3}
  - {op: %s}
"""


def test_a_name_clash_with_a_builtin_names_both_packages(tmp_path):
    site = _fake_package(tmp_path / "site", "clash-plugin", "clash_plugin", _GOOD.format(name="conv2d"),
                         {"conv2d": "clash_plugin:Scale"})
    r = _run(["ops"], site)
    assert r.returncode == 1
    assert "plugin package 'clash-plugin'" in r.stderr and "conv2d = clash_plugin:Scale" in r.stderr
    assert "clashes with the built-in op 'conv2d' (package 'netspec')" in r.stderr
    assert "[netspec]" in [ln for ln in r.stdout.splitlines() if ln.split()[:1] == ["conv2d"]][0]
    # other commands still work, and say which plugin was left out
    r = _run(["check", "specs/resnet18.yaml"], site)
    assert r.returncode == 0
    assert "warning: plugin package 'clash-plugin'" in r.stderr


def test_two_plugins_claiming_one_name_name_both_and_neither_is_used(tmp_path):
    site = tmp_path / "site"
    _fake_package(site, "alpha-ops", "alpha_ops", _GOOD.format(name="times_two"), {"times_two": "alpha_ops:Scale"})
    _fake_package(site, "beta-ops", "beta_ops", _GOOD.format(name="times_two"), {"times_two": "beta_ops:Scale"})
    r = _run(["ops"], site)
    assert r.returncode == 1
    assert "plugin package 'alpha-ops'" in r.stderr and "also claimed by package 'beta-ops'" in r.stderr
    assert "plugin package 'beta-ops'" in r.stderr and "also claimed by package 'alpha-ops'" in r.stderr
    spec = tmp_path / "net.yaml"
    spec.write_text(USES % "times_two", encoding="utf-8")
    r = _run(["check", str(spec)], site)
    assert r.returncode == 1
    assert f"{spec}:5:10: error: op 'times_two' is not available: plugin package 'alpha-ops'" in r.stderr
    assert "beta-ops" in r.stderr


@pytest.mark.parametrize("source, target, why", [
    ("import no_such_module_anywhere\n", "broken_ops:Scale",
     "cannot be imported: ModuleNotFoundError: No module named 'no_such_module_anywhere'"),
    ("def Scale():\n    pass\n", "broken_ops:Scale", "names function 'Scale', which is not a subclass of netspec.ops.Op"),
    ("raise SystemExit(3)\n", "broken_ops:Scale", "cannot be imported: SystemExit: 3"),
    (_GOOD.format(name="other_name"), "broken_ops:Scale",
     "the entry point is named 'times_two' but the class's op name is 'other_name'"),
    ("from netspec.ops import register\n" + textwrap.dedent(_GOOD.format(name="times_two")).replace(
        "class Scale", "@register\nclass Scale"), "broken_ops:Scale",
     "TypeError: Scale: a plugin does not call netspec.ops.register()"),
], ids=["import-error", "not-an-op", "system-exit", "misnamed", "calls-register"])
def test_a_broken_plugin_is_an_error_for_its_op_only(tmp_path, source, target, why):
    site = _fake_package(tmp_path / "site", "broken-ops", "broken_ops", source, {"times_two": target})
    r = _run(["ops"], site)
    assert r.returncode == 1
    assert "error: plugin package 'broken-ops' (entry point 'times_two = broken_ops:Scale' in group 'netspec.ops')" \
        in r.stderr
    assert why in r.stderr and "hint: fix the package 'broken-ops', or uninstall it" in r.stderr
    assert "conv2d" in r.stdout                      # the built-ins are still listed
    spec = tmp_path / "net.yaml"
    spec.write_text(USES % "times_two", encoding="utf-8")
    r = _run(["check", str(spec)], site)
    assert r.returncode == 1
    assert f"{spec}:5:10: error: op 'times_two' is not available: plugin package 'broken-ops'" in r.stderr and why in r.stderr
    spec.write_text(USES % "relu", encoding="utf-8")
    r = _run(["check", str(spec)], site)
    assert r.returncode == 0 and "OK" in r.stdout
    assert "warning: plugin package 'broken-ops'" in r.stderr


def test_a_spec_never_causes_an_import(tmp_path):
    """An op name that is an importable module, or looks like a Python path, is an unknown op: nothing is imported
    for it (the module here would leave a file behind if it were)."""
    mods = tmp_path / "mods"
    mods.mkdir()
    marker = tmp_path / "imported"
    (mods / "evil_mod.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Thing: pass\n", encoding="utf-8")
    for name in ("evil_mod", "evil_mod.Thing", "evil_mod:Thing"):
        spec = tmp_path / "net.yaml"
        spec.write_text(USES % f"'{name}'", encoding="utf-8")
        r = _run(["check", str(spec)], mods)
        assert r.returncode == 1 and f"{spec}:5:" in r.stderr, r.stderr
        assert not marker.exists(), name


def test_the_docs_show_the_example_as_it_is():
    """docs/plugins.md's worked example is the example package's code, verbatim (so the two cannot drift)."""
    import re
    doc = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(\w+)\n(.*?)```", doc, re.S)
    op_src = (EXAMPLE / "netspec_plugin_example" / "ops.py").read_text(encoding="utf-8")
    shown = [b for lang, b in blocks if lang == "python" and b.startswith("class BlurPool2d(Op):")]
    assert len(shown) == 1 and shown[0] in op_src
    toml = [b for lang, b in blocks if lang == "toml"]
    assert len(toml) == 1 and toml[0] in (EXAMPLE / "pyproject.toml").read_text(encoding="utf-8")
    spec = [b for lang, b in blocks if lang == "yaml"]
    assert spec and spec[0] in SPEC.read_text(encoding="utf-8")


def test_the_quick_look_for_plugins_never_misses_one(tmp_path, monkeypatch):
    """Before importlib.metadata is asked, the installed distributions' entry_points.txt files are read; the
    registry skips the scan only when none can declare the group. Anything unusual on sys.path means 'ask'."""
    from netspec.ops import base
    empty, site, zipped = tmp_path / "empty", tmp_path / "site", tmp_path / "x.zip"
    empty.mkdir()
    (empty / "plain-1.0.dist-info").mkdir()
    (empty / "other-1.0.dist-info").mkdir()
    (empty / "other-1.0.dist-info" / "entry_points.txt").write_text("[console_scripts]\nx = y:z\n")
    monkeypatch.setattr(sys, "path", [str(empty), str(tmp_path / "missing")])
    assert base._may_declare_plugins() is False
    (site / "plug-1.0.dist-info").mkdir(parents=True)
    (site / "plug-1.0.dist-info" / "entry_points.txt").write_text("[netspec.ops]\nfoo = plug:Foo\n")
    monkeypatch.setattr(sys, "path", [str(empty), str(site)])
    assert base._may_declare_plugins() is True
    zipped.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    monkeypatch.setattr(sys, "path", [str(empty), str(zipped)])
    assert base._may_declare_plugins() is True


def _pydantic_plugins_seen(path: list[str], env_extra: dict | None = None) -> str:
    """What pydantic's plugin loader answers in a `netspec check` process whose sys.path starts with ``path``."""
    code = textwrap.dedent("""
        import sys
        from netspec import cli
        cli.main(["check", "-q", "mlp"])
        loader = sys.modules.get("pydantic.plugin._loader")
        print(type(loader.get_plugins()).__name__, len(list(loader.get_plugins())),
              "importlib.metadata" in sys.modules, loader.__doc__ is not None and "netspec" in loader.__doc__)
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    env.update(PYTHONPATH=os.pathsep.join(path + [str(Path(__file__).resolve().parents[1])]), **(env_extra or {}))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_pydantic_finds_its_plugins_as_before(tmp_path):
    """The CLI tells pydantic 'no plugins' without importlib.metadata only when no distribution can declare one; a
    distribution that declares one is loaded by pydantic's own loader, as without netspec."""
    got = _pydantic_plugins_seen([])
    assert got.split()[1:] == ["0", "False", "True"], got          # answered here: nothing imported, nothing found
    site = tmp_path / "site"
    (site / "pplug-1.0.dist-info").mkdir(parents=True)
    (site / "pplug-1.0.dist-info" / "entry_points.txt").write_text("[pydantic]\npplug = pplug_mod:plugin\n")
    (site / "pplug-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: pplug\nVersion: 1.0\n")
    (site / "pplug_mod.py").write_text(textwrap.dedent("""
        class _Plugin:
            def new_schema_validator(self, *a, **k):
                return None, None, None
        plugin = _Plugin()
    """))
    got = _pydantic_plugins_seen([str(site)])
    assert got.split()[1:] == ["1", "True", "False"], got          # pydantic's loader found and loaded it
    got = _pydantic_plugins_seen([], {"PYDANTIC_DISABLE_PLUGINS": "__all__"})
    assert got.split()[3] == "False", got                            # the user's setting: pydantic's own loader
