"""`netspec schema` is a draft 2020-12 JSON Schema that accepts every bundled spec and rejects broken ones."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from netspec.spec.parse import load_file

ROOT = Path(__file__).parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


@pytest.fixture(scope="module")
def schema():
    out = subprocess.run([sys.executable, "-m", "netspec", "schema"], capture_output=True, text=True, check=True)
    s = json.loads(out.stdout)
    jsonschema.Draft202012Validator.check_schema(s)
    return s


def test_schema_is_2020_12_and_describes_ops(schema):
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    conv = schema["$defs"]["Layer_conv2d"]["properties"]
    assert "kernel" in conv and conv["kernel"].get("description")
    assert "in_channels" not in conv


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_bundled_spec_validates(schema, path):
    data = load_file(path).data
    jsonschema.Draft202012Validator(schema).validate(data)


@pytest.mark.parametrize("bad", [
    {"netspec": 1, "inputs": {"x": ["N", 3]}, "layers": [{"op": "linear", "out": 3, "bogus": 1}]},
    {"netspec": 1, "inputs": {"x": ["N", 3]}, "layers": [{"op": "linear"}]},
    {"netspec": 2, "inputs": {"x": ["N", 3]}, "layers": []},
    {"netspec": 1, "inputs": {"x": ["N", 3]}, "layers": [{"op": "conv2d", "out": 3, "kernel": 3, "padding_mode": 5}]},
])
def test_schema_rejects(schema, bad):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(bad)
