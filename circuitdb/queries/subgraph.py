"""One run's strongest edges and members (a picture's worth, cut in the store), and one component of a run in
detail: its score, its edges, the other runs that include it."""

from __future__ import annotations

from circuitdb.domain import component_id, parse_component
from circuitdb.errors import CircuitdbError
from circuitdb.queries import run_query
from circuitdb.queries.selection import RunInfo
from circuitdb.store.base import Store


def node(name: str, kind: str | None, layer: int | None, score: float | None = None) -> dict:
    """A component as pictures place it: kind and layer (from the store), index (a head's, neuron's, feature's)."""
    try:
        index = parse_component(name).index
    except CircuitdbError:
        index = None
    return {"name": name, "kind": kind, "layer": layer, "index": index, "score": score}


def subgraph(store: Store, run: RunInfo, top: int, min_weight: float) -> tuple[list[dict], list[dict]]:
    """(nodes, edges): the run's `top` edges by |weight| (at least `min_weight`), every end of those edges, input and
    logits, and its `top` scored members by |score| (its first `top` members when it has no edges: a circuit of nodes);
    edges strongest first, nodes in forward order."""
    edges = run_query(store, "subgraph_edges", run_id=run.id, top=top, min_weight=min_weight)
    edges.sort(key=lambda e: (-abs(e["weight"]), e["sender"], e["receiver"], e["input"] or ""))
    members = run_query(store, "subgraph_members", run_id=run.id, top=top)
    if edges:  # unscored members off the edges shown would only crowd the picture
        members = [m for m in members if m["score"] is not None or m["kind"] in ("embed", "logits")]
    nodes = {m["component"]: node(m["component"], m["kind"], m["layer"], m["score"]) for m in members}
    ends = sorted({e[end] for e in edges for end in ("sender", "receiver")} - nodes.keys())
    for m in run_query(store, "subgraph_ends", run_id=run.id, names=ends) if ends else []:
        nodes[m["component"]] = node(m["component"], m["kind"], m["layer"], m["score"])
    for e in edges:  # an end that is not a member (older catalogs): as the edge names it
        for end in ("sender", "receiver"):
            if e[end] not in nodes:
                nodes[e[end]] = node(e[end], e[f"{end}_kind"], e[f"{end}_layer"])
    shown = [{"sender": e["sender"], "receiver": e["receiver"], "input": e["input"] or "", "weight": e["weight"]}
             for e in edges]
    return sorted(nodes.values(), key=lambda n: _order(n["name"])), shown


def _order(name: str) -> tuple:
    try:
        return (0, parse_component(name).sort_key())
    except CircuitdbError:
        return (1, name)


def component_detail(store: Store, run: RunInfo, name: str, top: int) -> tuple[dict, list[dict], list[dict]]:
    """(the component in `run` with its score, its edges in the run strongest first, every run including it)."""
    cid = component_id(run.model, parse_component(name).name)
    runs = run_query(store, "component_memberships", id=cid)
    here = [r for r in runs if r["run"] == run.id]
    edges = run_query(store, "component_edges", id=cid, run_id=run.id, top=top)
    if not here and not edges:
        raise CircuitdbError(f"{name} is not in run {run.id}")
    kind, layer = (runs[0]["kind"], runs[0]["layer"]) if runs else (None, None)
    edges.sort(key=lambda e: (-abs(e["weight"]), e["direction"], e["other"], e["input"] or ""))
    for e in edges:
        e["input"] = e["input"] or ""
    return node(parse_component(name).name, kind, layer, here[0]["score"] if here else None), edges, runs
