"""What the catalog answers: small result objects, each with `.to_dict()` (the exact JSON that `--json` prints, stable
keys) and `.tables()` (titled tables for a terminal or CSV). The CLI renders these and nothing else."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from circuitdb.lazy import pd
from circuitdb.queries.selection import RunInfo, label_of

Table = tuple[str, "pd.DataFrame"]


def plain(value: Any) -> Any:
    """A JSON-safe Python value: NaN becomes null, numpy scalars become Python numbers, sets become sorted lists."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        items = sorted(value) if isinstance(value, set) else value
        return [plain(v) for v in items]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a DataFrame as plain dicts (the `--json` form of a table)."""
    return [plain(row) for row in frame.to_dict(orient="records")]


def runs_title(runs: list[RunInfo]) -> str:
    return " | ".join(label_of(r) for r in runs)


class Result:
    """Base of every answer: `to_dict()` for JSON, `tables()` for people; `frame` is the main table (and `--csv`)."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def tables(self) -> list[Table]:
        raise NotImplementedError

    @property
    def frame(self) -> pd.DataFrame:
        return self.tables()[0][1]


@dataclass
class Runs(Result):
    """Runs of the catalog (`runs`), or the runs a write produced (`import`, `discover`)."""

    runs: list[RunInfo]

    def to_dict(self) -> dict[str, Any]:
        return plain({"runs": [r.as_dict() for r in self.runs]})

    def tables(self) -> list[Table]:
        frame = pd.DataFrame([r.as_dict() for r in self.runs], columns=list(RunInfo.__dataclass_fields__))
        quiet = ["created_at", "direction", "faithfulness_normalised", "kl", "accuracy"]  # in --json and `show`
        return [(f"{len(self.runs)} runs", frame.drop(columns=quiet))]

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.runs]

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[RunInfo]:
        return iter(self.runs)

    def __getitem__(self, i: int) -> RunInfo:
        return self.runs[i]


@dataclass
class RunDetail(Result):
    """One whole run (`show`): provenance, members with scores, edges with weights."""

    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return plain(self.data)

    def tables(self) -> list[Table]:
        head = {k: v for k, v in self.data.items() if k not in ("components", "edges")}
        if head.get("scores"):  # the full ranked list is in --json; here its size
            head["scores"] = f"{len(head['scores'])} scored (cut with `circuitdb cut`)"
        out = [("components", pd.DataFrame(self.data["components"], columns=["name", "score"])),
               ("run", pd.DataFrame({"field": list(head), "value": [str(v) for v in head.values()]}))]
        if self.data["edges"]:
            out.append(("edges", pd.DataFrame(self.data["edges"], columns=["sender", "receiver", "input", "weight"])))
        return out


def identity(by_position: bool) -> str:
    """What makes two components the same in a comparison, as results say it."""
    return "by name and position" if by_position else "by name"


@dataclass
class Shared(Result):
    """Components (or edges) present in every selected run, with mean and min score."""

    runs: list[RunInfo]
    members: pd.DataFrame
    edges: bool = False
    by_position: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"runs": plain([r.as_dict() for r in self.runs]), "identity": identity(self.by_position),
                "edges" if self.edges else "components": records(self.members)}

    def tables(self) -> list[Table]:
        return [(f"shared by {runs_title(self.runs)}: {len(self.members)} ({identity(self.by_position)})", self.members)]


@dataclass
class Venn(Result):
    """Venn regions of 2-4 runs (all regions, empty ones too) or, past 4, the UpSet table of non-empty ones."""

    runs: list[RunInfo]
    labels: list[str]
    regions: pd.DataFrame  # region (bitmask over runs, bit i = run i), sets, count, members
    edges: bool
    by_position: bool = True

    @property
    def upset(self) -> bool:
        return len(self.runs) > 4

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [{"id": r.id, "label": lab} for r, lab in zip(self.runs, self.labels)],
            "kind": "edges" if self.edges else "components",
            "identity": identity(self.by_position),
            "regions": records(self.regions),
        }

    def tables(self) -> list[Table]:
        return [(("UpSet" if self.upset else "Venn") + f": {', '.join(self.labels)} ({identity(self.by_position)})",
                 self.regions)]


@dataclass
class Diff(Result):
    """Only in A, only in B, in both, with each side's score (weight) and the delta B - A."""

    a: RunInfo
    b: RunInfo
    rows: pd.DataFrame
    edges: bool = False
    by_position: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"a": plain(self.a.as_dict()), "b": plain(self.b.as_dict()), "identity": identity(self.by_position),
                "rows": records(self.rows)}

    def tables(self) -> list[Table]:
        return [(f"A = {label_of(self.a)}   B = {label_of(self.b)}   ({identity(self.by_position)})", self.rows)]


@dataclass
class Similarity(Result):
    """A labelled square Jaccard matrix (of component or edge sets; weighted: sum min / sum max of |score|)."""

    runs: list[RunInfo]
    matrix: pd.DataFrame
    edges: bool = False
    weighted: bool = False
    by_position: bool = True

    @property
    def title(self) -> str:
        return (("weighted " if self.weighted else "") + "Jaccard of " + ("edges" if self.edges else "components") +
                f" ({identity(self.by_position)})")

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(self.matrix.index), "run_ids": [r.id for r in self.runs],
                "identity": identity(self.by_position), "matrix": plain(self.matrix.to_numpy().tolist())}

    def tables(self) -> list[Table]:
        return [(self.title, self.matrix.reset_index(names=""))]


@dataclass
class Ladder(Result):
    """Per threshold of one model x task: size, members, and nesting against the stricter circuit."""

    model: str
    task: str
    rungs: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "task": self.task, "thresholds": records(self.rungs)}

    def tables(self) -> list[Table]:
        return [(f"{self.model}/{self.task}", self.rungs)]


@dataclass
class Curves(Result):
    """Faithfulness curves (`curve`): per run, normalised faithfulness at 0.1 ... 100 % of its method's ranked edges,
    and the areas CPR (under f) and CMD (under |1 - f|)."""

    runs: list[RunInfo]
    labels: list[str]
    points: pd.DataFrame  # run, percent, faithfulness

    def to_dict(self) -> dict[str, Any]:
        return plain({"curves": [
            {"run": r.id, "label": label, "cpr": r.cpr, "cmd": r.cmd,
             "points": records(self.points[self.points.run == r.id][["percent", "faithfulness"]])}
            for r, label in zip(self.runs, self.labels)]})

    def tables(self) -> list[Table]:
        label = dict(zip((r.id for r in self.runs), self.labels))
        wide = self.points.assign(run=self.points.run.map(label)).pivot(index="percent", columns="run",
                                                                          values="faithfulness")
        areas = pd.DataFrame({"run": self.labels, "cpr": [r.cpr for r in self.runs], "cmd": [r.cmd for r in self.runs]})
        return [("faithfulness by % of ranked edges", wide[self.labels].reset_index()), ("areas", areas)]


@dataclass
class Rows(Result):
    """A plain table under one JSON key, with optional scalar facts beside it (user Cypher, cross-task scores, ...)."""

    key: str
    rows: pd.DataFrame
    title: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    extra: list[Table] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**plain(self.facts), self.key: records(self.rows), **{k: records(v) for k, v in self.extra}}

    def records(self) -> list[dict[str, Any]]:
        """The rows as plain dicts."""
        return records(self.rows)

    def tables(self) -> list[Table]:
        return [(self.title, self.rows), *self.extra]


@dataclass
class Written(Result):
    """What a write did: how many things of what kind went where (an export, relations, a steering vector)."""

    what: str
    count: int
    facts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return plain({"what": self.what, "count": self.count, **self.facts})

    def tables(self) -> list[Table]:
        return [(self.what, pd.DataFrame([self.to_dict()]))]


@dataclass
class Subgraph(Result):
    """One run's strongest edges (the top N by |weight|, cut in the store) and members, for a picture of a large run:
    `total_edges` says how many the run holds."""

    run: RunInfo
    nodes: list[dict[str, Any]]  # name, kind, layer, index, score
    edges: list[dict[str, Any]]  # sender, receiver, input, weight; strongest first
    top: int
    min_weight: float = 0.0
    scored_edges: int = 0  # edges in the run's score list when they are what is shown (else 0: its stored edges)

    def to_dict(self) -> dict[str, Any]:
        return plain({"run": self.run.as_dict(), "label": label_of(self.run), "top": self.top,
                      "min_weight": self.min_weight, "total_edges": self.run.n_edges, "total_nodes": self.run.n_nodes,
                      "scored_edges": self.scored_edges, "nodes": self.nodes, "edges": self.edges})

    def tables(self) -> list[Table]:
        if self.scored_edges:
            title = (f"{label_of(self.run)}: the {len(self.edges)} strongest of {self.scored_edges} scored edges "
                     f"({self.run.n_edges} in the circuit)")
        else:
            title = f"{label_of(self.run)}: the {len(self.edges)} strongest of {self.run.n_edges} edges"
        return [(title, pd.DataFrame(self.edges, columns=["sender", "receiver", "input", "weight", "in_circuit"])),
                ("nodes", pd.DataFrame(self.nodes, columns=["name", "kind", "layer", "score", "in_circuit"]))]


@dataclass
class ComponentDetail(Result):
    """One component of one run: its score there, its edges in the run (strongest first), every run including it."""

    run: RunInfo
    component: dict[str, Any]  # name, kind, layer, index, score
    edges: list[dict[str, Any]]  # direction (in/out), other, input, weight
    runs: list[dict[str, Any]]  # run, label, score

    def to_dict(self) -> dict[str, Any]:
        return plain({"run": self.run.id, "label": label_of(self.run), **self.component, "edges": self.edges,
                      "runs": self.runs})

    def tables(self) -> list[Table]:
        c = self.component
        score = "-" if c["score"] is None else f"{c['score']:.4g}"
        return [(f"{c['name']} in {label_of(self.run)}: score {score}",
                 pd.DataFrame(self.edges, columns=["direction", "other", "input", "weight"])),
                (f"runs including {c['name']}", pd.DataFrame(self.runs, columns=["run", "label", "score"]))]
