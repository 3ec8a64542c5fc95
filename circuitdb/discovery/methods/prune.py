"""`prune`: iterative node pruning (`pruning.py`), from the stricter circuit when nested; then its edges: the kept
nodes' edges ranked by path patching, EAP or EAP-IG inside the circuit, the fewest top ones whose edge circuit still
reaches the threshold jointly."""

from __future__ import annotations

from circuitdb.discovery.methods import heads
from circuitdb.discovery.methods.base import Circuit, Method, Step
from circuitdb.discovery.pruning import member_scores, prune, survival


def find(step: Step) -> Circuit:
    """Prune to the threshold; score each member by its own removal; optionally the robustness survival rates."""
    spec, ev, graph = step.spec, step.ev, step.ev.graph
    nested = spec.nested and step.parent is not None
    start = graph.mask(graph.components(step.parent.components)) if nested else None
    pruned = prune(ev, step.threshold, start, progress=step.start("prune", graph.n_layers * (graph.n_heads + 1) * 4))
    params = {"sweeps": pruned.sweeps, "forward_passes": pruned.passes, "ig_steps": spec.steps(5)}
    if spec.robust:
        params["survival"] = survival(ev, step.threshold, spec.robust, spec.seed, step.start("robustness"))
    edges, measures = _edges(step, pruned.names)
    return heads.circuit(pruned.names, member_scores(ev, pruned.names), edges, params, nested, measures)


def _edges(step: Step, nodes: list[str]) -> tuple[dict, dict[str, float]]:
    """The fewest of the circuit's edges, ranked by the edge method, whose edge circuit reaches the threshold, with
    their scores, and its joint faithfulness."""
    spec, ev = step.spec, step.ev
    if spec.edges == "none":
        return {}, {}
    masks = ev.graph.mask(set(nodes))
    candidates = len(ev.graph.circuit_edges(set(nodes)))
    scores = heads.edge_scores(ev, spec.edges, spec.steps(5), masks, step.start(f"{spec.edges} edges", candidates))
    chosen, measure = heads.fewest_edges(ev, heads.ranked(scores, spec.signed), step.threshold, step.start("edges"))
    return {e: scores[e] for e in chosen}, {"edge_faithfulness": measure.faithfulness}


PRUNE = Method("prune", heads.evaluators, find, heads.OPTIONS)
