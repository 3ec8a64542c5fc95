"""Large runs for the atomicity tests, and a writer process to kill in the middle of a write.

Run as a script: `python big_run.py STORE_URL N_EDGES [SEED [TASK ...]]` writes one big run per task (default
`big`) in one batch, with edge weights drawn from SEED, and prints `writing` before and `done` after the write, so
a test can kill or signal it in between.
"""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa

from circuitdb.domain import Model, Run, Task
from circuitdb.ingest.tables import EDGE_SCHEMA, run_tables

MODEL = Model("toy-big", 12, 12, 768, "test")


def big_tables(n_edges: int, task: str = "big", n_features: int = 4000, seed: int = 0):
    """RunTables of one run whose members are SAE features and whose edges are n_edges distinct pairs."""
    names = [f"fresid{i % 12}/{i}" for i in range(n_features)]
    run = Run(MODEL, Task(task), "eap", 0.5, components=dict.fromkeys(names, 1.0))
    tables = run_tables(run)
    rng = np.random.default_rng(seed)
    pairs = rng.choice(n_features * n_features, size=n_edges, replace=False)
    ids = np.array([f"{MODEL.name}/{n}" for n in names], dtype=object)
    tables.edges = pa.table(
        {
            "from": pa.array(ids[pairs // n_features], pa.string()),
            "to": pa.array(ids[pairs % n_features], pa.string()),
            "run_id": pa.array([tables.run_id] * n_edges, pa.string()),
            "weight": pa.array(rng.normal(size=n_edges)),
            "input": pa.array([""] * n_edges, pa.string()),
        },
        schema=EDGE_SCHEMA,
    )
    tables.run["n_edges"] = n_edges
    return tables


def main() -> None:
    from circuitdb.store.base import open_store
    from circuitdb.store.signals import Interrupted

    url, n_edges = sys.argv[1], int(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    batch = [big_tables(n_edges, task, seed=seed) for task in (sys.argv[4:] or ["big"])]
    store = open_store(url)
    print("writing", flush=True)
    try:
        store.write_runs(batch)
    except Interrupted as exc:  # as the CLI reports it
        print(exc, flush=True)
        sys.exit(128 + exc.signum)
    print("done", flush=True)
    store.close()


if __name__ == "__main__":
    main()
