"""Read user files with errors that name the file and line, never a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from circuitdb.errors import CircuitdbError


def read_json(path: Path | str) -> tuple[Any, str]:
    """Parse a JSON file; a syntax error is reported as `file:line:col: message`."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise CircuitdbError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return json.loads(text), text
    except json.JSONDecodeError as exc:
        raise CircuitdbError(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None


def line_of(text: str, needle: str) -> int:
    """1-based line of the first occurrence of `needle` in `text` (1 if absent), to point at a bad entry."""
    found = re.search(r"\s*".join(map(re.escape, needle.replace(" ", ""))), text)
    return text.count("\n", 0, found.start()) + 1 if found else 1


def fail(path: Path | str, text: str, needle: str, message: str) -> CircuitdbError:
    """An error pointing at the line where `needle` stands."""
    return CircuitdbError(f"{path}:{line_of(text, needle)}: {message}")
