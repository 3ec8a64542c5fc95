"""Feature queries: a component's stored relations plus its co-membership in circuits, and steering vectors."""

from __future__ import annotations

import json
from dataclasses import dataclass

from circuitdb.domain import canonical, component_id, parse_component
from circuitdb.errors import CircuitdbError
from circuitdb.lazy import pd
from circuitdb.queries import run_query
from circuitdb.queries.results import Result, Table, records
from circuitdb.queries.selection import RunInfo
from circuitdb.store.base import Store

RELATED_COLUMNS = ["other", "model", "kind", "weight", "source", "direction"]


def resolve_component(store: Store, text: str, model: str | None = None) -> str:
    """The graph id of a component given as `model/name`, or as a name (any spelling) with or without `model`."""
    for model_part, name_part in _splits(text, model):
        try:
            name = canonical(name_part)
        except CircuitdbError:
            continue
        rows = run_query(store, "component_lookup", cname=name, model=model_part or "")
        if len(rows) == 1:
            return rows[0]["id"]
        if len(rows) > 1:
            raise CircuitdbError(f"{text} is in several models ({', '.join(r['model'] for r in rows)}); give --model")
    raise CircuitdbError(f"unknown component {text!r}" + (f" in model {model}" if model else "") + " (not in the catalog)")


def _splits(text: str, model: str | None) -> list[tuple[str | None, str]]:
    """Readings of `text`: with the given model; as `model/name` split at each slash; as a bare name."""
    if model:
        return [(model, text)]
    parts = text.split("/")
    return [("/".join(parts[:i]), "/".join(parts[i:])) for i in range(1, len(parts))] + [(None, text)]


def feature_list(store: Store, model: str | None, limit: int) -> pd.DataFrame:
    """Rows (model, feature, dictionary, layer, runs, relations) of the SAE features, those in most runs first."""
    columns = ["id", "model", "feature", "dictionary", "layer", "relations"]
    frame = pd.DataFrame(run_query(store, "feature_list", model=model or ""), columns=columns)
    runs = {r["id"]: r["runs"] for r in run_query(store, "feature_runs", model=model or "")}
    frame.insert(5, "runs", [runs.get(i, 0) for i in frame["id"]])
    frame = frame.sort_values(["runs", "relations", "model", "feature"], ascending=[False, False, True, True])
    return frame.drop(columns="id").head(limit).reset_index(drop=True)


def related(store: Store, component: str, min_weight: float = 0.0, limit: int = 50) -> pd.DataFrame:
    """Stored relations of `component` (an id) both ways, and co-membership: the components sharing the most
    circuits with it (weight = shared runs / runs including it). Strongest first within each kind."""
    rows = [{**r, "direction": "out"} for r in run_query(store, "relations_out", id=component)]
    rows += [{**r, "direction": "in"} for r in run_query(store, "relations_in", id=component)]
    rows = [r for r in rows if abs(r["weight"]) >= min_weight]
    own = run_query(store, "component_runs", id=component)[0]["runs"]
    for r in run_query(store, "comembers", id=component):
        share = r["runs"] / own
        if share >= min_weight:
            rows.append({"other": r["other"], "model": r["model"], "kind": "co-member", "weight": round(share, 6),
                         "source": f"{r['runs']} of {own} runs", "direction": "both"})
    frame = pd.DataFrame(rows, columns=RELATED_COLUMNS)
    frame = frame.assign(strength=frame["weight"].abs()).sort_values(["kind", "strength", "other"], ascending=[True, False, True])
    return frame.groupby("kind", sort=True).head(limit).drop(columns="strength").reset_index(drop=True)


@dataclass
class SteeringInfo(Result):
    """A stored steering vector with its values, decomposition and shifts (`steer show`)."""

    id: str
    model: str
    name: str
    layer: int
    description: str
    norm: float
    values: list[float]
    decomposition: pd.DataFrame
    shifts: pd.DataFrame

    def to_dict(self) -> dict:
        return {"id": self.id, "layer": self.layer, "description": self.description, "norm": self.norm,
                "decomposition": records(self.decomposition), "shifts": records(self.shifts)}

    def tables(self) -> list[Table]:
        title = f"{self.id} (layer {self.layer}, norm {self.norm:.3f}): {self.description}"
        return [(title, self.decomposition), ("shifts", self.shifts)]


def steering_vectors(store: Store) -> pd.DataFrame:
    """Every stored steering vector, one row each (values left out)."""
    rows = run_query(store, "steering_vectors", id="")
    columns = ["id", "model", "name", "layer", "description", "dim", "norm", "vector"]
    return pd.DataFrame(rows, columns=columns).drop(columns="vector")


def steering(store: Store, model: str, name: str) -> SteeringInfo:
    """The steering vector `model/name` with its links, strongest first."""
    vid = component_id(model, name)
    rows = run_query(store, "steering_vectors", id=vid)
    if not rows:
        known = ", ".join(r["id"] for r in run_query(store, "steering_vectors", id="")) or "none"
        raise CircuitdbError(f"unknown steering vector {vid!r} (stored: {known})")
    row = rows[0]
    decomposition = pd.DataFrame(run_query(store, "steering_decomposition", id=vid), columns=["feature", "method", "coef"])
    decomposition = decomposition.assign(size=decomposition["coef"].abs()).sort_values(
        ["method", "size", "feature"], ascending=[True, False, True]).drop(columns="size").reset_index(drop=True)
    shifts = pd.DataFrame(run_query(store, "steering_shifts", id=vid), columns=["feature", "layer", "delta", "coef"])
    shifts = shifts.assign(size=shifts["delta"].abs()).sort_values(
        ["layer", "size", "feature"], ascending=[True, False, True]).drop(columns="size").reset_index(drop=True)
    return SteeringInfo(vid, row["model"], row["name"], row["layer"], row["description"] or "", row["norm"],
                        json.loads(row["vector"]), decomposition, shifts)


ACROSS_COLUMNS = ["feature", "match", "correlation", "match_in_runs", "match_shared"]


def across(store: Store, runs_a: list[RunInfo], runs_b: list[RunInfo]) -> pd.DataFrame:
    """The features every run of A includes, each with its stored `match` in B's model and in how many of B's runs
    that match sits: the question "which features do these tasks share?" carried from model A to model B."""
    members = run_query(store, "members", run_ids=[r.id for r in runs_a + runs_b])
    sets = {r.id: {m["component"] for m in members if m["run"] == r.id} for r in runs_a + runs_b}
    shared_a = set.intersection(*(sets[r.id] for r in runs_a))
    features = sorted((n for n in shared_a if parse_component(n).kind == "sae_feature"),
                      key=lambda n: parse_component(n).sort_key())
    models_b = {r.model for r in runs_b}
    matches: dict[str, tuple[str, float]] = {}
    for model_b in models_b:
        for row in run_query(store, "matches", model_a=runs_a[0].model, model_b=model_b):
            matches[row["feature"]] = (row["match"], row["correlation"])
    rows = []
    for feature in features:
        match, correlation = matches.get(feature, (None, None))
        count = sum(match in sets[r.id] for r in runs_b) if match else 0
        rows.append({"feature": feature, "match": match, "correlation": correlation, "match_in_runs": count,
                     "match_shared": bool(match) and count == len(runs_b)})
    return pd.DataFrame(rows, columns=ACROSS_COLUMNS)
