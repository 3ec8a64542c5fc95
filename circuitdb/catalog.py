"""`Catalog`: the Python API that the CLI mirrors one to one (open a store, add runs, ask cross-circuit questions)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from circuitdb.domain import Relation, Run, SteeringVector
from circuitdb.errors import CircuitdbError
from circuitdb.ingest.features import relation_rows, steering_rows
from circuitdb.ingest.tables import run_tables
from circuitdb.queries import run_query
from circuitdb.queries.features import SteeringInfo, across, related, resolve_component, steering, steering_vectors
from circuitdb.queries.overlap import Venn, diff, ladder, shared, venn
from circuitdb.queries.runs import fetch_run
from circuitdb.queries.selection import RunInfo, Selection, all_runs, resolve
from circuitdb.queries.similarity import similarity
from circuitdb.store.base import Store, open_store


class Catalog:
    """A catalog of circuits in one store (`kuzu:PATH` by default, or a Neo4j URL)."""

    def __init__(self, url: str | None = None, *, read_only: bool = False, create: bool = True) -> None:
        self.store: Store = open_store(url, read_only=read_only, create=create)

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    # writing
    def add(self, runs: Run | Iterable[Run]) -> list[str]:
        """Write runs (each atomically, replacing an earlier copy with the same id); all are validated first."""
        batch = [runs] if isinstance(runs, Run) else list(runs)
        tables = [run_tables(run) for run in batch]
        self.store.write_runs(tables)
        return [t.run_id for t in tables]

    def add_relations(self, relations: list[Relation]) -> int:
        """Write feature relations, replacing stored ones from the same sources; the number written."""
        rows = relation_rows(relations)
        self.store.write_relations(rows)
        return len(rows.relations)

    def add_steering(self, vector: SteeringVector, kind: str | None = None, links: list[dict] | None = None) -> None:
        """Write a steering vector and, with `kind`, replace its DECOMPOSES_INTO or SHIFTS links."""
        self.store.write_steering(steering_rows(vector, kind, links))

    def delete(self, run_id: str) -> None:
        if not self.store.delete_run(run_id):
            raise CircuitdbError(f"unknown run {run_id!r}")

    def has_run(self, run_id: str) -> bool:
        return bool(run_query(self.store, "run", run_id=run_id))

    # reading
    def runs(self, selection: Selection | None = None) -> list[RunInfo]:
        """All runs, or those a selection names (an empty selection result is an error)."""
        return all_runs(self.store) if selection is None else resolve(self.store, selection)

    def select(self, selection: Selection, minimum: int = 1, maximum: int | None = None) -> list[RunInfo]:
        return resolve(self.store, selection, minimum, maximum)

    def run(self, run_id: str) -> Run:
        """One whole run; a unique id prefix of at least 4 digits is enough."""
        (info,) = self.select(Selection(run_ids=(run_id,)))
        return fetch_run(self.store, info.id)

    def shared(self, selection: Selection, edges: bool = False) -> pd.DataFrame:
        return shared(self.store, self.select(selection), edges)

    def venn(self, selection: Selection, edges: bool = False) -> Venn:
        return venn(self.store, self.select(selection, minimum=2), edges)

    def diff(self, selection: Selection, edges: bool = False) -> tuple[list[RunInfo], pd.DataFrame]:
        a, b = self.select(selection, minimum=2, maximum=2)
        return [a, b], diff(self.store, a, b, edges)

    def similarity(self, selection: Selection | None = None, edges: bool = False, weighted: bool = False) -> pd.DataFrame:
        runs = self.runs() if selection is None else self.select(selection)
        if not runs:
            raise CircuitdbError("the catalog has no runs")
        return similarity(self.store, runs, edges, weighted)

    def ladder(self, model: str, task: str, methods: tuple[str, ...] = ()) -> pd.DataFrame:
        return ladder(self.store, model, task, methods)

    def circuits(self, runs: list[RunInfo]) -> tuple[list[dict], list[dict]]:
        """Membership rows and edge rows of these runs, for pictures of one circuit or an overlap."""
        ids = [r.id for r in runs]
        return run_query(self.store, "members", run_ids=ids), run_query(self.store, "edges", run_ids=ids)

    def related(self, component: str, model: str | None = None, min_weight: float = 0.0, limit: int = 50) -> pd.DataFrame:
        """A component's stored relations and its co-membership in circuits."""
        return related(self.store, resolve_component(self.store, component, model), min_weight, limit)

    def across(self, selection_a: Selection, selection_b: Selection) -> pd.DataFrame:
        """Features shared by all runs of selection A, their matches in B's model, and whether B's runs share them."""
        return across(self.store, self.select(selection_a), self.select(selection_b))

    def resolve_component(self, component: str, model: str | None = None) -> str:
        """The graph id of a component named as `model/name` or by name (with `model` when ambiguous)."""
        return resolve_component(self.store, component, model)

    def steering_vectors(self) -> pd.DataFrame:
        return steering_vectors(self.store)

    def steering(self, model: str, name: str) -> SteeringInfo:
        return steering(self.store, model, name)

    def query(self, cypher: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """User Cypher; with a catalog opened `read_only=True` the database itself refuses writes."""
        return self.store.read(cypher, params)
