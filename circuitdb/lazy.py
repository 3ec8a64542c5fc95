"""Heavy libraries imported on first use, so the CLI and the web view start fast: `from circuitdb.lazy import pd`
reads like `import pandas as pd`, and pandas (2 s on a loaded machine), numpy and pyarrow load when a command first
touches them. Imports nothing of circuitdb, so any layer may use it."""

from __future__ import annotations

import importlib
import types
from typing import Any


class LazyModule(types.ModuleType):
    """A stand-in for the module `name`: the first attribute asked for imports it; later ones are read directly."""

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self.__name__)
        self.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
        return getattr(module, attr)


pd = LazyModule("pandas")
np = LazyModule("numpy")
pa = LazyModule("pyarrow")
