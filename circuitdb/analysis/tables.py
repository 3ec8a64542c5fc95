"""Query results as exact JSON-ready records and as CSV/JSON files."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from circuitdb.errors import CircuitdbError


def plain(value: Any) -> Any:
    """A JSON-safe Python value: NaN becomes null, numpy scalars become Python numbers, sets become sorted lists."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        items = sorted(value) if isinstance(value, set) else value
        return [plain(v) for v in items]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a DataFrame as plain dicts (the `--json` form of a table)."""
    return [plain(row) for row in frame.to_dict(orient="records")]


def matrix_records(matrix: pd.DataFrame) -> dict[str, Any]:
    """A labelled square matrix as {labels, matrix}."""
    return {"labels": list(matrix.index), "matrix": plain(matrix.to_numpy().tolist())}


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """CSV or JSON by the file's suffix."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        flat = frame.map(lambda v: ";".join(map(str, v)) if isinstance(v, list) else v)
        flat.to_csv(path, index=False)
    elif suffix == ".json":
        path.write_text(json.dumps(records(frame), indent=1))
    else:
        raise CircuitdbError(f"{path}: table format must be .csv or .json")
    return path
