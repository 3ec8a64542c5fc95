"""Resolve a selection (models, tasks, thresholds, methods, run ids) to runs, or say clearly what matched."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, fields
from itertools import combinations

from circuitdb.domain import check_threshold
from circuitdb.errors import CircuitdbError
from circuitdb.queries import run_query
from circuitdb.store.base import Store


@dataclass(frozen=True)
class RunInfo:
    """A run's catalog row (no members): what `runs` lists and what selections resolve to."""

    id: str
    model: str
    task: str
    method: str
    ablation: str
    metric: str
    threshold: float | None
    faithfulness: float | None
    completeness: float | None
    direction: str | None
    faithfulness_normalised: float | None
    edge_faithfulness: float | None
    kl: float | None
    accuracy: float | None
    cpr: float | None
    cmd: float | None
    n_nodes: int
    n_edges: int
    created_at: str
    cut: str | None = None  # the rule a circuit was cut from a score list by

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Selection:
    """What the user asked for; every field is a filter, empty means any."""

    models: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    thresholds: tuple[float, ...] = ()
    methods: tuple[str, ...] = ()
    ablations: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    directions: tuple[str, ...] = ()
    run_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for t in self.thresholds:
            check_threshold(t)

    def describe(self) -> str:
        parts = [f"{f.name}={','.join(map(str, getattr(self, f.name)))}" for f in fields(self) if getattr(self, f.name)]
        return " ".join(parts) or "everything"


def all_runs(store: Store) -> list[RunInfo]:
    """Every run, ordered by model, task, method, threshold (strictest first)."""
    rows = [RunInfo(**row) for row in run_query(store, "runs")]
    return sorted(rows, key=lambda r: (r.model, r.task, r.method, r.ablation, r.metric, -(r.threshold or 0), r.id))


def _matches_id(run: RunInfo, wanted: str) -> bool:
    return len(wanted) >= 4 and run.id.startswith(wanted)


def _same(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, abs_tol=1e-9)


def resolve(store: Store, selection: Selection, minimum: int = 1, maximum: int | None = None) -> list[RunInfo]:
    """The runs `selection` names, in the order the user listed them; error if none, too few or ambiguous."""
    runs = all_runs(store)
    by_id = {r.id: r for r in runs}
    named = set()  # ids of the runs selection.run_ids name (a whole id is looked up, a prefix searched for)
    for wanted in selection.run_ids:
        hits = [by_id[wanted]] if wanted in by_id else [r for r in runs if _matches_id(r, wanted)]
        if len(hits) != 1:
            raise CircuitdbError(f"run id {wanted!r} matches {len(hits)} runs" + (" (give more digits)" if hits else ""))
        named.add(hits[0].id)
    for values, attr in ((selection.models, "model"), (selection.tasks, "task")):
        missing = sorted(set(values) - {getattr(r, attr) for r in runs})
        if missing:
            known = sorted({getattr(r, attr) for r in runs})
            raise CircuitdbError(f"unknown {attr} {', '.join(missing)} (the catalog has: {', '.join(known) or 'none'})")

    def keep(r: RunInfo) -> bool:
        return (
            (not selection.run_ids or r.id in named)
            and (not selection.models or r.model in selection.models)
            and (not selection.tasks or r.task in selection.tasks)
            and (not selection.thresholds or any(_same(r.threshold, t) for t in selection.thresholds))
            and (not selection.methods or r.method in selection.methods)
            and (not selection.ablations or r.ablation in selection.ablations)
            and (not selection.metrics or r.metric in selection.metrics)
            and (not selection.directions or (r.direction or "noising") in selection.directions)
        )

    chosen = [r for r in runs if keep(r)]
    if not chosen:
        near = [
            r
            for r in runs
            if (not selection.tasks or r.task in selection.tasks) and (not selection.models or r.model in selection.models)
        ]
        hint = "; runs of those tasks: " + ", ".join(sorted({label_of(r) for r in near})) if near else ""
        raise CircuitdbError(f"no run matches {selection.describe()}{hint}")
    _check_ambiguous(chosen, selection)
    order = {t: i for i, t in enumerate(selection.tasks)}
    model_order = {m: i for i, m in enumerate(selection.models)}
    id_order = {r.id: i for i, r in enumerate(chosen) if r.id in named}
    chosen.sort(
        key=lambda r: (id_order.get(r.id, 0), model_order.get(r.model, 0), order.get(r.task, 0), -(r.threshold or 0), r.method)
    )
    if len(chosen) < minimum or (maximum is not None and len(chosen) > maximum):
        wanted = f"{minimum}" + (f" to {maximum}" if maximum != minimum else "") if maximum else f"at least {minimum}"
        raise CircuitdbError(
            f"{selection.describe()} matches {len(chosen)} runs ({', '.join(label_of(r) for r in chosen)}); this needs {wanted}"
        )
    return chosen


def _check_ambiguous(chosen: list[RunInfo], selection: Selection) -> None:
    """Two runs of one model x task x threshold are ambiguous unless the user asked for both by name."""
    if selection.run_ids:
        return
    asked = {"method": selection.methods, "ablation": selection.ablations, "metric": selection.metrics}
    groups: dict[tuple, list[RunInfo]] = defaultdict(list)
    for run in chosen:
        groups[(run.model, run.task, run.threshold)].append(run)
    for a, b in (pair for group in groups.values() for pair in combinations(group, 2)):
        for attr, values in asked.items():
            if getattr(a, attr) != getattr(b, attr) and len(values) < 2:
                raise CircuitdbError(
                    f"ambiguous: {a.model}/{a.task} at {a.threshold} has runs with {attr} "
                    f"{getattr(a, attr)} and {getattr(b, attr)}; add --{attr}"
                )


def label_of(run: RunInfo) -> str:
    """A full human label: model/task@threshold (method)."""
    threshold = "" if run.threshold is None else f"@{run.threshold:g}"
    cut = f" [{run.cut}]" if run.cut else ""
    return f"{run.model}/{run.task}{threshold} ({run.method}){cut}"


def labels(runs: list[RunInfo]) -> list[str]:
    """Short labels that name only what differs between the runs (task, model, threshold, method...)."""
    parts = []
    for attr, fmt in (
        ("model", str),
        ("task", str),
        ("threshold", lambda t: "" if t is None else f"{t:g}"),
        ("method", str),
        ("ablation", str),
        ("metric", str),
        ("cut", lambda c: c or "all scores"),
    ):
        if len({getattr(r, attr) for r in runs}) > 1:
            parts.append((attr, fmt))
    if not parts:
        parts = [("task", str)]
    out = ["/".join(fmt(getattr(r, attr)) for attr, fmt in parts) for r in runs]
    return out if len(set(out)) == len(out) else [r.id for r in runs]
