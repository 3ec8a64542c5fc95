"""The embedded store's engine: Kuzu 0.11.3 (the default), or its maintained fork ladybug 0.22 with
CIRCUITDB_ENGINE=ladybug. The two read the same Cypher through the same Python API, but not each other's files,
and cannot be loaded in one process."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from circuitdb.errors import StoreError

ENGINES = ("kuzu", "ladybug")


def engine() -> ModuleType:
    """The engine module CIRCUITDB_ENGINE names (kuzu unless set)."""
    name = os.environ.get("CIRCUITDB_ENGINE", "kuzu")
    if name not in ENGINES:
        raise StoreError(f"CIRCUITDB_ENGINE must be one of {', '.join(ENGINES)}, not {name!r}")
    try:
        return importlib.import_module(name)
    except ImportError:
        raise StoreError(f"the embedded engine {name} is not installed (pip install 'circuitdb[{name}]')") from None
