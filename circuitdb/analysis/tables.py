"""Tables to files: a query's table as CSV (lists joined by `;`) or JSON records, chosen by the file's suffix."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from circuitdb.errors import CircuitdbError
from circuitdb.queries.results import records


def write_table(frame: pd.DataFrame, path: Path) -> Path:
    """CSV or JSON by the file's suffix."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        path.write_text(csv_text(frame))
    elif suffix == ".json":
        path.write_text(json.dumps(records(frame), indent=1))
    else:
        raise CircuitdbError(f"{path}: table format must be .csv or .json")
    return path


def csv_text(frame: pd.DataFrame) -> str:
    """A table as CSV; list cells (members of a region, say) are joined by `;`."""
    return frame.map(lambda v: ";".join(map(str, v)) if isinstance(v, list) else v).to_csv(index=False)
