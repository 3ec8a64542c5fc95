"""Feature discovery jobs: model x SAE dictionaries x tasks x thresholds -> Runs whose components are SAE features.

A feature run is an ordinary Run (kind `sae_feature` / `error` components, weighted feature-to-feature edges), so
shared / venn / diff / similarity work on features unchanged. Its method names the dictionaries it used
(`sae-attr:resid2+resid3`), which keeps runs over different dictionaries apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import pandas as pd
import torch

from circuitdb.discovery.ablation import ABLATIONS
from circuitdb.discovery.features import FeatureEvaluator, Node, node_name, select
from circuitdb.discovery.jobs import METRIC, ladder, versions
from circuitdb.discovery.models import LoadedModel, load_model
from circuitdb.discovery.sae import Dictionary, load_dictionary
from circuitdb.discovery.tasks import build_task
from circuitdb.domain import Edge, Run, check_threshold
from circuitdb.errors import CircuitdbError
from circuitdb.progress import Reporter


@dataclass
class FeatureSpec:
    """What to discover; every run's `params` record it."""

    model: str
    saes: list[str]
    tasks: list[str]
    thresholds: list[float]
    top_k: int | None = None
    node_threshold: float | None = None
    min_edge: float = 0.005
    check_top: int = 20
    ablation: str = "mean"
    n_prompts: int = 64
    seed: int = 0
    device: str = "cpu"
    dictionaries: dict = field(default_factory=dict)

    def check(self) -> FeatureSpec:
        """Refuse impossible jobs before any model is loaded."""
        if not self.saes or not self.tasks or not self.thresholds:
            raise CircuitdbError("a feature job needs at least one --sae, one --task and one --threshold")
        for t in self.thresholds:
            check_threshold(t)
        if self.top_k is not None and self.top_k < 1:
            raise CircuitdbError(f"--top-k must be at least 1, got {self.top_k}")
        if self.ablation not in ABLATIONS:
            raise CircuitdbError(f"unknown ablation {self.ablation!r} (use {', '.join(ABLATIONS)})")
        if self.min_edge < 0:
            raise CircuitdbError(f"--min-edge must be >= 0, got {self.min_edge}")
        if self.n_prompts < 4:
            raise CircuitdbError("--prompts must be at least 4")
        if self.check_top < 0:
            raise CircuitdbError(f"--check-top must be >= 0, got {self.check_top}")
        return self


def method_name(dictionaries: list[Dictionary]) -> str:
    """`sae-attr:resid2+resid3`: the method of a feature run names its dictionaries, in layer order."""
    return "sae-attr:" + "+".join(d.name for d in sorted(dictionaries, key=lambda d: d.layer))


def discover_features(spec: FeatureSpec, on_run: Callable[[Run], None],
                      existing: Callable[[str], Run | None] = lambda _: None, reporter: Reporter | None = None,
                      lm: LoadedModel | None = None) -> list[Run]:
    """Run the job; each finished run goes to `on_run` at once; runs already stored are skipped (and still nest)."""
    spec.check()
    reporter = reporter or Reporter()
    torch.manual_seed(spec.seed)
    lm = lm or load_model(spec.model, spec.device)
    dictionaries = [load_dictionary(s, lm) for s in spec.saes]
    spec.dictionaries = {d.name: {"hook": d.hook, "d_sae": d.size, "source": d.source} for d in dictionaries}
    method = method_name(dictionaries)
    evaluators = {}
    for task in spec.tasks:
        data = build_task(task, lm, spec.n_prompts, spec.seed)
        evaluators[data.name] = FeatureEvaluator(lm, data, list(dictionaries), spec.ablation, spec.seed)
    done: list[Run] = []
    for ev in evaluators.values():
        scores: dict[Node, float] = {}  # attribution, computed once per task and only if some run is not stored

        def make(threshold: float, parent: Run | None, ev: FeatureEvaluator = ev, scores: dict = scores) -> Run:
            if not scores:
                scores.update(ev.attribution())
            return _feature_run(spec, ev, evaluators, method, threshold, scores, parent, reporter)

        done += ladder(lm.name, ev.data.name, method, spec.ablation, spec.thresholds, make, on_run, existing, reporter,
                       _describe)
    return done


def _describe(run: Run) -> str:
    """A feature run's size and its attribution check, for the progress line."""
    check = run.params["attribution_check"]["spearman"]
    return f"{len(run.components) - 1} features, attribution vs exact ablation rho {check if check is not None else '-'}"


def _feature_run(spec: FeatureSpec, ev: FeatureEvaluator, evaluators: dict[str, FeatureEvaluator], method: str,
                 threshold: float, scores: dict[Node, float], parent: Run | None, reporter: Reporter) -> Run:
    """One measured feature run: the circuit, its edges, checks against exact ablation and patching, cross-task scores."""
    label = f"{ev.data.name}@{threshold:g}"
    within = len(parent.components) - 1 if parent is not None else None
    chosen = select(ev, scores, threshold, spec.top_k, spec.node_threshold, within, reporter.start(f"features {label}"))
    members = set(chosen)
    edges = {e: w for e, w in ev.edges(members).items() if abs(w) >= spec.min_edge}
    last = ev.dictionaries[-1].name
    edge_list = [Edge(node_name(s), node_name(r), round(w, 8)) for (s, r), w in edges.items()]
    # the last dictionary's members reach the metric directly: their attribution is the edge to the logits
    edge_list += [Edge(node_name(n), "logits", round(scores[n], 8))
                  for n in chosen if n[0] == last and abs(scores[n]) >= spec.min_edge]
    params = {k: v for k, v in asdict(spec).items() if k not in ("tasks", "thresholds", "model", "device", "saes")}
    params["attribution_check"] = _attribution_check(ev, scores, chosen, spec.check_top)
    params["edge_check"] = [{"edge": f"{node_name(s)}->{node_name(r)}", "attribution": round(edges[(s, r)], 6),
                             "exact": round(ev.exact_edge(s, r), 6)}
                            for s, r in sorted(edges, key=lambda e: -abs(edges[e]))[: min(5, spec.check_top)]]
    return Run(
        model=ev.lm.meta, task=ev.data.meta, method=method, threshold=threshold, ablation=spec.ablation, metric=METRIC,
        components={**{node_name(n): round(scores[n], 8) for n in chosen}, "logits": None},
        edges=edge_list, faithfulness=ev.faithfulness(members), completeness=ev.completeness(members),
        params=params | {"candidates": len(scores)}, dataset_hash=ev.data.dataset_hash(), seed=spec.seed,
        versions=versions() | {"sae-lens": _sae_lens_version()},
        nests_in=parent.id if parent is not None else None,
        evaluations={name: other.faithfulness(members) for name, other in evaluators.items() if other is not ev},
    )


def _attribution_check(ev: FeatureEvaluator, scores: dict[Node, float], chosen: list[Node], top: int) -> dict:
    """Exact single-node ablation of the circuit's `top` strongest nodes against their attribution: Spearman's rho."""
    nodes = sorted(chosen, key=lambda n: -abs(scores[n]))[:top]
    if len(nodes) < 3:
        return {"nodes": len(nodes), "spearman": None}
    frame = pd.DataFrame({"attribution": [scores[n] for n in nodes], "exact": ev.ablation_effects(nodes)})
    return {"nodes": len(nodes), "spearman": round(float(frame.corr(method="spearman").iloc[0, 1]), 4)}


def _sae_lens_version() -> str:
    """For the run's provenance."""
    import sae_lens

    return sae_lens.__version__
