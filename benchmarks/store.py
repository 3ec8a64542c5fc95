"""Store benchmark: ingest speed and cross-circuit query latency of a synthetic catalog on Kuzu and Neo4j.

Builds `--runs` runs on one model (by default 50 runs, 1,000,000 weighted edges and 100,000 memberships) out of
SAE features `f<dict>/<index>`. Every run holds a common core of components and of edges, plus random members of
a larger pool, so shared / venn / similarity have real overlaps to find. Then it measures:

1. Kuzu ingest through `Catalog.add`, against a raw `COPY EDGE` of the same Arrow edges into a fresh database;
2. Kuzu median latency of shared, venn, diff and similarity (components, then edges);
3. the same ingest and latencies on a throw-away Neo4j 5.26 server (tests/neo4j_server.py), unless --skip-neo4j;
4. PASS/MISS against the targets of the performance issue (informational only: the script always exits 0).

Figures are printed as labelled lines as they come; the last line is a JSON summary of all of them.

    .venv/bin/python benchmarks/store.py [--runs 50 --edges 1000000 --memberships 100000 --repeat 20 --skip-neo4j]
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import kuzu
import numpy as np
import pyarrow as pa

from circuitdb import Catalog
from circuitdb.domain import Edge, Model, Run, Task
from circuitdb.ingest.tables import RunTables, run_tables
from circuitdb.queries import run_query
from circuitdb.queries.selection import Selection
from circuitdb.schema import kuzu_ddl

TESTS = Path(__file__).resolve().parent.parent / "tests"
MODEL = Model("gpt2-small", 12, 12, 768, source="transformer_lens")
DICTIONARIES = tuple(f"resid{layer}" for layer in range(12))
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
    edge_repeat: int = 3
    edge_budget_s: float = 120.0
    seed: int = 0
    skip_neo4j: bool = False

    @property
    def members_per_run(self) -> int:
        return self.memberships // self.runs

    @property
    def edges_per_run(self) -> int:
        return self.edges // self.runs

    @property
    def core_members(self) -> int:
        """Components every run includes: 10% of a run."""
        return max(2, self.members_per_run // 10)

    @property
    def core_edges(self) -> int:
        """Edges between core components that every run holds: 10% of a run, at most every core pair."""
        return min(self.edges_per_run // 10, self.core_members * (self.core_members - 1))

    @property
    def pool(self) -> int:
        """Distinct SAE features the members are drawn from: 5x a run, so random members overlap as well."""
        return 5 * self.members_per_run

    def check(self) -> None:
        """Refuse sizes the generator cannot honour."""
        n = self.members_per_run
        if self.runs < 4 or n < 4:
            raise SystemExit("need at least 4 runs and 4 members per run (shared/venn use 4 runs)")
        if self.edges_per_run > n * (n - 1):
            raise SystemExit(f"{self.edges_per_run} edges per run do not fit among {n} members")


@dataclass
class Report:
    """Every figure measured: printed as a labelled line as it comes, and kept for the JSON summary."""

    figures: dict[str, Any] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)

    def add(self, key: str, value: Any, label: str, unit: str = "", note: str = "") -> None:
        self.figures[key] = value
        if isinstance(value, float):
            shown = f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
        else:
            shown = f"{value:,}" if isinstance(value, int) else str(value)
        print(f"  {label:<56} {shown:>12} {unit:<6} {note}".rstrip(), flush=True)

    def target(self, name: str, key: str, goal: float, at_most: bool, unit: str) -> None:
        """PASS/MISS of the figure `key` against `goal`; N/A when it was not measured."""
        value = self.figures.get(key)
        if not isinstance(value, (int, float)):
            verdict = "N/A"
        else:
            verdict = "PASS" if (value <= goal if at_most else value >= goal) else "MISS"
        self.targets.append({"target": name, "figure": key, "value": value, "goal": goal,
                             "at_most": at_most, "verdict": verdict})
        shown = "not measured" if verdict == "N/A" else f"{value:,.1f} {unit}"
        print(f"  [{verdict}] {name:<58} {shown:>18}   (target {'<=' if at_most else '>='} {goal:,g} {unit})",
              flush=True)


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


# ---------------------------------------------------------------- synthetic catalog


def feature_names(pool: int) -> list[str]:
    """`pool` distinct SAE feature names spread evenly over the resid0..resid11 dictionaries."""
    per_dictionary = -(-pool // len(DICTIONARIES))
    return [f"f{d}/{i}" for i in range(per_dictionary) for d in DICTIONARIES][:pool]


def pair_of(flat: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Map numbers in [0, n*(n-1)) one to one onto ordered pairs (i, j) of distinct members of a set of n."""
    i, j = np.divmod(flat, n - 1)
    return i, j + (j >= i)


def random_edges(rng: np.random.Generator, n: int, count: int, taken: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`count` distinct ordered pairs of distinct members among n, none of them in `taken` (keys i*n+j)."""
    draw = min(n * (n - 1), count + len(taken))
    i, j = pair_of(rng.choice(n * (n - 1), size=draw, replace=False), n)
    keep = ~np.isin(i * n + j, taken)
    return i[keep][:count], j[keep][:count]


def build_run(cfg: Config, number: int, rng: np.random.Generator, names: list[str], core: np.ndarray,
              rest: np.ndarray, core_pairs: tuple[np.ndarray, np.ndarray]) -> Run:
    """One run: the core plus random members of the pool; the core edges plus random edges among its members."""
    chosen = np.concatenate([core, rng.choice(rest, size=cfg.members_per_run - len(core), replace=False)])
    members = [names[k] for k in chosen]
    n = len(members)
    ci, cj = core_pairs
    ri, rj = random_edges(rng, n, cfg.edges_per_run - len(ci), ci * n + cj)
    senders, receivers = np.concatenate([ci, ri]).tolist(), np.concatenate([cj, rj]).tolist()
    weights = rng.normal(0.0, 1.0, len(senders)).tolist()
    return Run(
        model=MODEL,
        task=Task(f"task{number // len(THRESHOLDS):02d}", family="synthetic"),
        method="eap-ig",
        threshold=THRESHOLDS[number % len(THRESHOLDS)],
        components=dict(zip(members, rng.uniform(0.01, 1.0, n).tolist())),
        edges=[Edge(members[s], members[r], w) for s, r, w in zip(senders, receivers, weights)],
        seed=cfg.seed,
        created_at="2025-01-01T00:00:00+00:00",
    )


def build_runs(cfg: Config) -> list[Run]:
    """All runs, deterministic from the seed."""
    rng = np.random.default_rng(cfg.seed)
    names = feature_names(cfg.pool)
    order = rng.permutation(len(names))
    core, rest = order[: cfg.core_members], order[cfg.core_members:]
    core_pairs = pair_of(rng.choice(cfg.core_members * (cfg.core_members - 1), size=cfg.core_edges, replace=False),
                         cfg.core_members)
    return [build_run(cfg, k, rng, names, core, rest, core_pairs) for k in range(cfg.runs)]


# ---------------------------------------------------------------- timing helpers


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds one call of fn takes, and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    """Median wall time in ms of `repeat` calls, after one warm-up call."""
    fn()
    return statistics.median(timed(fn)[0] for _ in range(repeat)) * 1000


@contextmanager
def instrumented(obj: Any, method: str, key: Callable[..., str], totals: dict[str, float]) -> Iterator[None]:
    """Add the seconds spent in `obj.method` to totals[key(*args)], by an instance-level wrapper removed after."""
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


def kuzu_statement(cypher: str, *_: Any) -> str:
    """A short label for a statement KuzuStore executes (for the ingest breakdown)."""
    if cypher.startswith("COPY "):
        return " ".join(cypher.split()[:2])
    if cypher == "COMMIT":
        return "COMMIT"
    if cypher.startswith("MATCH (c:Component) WHERE c.id IN"):
        return "known-component lookup"
    return "other statements"


# ---------------------------------------------------------------- ingest


def catalog_ingest(url: str, runs: list[Run]) -> tuple[Catalog, float, dict[str, float]]:
    """Open a fresh catalog at url and add all runs: seconds of Catalog.add, and seconds per step inside it."""
    catalog = Catalog(url)
    store = catalog.store
    steps: dict[str, float] = {}
    with instrumented(store, "write_runs", lambda *_: "write_runs", steps):
        if store.backend == "kuzu":
            with instrumented(store, "_exec", kuzu_statement, steps):
                seconds, _ = timed(lambda: catalog.add(runs))
        else:
            seconds, _ = timed(lambda: catalog.add(runs))
    return catalog, seconds, steps


def distinct_components(tables: list[RunTables]) -> pa.Table:
    """The component rows of all runs, each id once."""
    components = pa.concat_tables(t.components for t in tables)
    first: dict[str, int] = {}
    for row, value in enumerate(components.column("id").to_pylist()):
        first.setdefault(value, row)
    return components.take(pa.array(list(first.values()), pa.int64()))


def raw_kuzu_copy(path: Path, tables: list[RunTables]) -> float:
    """Seconds of one `COPY EDGE FROM $rows` of every run's edges into a fresh database with the catalog DDL."""
    components = distinct_components(tables)
    edges = pa.concat_tables(t.edges for t in tables).combine_chunks()
    db = kuzu.Database(str(path))
    conn = kuzu.Connection(db)
    try:
        for statement in kuzu_ddl():
            conn.execute(statement)
        conn.execute("COPY Component FROM $rows", {"rows": components})
        seconds, _ = timed(lambda: conn.execute("COPY EDGE FROM $rows", {"rows": edges}))
        count = conn.execute("MATCH ()-[e:EDGE]->() RETURN count(e)").get_next()[0]
        if count != edges.num_rows:
            raise RuntimeError(f"raw COPY wrote {count} edges, expected {edges.num_rows}")
    finally:
        conn.close()
        db.close()
    return seconds


def check_counts(catalog: Catalog, cfg: Config) -> None:
    """The catalog holds exactly the generated runs, memberships and edges."""
    got = catalog.query("MATCH ()-[e:EDGE]->() RETURN count(e) AS n").records()[0]["n"]
    members = catalog.query("MATCH (:Run)-[i:INCLUDES]->(:Component) RETURN count(i) AS n").records()[0]["n"]
    runs = len(catalog.runs())
    want = (cfg.runs, cfg.runs * cfg.members_per_run, cfg.runs * cfg.edges_per_run)
    if (runs, members, got) != want:
        raise RuntimeError(f"catalog holds {runs} runs, {members} memberships, {got} edges; expected {want}")


def report_ingest(report: Report, prefix: str, seconds: float, steps: dict[str, float], n_edges: int) -> None:
    """Catalog.add seconds, the store's share of it and, for Kuzu, seconds per statement kind."""
    store = steps.get("write_runs", 0.0)
    report.add(f"{prefix}_ingest_s", seconds, "Catalog.add, all runs (validation + store writes)", "s")
    report.add(f"{prefix}_ingest_python_s", seconds - store, "  of which run_tables (validate, Arrow tables)", "s")
    report.add(f"{prefix}_ingest_store_s", store, "  of which store.write_runs", "s")
    for name in sorted(k for k in steps if k != "write_runs"):
        report.add(f"{prefix}_ingest_{name.lower().replace(' ', '_').replace('-', '_')}_s", steps[name],
                   f"    {name}", "s")
    report.add(f"{prefix}_ingest_edges_per_s", n_edges / seconds, "edges/s through Catalog.add", "edges/s")
    report.add(f"{prefix}_store_edges_per_s", n_edges / store, "edges/s through store.write_runs", "edges/s")


# ---------------------------------------------------------------- queries


def query_suite(catalog: Catalog, ids: list[str]) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """Per query: the Catalog call a user makes, and the bare Cypher it runs (to tell DB time from Python time)."""
    store = catalog.store
    four, two = Selection(run_ids=tuple(ids[:4])), Selection(run_ids=tuple(ids[:2]))
    return {
        "shared4": (lambda: catalog.shared(four), lambda: run_query(store, "shared", run_ids=ids[:4], n=4)),
        "venn4": (lambda: catalog.venn(four), lambda: run_query(store, "venn", run_ids=ids[:4])),
        "diff2": (lambda: catalog.diff(two), lambda: run_query(store, "diff", run_a=ids[0], run_b=ids[1])),
        "similarity_all": (
            lambda: catalog.similarity(),
            lambda: (run_query(store, "similarity_sizes", run_ids=ids), run_query(store, "similarity", run_ids=ids)),
        ),
    }


def describe_overlaps(catalog: Catalog, ids: list[str]) -> str:
    """Sizes of the results, to show the queries have real work to do."""
    four = Selection(run_ids=tuple(ids[:4]))
    regions = catalog.venn(four).regions
    diff = catalog.diff(Selection(run_ids=tuple(ids[:2]))).rows
    return (f"shared(4 runs) = {len(catalog.shared(four).members)} components; venn(4 runs) regions = "
            f"{dict(zip(regions['region'], regions['count']))}; diff(2 runs) = {diff['side'].value_counts().to_dict()}")


def measure_queries(report: Report, prefix: str, catalog: Catalog, cfg: Config) -> None:
    """Median latency of each query through Catalog, with the bare Cypher time beside it."""
    ids = [r.id for r in catalog.runs()]
    print(f"  ({describe_overlaps(catalog, ids)})", flush=True)
    for name, (call, bare) in query_suite(catalog, ids).items():
        cypher_ms = median_ms(bare, cfg.repeat)
        report.figures[f"{prefix}_{name}_cypher_ms"] = cypher_ms
        report.add(f"{prefix}_{name}_ms", median_ms(call, cfg.repeat), f"{name} (Catalog), median of {cfg.repeat}",
                   "ms", f"[Cypher alone {cypher_ms:,.1f} ms]")
    measure_edge_similarity(report, prefix, catalog, cfg)


def measure_edge_similarity(report: Report, prefix: str, catalog: Catalog, cfg: Config) -> None:
    """similarity(edges=True) over all runs: one timed call; repeated only if it stays within the budget."""
    seconds, _ = timed(lambda: catalog.similarity(edges=True))
    if seconds > cfg.edge_budget_s:
        report.add(f"{prefix}_similarity_edges_ms", seconds * 1000, "similarity edges=True (Catalog), 1 call only",
                   "ms", f"[over the {cfg.edge_budget_s:g} s budget: not repeated]")
        return
    report.add(f"{prefix}_similarity_edges_ms", median_ms(lambda: catalog.similarity(edges=True), cfg.edge_repeat),
               f"similarity edges=True (Catalog), median of {cfg.edge_repeat}", "ms",
               f"[first call {seconds * 1000:,.0f} ms]")


# ---------------------------------------------------------------- backends


def bench_kuzu(report: Report, cfg: Config, runs: list[Run], tables: list[RunTables], folder: Path) -> None:
    """Catalog.add against a raw COPY of the same edges, then the query latencies."""
    section("Kuzu ingest")
    catalog, seconds, steps = catalog_ingest(f"kuzu:{folder / 'catalog.kuzu'}", runs)
    try:
        check_counts(catalog, cfg)
        n_edges = sum(t.edges.num_rows for t in tables)
        report_ingest(report, "kuzu", seconds, steps, n_edges)
        raw = raw_kuzu_copy(folder / "raw.kuzu", tables)
        report.add("kuzu_raw_copy_s", raw, f"raw COPY EDGE of all {n_edges:,} edges in one statement", "s")
        report.add("kuzu_ingest_ratio", seconds / raw, "ratio Catalog.add / raw COPY", "x")
        report.add("kuzu_store_ratio", steps["write_runs"] / raw, "ratio store.write_runs / raw COPY", "x")
        report.add("kuzu_edge_copy_ratio", steps.get("COPY EDGE", 0.0) / raw,
                   "ratio catalog's COPY EDGE statements / raw COPY", "x", "(edges only, commits excluded)")
        section(f"Kuzu query latency ({cfg.runs} runs)")
        measure_queries(report, "kuzu", catalog, cfg)
    finally:
        catalog.close()


def bench_neo4j(report: Report, cfg: Config, runs: list[Run], tables: list[RunTables]) -> None:
    """Start the test server, ingest the same runs through Catalog.add, time the queries, stop the server."""
    section("Neo4j ingest")
    sys.path.insert(0, str(TESTS))
    import neo4j_server

    if not neo4j_server.java_available():
        print("  skipped: java, javac and mvn are needed for the Neo4j test server", flush=True)
        return
    os.environ.setdefault("CIRCUITDB_TEST_NEO4J_HEAP", "2g")
    os.environ.pop("CIRCUITDB_NEO4J_PASSWORD", None)  # the test server runs without auth
    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)
    started, (uri, proc) = timed(neo4j_server.start)
    try:
        report.add("neo4j_start_s", started, f"server start (heap {os.environ['CIRCUITDB_TEST_NEO4J_HEAP']})", "s")
        catalog, seconds, steps = catalog_ingest(uri, runs)
        try:
            check_counts(catalog, cfg)
            report_ingest(report, "neo4j", seconds, steps, sum(t.edges.num_rows for t in tables))
            section(f"Neo4j query latency ({cfg.runs} runs)")
            measure_queries(report, "neo4j", catalog, cfg)
        finally:
            catalog.close()
    finally:
        neo4j_server.stop(proc)


def print_targets(report: Report, cfg: Config) -> None:
    """The issue's targets next to the figures (informational: nothing here changes the exit code)."""
    section("Targets (informational)")
    report.target("Kuzu ingest (Catalog.add) within 2x raw COPY", "kuzu_ingest_ratio", KUZU_INGEST_MAX_RATIO, True, "x")
    report.target("Kuzu store.write_runs within 2x raw COPY", "kuzu_store_ratio", KUZU_INGEST_MAX_RATIO, True, "x")
    for backend in ("kuzu", "neo4j"):
        if backend == "neo4j" and cfg.skip_neo4j:
            continue
        note = "" if backend == "kuzu" else " (same bound, Neo4j)"
        report.target(f"{backend} shared (4 runs) < 50 ms{note}", f"{backend}_shared4_ms", SHARED_VENN_MAX_MS, True, "ms")
        report.target(f"{backend} venn (4 runs) < 50 ms{note}", f"{backend}_venn4_ms", SHARED_VENN_MAX_MS, True, "ms")
        report.target(f"{backend} similarity ({cfg.runs} runs) < 500 ms{note}", f"{backend}_similarity_all_ms",
                      SIMILARITY_MAX_MS, True, "ms")
    if not cfg.skip_neo4j:
        report.target("Neo4j ingest >= 50,000 edges/s (Catalog.add)", "neo4j_ingest_edges_per_s",
                      NEO4J_MIN_EDGES_PER_S, False, "edges/s")


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="runs in the catalog (default 50)")
    parser.add_argument("--edges", type=int, default=1_000_000, help="edges over all runs (default 1,000,000)")
    parser.add_argument("--memberships", type=int, default=100_000, help="memberships over all runs (default 100,000)")
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per query after one warm-up (default 20)")
    parser.add_argument("--edge-repeat", type=int, default=3, help="timed calls of similarity edges=True (default 3)")
    parser.add_argument("--edge-budget", type=float, default=120.0,
                        help="seconds one similarity edges=True call may take before repeats are skipped (default 120)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the synthetic catalog (default 0)")
    parser.add_argument("--skip-neo4j", action="store_true", help="benchmark Kuzu only")
    args = parser.parse_args(argv)
    cfg = Config(runs=args.runs, edges=args.edges, memberships=args.memberships, repeat=args.repeat,
                 edge_repeat=args.edge_repeat, edge_budget_s=args.edge_budget, seed=args.seed,
                 skip_neo4j=args.skip_neo4j)
    cfg.check()
    return cfg


def main(argv: list[str] | None = None) -> int:
    began = time.perf_counter()
    cfg = parse_args(argv)
    report = Report()
    section("Synthetic catalog")
    print(f"  {cfg.runs} runs on {MODEL.name}: {cfg.members_per_run:,} members and {cfg.edges_per_run:,} edges each "
          f"(core of {cfg.core_members} members / {cfg.core_edges:,} edges shared by all runs; "
          f"pool of {cfg.pool:,} SAE features over {len(DICTIONARIES)} dictionaries; seed {cfg.seed})", flush=True)
    built, runs = timed(lambda: build_runs(cfg))
    report.add("generate_s", built, "generate Run objects (not part of any timing)", "s")
    tabled, tables = timed(lambda: [run_tables(run) for run in runs])
    report.add("run_tables_s", tabled, "run_tables for all runs, built once for the raw COPY", "s",
               "(Catalog.add repeats this work)")
    with tempfile.TemporaryDirectory(prefix="circuitdb-bench-") as folder:
        bench_kuzu(report, cfg, runs, tables, Path(folder))
    if not cfg.skip_neo4j:
        bench_neo4j(report, cfg, runs, tables)
    print_targets(report, cfg)
    section("Done")
    report.add("total_s", time.perf_counter() - began, "whole benchmark", "s")
    print(json.dumps({"config": asdict(cfg), "figures": report.figures, "targets": report.targets}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
