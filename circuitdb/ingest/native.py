"""circuitdb's own JSON format: a list of whole runs, written by `export --format json` and read back losslessly."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from circuitdb.domain import Edge, Model, Run, Task
from circuitdb.errors import CircuitdbError
from circuitdb.ingest.files import read_json

FORMAT, VERSION = "circuitdb", 1
_RUN_FIELDS = {f.name for f in fields(Run)}


def run_to_dict(run: Run) -> dict[str, Any]:
    """A JSON-ready dict of one run (members and edges as lists in forward order)."""
    data = asdict(run)
    data["id"] = run.id
    data["components"] = [{"name": n, "score": s} for n, s in run.components.items()]
    data["edges"] = [{"sender": e.sender, "receiver": e.receiver, "input": e.input, "weight": e.weight} for e in run.edges]
    return data


def dumps(runs: list[Run]) -> str:
    """The export document; parents (NESTS_IN targets) come before the runs that nest in them."""
    by_id = {r.id: r for r in runs}
    ordered: dict[str, Run] = {}

    def place(run: Run) -> None:
        if run.id in ordered:
            return
        if run.nests_in in by_id:
            place(by_id[run.nests_in])
        ordered[run.id] = run

    for run in sorted(runs, key=lambda r: (r.model.name, r.task.name, r.method, r.ablation, r.metric, -(r.threshold or 0), r.id)):
        place(run)
    return json.dumps({"format": FORMAT, "version": VERSION, "runs": [run_to_dict(r) for r in ordered.values()]}, indent=1)


def read_native(path: Path | str) -> list[Run]:
    """Runs from an export document; any malformed run names its position."""
    data, _ = read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("runs"), list):
        raise CircuitdbError(f"{path}:1: not a circuitdb export (expected format 'circuitdb' and a 'runs' list)")
    if data.get("version") != VERSION:
        raise CircuitdbError(f"{path}:1: export version {data.get('version')!r} is not supported (want {VERSION})")
    return [_run(path, i, item) for i, item in enumerate(data["runs"])]


def _run(path: Path | str, position: int, item: Any) -> Run:
    where = f"{path}: runs[{position}]"
    try:
        body = {k: v for k, v in item.items() if k in _RUN_FIELDS}
        body["model"] = Model(**item["model"])
        body["task"] = Task(**item["task"])
        body["components"] = {c["name"]: c["score"] for c in item["components"]}
        body["edges"] = [Edge(e["sender"], e["receiver"], e["weight"], e.get("input", "")) for e in item["edges"]]
        run = Run(**body).validate()
    except CircuitdbError as exc:
        raise CircuitdbError(f"{where}: {exc}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise CircuitdbError(f"{where}: missing or malformed field ({exc})") from None
    if "id" in item and item["id"] != run.id:
        raise CircuitdbError(f"{where}: id {item['id']} does not match its defining fields (expected {run.id})")
    return run
