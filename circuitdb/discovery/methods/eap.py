"""`path`, `eap` and `eap-ig`: rank every edge of the full graph (exact path patching, EAP, EAP-IG) by |score|; the
circuit is the fewest top edges whose edge circuit reaches the threshold jointly, and its faithfulness curve."""

from __future__ import annotations

from circuitdb.discovery.edge_circuits import curve
from circuitdb.discovery.methods import heads
from circuitdb.discovery.methods.base import Circuit, Method, Step
from circuitdb.domain import Edge


def find(step: Step) -> Circuit:
    """The shortest prefix of the ranking that holds as an edge circuit; a node scores the sum of its chosen edges."""
    ev, scores = step.ev, step.scores()
    ranking = heads.ranked(scores, step.spec.signed)
    chosen, measure = heads.fewest_edges(ev, ranking, step.threshold, step.start("edges"))
    node_score: dict[str, float] = {}
    for edge in chosen:
        for x in edge[:2]:
            node_score[x] = node_score.get(x, 0.0) + scores[edge]
    nodes = ev.graph.forward(ev.graph.components({x for e in chosen for x in e[:2]}))
    points = curve(ev, ranking)
    measures = {"edge_faithfulness": measure.faithfulness, "cpr": points.pop("cpr"), "cmd": points.pop("cmd")}
    params = {"curve": points, "ranked_edges": len(ranking), "ig_steps": step.spec.steps(5)}
    params |= {"parallel_attn_mlp": True} if ev.graph.parallel else {}  # its EAP-IG export then has that graph
    found = heads.circuit(nodes, node_score, {e: scores[e] for e in chosen}, params, False, measures)
    found.scores = {Edge(*key[:2], 0.0, key[2]).name: round(float(scores[key]), 8) for key in ranking}
    return found


def _scores(name: str):
    """The full-graph scores of edge method `name` (EAP-IG: 5 steps unless --ig-steps, as in EAP-IG)."""
    return lambda ev, spec: heads.edge_scores(ev, name, spec.steps(5))


PATH = Method("path", heads.evaluators, find, heads.OPTIONS, score=_scores("path"))
EAP = Method("eap", heads.evaluators, find, heads.OPTIONS, score=_scores("eap"))
EAP_IG = Method("eap-ig", heads.evaluators, find, heads.OPTIONS, score=_scores("eap-ig"))
