"""Sweep files: models x tasks x thresholds x methods in YAML, one JobSpec per model.

    store: kuzu:./sweep.kuzu      # optional; --store wins
    models: [toy]
    tasks: [digits, numwords, months]
    thresholds: [0.97, 0.9, 0.8]
    methods: [prune]
    edges: path                   # and any other `discover` option: ablation, prompts, seed, nested, ...
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from circuitdb.discovery.spec import JobSpec
from circuitdb.errors import CircuitdbError
from circuitdb.ingest.files import read_yaml

LISTS = ("models", "tasks", "thresholds", "methods")
RENAMED = {"prompts": "n_prompts", "ig-steps": "ig_steps"}


def read_sweep(path: Path) -> tuple[list[JobSpec], str | None]:
    """The jobs of a sweep file (checked before anything runs) and the store it names, if any."""
    doc = read_yaml(path)
    if not isinstance(doc, dict):
        raise CircuitdbError(f"{path}: a sweep is a mapping with models, tasks and thresholds")
    odd = next((k for k in doc if not isinstance(k, str)), None)
    if odd is not None:
        raise CircuitdbError(f"{path}: key {odd!r} is not a name (keys are models, tasks, thresholds, ...)")
    doc = {RENAMED.get(k, k): v for k, v in doc.items()}
    known = {f.name for f in fields(JobSpec)} | set(LISTS) | {"store"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise CircuitdbError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    for key in LISTS:
        value = doc.get(key, ["prune"] if key == "methods" else None)
        if not isinstance(value, list) or not value:
            raise CircuitdbError(f"{path}: '{key}' must be a non-empty list")
        doc[key] = value
    store = doc.get("store")
    if store is not None and not (isinstance(store, str) and store.strip()):
        raise CircuitdbError(f"{path}: 'store' must be a store URL such as kuzu:./sweep.kuzu, got {store!r}")
    options = {k: v for k, v in doc.items() if k not in (*LISTS, "store")}
    try:
        specs = [JobSpec(model=str(m), tasks=[str(t) for t in doc["tasks"]], thresholds=doc["thresholds"],
                         methods=[str(x) for x in doc["methods"]], **options).check() for m in doc["models"]]
    except (TypeError, CircuitdbError) as exc:
        raise CircuitdbError(f"{path}: {exc}") from None
    return specs, store
