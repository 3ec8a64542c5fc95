"""Store benchmark: ingest and cross-circuit query latency of a synthetic catalog on Kuzu and Neo4j.

Builds 50 runs on one model (1,000,000 weighted edges, 100,000 memberships by default) out of SAE features
`f<dict>/<index>`, each run sharing a common core of components and edges so that shared/venn/similarity
have real work to do, then measures:

1. Kuzu ingest through `Catalog.add` against a raw `COPY EDGE` of the same Arrow edges into a fresh database;
2. Kuzu median latency of shared, venn, diff, similarity (components, then edges);
3. the same ingest and latencies on a throw-away Neo4j 5.26 server (tests/neo4j_server.py), unless --skip-neo4j;
4. PASS/MISS against the targets of the performance issue (informational: the script always exits 0).

Run: `.venv/bin/python benchmarks/store.py [--runs 50 --edges 1000000 --memberships 100000 --repeat 20 --skip-neo4j]`
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kuzu
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from circuitdb import Catalog
from circuitdb.domain import Edge, Model, Run, Task
from circuitdb.ingest.tables import RunTables, run_tables
from circuitdb.queries.selection import Selection
from circuitdb.store.kuzu import DDL

TESTS = Path(__file__).resolve().parent.parent / "tests"
MODEL = Model("gpt2-small", 12, 12, 768, source="transformer_lens")
DICTIONARIES = [f"resid{layer}" for layer in range(12)]
THRESHOLDS = (0.9, 0.8, 0.7, 0.6, 0.5)

# Targets of the performance issue.
KUZU_INGEST_MAX_RATIO = 2.0
SHARED_VENN_MAX_MS = 50.0
SIMILARITY_MAX_MS = 500.0
NEO4J_MIN_EDGES_PER_S = 50_000.0


@dataclass(frozen=True)
class Config:
    """Size of the synthetic catalog and how often each query is timed."""

    runs: int = 50
    edges: int = 1_000_000
    memberships: int = 100_000
    repeat: int = 20
    seed: int = 0
    skip_neo4j: bool = False
    edge_similarity_budget_s: float = 120.0

    @property
    def members_per_run(self) -> int:
        return self.memberships // self.runs

    @property
    def edges_per_run(self) -> int:
        return self.edges // self.runs

    @property
    def core_members(self) -> int:
        """Components every run includes (10% of a run)."""
        return max(2, self.members_per_run // 10)

    @property
    def core_edges(self) -> int:
        """Edges between core components that every run contains (10% of a run, at most all core pairs)."""
        return min(self.edges_per_run // 10, self.core_members * (self.core_members - 1))

    @property
    def pool(self) -> int:
        """Distinct SAE features to draw members from (5x a run, so random members overlap too)."""
        return 5 * self.members_per_run


@dataclass
class Report:
    """Every figure measured, printed as it comes and dumped as one JSON line at the end."""

    figures: dict[str, Any] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)

    def add(self, key: str, value: Any, label: str, unit: str = "") -> None:
        self.figures[key] = value
        shown = f"{value:,.3f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)
        print(f"  {label:<58} {shown}{(' ' + unit) if unit else ''}", flush=True)

    def target(self, name: str, value: float | None, goal: float, smaller_is_better: bool, unit: str) -> None:
        if value is None:
            verdict = "N/A"
        else:
            ok = value <= goal if smaller_is_better else value >= goal
            verdict = "PASS" if ok else "MISS"
        self.targets.append({"target": name, "value": value, "goal": goal, "verdict": verdict})
        op = "<=" if smaller_is_better else ">="
        shown = "n/a" if value is None else f"{value:,.3f}"
        print(f"  [{verdict}] {name:<44} {shown} {unit} (target {op} {goal:,g} {unit})", flush=True)


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


# ---------------------------------------------------------------- synthetic catalog


def feature_names(pool: int) -> list[str]:
    """`pool` distinct SAE feature names spread over the resid0..resid11 dictionaries."""
    per_dictionary = -(-pool // len(DICTIONARIES))
    return [f"f{d}/{i}" for d in DICTIONARIES for i in range(per_dictionary)][:pool]


def pair_of(flat: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Map indices in [0, n*(n-1)) to ordered pairs (i, j) of distinct members of a set of n."""
    i, j = np.divmod(flat, n - 1)
    return i, j + (j >= i)


def random_edges(rng: np.random.Generator, n: int, count: int, taken: set[int]) -> tuple[np.ndarray, np.ndarray]:
    """`count` distinct ordered pairs of distinct members among n, none of them in `taken` (as i*n+j)."""
    flat = rng.choice(n * (n - 1), size=min(n * (n - 1), int(count * 1.1) + len(taken)), replace=False)
    i, j = pair_of(flat, n)
    keys = i * n + j
    keep = ~np.isin(keys, np.fromiter(taken, np.int64, len(taken)))
    i, j = i[keep][:count], j[keep][:count]
    if len(i) < count:
        raise ValueError(f"cannot draw {count} distinct edges among {n} members")
    return i, j


def build_run(cfg: Config, number: int, rng: np.random.Generator, names: list[str], core: np.ndarray,
              rest: np.ndarray, core_pairs: tuple[np.ndarray, np.ndarray]) -> Run:
    """One synthetic run: the core plus random members of the pool, core edges plus random edges."""
    chosen = np.concatenate([core, rng.choice(rest, size=cfg.members_per_run - len(core), replace=False)])
    members = [names[k] for k in chosen]
    scores = rng.uniform(0.01, 1.0, len(members))
    ci, cj = core_pairs
    taken = set((ci * len(members) + cj).tolist())
    ri, rj = random_edges(rng, len(members), cfg.edges_per_run - len(ci), taken)
    senders, receivers = np.concatenate([ci, ri]), np.concatenate([cj, rj])
    weights = rng.normal(0.0, 1.0, len(senders))
    edges = [Edge(members[s], members[r], float(w)) for s, r, w in zip(senders.tolist(), receivers.tolist(),
                                                                         weights.tolist())]
    return Run(
        model=MODEL,
        task=Task(f"task{number // len(THRESHOLDS):02d}", family="synthetic"),
        method="eap-ig",
        threshold=THRESHOLDS[number % len(THRESHOLDS)],
        components=dict(zip(members, scores.tolist())),
        edges=edges,
        seed=cfg.seed,
        created_at="2025-01-01T00:00:00+00:00",
    )


def build_runs(cfg: Config) -> list[Run]:
    """All runs, deterministic from the seed."""
    rng = np.random.default_rng(cfg.seed)
    names = feature_names(cfg.pool)
    order = rng.permutation(len(names))
    core, rest = order[: cfg.core_members], order[cfg.core_members:]
    flat = rng.choice(cfg.core_members * (cfg.core_members - 1), size=cfg.core_edges, replace=False)
    core_pairs = pair_of(flat, cfg.core_members)
    return [build_run(cfg, k, rng, names, core, rest, core_pairs) for k in range(cfg.runs)]


# ---------------------------------------------------------------- timing helpers


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds one call of fn takes, and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    """Median wall time in ms of `repeat` calls after one warm-up."""
    fn()
    return statistics.median(timed(fn)[0] for _ in range(repeat)) * 1000


@contextmanager
def instrumented(obj: Any, method: str, key: Callable[..., str], totals: dict[str, float]) -> Iterator[None]:
    """Accumulate the seconds spent in `obj.method` per `key(*args)` (an instance-level wrapper, removed after)."""
    original = getattr(obj, method)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            name = key(*args)
            totals[name] = totals.get(name, 0.0) + time.perf_counter() - start

    setattr(obj, method, wrapper)
    try:
        yield
    finally:
        delattr(obj, method)


# ---------------------------------------------------------------- ingest


def catalog_ingest(url: str, runs: list[Run]) -> tuple[Catalog, float, dict[str, float]]:
    """Open a fresh catalog at url and add all runs; seconds of Catalog.add and a per-step breakdown."""
    catalog = Catalog(url)
    steps: dict[str, float] = {}
    store = catalog.store
    with instrumented(store, "write_run", lambda *_: "write_run", steps):
        if store.backend == "kuzu":
            with instrumented(store, "_copy", lambda table_name, *_: f"copy_{table_name}", steps):
                seconds, _ = timed(lambda: catalog.add(runs))
        else:
            seconds, _ = timed(lambda: catalog.add(runs))
    return catalog, seconds, steps


def raw_kuzu_copy(path: Path, tables: list[RunTables]) -> float:
    """Seconds of one `COPY EDGE FROM $rows` of all edges into a fresh database with the catalog DDL."""
    components = pa.concat_tables(t.components for t in tables)
    components = components.take(first_rows(components.column("id")))
    edges = pa.concat_tables(t.edges for t in tables).combine_chunks()
    db = kuzu.Database(str(path))
    conn = kuzu.Connection(db)
    try:
        for statement in DDL:
            conn.execute(statement)
        conn.execute("COPY Component FROM $rows", {"rows": components})
        seconds, _ = timed(lambda: conn.execute("COPY EDGE FROM $rows", {"rows": edges}))
        (count,) = conn.execute("MATCH ()-[e:EDGE]->() RETURN count(e)").get_next()
        if count != edges.num_rows:
            raise RuntimeError(f"raw COPY wrote {count} edges, expected {edges.num_rows}")
    finally:
        conn.close()
        db.close()
    return seconds


def first_rows(ids: pa.ChunkedArray) -> pa.Array:
    """Row numbers of the first occurrence of each distinct value."""
    seen: dict[str, int] = {}
    for row, value in enumerate(ids.to_pylist()):
        seen.setdefault(value, row)
    return pa.array(list(seen.values()), pa.int64())
