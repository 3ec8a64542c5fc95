"""The embedded store's engine: ladybug 0.22 (the default: the maintained fork of Kuzu), or Kuzu 0.11.3 with
CIRCUITDB_ENGINE=kuzu (archived upstream; kept to read older catalogs). The two read the same Cypher through the same
Python API, but not each other's files, and cannot be loaded in one process."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

from circuitdb.errors import StoreError

ENGINES = ("ladybug", "kuzu")
# the first bytes of each engine's database file
MAGIC = {b"LBUG": "ladybug", b"KUZU": "kuzu"}


def engine_name() -> str:
    """The engine CIRCUITDB_ENGINE names (ladybug unless set)."""
    name = os.environ.get("CIRCUITDB_ENGINE", "ladybug")
    if name not in ENGINES:
        raise StoreError(f"CIRCUITDB_ENGINE must be one of {', '.join(ENGINES)}, not {name!r}")
    return name


def engine() -> ModuleType:
    """The engine module CIRCUITDB_ENGINE names."""
    name = engine_name()
    try:
        return importlib.import_module(name)
    except ImportError:
        how = "pip install 'circuitdb[kuzu]'" if name == "kuzu" else "reinstall circuitdb, which depends on it"
        raise StoreError(f"the embedded engine {name} is not installed ({how})") from None


def written_by(path: Path) -> str | None:
    """Which engine wrote the database file at `path`, by its first bytes (None: not a file either writes)."""
    try:
        with open(path, "rb") as file:
            return MAGIC.get(file.read(4))
    except OSError:
        return None


def refuse_other_engine(path: Path, name: str) -> None:
    """One line, before the engine opens a file the other one wrote (it would say only that the file is invalid, or
    that its log is corrupted), that says how to go on."""
    other = written_by(path)
    if other == "kuzu" and name == "ladybug":
        raise StoreError(f"{path} was written by Kuzu 0.11, which circuitdb's engine (ladybug) cannot open: copy it "
                         f"into a new file with `circuitdb from-kuzu {path} --store kuzu:NEW_FILE` (needs pip install "
                         f"'circuitdb[kuzu]'), or keep using it with CIRCUITDB_ENGINE=kuzu")
    if other == "ladybug" and name == "kuzu":
        raise StoreError(f"{path} was written by ladybug, which Kuzu 0.11 cannot open: unset CIRCUITDB_ENGINE to "
                         f"use ladybug, circuitdb's default engine")
