"""What the head methods (prune, path, eap, eap-ig) share: the evaluator and the options their runs record, the edge
rankings, the fewest ranked edges whose circuit holds jointly, and how a circuit becomes a run's components and
edges."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from circuitdb.discovery.edge_circuits import measure_edges
from circuitdb.discovery.edges import eap_scores, path_patch
from circuitdb.discovery.evaluate import Evaluator, Measure
from circuitdb.discovery.graph import EdgeKey, Masks
from circuitdb.discovery.methods.base import Circuit, by_score, shortest_prefix
from circuitdb.discovery.models import LoadedModel
from circuitdb.discovery.tasks import TaskData
from circuitdb.domain import Edge
from circuitdb.errors import CircuitdbError

if TYPE_CHECKING:
    from circuitdb.discovery.spec import JobSpec

OPTIONS = ("edges", "ablation", "means", "direction", "n_prompts", "seed", "nested", "ig_steps", "signed", "robust")


def evaluators(lm: LoadedModel, spec: JobSpec, data: dict[str, TaskData]) -> dict[str, Evaluator]:
    """One head/MLP evaluator per task."""
    return {name: Evaluator(lm, task, spec.intervention, spec.seed, metric=spec.metric, direction=spec.direction)
            for name, task in data.items()}


def edge_scores(ev: Evaluator, method: str, ig_steps: int, masks: Masks | None = None,
                progress: Callable[[int], None] | None = None) -> dict[EdgeKey, float]:
    """Every edge's estimated performance drop by `method` (path, eap, eap-ig): among the nodes of `masks`, or over
    the full graph."""
    if method == "path":
        candidates = ev.graph.edges if masks is None else ev.graph.circuit_edges(set(ev.graph.names(masks)))
        return path_patch(ev, masks if masks is not None else Masks.full(ev.graph), candidates, progress=progress)
    scores = eap_scores(ev, ig_steps if method == "eap-ig" else 0, masks)
    if masks is None:
        return scores
    return {e.key: scores[e.key] for e in ev.graph.circuit_edges(set(ev.graph.names(masks)))}


def ranked(scores: dict[EdgeKey, float], signed: bool) -> list[EdgeKey]:
    """Edges, most important first: by |score| (as EAP-IG and MIB rank), or by signed score."""
    return by_score(scores if signed else {e: abs(w) for e, w in scores.items()})


def fewest_edges(ev: Evaluator, ranking: list[EdgeKey], threshold: float,
                 progress: Callable[[int], None] = lambda n: None) -> tuple[list[EdgeKey], Measure]:
    """The shortest prefix of `ranking` whose edge circuit reaches `threshold` jointly (binary search), and its
    measure, verified; CircuitdbError when even the whole list does not."""
    chosen = shortest_prefix(ranking, lambda edges: measure_edges(ev, edges).faithfulness, threshold, progress)
    measure = measure_edges(ev, chosen)
    if measure.faithfulness < threshold:
        raise CircuitdbError(f"task {ev.data.name}: all {len(ranking)} ranked edges together reach "
                             f"{measure.faithfulness:.3f} of the full model, below the threshold {threshold:g}")
    return chosen, measure


def circuit(nodes: list[str], scores: dict[str, float], edges: dict[EdgeKey, float], params: dict, nested: bool,
            measures: dict[str, float]) -> Circuit:
    """A circuit of heads and MLPs (in forward order) between the input and the logits."""
    return Circuit(set(nodes), {"input": None, **{n: scores.get(n) for n in nodes}, "logits": None},
                   [Edge(s, r, round(w, 8), i) for (s, r, i), w in edges.items()], params, nested,
                   f"{len(nodes)} nodes", measures)
