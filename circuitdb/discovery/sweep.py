"""Sweep files: models x tasks x thresholds x methods in YAML, one JobSpec per model.

    store: kuzu:./sweep.kuzu      # optional; --store wins
    models: [toy]
    tasks: [digits, numwords, months]
    thresholds: [0.97, 0.9, 0.8]
    methods: [prune]
    edges: path                   # and any other `discover` option: ablation, prompts, seed, nested, ...
    num_gpus: 1                   # optional, for --executor ray: what one unit (a threshold ladder) asks of a node
    num_cpus: 1
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from circuitdb.discovery.spec import JobSpec
from circuitdb.domain import check_number
from circuitdb.errors import CircuitdbError
from circuitdb.ingest.files import read_yaml

LISTS = ("models", "tasks", "thresholds", "methods")
RENAMED = {"prompts": "n_prompts", "ig-steps": "ig_steps"}
RESOURCES = ("num_gpus", "num_cpus")  # Ray's names for what a task asks of a node


@dataclass
class Sweep:
    """A checked sweep: its jobs, the store it names (if any) and what each unit of work asks of a Ray node."""

    specs: list[JobSpec]
    store: str | None
    resources: dict[str, float]


def read_sweep(path: Path) -> Sweep:
    """The jobs of a sweep file (checked before anything runs), the store it names and the units' resources."""
    doc = read_yaml(path)
    if not isinstance(doc, dict):
        raise CircuitdbError(f"{path}: a sweep is a mapping with models, tasks and thresholds")
    odd = next((k for k in doc if not isinstance(k, str)), None)
    if odd is not None:
        raise CircuitdbError(f"{path}: key {odd!r} is not a name (keys are models, tasks, thresholds, ...)")
    doc = {RENAMED.get(k, k): v for k, v in doc.items()}
    known = {f.name for f in fields(JobSpec)} | set(LISTS) | {"store"} | set(RESOURCES)
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
    resources = {key: _resource(path, key, doc.pop(key)) for key in RESOURCES if key in doc}
    options = {k: v for k, v in doc.items() if k not in (*LISTS, "store")}
    try:
        specs = [JobSpec(model=str(m), tasks=[str(t) for t in doc["tasks"]], thresholds=doc["thresholds"],
                         methods=[str(x) for x in doc["methods"]], **options).check() for m in doc["models"]]
    except (TypeError, CircuitdbError) as exc:
        raise CircuitdbError(f"{path}: {exc}") from None
    if resources.get("num_gpus") and any(spec.device == "cpu" for spec in specs):
        raise CircuitdbError(f"{path}: num_gpus asks Ray for GPUs but the jobs run on the CPU (add device: cuda)")
    return Sweep(specs, store, {"num_cpus": 1.0, "num_gpus": 0.0} | resources)


def _resource(path: Path, key: str, value: object) -> float:
    """A unit's resource request: a number >= 0 (fractions share a GPU, as Ray allows)."""
    try:
        number = check_number(value, key)
    except CircuitdbError:
        number = None
    if number is None or number < 0:
        raise CircuitdbError(f"{path}: {key} must be a number >= 0, got {value!r}")
    return number
