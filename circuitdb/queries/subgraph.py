"""One run's strongest edges and members (a picture's worth, cut in the store), and one component of a run in
detail: its score, its edges, the other runs that include it."""

from __future__ import annotations

from circuitdb.domain import component_id, parse_component, parse_edge_name, unpack_scores
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


def subgraph(store: Store, run: RunInfo, top: int, min_weight: float) -> tuple[list[dict], list[dict], int]:
    """(nodes, edges, scored edges): the run's `top` edges by |weight| (at least `min_weight`), every end of those
    edges, input and logits, and its `top` scored members by |score| (its first `top` members when it has no edges: a
    circuit of nodes); edges strongest first, nodes in forward order. A run whose score list (an imported EAP-IG score
    file) ranks more edges than it stores is shown from that list instead (`scored_subgraph`); the third item is the
    number of edges its list scores (0 when the stored edges are shown)."""
    (row,) = run_query(store, "run_scores", run_id=run.id)
    scores = unpack_scores(row["scores"])
    scored = [n for n in scores if "->" in n]
    if len(scored) > run.n_edges:
        nodes, edges = scored_subgraph(store, run, scores, scored, top, min_weight)
        return nodes, edges, len(scored)
    edges = run_query(store, "subgraph_edges", run_id=run.id, top=top, min_weight=min_weight)
    edges.sort(key=lambda e: (-abs(e["weight"]), e["sender"], e["receiver"], e["input"] or ""))
    members = run_query(store, "subgraph_members", run_id=run.id, top=top)
    if edges:  # unscored members off the edges shown would only crowd the picture
        members = [m for m in members if m["score"] is not None or m["kind"] in ("embed", "logits")]
    nodes = {m["component"]: node(m["component"], m["kind"], m["layer"], m["score"]) for m in members}
    ends = sorted({e[end] for e in edges for end in ("sender", "receiver")} - nodes.keys())
    found = set(nodes)  # members of the run; an end found below only by its edge is not
    for m in run_query(store, "subgraph_ends", run_id=run.id, names=ends) if ends else []:
        nodes[m["component"]] = node(m["component"], m["kind"], m["layer"], m["score"])
        found.add(m["component"])
    for e in edges:  # an end that is not a member (older catalogs): as the edge names it
        for end in ("sender", "receiver"):
            if e[end] not in nodes:
                nodes[e[end]] = node(e[end], e[f"{end}_kind"], e[f"{end}_layer"])
    shown = [{"sender": e["sender"], "receiver": e["receiver"], "input": e["input"] or "", "weight": e["weight"],
              "in_circuit": True} for e in edges]
    for n in nodes.values():
        n["in_circuit"] = n["name"] in found
    return sorted(nodes.values(), key=lambda n: _order(n["name"])), shown, 0


def scored_subgraph(store: Store, run: RunInfo, scores: dict[str, float], scored: list[str], top: int,
                    min_weight: float) -> tuple[list[dict], list[dict]]:
    """The `top` edges of the run's score list by |score| (at least `min_weight`; ties in list order), each marked
    `in_circuit` where the run stores it, their ends with their listed scores (else their scores as members), input
    and logits. The run's stored edges are fetched whole: a score file's circuit is the small part of its list."""
    ranked = sorted((n for n in scored if abs(scores[n]) >= min_weight), key=lambda n: -abs(scores[n]))[:top]
    stored = run_query(store, "subgraph_edges", run_id=run.id, top=max(run.n_edges, 1), min_weight=0.0)
    kept = {(e["sender"], e["receiver"], e["input"] or "") for e in stored}
    edges = []
    for name in ranked:
        sender, receiver, qkv = parse_edge_name(name)
        edges.append({"sender": sender, "receiver": receiver, "input": qkv, "weight": scores[name],
                      "in_circuit": (sender, receiver, qkv) in kept})
    ends = {e[end] for e in edges for end in ("sender", "receiver")} | {"input", "logits"}
    members = {m["component"]: m for m in run_query(store, "subgraph_ends", run_id=run.id, names=sorted(ends))}
    nodes = []
    for name in ends:
        member = members.get(name)
        try:
            parsed = parse_component(name)
            kind, layer = parsed.kind, parsed.layer
        except CircuitdbError:
            kind, layer = None, None
        if member:
            kind, layer = member["kind"], member["layer"]
        score = scores.get(name, member["score"] if member else None)
        nodes.append({**node(name, kind, layer, score), "in_circuit": member is not None})
    return sorted(nodes, key=lambda n: _order(n["name"])), edges


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
