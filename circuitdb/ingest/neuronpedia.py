"""circuit-tracer / Neuronpedia attribution graphs in and out, checked against Neuronpedia's published JSON schema
(schemas/neuronpedia-graph.schema.json, draft-07, from hijohnnylin/neuronpedia apps/webapp/app/api/graph). Nodes are
per token position: a transcoder feature `ftc<L>/<feature>@<pos>`, its reconstruction error `ftc<L>/err@<pos>`, a
token's embedding `input@<pos>`, an output logit `logits/<token>@<pos>`; links are edges with their weights."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from circuitdb.domain import Component, Edge, Model, Run, Task, parse_component
from circuitdb.errors import CircuitdbError
from circuitdb.ingest.files import line_of, provenance, read_json

SCHEMA = Path(__file__).parent / "schemas" / "neuronpedia-graph.schema.json"
FEATURE, ERROR, EMBEDDING, LOGIT = "cross layer transcoder", "mlp reconstruction error", "embedding", "logit"
DERIVED = ("node_id", "layer", "ctx_idx", "feature_type", "circuitdb_dictionary")  # node fields a component's name says


@cache
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


def schema_problem(graph: object) -> tuple[str, list] | None:
    """The first way `graph` breaks Neuronpedia's schema, as (`nodes[3].layer: message`, path to it), or None."""
    error = next(iter(sorted(_validator().iter_errors(graph), key=lambda e: list(map(str, e.path)))), None)
    if error is None:
        return None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path).lstrip(".")
    return f"{where or 'the graph'}: {error.message}", list(error.path)


def read_neuronpedia(path: Path | str, model: Model, task: Task, method: str = "circuit-tracer",
                     ablation: str = "attribution", metric: str = "logit") -> Run:
    """The graph's nodes (score: influence) and links (weight) as a run with positions; the links' weights are also
    its score list. Node labels, activations and the graph's metadata are kept in params, so it exports back as it was."""
    data, text = read_json(path)
    problem = schema_problem(data)
    if problem:
        message, at = problem
        node = data["nodes"][at[1]] if at[:1] == ["nodes"] and len(at) > 1 else None
        line = line_of(text, json.dumps(node["node_id"])) if isinstance(node, dict) and "node_id" in node else 1
        raise CircuitdbError(f"{path}:{line}: not a Neuronpedia graph: {message}")
    names: dict[str, str] = {}
    members: dict[str, float | None] = {}
    extras: dict[str, dict] = {}
    for row, node in enumerate(data["nodes"]):
        node_id = node["node_id"]
        if node_id in names:
            raise CircuitdbError(f"{path}:{line_of(text, json.dumps(node_id))}: node_id {node_id!r} names two nodes "
                                 "(circuit-tracer before its PR #100 gave error nodes ids of layer-0 features); links "
                                 "cannot tell them apart")
        try:
            name = _component(node).name
        except (ValueError, IndexError, CircuitdbError) as exc:
            raise CircuitdbError(f"{path}:{line_of(text, json.dumps(node_id))}: nodes[{row}] ({node_id}): {exc}") from None
        names[node_id] = name
        members[name] = node.get("influence")
        extras[name] = {k: v for k, v in node.items() if k not in DERIVED} | {"node_id": node_id}
    edges = []
    for row, link in enumerate(data["links"]):
        ends = [names.get(link[k]) for k in ("source", "target")]
        if None in ends:
            missing = link["source"] if ends[0] is None else link["target"]
            raise CircuitdbError(f"{path}:{line_of(text, json.dumps(missing))}: links[{row}] names node {missing!r}, "
                                 "which is not among the nodes")
        edges.append(Edge(ends[0], ends[1], float(link["weight"])))
    layers = [int(n["layer"]) for n in data["nodes"] if n["feature_type"] == LOGIT]
    shape = Model(model.name, model.n_layers or (layers[0] - 1 if layers and layers[0] > 1 else None), model.n_heads,
                  model.d_model, model.source)
    params = provenance(path, text.encode(), "circuit-tracer", str(data["metadata"].get("schema_version") or ""))
    params.update(metadata=data["metadata"], qParams=data["qParams"], nodes=extras)
    return Run(model=shape, task=task, method=method, ablation=ablation, metric=metric, components=members, edges=edges,
               params=params, scores={e.name: e.weight for e in edges})


def _component(node: dict) -> Component:
    """The component a graph node is: its kind from feature_type, its feature from the node_id (`L_F_pos`), which both
    of circuit-tracer's feature numberings keep."""
    kind, position = node["feature_type"], node["ctx_idx"]
    if kind == EMBEDDING:
        return Component("embed", position=position)
    layer = int(node["layer"])
    dictionary = node.get("circuitdb_dictionary") or f"tc{layer}"  # circuitdb's exports name the SAE they came from
    if kind == FEATURE:
        return Component("sae_feature", layer, int(node["node_id"].split("_")[1]), dictionary, position)
    if kind == ERROR:
        return Component("error", layer, None, dictionary, position)
    if kind == LOGIT:
        token = int(node["node_id"].split("_")[1])
        return Component("logits", index=None if node.get("circuitdb_dictionary") == "metric" else token, position=position)
    raise CircuitdbError(f"feature_type {kind!r} is not read (cross layer transcoder, mlp reconstruction error, "
                         "embedding, logit)")


def neuronpedia_graph(run: Run) -> dict:
    """The run as a Neuronpedia graph: its features, errors, embeddings and logits (a component without a position at
    position 0; the logits without a token, the task's metric, as token 0), its edges as links; nodes and metadata as
    they were imported, where they were. Generated nodes name their SAE in `circuitdb_dictionary`, an extra field the
    schema allows, so a feature run comes back with its dictionaries."""
    params = run.params
    metadata = dict(params.get("metadata") or {"slug": run.id, "scan": run.model.name, "prompt_tokens": [],
                                               "prompt": run.task.name, "schema_version": 1})
    logit_layer = (run.model.n_layers or 1 + max((c.layer or 0 for c in map(parse_component, run.components)), default=0)) + 1
    known = params.get("nodes") or {}
    nodes, ids = [], {}
    for name, score in run.components.items():
        c = parse_component(name)
        pos = c.position or 0
        if c.kind == "sae_feature":
            cantor = (c.layer + c.index) * (c.layer + c.index + 1) // 2 + c.index  # schema_version 1's feature number
            node = {"node_id": f"{c.layer}_{c.index}_{pos}", "feature": cantor, "layer": str(c.layer),
                    "feature_type": FEATURE, "jsNodeId": f"{c.layer}_{c.index}-0", "circuitdb_dictionary": c.dictionary}
        elif c.kind == "error":
            node = {"node_id": f"{c.layer}_-1_{pos}", "feature": -1, "layer": str(c.layer), "feature_type": ERROR,
                    "jsNodeId": f"{c.layer}_{pos}-0", "circuitdb_dictionary": c.dictionary}
        elif c.kind == "embed":
            node = {"node_id": f"E_0_{pos}", "feature": pos, "layer": "E", "feature_type": EMBEDDING,
                    "jsNodeId": f"E_0-{pos}"}
        elif c.kind == "logits":  # without a token: the task's metric (a logit difference), token 0
            token = c.index or 0
            node = {"node_id": f"{logit_layer}_{token}_{pos}", "feature": token, "layer": str(logit_layer),
                    "feature_type": LOGIT, "jsNodeId": f"L_{token}-{pos}"}
            node |= {"circuitdb_dictionary": "metric"} if c.index is None else {}
        else:
            raise CircuitdbError(f"run {run.id}: {name} is not a node of an attribution graph (features, errors, "
                                 "input@POS, logits/TOKEN@POS)")
        if node.get("circuitdb_dictionary") == f"tc{c.layer}":  # circuit-tracer's own transcoders: nothing to add
            del node["circuitdb_dictionary"]
        node = {**node, "ctx_idx": pos, "clerp": "", "influence": score, "activation": None, **known.get(name, {})}
        ids[name] = node["node_id"]
        nodes.append(node)
    links = [{"source": ids[e.sender], "target": ids[e.receiver], "weight": e.weight} for e in run.edges]
    graph = {"metadata": metadata, "qParams": params.get("qParams") or {}, "nodes": nodes, "links": links}
    problem = schema_problem(graph)
    if problem:
        raise CircuitdbError(f"run {run.id}: its graph would not be a valid Neuronpedia graph: {problem[0]}")
    return graph
