"""Importer for EAP-IG graph JSON (`Graph.to_json`): nodes with in_graph/score, edges `a0.h1->a2.h3<q>`."""

from __future__ import annotations

import json
from pathlib import Path

from circuitdb.domain import Edge, Model, Run, Task, canonical, check_threshold, parse_component, parse_edge_name
from circuitdb.errors import CircuitdbError
from circuitdb.ingest.files import fail, read_json


def read_eapig(
    path: Path | str,
    model: Model,
    task: Task,
    method: str = "eap-ig",
    threshold: float | None = None,
    ablation: str = "patching",
    metric: str = "logit_diff",
) -> Run:
    """The in-graph nodes and edges become the run; endpoints of in-graph edges are members even if unflagged."""
    check_threshold(threshold)
    data, text = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict) or not isinstance(data.get("edges"), dict):
        raise CircuitdbError(f"{path}:1: not an EAP-IG graph (expected an object with 'cfg', 'nodes' and 'edges')")
    cfg = data.get("cfg") or {}
    if not isinstance(cfg, dict):
        raise CircuitdbError(f"{path}:1: 'cfg' must be an object (n_layers, n_heads, d_model)")
    shape = Model(
        model.name,
        model.n_layers or cfg.get("n_layers"),
        model.n_heads or cfg.get("n_heads"),
        model.d_model or cfg.get("d_model"),
        model.source,
    )
    try:
        shape.check()
    except CircuitdbError as exc:
        raise fail(path, text, '"cfg"', f"{exc} (from the file's cfg)") from None
    components: dict[str, float | None] = {}
    for name, node in data["nodes"].items():
        info = node if isinstance(node, dict) else {"in_graph": node}
        if not isinstance(info.get("in_graph"), bool):
            raise fail(path, text, json.dumps(name), f"node {name!r} has no boolean in_graph")
        if info["in_graph"]:
            components[_name(path, text, name, shape)] = _number(path, text, name, info.get("score"))
    edges = []
    for name, info in data["edges"].items():
        if not isinstance(info, dict) or not isinstance(info.get("in_graph"), bool):
            raise fail(path, text, json.dumps(name), f"edge {name!r} needs in_graph (bool) and score")
        if not info["in_graph"]:
            continue
        try:
            sender, receiver, qkv = parse_edge_name(name)
        except CircuitdbError as exc:
            raise fail(path, text, json.dumps(name), str(exc)) from None
        weight = _number(path, text, name, info.get("score"))
        edges.append(Edge(sender, receiver, 0.0 if weight is None else weight, qkv))
        for end in (sender, receiver):
            problem = shape.lacks(parse_component(end))
            if problem:
                raise fail(path, text, json.dumps(name), f"edge {name}: {problem}")
            components.setdefault(end, None)
    if not components:
        raise CircuitdbError(f"{path}: the graph has no node or edge in_graph; nothing to import")
    return Run(
        model=shape,
        task=task,
        method=method,
        threshold=threshold,
        ablation=ablation,
        metric=metric,
        components=components,
        edges=edges,
        params={"source_file": Path(path).name},
    )


def _name(path: Path | str, text: str, name: str, shape: Model) -> str:
    """The canonical name of an in-graph node that exists in the model (as far as its shape is known)."""
    try:
        canonical_name = canonical(name)
    except CircuitdbError as exc:
        raise fail(path, text, json.dumps(name), str(exc)) from None
    problem = shape.lacks(parse_component(canonical_name))
    if problem:
        raise fail(path, text, json.dumps(name), f"node {problem}")
    return canonical_name


def _number(path: Path | str, text: str, name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise fail(path, text, json.dumps(name), f"{name!r}: score must be a number, got {value!r}")
    return float(value)
