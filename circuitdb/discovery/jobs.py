"""Discovery jobs: model x tasks x methods x thresholds -> measured Run objects, handed over one by one as they finish.

One loop runs every method of the registry (`methods/`): it checks the spec, walks each threshold ladder strictest first
and builds each Run with its provenance and measurements. The job never touches the store; the caller passes `existing`
(a stored run by id, to skip it or nest under it) and `on_run` (write it), which is how an interrupted sweep keeps its
finished runs and a re-run skips them.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from functools import cache, partial

import torch

from circuitdb.discovery.evaluate import Evaluator
from circuitdb.discovery.methods import METHODS, Method
from circuitdb.discovery.methods.base import Circuit, Scorer, Step
from circuitdb.discovery.models import LoadedModel, load_model
from circuitdb.discovery.spec import JobSpec
from circuitdb.discovery.tasks import Prompts, TaskData, build_task
from circuitdb.domain import Run, parse_component, parse_edge_name, run_id
from circuitdb.errors import CircuitdbError
from circuitdb.progress import Reporter


def versions(packages: tuple[str, ...] = ()) -> dict[str, str]:
    """The versions a run was made with, for its provenance."""
    out = {"torch": torch.__version__}
    for package in ("transformer-lens", "circuitdb", *packages):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "unknown"
    return out


class Job:
    """A job's model, task data and evaluators, built once and shared by its threshold ladders (and, on a Ray worker,
    by every unit of the job that the worker runs). `lm` is a model already loaded, `given` the tasks given as
    prompts or tokens, by name."""

    def __init__(self, spec: JobSpec, lm: LoadedModel | None = None,
                 given: dict[str, Prompts | TaskData] | None = None) -> None:
        self.spec = spec.check()
        torch.manual_seed(spec.seed)
        self.lm = lm or load_model(spec.model, spec.device)
        given = given or {}
        tasks = (build_task(given.get(t, t), self.lm, spec.n_prompts, spec.seed) for t in spec.tasks)
        self.data = {task.name: task for task in tasks}
        self.methods = [METHODS[m] for m in dict.fromkeys(spec.methods)]
        self._evaluators: dict[Callable, dict[str, Scorer]] = {}  # per kind of method, for every task of the job

    def evaluators(self, method: Method) -> dict[str, Scorer]:
        """The scorers of `method`'s kind for every task (the other tasks score each run across tasks)."""
        if method.evaluators not in self._evaluators:
            self._evaluators[method.evaluators] = method.evaluators(self.lm, self.spec, self.data)
        return self._evaluators[method.evaluators]

    def ladder(self, task: str, method: Method, on_run: Callable[[Run], None],
               existing: Callable[[str], Run | None] = lambda _: None, reporter: Reporter | None = None) -> list[Run]:
        """One (task, method) threshold ladder: the unit of work an executor schedules. Seeded on its own, so its runs
        do not depend on which ladders ran before it in the process."""
        torch.manual_seed(self.spec.seed)
        return _ladder(self.spec, self.lm, method, task, self.evaluators(method), on_run, existing,
                       reporter or Reporter())


def discover(spec: JobSpec, on_run: Callable[[Run], None], existing: Callable[[str], Run | None] = lambda _: None,
             reporter: Reporter | None = None, lm: LoadedModel | None = None,
             given: dict[str, Prompts | TaskData] | None = None) -> list[Run]:
    """Run the job, task by task and method by method; every finished run goes to `on_run` at once; runs already
    stored are skipped (and still serve as the next threshold's parent). Every evaluator is built before the first
    run, so a job that cannot score a task fails before it writes anything."""
    job = Job(spec, lm, given)
    for method in job.methods:
        job.evaluators(method)
    return [run for task in job.data for method in job.methods
            for run in job.ladder(task, method, on_run, existing, reporter)]


def _ladder(spec: JobSpec, lm: LoadedModel, method: Method, task: str, evaluators: dict[str, Scorer],
            on_run: Callable[[Run], None], existing: Callable[[str], Run | None], reporter: Reporter) -> list[Run]:
    """One threshold ladder, strictest first: a stored run is skipped (and still serves as the next one's parent);
    any other is found from its parent, measured, handed to `on_run` at once and reported."""
    ev = evaluators[task]
    name = method.run_method(ev)
    scores = cache(partial(method.score, ev, spec)) if method.score else None
    done: list[Run] = []
    parent: Run | None = None
    for threshold in sorted(set(spec.thresholds), reverse=True):
        label = f"{task}@{threshold:g} ({name})"
        stored = existing(run_id(lm.name, task, name, spec.intervention, spec.metric, threshold, spec.direction))
        if stored is not None:
            reporter.note(f"skipped {lm.name}/{label}: already in the catalog")
            parent = stored
            continue
        step = Step(spec, ev, threshold, parent, scores, reporter, label)
        circuit = method.find(step)
        run = _measured(lm, name, method, step, circuit, evaluators)
        on_run(run)
        reporter.note(f"wrote {run.id} {lm.name}/{label}: {circuit.summary}, {len(run.edges)} edges, "
                      f"faithfulness {run.faithfulness:.3f}")
        done.append(run)
        parent = run
    return done


def _measured(lm: LoadedModel, name: str, method: Method, step: Step, circuit: Circuit,
              evaluators: dict[str, Scorer]) -> Run:
    """The run of a circuit: its measures on its task (a head circuit's `Measure`, the method's edge measures),
    completeness, performance on the job's other tasks, the params of its method and step, and provenance."""
    spec, ev, members = step.spec, step.ev, circuit.members
    if isinstance(ev, Evaluator):
        node = ev.measure_nodes(members)
        measures = {"faithfulness": node.faithfulness, "faithfulness_normalised": node.normalised, "kl": node.kl,
                    "accuracy": node.accuracy}
    else:
        measures = {"faithfulness": ev.faithfulness(members)}
    return Run(
        model=lm.meta, task=ev.data.meta, method=name, threshold=step.threshold, ablation=spec.intervention, metric=spec.metric,
        direction=spec.direction,
        components=circuit.components, edges=circuit.edges, completeness=ev.completeness(members),
        **measures, **circuit.measures,
        params={option: getattr(spec, option) for option in method.options} | circuit.params,
        dataset_hash=ev.data.dataset_hash(), seed=spec.seed, versions=versions(method.packages),
        nests_in=step.parent.id if circuit.nested else None,
        evaluations={task: other.faithfulness(members) for task, other in evaluators.items() if other is not ev},
        scores=circuit.scores,
    )


def evaluate_runs(runs: list[Run], tasks: list[str], n_prompts: int = 64, seed: int = 0, device: str = "cpu",
                  reporter: Reporter | None = None) -> list[dict]:
    """The cross-task table: each head/MLP circuit's performance on each task's data (its own ablation), one row per
    (run, task). Feature circuits are scored across tasks when they are discovered."""
    reporter = reporter or Reporter()
    for run in runs:
        kinds = {parse_component(n).kind for n in run.components}
        if kinds & {"sae_feature", "error"} and not kinds & {"head", "mlp"}:
            raise CircuitdbError(f"run {run.id} is a feature circuit: its cross-task scores are recorded at discovery")
    rows: list[dict] = []
    advance = reporter.start("evaluating", len(runs) * len(tasks))
    for model in dict.fromkeys(r.model.name for r in runs):
        lm = load_model(model, device)
        evaluators: dict[tuple[str, str], Evaluator] = {}
        for run in (r for r in runs if r.model.name == model):
            for task in tasks:
                key = (task, run.ablation, run.metric, run.direction)
                if key not in evaluators:
                    evaluators[key] = Evaluator(lm, build_task(task, lm, n_prompts, seed), run.ablation, seed,
                                                metric=run.metric, direction=run.direction)
                ev = evaluators[key]
                performance = ev.faithfulness(lm.graph.components(run.components))
                rows.append({"run": run.id, "task": ev.data.name, "performance": performance})
                advance(1)
    return rows


def measure_scores(runs: list[Run], n_prompts: int = 64, seed: int = 0, device: str = "cpu", intervention: str = "patch",
                   reporter: Reporter | None = None) -> list[Run]:
    """Each run's faithfulness curve over its scored edges ranked by |score|, with MIB's CPR and CMD, and its in-graph
    edges' joint faithfulness, measured on its own model and task by the discovery evaluator (`intervention`: how the
    rest is removed; EAP-IG and MIB patch in the corrupted prompts' activations). The runs come back with the numbers
    and the curve (`params.curve`, `params.measured`)."""
    from dataclasses import replace

    from circuitdb.discovery.edge_circuits import curve, measure_edges

    reporter = reporter or Reporter()
    advance = reporter.start("measuring", len(runs))
    out = []
    for model in dict.fromkeys(r.model.name for r in runs):
        lm = load_model(model, device)
        known = {e.key for e in lm.graph.edges}
        evaluators: dict[tuple[str, str, str], Evaluator] = {}  # runs of one task share its prompts and references
        for run in (r for r in runs if r.model.name == model):
            names = sorted((n for n in run.scores if "->" in n), key=lambda n: -abs(run.scores[n]))
            ranked = [parse_edge_name(n) for n in names]
            missing = [n for n, key in zip(names, ranked) if key not in known]
            if not ranked or missing:
                raise CircuitdbError(f"run {run.id}: " + (f"scores edge {missing[0]}, which {model}'s graph lacks" if
                                                           missing else "has no scored edges to measure"))
            key = (run.task.name, run.metric, run.direction)
            if key not in evaluators:
                evaluators[key] = Evaluator(lm, build_task(run.task.name, lm, n_prompts, seed), intervention, seed,
                                            metric=run.metric, direction=run.direction)
            ev = evaluators[key]
            data = ev.data
            found = curve(ev, ranked)
            joint = measure_edges(ev, [e.key for e in run.edges]).faithfulness if run.edges else run.edge_faithfulness
            measured = {"intervention": intervention, "n_prompts": data.n, "seed": seed, "dataset_hash": data.dataset_hash()}
            out.append(replace(run, cpr=found["cpr"], cmd=found["cmd"], edge_faithfulness=joint, params={
                **run.params, "curve": {k: found[k] for k in ("percent", "faithfulness")}, "measured": measured}))
            advance(1)
    return out
