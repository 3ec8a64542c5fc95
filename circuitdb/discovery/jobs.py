"""Discovery jobs: model x tasks x thresholds x methods -> measured Run objects, handed over one by one as they finish.

The job never touches the store; the caller passes `existing` (a stored run by id, to skip it or nest under it) and
`on_run` (write it), which is how an interrupted sweep keeps its finished runs and a re-run skips them.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from circuitdb.discovery.ablation import ABLATIONS
from circuitdb.discovery.edges import eap_scores, path_patch
from circuitdb.discovery.evaluate import Evaluator
from circuitdb.discovery.graph import EdgeKey, circuit_edges, names_mask
from circuitdb.discovery.models import LoadedModel, load_model
from circuitdb.discovery.pruning import member_scores, prune, survival
from circuitdb.discovery.tasks import build_task
from circuitdb.domain import Edge, Run, check_threshold, parse_component, run_id
from circuitdb.errors import CircuitdbError
from circuitdb.progress import Reporter

METHODS = ("prune", "eap", "eap-ig")
EDGE_METHODS = ("path", "eap", "eap-ig", "none")
METRIC = "logit_diff"


@dataclass
class JobSpec:
    """What to discover; `params` of every run record all of it."""

    model: str
    tasks: list[str]
    thresholds: list[float]
    methods: list[str] = field(default_factory=lambda: ["prune"])
    edges: str = "path"
    ablation: str = "mean"
    n_prompts: int = 64
    seed: int = 0
    nested: bool = True
    edge_threshold: float = 0.99
    ig_steps: int = 5
    robust: int = 0
    device: str = "cpu"

    def check(self) -> JobSpec:
        """Refuse impossible jobs before any model is loaded."""
        for t in self.thresholds:
            check_threshold(t)
        if not self.tasks or not self.thresholds:
            raise CircuitdbError("a job needs at least one --task and one --threshold")
        for method in self.methods:
            if method not in METHODS:
                raise CircuitdbError(f"unknown method {method!r} (use {', '.join(METHODS)})")
        if self.edges not in EDGE_METHODS:
            raise CircuitdbError(f"unknown edge method {self.edges!r} (use {', '.join(EDGE_METHODS)})")
        if self.ablation not in ABLATIONS:
            raise CircuitdbError(f"unknown ablation {self.ablation!r} (use {', '.join(ABLATIONS)})")
        if not 0 < self.edge_threshold <= 1:
            raise CircuitdbError(f"edge threshold must be in (0, 1], got {self.edge_threshold}")
        if self.n_prompts < 4:
            raise CircuitdbError("--prompts must be at least 4")
        return self


def versions() -> dict[str, str]:
    out = {"torch": torch.__version__}
    for package in ("transformer-lens", "circuitdb"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "unknown"
    return out


def discover(spec: JobSpec, on_run: Callable[[Run], None], existing: Callable[[str], Run | None] = lambda _: None,
             reporter: Reporter | None = None, lm: LoadedModel | None = None) -> list[Run]:
    """Run the job; every finished run goes to `on_run` at once; runs already stored are skipped."""
    spec.check()
    reporter = reporter or Reporter()
    torch.manual_seed(spec.seed)
    lm = lm or load_model(spec.model, spec.device)
    evaluators = {}
    for task in spec.tasks:
        data = build_task(task, lm, spec.n_prompts, spec.seed)
        evaluators[data.name] = Evaluator(lm, data, spec.ablation, spec.seed)
    done: list[Run] = []
    for name, ev in evaluators.items():
        for method in spec.methods:
            def make(threshold: float, parent: Run | None, ev: Evaluator = ev, method: str = method) -> Run:
                return _one_run(spec, lm, ev, evaluators, method, threshold, parent if spec.nested else None, reporter)

            done += ladder(lm.name, name, method, spec.ablation, spec.thresholds, make, on_run, existing, reporter,
                           lambda run: f"{len(run.components) - 2} nodes")
    return done


def ladder(model: str, task: str, method: str, ablation: str, thresholds: list[float],
           make: Callable[[float, Run | None], Run], on_run: Callable[[Run], None],
           existing: Callable[[str], Run | None], reporter: Reporter, size: Callable[[Run], str]) -> list[Run]:
    """One threshold ladder, strictest first: a stored run is skipped (and still serves as the next one's parent);
    any other is made from its parent, handed to `on_run` at once and reported."""
    done: list[Run] = []
    parent: Run | None = None
    for threshold in sorted(set(thresholds), reverse=True):
        label = f"{model}/{task}@{threshold:g} ({method})"
        stored = existing(run_id(model, task, method, ablation, METRIC, threshold))
        if stored is not None:
            reporter.note(f"skipped {label}: already in the catalog")
            parent = stored
            continue
        run = make(threshold, parent)
        on_run(run)
        reporter.note(f"wrote {run.id} {label}: {size(run)}, {len(run.edges)} edges, faithfulness {run.faithfulness:.3f}")
        done.append(run)
        parent = run
    return done


def _nodes(run: Run | None) -> set[str]:
    return {n for n in run.components if parse_component(n).kind in ("head", "mlp")} if run else set()


def _one_run(spec: JobSpec, lm: LoadedModel, ev: Evaluator, evaluators: dict[str, Evaluator], method: str,
             threshold: float, parent: Run | None, reporter: Reporter) -> Run:
    cfg = lm.model.cfg
    label = f"{ev.data.name}@{threshold:g} {method}"
    params = {k: v for k, v in asdict(spec).items() if k not in ("tasks", "thresholds", "methods", "model", "device")}
    if method == "prune":
        start = names_mask(cfg, _nodes(parent)) if parent else None
        total = (cfg.n_layers * (cfg.n_heads + 1)) * 4
        pruned = prune(ev, threshold, start, progress=reporter.start(f"prune {label}", total))
        nodes = pruned.names
        scores: dict[str, float | None] = dict(member_scores(ev, nodes))
        params |= {"sweeps": pruned.sweeps, "forward_passes": pruned.passes}
        if spec.robust:
            params["survival"] = survival(ev, threshold, spec.robust, spec.seed, reporter.start(f"robustness {label}"))
        edges = _circuit_edges(spec, ev, set(nodes), reporter, label)
    else:
        nodes, edges, scores = _eap_circuit(spec, ev, threshold, method, reporter, label)
    components = {"input": None, **{n: scores.get(n) for n in nodes}, "logits": None}
    node_set = set(nodes)
    return Run(
        model=lm.meta, task=ev.data.meta, method=method, threshold=threshold, ablation=spec.ablation, metric=METRIC,
        components=components,
        edges=[Edge(s, r, round(w, 8), i) for (s, r, i), w in edges.items()],
        faithfulness=ev.faithfulness(node_set), completeness=ev.completeness(node_set), params=params,
        dataset_hash=ev.data.dataset_hash(), seed=spec.seed, versions=versions(),
        nests_in=parent.id if parent is not None and method == "prune" else None,
        evaluations={name: other.faithfulness(node_set) for name, other in evaluators.items() if other is not ev},
    )


def _circuit_edges(spec: JobSpec, ev: Evaluator, nodes: set[str], reporter: Reporter, label: str) -> dict[EdgeKey, float]:
    """Edges among the circuit's nodes whose patched performance falls below edge_threshold x the circuit's."""
    if spec.edges == "none":
        return {}
    cfg = ev.lm.model.cfg
    candidates = circuit_edges(cfg, nodes)
    masks = names_mask(cfg, nodes)
    if spec.edges == "path":
        effects = path_patch(ev, masks, candidates, progress=reporter.start(f"path patching {label}", len(candidates)))
    else:
        estimates = eap_scores(ev, spec.ig_steps if spec.edges == "eap-ig" else 0)
        effects = {e: estimates[e] for e in candidates}
    circuit = ev.performance(masks).item()
    floor = (1 - spec.edge_threshold) * circuit
    return {e: w for e, w in effects.items() if w > floor}


def _eap_circuit(spec: JobSpec, ev: Evaluator, threshold: float, method: str, reporter: Reporter,
                 label: str) -> tuple[list[str], dict[EdgeKey, float], dict[str, float | None]]:
    """EAP(-IG) over the full graph: the fewest top-scoring edges whose nodes reach the threshold (binary search)."""
    scores = eap_scores(ev, spec.ig_steps if method == "eap-ig" else 0)
    ranked = sorted(scores, key=lambda e: -scores[e])
    advance = reporter.start(f"{method} {label}")

    def nodes_of(n: int) -> set[str]:
        return {x for e in ranked[:n] for x in e[:2] if x not in ("input", "logits")}

    lo, hi = 1, len(ranked)
    while lo < hi:
        mid = (lo + hi) // 2
        advance(1)
        if ev.faithfulness(nodes_of(mid)) >= threshold:
            hi = mid
        else:
            lo = mid + 1
    chosen = ranked[:lo]
    nodes = sorted(nodes_of(lo), key=lambda n: parse_component(n).sort_key())
    node_score: dict[str, float | None] = {}
    for edge in chosen:  # a node's score: the summed scores of its chosen edges
        for x in edge[:2]:
            node_score[x] = node_score.get(x, 0.0) + scores[edge]
    return nodes, {e: scores[e] for e in chosen}, node_score


def evaluate_runs(runs: list[Run], tasks: list[str], n_prompts: int = 64, seed: int = 0, device: str = "cpu",
                  reporter: Reporter | None = None) -> list[dict]:
    """The cross-task table: each head/MLP circuit's performance on each task's data (its own ablation), one row per
    (run, task). Feature circuits are scored across tasks when they are discovered."""
    reporter = reporter or Reporter()
    for run in runs:
        if not _nodes(run) and any(parse_component(n).kind in ("sae_feature", "error") for n in run.components):
            raise CircuitdbError(f"run {run.id} is a feature circuit: its cross-task scores are recorded at discovery")
    rows: list[dict] = []
    advance = reporter.start("evaluating", len(runs) * len(tasks))
    for model in dict.fromkeys(r.model.name for r in runs):
        lm = load_model(model, device)
        evaluators: dict[tuple[str, str], Evaluator] = {}
        for run in (r for r in runs if r.model.name == model):
            for task in tasks:
                key = (task, run.ablation)
                if key not in evaluators:
                    evaluators[key] = Evaluator(lm, build_task(task, lm, n_prompts, seed), run.ablation, seed)
                ev = evaluators[key]
                rows.append({"run": run.id, "task": ev.data.name, "performance": ev.faithfulness(_nodes(run))})
                advance(1)
    return rows
