"""Turn a validated Run into the rows a store writes: plain dicts for the run, Arrow tables for the bulk."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from circuitdb.domain import MEASURES, Run, component_id, pack_scores, parse_component
from circuitdb.lazy import pa
from circuitdb.schema import node_arrow_schema, rel_arrow_schema

SCHEMAS = {"COMPONENT_SCHEMA": lambda: node_arrow_schema("Component"), "INCLUDES_SCHEMA": lambda: rel_arrow_schema("INCLUDES"),
           "EDGE_SCHEMA": lambda: rel_arrow_schema("EDGE")}


def __getattr__(name: str) -> Any:
    """COMPONENT_SCHEMA, INCLUDES_SCHEMA, EDGE_SCHEMA: built on first use, so importing this loads no pyarrow."""
    if name in SCHEMAS:
        globals()[name] = SCHEMAS[name]()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class RunTables:
    """Everything one run writes, keyed by graph ids; the store writes it in one transaction."""

    run: dict
    model: dict
    task: dict
    components: pa.Table
    includes: pa.Table
    edges: pa.Table
    nests_in: str | None
    evaluations: list[dict]

    @property
    def run_id(self) -> str:
        return self.run["id"]


def run_tables(run: Run) -> RunTables:
    """Validate `run` and lay it out as node/relationship rows with deterministic ids."""
    run.validate()
    model = run.model.name
    names = sorted(run.components, key=lambda n: parse_component(n).sort_key())
    parsed = [parse_component(n) for n in names]
    ids = [component_id(model, n) for n in names]
    components = pa.table(
        {
            "id": ids,
            "model_id": [model] * len(ids),
            "name": names,
            "kind": [c.kind for c in parsed],
            "layer": [c.layer for c in parsed],
            "index": [c.index for c in parsed],
            "dictionary": [c.dictionary for c in parsed],
            "position": [c.position for c in parsed],
            "base": [c.base for c in parsed],
        },
        schema=__getattr__('COMPONENT_SCHEMA'),
    )
    rid = run.id
    includes = pa.table(
        {"from": [rid] * len(ids), "to": ids, "score": [run.components[n] for n in names]}, schema=__getattr__('INCLUDES_SCHEMA')
    )
    edges = pa.table(
        {
            "from": [component_id(model, e.sender) for e in run.edges],
            "to": [component_id(model, e.receiver) for e in run.edges],
            "run_id": [rid] * len(run.edges),
            "weight": [e.weight for e in run.edges],
            "input": [e.input for e in run.edges],
        },
        schema=__getattr__('EDGE_SCHEMA'),
    )
    row = {
        "id": rid,
        "method": run.method,
        "ablation": run.ablation,
        "metric": run.metric,
        "threshold": run.threshold,
        **{measure: getattr(run, measure) for measure in MEASURES},
        "direction": run.direction,
        "n_nodes": len(ids),
        "n_edges": len(run.edges),
        "params": json.dumps(run.params, sort_keys=True),
        "dataset_hash": run.dataset_hash,
        "seed": run.seed,
        "versions": json.dumps(run.versions, sort_keys=True),
        "created_at": run.created_at,
        "scores": pack_scores(run.scores),
        "cut": run.cut,
    }
    m, t = run.model, run.task
    return RunTables(
        run=row,
        model={
            "id": m.id,
            "name": m.name,
            "n_layers": m.n_layers,
            "n_heads": m.n_heads,
            "d_model": m.d_model,
            "source": m.source,
        },
        task={"id": t.id, "name": t.name, "family": t.family, "description": t.description, "n_prompts": t.n_prompts},
        components=components,
        includes=includes,
        edges=edges,
        nests_in=run.nests_in,
        evaluations=[{"task": task, "performance": float(p)} for task, p in sorted(run.evaluations.items())],
    )


def check_tables(tables: RunTables) -> None:
    """Refuse rows that would fail inside the store: memberships and edges must name this run and its components."""
    import pyarrow.compute as pc

    from circuitdb.errors import StoreError

    ids = tables.components.column("id")
    for name, table, columns in (("membership", tables.includes, ("to",)), ("edge", tables.edges, ("from", "to"))):
        for column in columns:
            bad = pc.invert(pc.fill_null(pc.is_in(table.column(column), value_set=ids), False))
            if pc.any(bad).as_py():
                row = pc.index(bad, True).as_py()
                raise StoreError(
                    f"run {tables.run_id}: {name} row {row} names {table.column(column)[row].as_py()!r}, "
                    f"not a component of the run; nothing written"
                )
    for table in (tables.includes, tables.edges):
        owner = "from" if table is tables.includes else "run_id"
        if table.num_rows and not pc.all(pc.equal(table.column(owner), tables.run_id)).as_py():
            raise StoreError(f"run {tables.run_id}: rows of another run in its tables; nothing written")
