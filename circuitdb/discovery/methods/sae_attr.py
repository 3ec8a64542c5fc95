"""`sae-attr`: feature circuits through SAE dictionaries (`features.py`). Attribution (integrated gradients) ranks
every feature and error node once per task; the circuit is the shortest prefix of the ranking that reaches the
threshold, within the stricter circuit's size so a ladder nests. Runs name their dictionaries
(`sae-attr:resid2+resid3`), which keeps runs over different dictionaries apart, and record checks of attribution
against exact ablation and patching."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd

from circuitdb.discovery.features import FeatureEvaluator, Node, node_name
from circuitdb.discovery.methods.base import Circuit, Method, Step, by_score, shortest_prefix
from circuitdb.discovery.models import LoadedModel
from circuitdb.discovery.sae import load_dictionary
from circuitdb.discovery.tasks import TaskData
from circuitdb.domain import Edge
from circuitdb.errors import CircuitdbError

if TYPE_CHECKING:
    from circuitdb.discovery.spec import JobSpec

IG_STEPS = 10  # integration steps of node attribution unless --ig-steps: Marks et al.'s default


def evaluators(lm: LoadedModel, spec: JobSpec, data: dict[str, TaskData]) -> dict[str, FeatureEvaluator]:
    """The job's dictionaries, loaded once, and one feature evaluator per task."""
    dictionaries = [load_dictionary(s, lm) for s in spec.saes]
    return {name: FeatureEvaluator(lm, task, list(dictionaries), spec.intervention, spec.seed) for name, task in data.items()}


def select(ev: FeatureEvaluator, scores: dict[Node, float], threshold: float, top_k: int | None = None,
           node_threshold: float | None = None, within: int | None = None,
           progress: Callable[[int], None] = lambda n: None) -> list[Node]:
    """The fewest top-attributed nodes whose circuit reaches `threshold`.

    Candidates are all nodes, or those with attribution >= `node_threshold` (a fraction of the full LD); at most `top_k`,
    at most `within` (the stricter circuit's size, so a threshold ladder nests). CircuitdbError when they cannot reach it.
    """
    ranked = [n for n in by_score(scores) if node_threshold is None or scores[n] >= node_threshold]
    ranked = ranked[: min(x for x in (top_k, within, len(ranked)) if x is not None)]
    reach = ev.faithfulness(set(ranked)) if ranked else 0.0
    if reach < threshold:
        raise CircuitdbError(
            f"task {ev.data.name}: the {len(ranked)} candidate features reach {reach:.3f} of the full model, below the "
            f"threshold {threshold:g}; raise --top-k, lower --node-threshold, or lower the threshold"
        )
    return shortest_prefix(ranked, lambda nodes: ev.faithfulness(set(nodes)), threshold, progress)


def find(step: Step) -> Circuit:
    """The circuit, its feature edges (consecutive dictionaries; the last one's members to the logits), and the checks
    against exact ablation and patching."""
    spec, ev, scores = step.spec, step.ev, step.scores()
    within = len(step.parent.components) - 1 if step.parent is not None else None
    chosen = select(ev, scores, step.threshold, spec.top_k, spec.node_threshold, within, step.start("features"))
    edges = {e: w for e, w in ev.edges(set(chosen)).items() if abs(w) >= spec.min_edge}
    last = ev.dictionaries[-1].name
    edge_list = [Edge(node_name(s), node_name(r), round(w, 8)) for (s, r), w in edges.items()]
    # the last dictionary's members reach the metric directly: their attribution is the edge to the logits
    edge_list += [Edge(node_name(n), "logits", round(scores[n], 8))
                  for n in chosen if n[0] == last and abs(scores[n]) >= spec.min_edge]
    check = _attribution_check(ev, scores, chosen, spec.check_top)
    params = {
        "dictionaries": {d.name: {"hook": d.hook, "d_sae": d.size, "source": d.source} for d in ev.dictionaries},
        "attribution_check": check,
        "edge_check": [{"edge": f"{node_name(s)}->{node_name(r)}", "attribution": round(edges[(s, r)], 6),
                        "exact": round(ev.exact_edge(s, r), 6)}
                       for s, r in sorted(edges, key=lambda e: -abs(edges[e]))[: min(5, spec.check_top)]],
        "candidates": len(scores),
        "attribution": "integrated gradients" if spec.steps(IG_STEPS) > 1 else "attribution patching",
        "ig_steps": spec.steps(IG_STEPS),
    }
    rho = check["spearman"]
    return Circuit(set(chosen), {**{node_name(n): round(scores[n], 8) for n in chosen}, "logits": None}, edge_list,
                   params, step.parent is not None,
                   f"{len(chosen)} features, attribution vs exact ablation rho {rho if rho is not None else '-'}")


def _attribution_check(ev: FeatureEvaluator, scores: dict[Node, float], chosen: list[Node], top: int) -> dict:
    """Exact single-node ablation of the circuit's `top` strongest nodes against their attribution: Spearman's rho."""
    nodes = sorted(chosen, key=lambda n: -abs(scores[n]))[:top]
    if len(nodes) < 3:
        return {"nodes": len(nodes), "spearman": None}
    frame = pd.DataFrame({"attribution": [scores[n] for n in nodes], "exact": ev.ablation_effects(nodes)})
    rho = float(frame.corr(method="spearman").iloc[0, 1])  # NaN when either side is constant: no rank to compare
    return {"nodes": len(nodes), "spearman": round(rho, 4) if math.isfinite(rho) else None}


SAE_ATTR = Method("sae-attr", evaluators, find, ("top_k", "node_threshold", "min_edge", "check_top", "ablation", "means",
                                                 "n_prompts", "seed"),
                  score=lambda ev, spec: ev.attribution(spec.steps(IG_STEPS)),
                  variant=lambda ev: "+".join(d.name for d in ev.dictionaries), packages=("sae-lens",))
