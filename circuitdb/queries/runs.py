"""Read whole runs back out of the store (for `show` and the JSON export)."""

from __future__ import annotations

import json

from circuitdb.domain import Edge, Model, Run, Task, parse_component
from circuitdb.errors import CircuitdbError
from circuitdb.queries import run_query
from circuitdb.store.base import Store


def fetch_run(store: Store, run_id: str) -> Run:
    """The run with this id, members, edges and evaluations included."""
    rows = run_query(store, "run", run_id=run_id)
    if not rows:
        raise CircuitdbError(f"unknown run {run_id!r}")
    row = rows[0]

    def order(name: str) -> tuple:
        return parse_component(name).sort_key()

    members = sorted(run_query(store, "members", run_ids=[run_id]), key=lambda m: order(m["component"]))
    edges = sorted(
        run_query(store, "edges", run_ids=[run_id]), key=lambda e: (order(e["receiver"]), e["input"] or "", order(e["sender"]))
    )
    evaluations = run_query(store, "evaluations", run_id=run_id)
    run = Run(
        model=Model(row["model"], row["n_layers"], row["n_heads"], row["d_model"], row["source"] or ""),
        task=Task(row["task"], row["family"] or "", row["description"] or "", row["n_prompts"]),
        method=row["method"],
        threshold=row["threshold"],
        ablation=row["ablation"],
        metric=row["metric"],
        components={m["component"]: m["score"] for m in members},
        edges=[Edge(e["sender"], e["receiver"], e["weight"], e["input"] or "") for e in edges],
        faithfulness=row["faithfulness"],
        completeness=row["completeness"],
        params=json.loads(row["params"] or "{}"),
        dataset_hash=row["dataset_hash"] or "",
        seed=row["seed"],
        versions=json.loads(row["versions"] or "{}"),
        created_at=row["created_at"] or "",
        nests_in=row["nests_in"],
        evaluations={e["task"]: e["performance"] for e in evaluations},
    )
    return run.validate()
