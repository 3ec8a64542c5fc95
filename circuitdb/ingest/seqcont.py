"""Importer for the seqcont notebooks' result files: `{"heads": [[layer, head], ...], "mlps": [layer, ...]}`."""

from __future__ import annotations

import json
from pathlib import Path

from circuitdb.domain import Model, Run, Task, check_threshold
from circuitdb.errors import CircuitdbError
from circuitdb.ingest.files import fail, provenance, read_json


def read_seqcont(
    path: Path | str,
    model: Model,
    task: Task,
    threshold: float,
    method: str = "prune",
    ablation: str = "mean",
    metric: str = "logit_diff",
) -> Run:
    """One circuit per file (one task at one threshold); heads and MLPs carry no score in this format."""
    check_threshold(threshold)
    data, text = read_json(path)
    if not isinstance(data, dict) or "heads" not in data:
        raise CircuitdbError(f"{path}:1: not a seqcont circuit file (expected an object with 'heads' and 'mlps')")
    heads, mlps = data.get("heads"), data.get("mlps", [])
    if not isinstance(heads, list) or not isinstance(mlps, list):
        raise CircuitdbError(f"{path}:1: 'heads' and 'mlps' must be lists")
    components: dict[str, float | None] = {}
    for head in heads:
        if not (isinstance(head, list) and len(head) == 2 and all(_natural(x) for x in head)):
            raise fail(path, text, json.dumps(head), f"head entry {head!r} is not [layer, head]")
        components[f"a{head[0]}.h{head[1]}"] = None
    for layer in mlps:
        if not _natural(layer):
            raise fail(path, text, json.dumps(layer), f"mlp entry {layer!r} is not a layer number")
        components[f"m{layer}"] = None
    _check_bounds(path, text, model, heads, mlps)
    params = provenance(path, text.encode(), "seqcont")
    return Run(
        model=model,
        task=task,
        method=method,
        threshold=threshold,
        ablation=ablation,
        metric=metric,
        components=components,
        params=params,
    )


def _natural(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_bounds(path: Path | str, text: str, model: Model, heads: list, mlps: list) -> None:
    """When the model's shape is known, a head or layer outside it is an error, not a silent import."""
    for layer, head in heads:
        if (model.n_layers is not None and layer >= model.n_layers) or (model.n_heads is not None and head >= model.n_heads):
            raise fail(path, text, json.dumps([layer, head]), f"head [{layer}, {head}] does not exist in {model.name}")
    for layer in mlps:
        if model.n_layers is not None and layer >= model.n_layers:
            raise fail(path, text, str(layer), f"mlp {layer} does not exist in {model.name}")
