"""The index of built-in ops (netspec/ops/_index.py) and the lookup that imports only the family an op is asked for
(base.lookup, base._family_for): the index is the registry's, and a lookup gives what a full load gives."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fresh(code: str) -> str:
    """Run ``code`` in a new interpreter (nothing imported yet) and return what it prints."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NETSPEC_NO_CACHE": "1"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd="/")
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_the_index_is_the_registry():
    """Every built-in op and alias, its family module, in the order a full load registers them: the file is what
    tools/gen_ops_index.py writes from a fresh full load (run it after adding an op)."""
    got = _fresh("import sys; sys.path.insert(0, 'tools'); sys.path.insert(0, %r); import gen_ops_index as g; "
                 "print(g.index_text(), end='')" % str(ROOT / "tools"))
    assert got == (ROOT / "netspec" / "ops" / "_index.py").read_text()


_PROBE = """
import json, sys
from netspec.ops import base
asked = {asked!r}
got = {{n: (None if base.lookup(n) is None else base.lookup(n).__name__) for n in asked}}
fams = sorted(m.rsplit('.', 1)[-1] for m in sys.modules if m.startswith('netspec.ops.') and
              m.rsplit('.', 1)[-1] not in ('base', '_index'))
full = base.all_ops()
print(json.dumps([got, fams, list(full), sorted(base.ALIASES.items()), list(base.ALIASES)]))
"""


def test_a_lookup_imports_one_family_and_answers_as_a_full_load():
    asked = ["conv2d", "conv", "relu", "lstm", "no_such_op", "bottleneck", "linear", "mha", "scaled_dot_product_attention"]
    lazy = json.loads(_fresh(_PROBE.format(asked=asked).replace("full = base.all_ops()", "full = {}")))
    got, fams = lazy[0], lazy[1]
    # the families of what was asked, and the ones they import (tensors: the input op every family module uses)
    assert set(fams) <= {"conv", "activation", "recurrent", "linear", "attention", "tensors", "merge"}, fams
    assert "detection" not in fams and "einsum" not in fams
    # the same answers as a full load, which then puts the registry in a full load's order
    after = json.loads(_fresh(_PROBE.format(asked=asked)))
    first = json.loads(_fresh(_PROBE.format(asked=[])))        # nothing looked up before the full load
    fullfirst = json.loads(_fresh("import json; from netspec.ops import base; f = base.all_ops(); asked = %r; "
                                  "print(json.dumps({n: (None if base.lookup(n) is None else base.lookup(n).__name__)"
                                  " for n in asked}))" % asked))
    assert got == fullfirst == after[0]
    assert got["no_such_op"] is None and got["bottleneck"] is None and got["conv"] == got["conv2d"]
    assert after[2] == first[2]                 # the registry's order: as if nothing had been looked up first
    assert after[4] == first[4] and after[3] == first[3]


def test_where_plugins_may_exist_the_registry_is_loaded_whole():
    """An installed distribution that can declare 'netspec.ops' entry points: a lookup loads every family and the
    plugins, as before (the index cannot know a plugin's ops)."""
    out = _fresh("import sys\nfrom netspec.ops import base\nbase._may_declare_plugins = lambda: True\n"
                 "base.lookup('relu')\nprint(base._loaded, sorted(m for m in sys.modules if m == 'netspec.ops.einsum'))")
    assert out.strip() == "True ['netspec.ops.einsum']"


_THREADS = """
import threading
from netspec.ops import base
{setup}
names = ['conv2d', 'lstm', 'relu', 'multihead_attention', 'einsum', 'embedding', 'dropout', 'linear'] * 4
got = [None] * len(names)
gate = threading.Barrier(len(names))
def run(k):
    gate.wait()
    got[k] = base.lookup(names[k])
threads = [threading.Thread(target=run, args=(k,)) for k in range(len(names))]
for t in threads: t.start()
for t in threads: t.join()
print(sum(g is None for g in got), len(set(base._LAZY)), base._complete)
"""


def test_lookups_from_many_threads_at_once_all_find_their_op():
    """`netspec serve` expands specs in several threads: a family imported by one thread is complete before another
    thread's lookup answers from it."""
    missing, families, complete = _fresh(_THREADS.format(setup="")).split()
    assert missing == "0" and int(families) >= 6 and complete == "False"


def test_a_full_load_in_one_thread_makes_the_others_wait_for_it():
    """Where plugins may exist a lookup loads every family: a thread that comes while another is loading waits for
    the whole registry instead of answering from part of it."""
    missing, families, complete = _fresh(_THREADS.format(setup="base._may_declare_plugins = lambda: True")).split()
    assert missing == "0" and families == "0" and complete == "True"
