"""A benchmark's measurement of the other embedded engine, in a child process (the two engines cannot be loaded in
one): its lines shown as they come, its last line JSON."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any


def on_engine(command: list[str], engine: str) -> tuple[int, Any]:
    """Run `command` with CIRCUITDB_ENGINE=engine, printing every line but JSON ones; its exit status, and its last
    line parsed when it exited 0 (None otherwise)."""
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, "CIRCUITDB_ENGINE": engine})
    lines = []
    for line in child.stdout:
        lines.append(line)
        if not line.startswith(("{", "[")):
            print(line, end="", flush=True)
    code = child.wait()
    return code, json.loads(lines[-1]) if code == 0 else None
