"""`eap` and `eap-ig`: edge attribution over the full graph; the circuit is the fewest top-scoring edges whose nodes
reach the threshold."""

from __future__ import annotations

from circuitdb.discovery.edges import eap_scores
from circuitdb.discovery.graph import EdgeKey
from circuitdb.discovery.methods import heads
from circuitdb.discovery.methods.base import Circuit, Method, Step, by_score, shortest_prefix


def _nodes(edges: list[EdgeKey]) -> set[str]:
    """The heads and MLPs the edges connect."""
    return {x for e in edges for x in e[:2] if x not in ("input", "logits")}


def find(step: Step) -> Circuit:
    """The shortest prefix of the edge ranking that reaches the threshold; a node scores its chosen edges' sum."""
    ev, scores = step.ev, step.scores()
    chosen = shortest_prefix(by_score(scores), lambda edges: ev.faithfulness(_nodes(edges)), step.threshold,
                             step.start("edges"))
    node_score: dict[str, float] = {}
    for edge in chosen:
        for x in edge[:2]:
            node_score[x] = node_score.get(x, 0.0) + scores[edge]
    return heads.circuit(ev.graph.forward(_nodes(chosen)), node_score, {e: scores[e] for e in chosen}, {}, nested=False)


EAP = Method("eap", heads.evaluators, find, heads.OPTIONS, score=lambda ev, spec: eap_scores(ev, 0))
EAP_IG = Method("eap-ig", heads.evaluators, find, heads.OPTIONS,
                score=lambda ev, spec: eap_scores(ev, spec.ig_steps))
