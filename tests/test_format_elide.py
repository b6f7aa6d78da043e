"""A big source goes to ruff with its runs of plain statements left out and put back after
(``source._ruff_eliding``): the text is the one ruff gives for the whole source, or the whole source is formatted."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import netspec.codegen.source as S
from netspec.errors import NetspecError

ruff_main = pytest.importorskip("ruff.__main__")
EXE = ruff_main.find_ruff_bin()
ROOT = Path(__file__).resolve().parents[1]


def _both(src: str) -> tuple[str | None, str | None]:
    return S._ruff_eliding(EXE, src), S._ruff(EXE, src)


def _raw_sources() -> list:
    sys.path.insert(0, str(ROOT / "tools" / "bench"))
    import specs as gen
    from netspec.graph.expand import expand
    from netspec.spec.load import load
    texts = [str(p) for p in sorted(ROOT.glob("specs/*.yaml")) + sorted(ROOT.glob("examples/*.yaml"))]
    texts += [gen.generate(k, 1500)[0] for k in gen.KINDS]
    out = []
    for t in texts:
        try:
            spec = load(t)
            gs = [expand(spec, n) for n in spec.networks]
            out.append(S.generate_module(gs, readable=False)[0])
        except NetspecError:
            continue
    return out


def test_generated_sources_format_the_same_either_way():
    """Every bundled spec, example and generated spec: the eliding way gives ruff's text for the whole source."""
    srcs = _raw_sources()
    assert len(srcs) > 30
    elided = 0
    for src in srcs:
        el, full = _both(src)
        assert full is not None
        if el is not None:
            assert el == full
            elided += 1
    assert elided > 0.9 * len(srcs)      # (every generated source has plain statements to leave out)


CRAFTED = {
    # ruff writes 'x=self.fc(x)' otherwise: a shape that does not come back as it was sent
    "unformatted": "class A:\n    def f(self, x):\n        x = self.a(x)\n        x=self.fc(x)\n        return x\n",
    # lines inside a docstring and inside brackets that look like plain statements
    "docstring": 'class A:\n    def f(self, x):\n        """Doc.\n\n        x = self.a(x)\n        y = 1\n        """\n'
                 "        x = self.a(x)\n        return x\n",
    "brackets": "class A:\n    def f(self, x):\n        x = g(\n        a,\n        b)\n        x = self.a(x)\n"
                "        return x\n",
    "backslash": "class A:\n    def f(self, x):\n        x = 1 + \\\n        y\n        x = self.a(x)\n        return x\n",
    "single_triple": "class A:\n    def f(self, x):\n        s = '''\n        x = self.a(x)\n        '''\n"
                     "        x = self.a(x)\n        return x\n",
    "comment_quotes": "class A:\n    def f(self, x):\n        x = self.a(x)  # it's \"\"\" here\n        x = self.b(x)\n"
                      "        return x\n",
    "comment_one_space": "class A:\n    def f(self, x):\n        x = self.a(x) # one space\n        return x\n",
    "long": "class A:\n    def f(self, x):\n        x = self.a(x, " + ", ".join(f"b{k}" for k in range(30)) + ")\n"
            "        x = self.a(x)\n        return x\n",
    "runs": "class A:\n    def f(self, x):\n        x = self.a(x)\n        y = self.b(x)\n\n        z = self.c(y)\n"
            "        if z:\n            z = self.d(z)\n        w = self.e(z)\n",
    "taken_name": "class A:\n    def f(self, x):\n        _netspec_elided_0 = 0\n        x = self.a(x)\n",
    "trailing_comma": "class A:\n    def f(self, x):\n        x = self.a(x, y,)\n        x = self.a(x, y)\n",
    "blank_lines": "class A:\n    def f(self, x):\n\n\n\n        x = self.a(x)\n        x = self.a(x)\n\n\n\n"
                   "        x = self.a(x)\n",
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_sources(name):
    el, full = _both(CRAFTED[name])
    assert full is not None
    assert el is None or el == full, name
    if name in ("runs", "docstring", "brackets", "backslash", "single_triple", "comment_quotes"):
        assert el is not None            # runs to leave out, and nothing that stops them
    if name in ("unformatted", "comment_one_space", "trailing_comma", "taken_name"):
        assert el is None                # ruff changes a shape, or the stand-in's name is taken


_NAME = st.sampled_from(["x", "y", "out", "self.fc1", "self.layer12.conv3", "a0", "torch.cat"])
_ARG = st.one_of(_NAME, st.integers(0, 10**6).map(str), st.sampled_from(["1.5", "1e-05", "-2", "None", "True"]))


@st.composite
def _statement(draw, indent: str):
    # mostly what the writer writes; now and then what ruff writes otherwise (then the whole source is formatted)
    kind = draw(st.sampled_from(["call"] * 6 + ["assign"] * 3 + ["comment"] * 3 +
                                ["blank", "doc", "multi", "if", "long", "odd"]))
    lhs = draw(_NAME)
    args = draw(st.lists(_ARG, max_size=4))
    call = f"{draw(_NAME)}({', '.join(args)})"
    eq = draw(st.sampled_from([" = "] * 30 + ["=", "  =  "]))
    if kind == "call":
        return [f"{indent}{lhs}{eq}{call}"]
    if kind == "assign":
        return [f"{indent}{lhs}{eq}{draw(_ARG)}"]
    if kind == "comment":
        gap = draw(st.sampled_from(["  "] * 20 + [" ", "   "]))
        text = draw(st.sampled_from(["(N, 8)  a.yaml:12", "it's", '"""', "x = 1", "#"]))
        return [f"{indent}{lhs}{eq}{call}{gap}# {text}"]
    if kind == "blank":
        return [""] * draw(st.integers(1, 3))
    if kind == "doc":
        q = draw(st.sampled_from(['"""', "'''"]))
        return [f"{indent}s = {q}", f"{indent}{lhs} = {call}", f"{indent}{q}"]
    if kind == "multi":
        return [f"{indent}{lhs} = f(", f"{indent}{draw(_ARG)},", f"{indent}{draw(_ARG)})"]
    if kind == "if":
        return [f"{indent}if {lhs}:", f"{indent}    {lhs} = {call}"]
    if kind == "long":
        return [f"{indent}{lhs} = {draw(_NAME)}({', '.join(['a_long_argument_name'] * draw(st.integers(3, 6)))})"]
    if draw(st.integers(0, 9)):
        return [f"{indent}{lhs} = {call}  # {draw(_ARG)}"]
    return [f"{indent}{lhs} = [{draw(_ARG)}, ]", f"{indent}{lhs} = ({draw(_ARG)})"]


@st.composite
def _source(draw):
    lines = ["class Net(nn.Module):", '    """A network."""', "", "    def forward(self, x):"]
    for _ in range(draw(st.integers(1, 25))):
        lines += draw(_statement("        "))
    lines.append("        return x")
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_source())
def test_random_sources_format_the_same_either_way(src):
    el, full = _both(src)
    if full is None:
        return                            # not Python (a blank body): nothing to compare
    assert el is None or el == full


def test_format_source_elides_big_sources_only(monkeypatch):
    """format_source leaves out the runs from ELIDE_MIN_LINES lines on, and gives ruff's text either way."""
    src = "class A:\n    def f(self, x):\n" + "".join(f"        x = self.fc{k}(x)  # (N, 8)\n" for k in range(50))
    calls = []
    real = S._ruff

    def spy(exe, text):
        calls.append(text)
        return real(exe, text)
    monkeypatch.setattr(S, "_ruff", spy)
    monkeypatch.setattr(S, "ELIDE_MIN_LINES", 10)
    eliding = S.format_source(src)
    assert len(calls) == 1 and "self.fc3(x)" not in calls[0]     # the run went as one stand-in
    monkeypatch.setattr(S, "ELIDE_MIN_LINES", 10**9)
    assert S.format_source(src) == eliding
    assert "self.fc3(x)" in calls[-1]
