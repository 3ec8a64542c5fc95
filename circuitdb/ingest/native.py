"""circuitdb's own JSON format: a list of whole runs, written by `export --format json` and read back losslessly."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, fields
from itertools import chain, repeat
from json.encoder import encode_basestring_ascii
from operator import attrgetter
from pathlib import Path
from typing import Any, TextIO

from circuitdb.domain import Edge, Model, Run, Task
from circuitdb.errors import CircuitdbError
from circuitdb.ingest.files import read_json

FORMAT, VERSION = "circuitdb", 1
READ_CHUNK = 1 << 20  # characters an import reads at a time
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


def _value(value: Any) -> str:
    """A name, score or weight as json writes it."""
    return encode_basestring_ascii(value) if isinstance(value, str) else json.dumps(value)


def _values(values: list[Any]) -> Iterable[str]:
    """_value of each, through one C-level map where all are strings or all are floats (the usual case)."""
    kinds = set(map(type, values))
    if kinds <= {str}:
        return map(encode_basestring_ascii, values)
    return map(float.__repr__, values) if kinds <= {float} else map(_value, values)


MEMBER = '  {\n   "name": %s,\n   "score": %s\n  }'
EDGE = '  {\n   "sender": %s,\n   "receiver": %s,\n   "input": %s,\n   "weight": %s\n  }'


def _items(template: str, columns: list[list[Any]]) -> str:
    """The indented JSON list of objects, one per row of `columns`, as `template` (one %s per column) lays it out:
    values rendered a column at a time and placed by one % operation, rather than an f-string per value."""
    if not columns[0]:
        return "[]"
    cells = tuple(chain.from_iterable(zip(*map(_values, columns))))
    return "[\n" + ",\n".join(repeat(template, len(columns[0]))) % cells + "\n ]"


def run_text(run: Run) -> str:
    """`json.dumps(run_to_dict(run), indent=1)`, with the member and edge lists written here: the json module indents
    in pure Python, too slowly for an export of thousands of runs."""
    data = _head(run)
    data.update(components=0, edges=0)  # placeholders, replaced below (keys at depth 1 are unique in the text)
    text = json.dumps(data, indent=1)
    members = _items(MEMBER, [list(run.components), list(run.components.values())])
    edges = _items(EDGE, [list(map(attrgetter(f), run.edges)) for f in ("sender", "receiver", "input", "weight")])
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
    return [_run(path, i, item) for i, item in enumerate(_checked_runs(path, data))]


def native_batches(path: Path | str, rows: int) -> Iterator[list[Run]]:
    """The runs of an export document in file order, in lists of about `rows` memberships and edges together (a
    larger run alone), every run validated before the first list comes (the runs listed are as read: `Catalog.add`
    validates, so canonicalises, each again as it writes it). The file is read twice, a piece at a time, so memory
    holds one list of runs rather than the whole document; an unusual layout (keys out of order or repeated,
    malformed JSON) is read whole instead, so errors are exactly those of `read_native`."""
    try:
        _check_streamed(path)
        runs: Iterable[Run] = _streamed(path)
    except _Unusual:
        runs = read_native(path)
    batch: list[Run] = []
    total = 0
    for run in runs:
        size = len(run.components) + len(run.edges)
        if batch and total + size > rows:
            yield batch
            batch, total = [], 0
        batch.append(run)
        total += size
    if batch:
        yield batch


def _check_streamed(path: Path | str) -> None:
    """Read the document a piece at a time: _Unusual if it must be read whole, else the error of its first bad run."""
    first_error = None  # raised once the whole document is known to parse, as read_native would
    for position, item in _streamed_runs(path):
        if first_error is None:
            try:
                _run(path, position, item)
            except CircuitdbError as exc:
                first_error = exc
    if first_error is not None:
        raise first_error


def _streamed(path: Path | str) -> Iterator[Run]:
    """The runs of a document _check_streamed has passed, read again a piece at a time."""
    try:
        for position, item in _streamed_runs(path):
            yield _run(path, position, item, validate=False)  # run_tables validates it again
    except _Unusual:
        raise CircuitdbError(f"{path}: the file changed while it was imported") from None


def _checked_runs(path: Path | str, data: Any) -> list[Any]:
    """The `runs` list of a parsed export document, after its format and version are checked."""
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("runs"), list):
        raise CircuitdbError(f"{path}:1: not a circuitdb export (expected format 'circuitdb' and a 'runs' list)")
    if data.get("version") != VERSION:
        raise CircuitdbError(f"{path}:1: export version {data.get('version')!r} is not supported (want {VERSION})")
    return data["runs"]


class _Unusual(Exception):
    """The document is not laid out as `write_document` writes it (or is not valid JSON): read it whole instead."""


def _streamed_runs(path: Path | str) -> Iterator[tuple[int, Any]]:
    """(position, parsed item) of each entry of the document's `runs` list, read READ_CHUNK characters at a time; the
    format and version must come before `runs`, each key once, the document must be whole: else _Unusual."""
    decoder = json.JSONDecoder()
    try:
        file = open(path)  # noqa: SIM115 - closed below; text mode decodes and translates newlines as read_text does
    except OSError as exc:
        raise CircuitdbError(f"{Path(path)}: cannot read ({exc.strerror})") from None
    with file:
        text, at, ended = "", 0, False

        def more(wanted: int) -> bool:
            """Drop the text before `at`, read at least `wanted` more characters (a value not yet whole is read again
            with twice its text, so at most twice in all); False at the end of the file."""
            nonlocal text, at, ended
            if ended:
                return False
            try:
                piece = file.read(max(wanted, READ_CHUNK))
            except UnicodeDecodeError:
                raise _Unusual from None
            text, at, ended = text[at:] + piece, 0, not piece
            return bool(piece)

        def char() -> str:
            """The next character that is not white space (at `at`), '' at the end of the file."""
            nonlocal at
            while True:
                while at < len(text) and text[at] in " \t\n\r":
                    at += 1
                if at < len(text) or not more(0):
                    return text[at:at + 1]

        def value() -> Any:
            """The JSON value at `at`; a value reaching the end of the text read so far is read again with more."""
            nonlocal at
            char()
            while True:
                try:
                    found, end = decoder.raw_decode(text, at)
                except RecursionError:
                    raise _Unusual from None
                except json.JSONDecodeError:
                    if not more(len(text) - at):
                        raise _Unusual from None
                    continue
                if end < len(text) or not more(len(text) - at):
                    at = end
                    return found

        def expect(wanted: str) -> None:
            nonlocal at
            if char() != wanted:
                raise _Unusual
            at += 1

        expect("{")
        seen: dict[str, Any] = {}
        while True:
            if char() != '"':
                raise _Unusual
            key = value()
            expect(":")
            if key in seen:
                raise _Unusual
            if key != "runs":
                seen[key] = value()
            else:
                seen[key] = None
                if seen.get("format") != FORMAT or seen.get("version") != VERSION:
                    raise _Unusual  # read whole, to say exactly what is wrong
                expect("[")
                position = 0
                if char() == "]":
                    at += 1
                else:
                    while True:
                        yield position, value()
                        position += 1
                        if char() == "]":
                            at += 1
                            break
                        expect(",")
            if char() == "}":
                at += 1
                break
            expect(",")
        if char() or "runs" not in seen:
            raise _Unusual


def _run(path: Path | str, position: int, item: Any, validate: bool = True) -> Run:
    """The run of one entry, validated unless `validate` is False (an entry checked before, validated again when the
    run is written)."""
    where = f"{path}: runs[{position}]"
    try:
        body = {k: v for k, v in item.items() if k in _RUN_FIELDS}
        body["model"] = Model(**item["model"])
        body["task"] = Task(**item["task"])
        body["components"] = {c["name"]: c["score"] for c in item["components"]}
        body["edges"] = [Edge(e["sender"], e["receiver"], e["weight"], e.get("input", "")) for e in item["edges"]]
        run = Run(**body).validate() if validate else Run(**body)
    except CircuitdbError as exc:
        raise CircuitdbError(f"{where}: {exc}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise CircuitdbError(f"{where}: missing or malformed field ({exc})") from None
    if "id" in item and item["id"] != run.id:
        raise CircuitdbError(f"{where}: id {item['id']} does not match its defining fields (expected {run.id})")
    return run
