"""`prune`: iterative node pruning (`pruning.py`), from the stricter circuit when nested; its edges by path patching,
EAP or EAP-IG among the kept nodes."""

from __future__ import annotations

from circuitdb.discovery.edges import eap_scores, path_patch
from circuitdb.discovery.graph import EdgeKey
from circuitdb.discovery.methods import heads
from circuitdb.discovery.methods.base import Circuit, Method, Step
from circuitdb.discovery.pruning import member_scores, prune, survival


def find(step: Step) -> Circuit:
    """Prune to the threshold; score each member by its own removal; optionally the robustness survival rates."""
    spec, ev, graph = step.spec, step.ev, step.ev.graph
    nested = spec.nested and step.parent is not None
    start = graph.mask(graph.components(step.parent.components)) if nested else None
    pruned = prune(ev, step.threshold, start, progress=step.start("prune", graph.n_layers * (graph.n_heads + 1) * 4))
    params = {"sweeps": pruned.sweeps, "forward_passes": pruned.passes}
    if spec.robust:
        params["survival"] = survival(ev, step.threshold, spec.robust, spec.seed, step.start("robustness"))
    return heads.circuit(pruned.names, member_scores(ev, pruned.names), _edges(step, set(pruned.names)), params, nested=nested)


def _edges(step: Step, nodes: set[str]) -> dict[EdgeKey, float]:
    """Edges among the circuit's nodes whose patched performance falls below edge_threshold x the circuit's."""
    spec, ev = step.spec, step.ev
    if spec.edges == "none":
        return {}
    candidates = ev.graph.circuit_edges(nodes)
    masks = ev.graph.mask(nodes)
    if spec.edges == "path":
        effects = path_patch(ev, masks, candidates, progress=step.start("path patching", len(candidates)))
    else:
        estimates = eap_scores(ev, spec.ig_steps if spec.edges == "eap-ig" else 0)
        effects = {e.key: estimates[e.key] for e in candidates}
    floor = (1 - spec.edge_threshold) * ev.performance(masks).item()
    return {e: w for e, w in effects.items() if w > floor}


PRUNE = Method("prune", heads.evaluators, find, heads.OPTIONS)
