"""Hostile cases that are made at test time: too big, binary, or made of links and pipes that git does not keep.

Each entry writes its files into an empty folder and returns the path (relative to that folder) to run netspec on.
Their expected messages live in expected.json with the committed cases.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

HEAD = "netspec: 1\ninputs: {x: [N, 8]}\n"


def _write(folder: Path, name: str, data: bytes | str) -> str:
    p = folder / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return name


def _spec_importing(folder: Path, target: str) -> str:
    return _write(folder, "main.yaml", HEAD + f"imports: [{target}]\nlayers:\n  - {{op: relu}}\n")


def text_50mb(folder: Path) -> str:
    """50 MB of comments after a valid start: refused by its size before a byte is parsed."""
    p = folder / "huge.yaml"
    with open(p, "wb") as f:
        f.write(HEAD.encode())
        line = b"# " + b"x" * 1021 + b"\n"
        for _ in range(50 * 1024):
            f.write(line)
    return p.name


def text_binary(folder: Path) -> str:
    return _write(folder, "binary.yaml", b"netspec: 1\n" + bytes(range(256)) * 4)


def text_invalid_utf8(folder: Path) -> str:
    return _write(folder, "latin1.yaml", HEAD.encode() + "doc: caf\u00e9 au lait\n".encode("latin-1"))


def text_utf16(folder: Path) -> str:
    return _write(folder, "utf16.yaml", (HEAD + "layers:\n  - {op: relu}\n").encode("utf-16"))


def text_bom_then_error(folder: Path) -> str:
    """A UTF-8 byte order mark is fine; the error after it keeps its line and column."""
    return _write(folder, "bom.yaml", b"\xef\xbb\xbf" + (HEAD + "layers:\n  - {op: lineer, out: 4}\n").encode())


def text_crlf_then_error(folder: Path) -> str:
    """Windows line ends are fine; the error keeps its line and column."""
    return _write(folder, "crlf.yaml", (HEAD + "layers:\n  - {op: linear, out: 4}\n  - {op: lineer, out: 4}\n")
                  .replace("\n", "\r\n").encode())


def text_control_character(folder: Path) -> str:
    return _write(folder, "bell.yaml", HEAD + "doc: \"ring \u00e9\x07\"\nlayers:\n  - {op: relu}\n")


def text_json_deep_1e5(folder: Path) -> str:
    return _write(folder, "deep.json", '{"netspec": 1, "doc": ' + "[" * 100_000 + "]" * 100_000 + "}\n")


def yaml_deep_flow_1e5(folder: Path) -> str:
    return _write(folder, "deep.yaml", HEAD + "doc: " + "[" * 100_000 + "]" * 100_000 + "\n")


def yaml_deep_block_1e5(folder: Path) -> str:
    """Block-style nesting needs no brackets: '- - - - x' is 10^5 levels on one line."""
    return _write(folder, "deep.yaml", "- " * 100_000 + "x\n")


def yaml_long_plain_key(folder: Path) -> str:
    return _write(folder, "key.yaml", HEAD + "k" * 100_000 + ": 1\n")


def yaml_long_string(folder: Path) -> str:
    return _write(folder, "doc.yaml", HEAD + "doc: " + "blah " * 20_000 + "\nlayers:\n  - {op: relu}\n")


def yaml_many_values(folder: Path) -> str:
    return _write(folder, "many.yaml", HEAD + "doc: [" + ", ".join(["0"] * 150_000) + "]\n")


def wrong_type_many_errors(folder: Path) -> str:
    """Ten thousand mistakes: reported in linear time, the first 50 printed."""
    return _write(folder, "many.yaml", "netspec: 1\ninputs:\n" + "".join(f"  x{i}: 5\n" for i in range(10_000))
                  + "layers:\n  - {op: relu}\n")


def path_import_symlink_dir(folder: Path) -> str:
    """A link inside the spec's folder that points outside it."""
    (folder / "shared").symlink_to("/etc", target_is_directory=True)
    return _spec_importing(folder, "shared/hostname")


def path_import_symlink_file(folder: Path) -> str:
    outside = folder.parent / f"{folder.name}-outside.yaml"
    outside.write_text("netspec: 1\nblocks:\n  unit: {layers: [{op: relu}]}\n")
    (folder / "lib.yaml").symlink_to(outside)
    return _spec_importing(folder, "lib.yaml")


def path_import_dev_zero(folder: Path) -> str:
    """An endless file behind a link: never read."""
    (folder / "zeros.yaml").symlink_to("/dev/zero")
    return _spec_importing(folder, "zeros.yaml")


def path_import_fifo(folder: Path) -> str:
    """A named pipe inside the folder: reading it would block for ever."""
    os.mkfifo(folder / "lib.yaml")
    return _spec_importing(folder, "lib.yaml")


def path_spec_fifo(folder: Path) -> str:
    os.mkfifo(folder / "spec.yaml")
    return "spec.yaml"


def path_spec_missing(folder: Path) -> str:
    return "nothere.yaml"


def path_spec_directory(folder: Path) -> str:
    (folder / "specs.yaml").mkdir()
    return "specs.yaml"


GENERATED: dict[str, Callable[[Path], str]] = {
    f.__name__: f for f in [
        text_50mb, text_binary, text_invalid_utf8, text_utf16, text_bom_then_error, text_crlf_then_error,
        text_control_character, text_json_deep_1e5, yaml_deep_flow_1e5, yaml_deep_block_1e5, yaml_long_plain_key,
        yaml_long_string, yaml_many_values, wrong_type_many_errors, path_import_symlink_dir,
        path_import_symlink_file, path_import_dev_zero, path_import_fifo, path_spec_fifo, path_spec_missing,
        path_spec_directory,
    ]
}
