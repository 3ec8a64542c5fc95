"""Read user files with errors that name the file and line, never a traceback; check where output files go."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from circuitdb.errors import CircuitdbError


def read_bytes(path: Path | str) -> bytes:
    """A file's contents; a missing or unreadable file is one line naming it."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CircuitdbError(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_text(path: Path | str) -> str:
    """A UTF-8 text file's contents; a missing, unreadable, binary or otherwise encoded file is one line naming it."""
    path = Path(path)
    data = read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        hint = "is it a binary file?" if b"\0" in data[:8192] else "another encoding, e.g. Latin-1? save it as UTF-8"
        raise CircuitdbError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}; "
                             f"{hint})") from None


def read_json(path: Path | str) -> tuple[Any, str]:
    """Parse a JSON file; a syntax error is reported as `file:line:col: message`."""
    text = read_text(path)
    try:
        return json.loads(text), text
    except json.JSONDecodeError as exc:
        raise CircuitdbError(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None
    except RecursionError:
        raise CircuitdbError(f"{path}: JSON nested too deeply to read (arrays or objects inside each other "
                             f"{sys.getrecursionlimit()}+ levels deep)") from None
    except ValueError:  # an integer of more digits than Python converts
        raise CircuitdbError(f"{path}: a number in the file has more than {sys.get_int_max_str_digits()} digits") from None


def read_yaml(path: Path | str) -> Any:
    """Parse a YAML file (safe loader); a syntax error is reported as `file:line: malformed YAML (problem)`."""
    import yaml

    text = read_text(path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise CircuitdbError(f"{path}{line}: malformed YAML ({getattr(exc, 'problem', None) or exc})") from None
    except RecursionError:
        raise CircuitdbError(f"{path}: YAML nested too deeply to read") from None


def provenance(path: Path | str, data: bytes, tool: str, version: str = "") -> dict[str, str]:
    """Where an imported run came from: the file's name and SHA-256, the tool that wrote it and its version (when the
    file says)."""
    found = {"source_file": Path(path).name, "source_sha256": hashlib.sha256(data).hexdigest(), "source_tool": tool}
    return found | ({"source_version": version} if version else {})


def line_of(text: str, needle: str) -> int:
    """1-based line of the first occurrence of `needle` in `text` (1 if absent), to point at a bad entry."""
    found = re.search(r"\s*".join(map(re.escape, needle.replace(" ", ""))), text)
    return text.count("\n", 0, found.start()) + 1 if found else 1


def fail(path: Path | str, text: str, needle: str, message: str) -> CircuitdbError:
    """An error pointing at the line where `needle` stands."""
    return CircuitdbError(f"{path}:{line_of(text, needle)}: {message}")


def check_output(path: Path | str) -> Path:
    """`path` if a file can be written there (its folder exists and is writable); else one line saying why not, before
    any work is done."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise CircuitdbError(f"{path}: is a folder; give a file name")
    if not folder.exists():
        raise CircuitdbError(f"{path}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise CircuitdbError(f"{path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise CircuitdbError(f"{path}: not writable (permission denied on {path if path.exists() else folder})")
    return path


@contextmanager
def writing(path: Path | str) -> Iterator[None]:
    """An OSError while writing `path` (disk full, a folder removed meanwhile) as one line naming the file."""
    try:
        yield
    except OSError as exc:
        raise CircuitdbError(f"{path}: cannot write ({exc.strerror or exc})") from None
