"""What the head methods (prune, eap, eap-ig) share: the evaluator and the options their runs record,
and how a circuit of heads and MLPs becomes a run's components and edges."""

from __future__ import annotations

from typing import TYPE_CHECKING

from circuitdb.discovery.evaluate import Evaluator
from circuitdb.discovery.graph import EdgeKey
from circuitdb.discovery.methods.base import Circuit
from circuitdb.discovery.models import LoadedModel
from circuitdb.discovery.tasks import TaskData
from circuitdb.domain import Edge

if TYPE_CHECKING:
    from circuitdb.discovery.spec import JobSpec

OPTIONS = ("edges", "ablation", "n_prompts", "seed", "nested", "edge_threshold", "ig_steps", "robust")


def evaluators(lm: LoadedModel, spec: JobSpec, data: dict[str, TaskData]) -> dict[str, Evaluator]:
    """One head/MLP evaluator per task."""
    return {name: Evaluator(lm, task, spec.ablation, spec.seed) for name, task in data.items()}


def circuit(nodes: list[str], scores: dict[str, float], edges: dict[EdgeKey, float], params: dict, nested: bool) -> Circuit:
    """A circuit of heads and MLPs (in forward order) between the input and the logits."""
    return Circuit(set(nodes), {"input": None, **{n: scores.get(n) for n in nodes}, "logits": None},
                   [Edge(s, r, round(w, 8), i) for (s, r, i), w in edges.items()], params, nested, f"{len(nodes)} nodes")
