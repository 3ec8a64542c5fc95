"""User tasks from a file: JSONL (one prompt per line) or YAML (a list of prompts, or a template with slot rows).

JSONL line / YAML prompt: {"prompt": ..., "answer": ..., "distractor": ..., "corrupted": ..., "template": ...}
("template", optional, names the prompt's template for means per template).
YAML template form: {name, template, answer, distractor, corrupted, rows: [{slot: value, ...}, ...]} where the four
texts use {slot} placeholders filled from each row.
"""

from __future__ import annotations

import json
from pathlib import Path

from circuitdb.discovery.tasks import Prompts
from circuitdb.errors import CircuitdbError
from circuitdb.ingest.files import read_text, read_yaml

FIELDS = ("prompt", "answer", "distractor", "corrupted")


def read_task_file(path: Path) -> Prompts:
    """Prompts from a .jsonl or .yaml/.yml file; every problem names the file and the line or row."""
    if not path.is_file():
        raise CircuitdbError(f"{path}: no such task file (or unknown built-in task)")
    if path.suffix == ".jsonl":
        return _prompts(path.stem, "user", f"from {path.name}", _jsonl(path), path)
    if path.suffix not in (".yaml", ".yml"):
        raise CircuitdbError(f"{path}: task files are .jsonl, .yaml or .yml")
    doc = read_yaml(path)
    if not isinstance(doc, dict):
        raise CircuitdbError(f"{path}: expected a mapping with 'prompts' or 'template' and 'rows'")
    name = str(doc.get("name", path.stem))
    description = str(doc.get("description", f"from {path.name}"))
    if "template" in doc:
        rows = [(f"rows[{i}]", _fill(path, i, doc, row)) for i, row in enumerate(doc.get("rows") or [])]
    else:
        rows = [(f"prompts[{i}]", item) for i, item in enumerate(doc.get("prompts") or [])]
    return _prompts(name, "user", description, rows, path)


def _jsonl(path: Path) -> list[tuple[str, dict]]:
    rows = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if line.strip():
            try:
                rows.append((f"line {number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise CircuitdbError(f"{path}:{number}: malformed JSON ({exc.msg})") from None
    return rows


def _fill(path: Path, index: int, doc: dict, row: object) -> dict:
    if not isinstance(row, dict):
        raise CircuitdbError(f"{path}: rows[{index}] must map slot names to values")
    texts = {"prompt": doc["template"], **{f: doc.get(f) for f in FIELDS[1:]}}
    try:
        return {f: str(t).format(**row) for f, t in texts.items() if t is not None}
    except KeyError as exc:
        raise CircuitdbError(f"{path}: rows[{index}] has no value for slot {exc}") from None


def _prompts(name: str, family: str, description: str, rows: list[tuple[str, object]], path: Path) -> Prompts:
    clean, corrupt, answers, distractors, templates = [], [], [], [], []
    for where, row in rows:
        missing = [f for f in FIELDS if not (isinstance(row, dict) and isinstance(row.get(f), str) and row.get(f))]
        if missing:
            raise CircuitdbError(f"{path}: {where}: missing or empty {', '.join(missing)}")
        clean.append(row["prompt"])
        corrupt.append(row["corrupted"])
        answers.append(row["answer"])
        distractors.append(row["distractor"])
        templates.append(str(row.get("template", "")))
    if not clean:
        raise CircuitdbError(f"{path}: the task has no prompts")
    return Prompts(name, family, description, clean, corrupt, answers, distractors, templates)
