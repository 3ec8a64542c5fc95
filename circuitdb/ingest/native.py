"""circuitdb's own JSON format: a list of whole runs, written by `export --format json` and read back losslessly."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import asdict, fields
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any, TextIO

from circuitdb.domain import Edge, Model, Run, Task
from circuitdb.errors import CircuitdbError
from circuitdb.ingest.files import read_json

FORMAT, VERSION = "circuitdb", 1
_RUN_FIELDS = {f.name for f in fields(Run)}


def _head(run: Run) -> dict[str, Any]:
    """The run's fields as JSON-ready values (members and edges left as they are), plus its id last."""
    data = {f.name: getattr(run, f.name) for f in fields(run)}
    data.update(model=asdict(run.model), task=asdict(run.task), id=run.id)
    return data


def run_to_dict(run: Run) -> dict[str, Any]:
    """A JSON-ready dict of one run (members and edges as lists in forward order)."""
    data = _head(run)
    data["components"] = [{"name": n, "score": s} for n, s in run.components.items()]
    data["edges"] = [{"sender": e.sender, "receiver": e.receiver, "input": e.input, "weight": e.weight} for e in run.edges]
    return data


def _value(value: str | float | None) -> str:
    """A name, score or weight as json writes it (scores and weights are finite floats or None)."""
    return encode_basestring_ascii(value) if isinstance(value, str) else "null" if value is None else repr(value)


def _items(rendered: Iterable[str]) -> str:
    text = ",\n".join(rendered)
    return f"[\n{text}\n ]" if text else "[]"


def run_text(run: Run) -> str:
    """`json.dumps(run_to_dict(run), indent=1)`, with the member and edge lists written here: the json module indents
    in pure Python, too slowly for an export of thousands of runs."""
    data = _head(run)
    data.update(components=0, edges=0)  # placeholders, replaced below (keys at depth 1 are unique in the text)
    text = json.dumps(data, indent=1)
    members = _items(f'  {{\n   "name": {_value(n)},\n   "score": {_value(s)}\n  }}' for n, s in run.components.items())
    edges = _items(f'  {{\n   "sender": {_value(e.sender)},\n   "receiver": {_value(e.receiver)},\n   "input": '
                   f'{_value(e.input)},\n   "weight": {_value(e.weight)}\n  }}' for e in run.edges)
    text = text.replace('\n "components": 0', '\n "components": ' + members, 1)
    return text.replace('\n "edges": 0', '\n "edges": ' + edges, 1)


def export_order(heads: list[dict[str, Any]]) -> list[str]:
    """Run ids in the order of the export document, from rows {id, model, task, method, ablation, metric, threshold,
    nests_in}: sorted by those fields (strictest threshold first), each parent (NESTS_IN target) before the runs that
    nest in it, so an import finds the parent already written."""
    by_id = {h["id"]: h for h in heads}
    ordered: dict[str, None] = {}

    def place(head: dict[str, Any]) -> None:
        if head["id"] in ordered:
            return
        if head["nests_in"] in by_id:
            place(by_id[head["nests_in"]])
        ordered[head["id"]] = None

    for head in sorted(heads, key=lambda h: (h["model"], h["task"], h["method"], h["ablation"], h["metric"],
                                             -(h["threshold"] or 0), h["id"])):
        place(head)
    return list(ordered)


def write_document(out: TextIO, runs: Iterable[Run]) -> None:
    """Write the export document of `runs`, in the order given, one run at a time (the text `json.dumps` with
    indent=1 makes of the whole document)."""
    out.write(f'{{\n "format": {json.dumps(FORMAT)},\n "version": {VERSION},\n "runs": [')
    written = False
    for run in runs:
        out.write(("," if written else "") + "\n  " + run_text(run).replace("\n", "\n  "))
        written = True
    out.write("\n ]\n}" if written else "]\n}")


def dumps(runs: list[Run]) -> str:
    """The export document of `runs` in export order (see `export_order`)."""
    by_id = {r.id: r for r in runs}
    heads = [{"id": r.id, "model": r.model.name, "task": r.task.name, "method": r.method, "ablation": r.ablation,
              "metric": r.metric, "threshold": r.threshold, "nests_in": r.nests_in} for r in runs]
    out = io.StringIO()
    write_document(out, (by_id[i] for i in export_order(heads)))
    return out.getvalue()


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
