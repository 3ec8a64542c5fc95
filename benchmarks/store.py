"""Store benchmark: ingest speed and cross-circuit query latency of a synthetic catalog on the embedded store and Neo4j.

Builds `--runs` runs on one model (by default 50 runs, 1,000,000 weighted edges and 100,000 memberships) out of
SAE features `f<dict>/<index>`. Every run holds a common core of components and of edges, plus random members of
a larger pool, so shared / venn / similarity have real overlaps to find. Then it measures:

1. the embedded store's ingest through `Catalog.add`, against raw COPYs of the same Arrow edges into a fresh database,
   on the engine CIRCUITDB_ENGINE selects (ladybug 0.22 unless set), its figures labelled with the engine's name;
2. its median latency of shared, venn, diff and similarity (components, then edges);
3. the same two on the other engine (Kuzu 0.11.3 beside ladybug), in a child process of its own (the two cannot be
   loaded in one) on the same catalog, then both engines' figures side by side with the ratio ladybug / kuzu of each;
   one line instead where that engine is not installed;
4. the same ingest and latencies on a throw-away Neo4j 5.26 server (tests/neo4j_server.py) with docker-compose.yml's
   heap and page cache, unless --skip-neo4j; the ingest is timed after a warm-up (the server's first writes are slowed
   by its JIT compiling), whose cold figure is printed, and against one writer (Neo4jStore.writers) in the same run;
5. PASS/MISS of the selected engine and Neo4j against the targets of the performance issue (informational only: the
   script always exits 0).

With `--scale 500,1000,2000` it measures whole-catalog questions instead, per catalog size and on both stores: the
embedded one on the selected engine only (CIRCUITDB_ENGINE=kuzu for Kuzu's), Neo4j only with --skip-embedded: the import of
one export file (against adding runs one at a time), similarity over all runs (against the pairwise Cypher it replaced:
same matrix; on Neo4j also against the driver without its Rust extension, neo4j-rust-ext, where that is installed) and
the JSON export (against fetching run by run: same bytes). On Neo4j each kind of similarity is first called once on its
own (the server's first run of a query reads its pages and compiles its code: seconds at 2,000 runs), shown apart from
the warm call the comparisons and targets use. Each task runs in a child process, whose peak resident memory (VmHWM) is
reported beside its time; PASS/MISS lines give the bounds of the scale issue (similarity < 5 s and < 1 GB, export
< 30 s). The old pairwise similarity is timed up to 1,000 runs unless --old-similarity-max-runs says otherwise: on the
embedded store its memory grows with the pairs of runs that share a member (4.8 GB at 1,000 runs of the default catalog,
about four times that at 2,000). The default runs (300 members, 300 edges, members drawn from a pool five times a run)
share more than the catalog the issue measured: its old similarity took 471 MB at 500 runs where this one takes 1.3 GB
(608 MB with --scale-members 100 --scale-edges 100).

Figures are printed as labelled lines as they come; the last line is a JSON summary of all of them.

    .venv/bin/python benchmarks/store.py [--runs 50 --edges 1000000 --memberships 100000 --repeat 20 --skip-neo4j]
    .venv/bin/python benchmarks/store.py --scale 500,1000,2000 [--scale-members 300 --scale-edges 300 --skip-neo4j]
    .venv/bin/python benchmarks/store.py --scale 1000,2000 --skip-embedded [--baseline-max-runs 0]
"""

from __future__ import annotations

import argparse
import filecmp
import functools
import importlib.util
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from children import on_engine

from circuitdb import Catalog
from circuitdb.catalog import IMPORT_ROWS
from circuitdb.domain import Edge, Model, Run, Task
from circuitdb.ingest.native import FORMAT, VERSION, dumps, export_order, read_native, run_to_dict
from circuitdb.ingest.tables import RunTables, run_tables
from circuitdb.queries import run_query
from circuitdb.queries.selection import Selection
from circuitdb.schema import EDGE_PATTERN, kuzu_ddl
from circuitdb.store.engine import ENGINES, engine, engine_name
from circuitdb.store.neo4j import Neo4jStore

TESTS = Path(__file__).resolve().parent.parent / "tests"
MODEL = Model("gpt2-small", 12, 12, 768, source="transformer_lens")
DICTIONARIES = tuple(f"resid{layer}" for layer in range(12))
THRESHOLDS = (0.9, 0.8, 0.7, 0.6, 0.5)
WARM_UP_RUNS = 10  # runs written to a just-started Neo4j before the timed ingest

# Targets of the performance issue.
KUZU_INGEST_MAX_RATIO = 2.0
SHARED_VENN_MAX_MS = 50.0
SIMILARITY_MAX_MS = 500.0
NEO4J_MIN_EDGES_PER_S = 50_000.0
NEO4J_MAX_RATIO = 3.0  # Neo4j venn / diff latency against the embedded store's, measured in the same run
EDGE_SIMILARITY_MAX_MS = 1000.0


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
    skip_embedded: bool = False  # with --scale: Neo4j only
    scale: tuple[int, ...] = ()  # catalog sizes of the whole-catalog benchmark (then the one above is not run)
    scale_members: int = 300
    scale_edges: int = 300
    import_each: int = 100  # runs added one at a time, the baseline of the batch import
    baseline_max_runs: int = 10**9  # the old ways are timed up to this many runs
    old_similarity_max_runs: int = 1000  # the old pairwise similarity, up to this many runs (its memory grows as pairs)
    child_timeout_s: float = 900.0

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
    labels: dict[str, tuple[str, str]] = field(default_factory=dict)  # key: (label, unit), for the engines' table

    def add(self, key: str, value: Any, label: str, unit: str = "", note: str = "", show: bool = True) -> None:
        self.figures[key] = value
        self.labels[key] = (label, unit)
        if show:
            print(f"  {label:<56} {shown(value):>12} {unit:<6} {note}".rstrip(), flush=True)

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


def shown(value: Any) -> str:
    """A figure as printed: floats to 3 decimals below 100, to 1 above; ints with thousands separators."""
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


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


def raw_copy(path: Path, tables: list[RunTables]) -> float:
    """Seconds of the three COPYs that lay every run's edges out (Edge nodes, then their SENDER and RECEIVER ends),
    each of all rows in one statement, into a fresh database of the selected engine with the catalog DDL."""
    components = distinct_components(tables)
    edges = pa.concat_tables(t.edges for t in tables).combine_chunks()
    ids = pa.array(range(edges.num_rows), pa.int64())
    copies = {"Edge": pa.table({"id": ids, "run_id": edges["run_id"], "weight": edges["weight"], "input": edges["input"]}),
              "SENDER": pa.table({"from": ids, "to": edges["from"]}), "RECEIVER": pa.table({"from": ids, "to": edges["to"]})}
    module = engine()
    db = module.Database(str(path))
    conn = module.Connection(db)
    try:
        for statement in kuzu_ddl():
            conn.execute(statement)
        conn.execute("COPY Component FROM $rows", {"rows": components})
        seconds, _ = timed(lambda: [conn.execute(f"COPY {t} FROM $rows", {"rows": rows}) for t, rows in copies.items()])
        count = conn.execute(f"MATCH {EDGE_PATTERN['kuzu']} RETURN count(e)").get_next()[0]
        if count != edges.num_rows:
            raise RuntimeError(f"raw COPY wrote {count} edges, expected {edges.num_rows}")
    finally:
        conn.close()
        db.close()
    return seconds


def check_counts(catalog: Catalog, cfg: Config) -> None:
    """The catalog holds exactly the generated runs, memberships and edges."""
    got = catalog.query(f"MATCH {EDGE_PATTERN[catalog.store.backend]} RETURN count(e) AS n").records()[0]["n"]
    members = catalog.query("MATCH (:Run)-[i:INCLUDES]->(:Component) RETURN count(i) AS n").records()[0]["n"]
    runs = len(catalog.runs())
    want = (cfg.runs, cfg.runs * cfg.members_per_run, cfg.runs * cfg.edges_per_run)
    if (runs, members, got) != want:
        raise RuntimeError(f"catalog holds {runs} runs, {members} memberships, {got} edges; expected {want}")


def report_ingest(report: Report, prefix: str, seconds: float, steps: dict[str, float], n_edges: int) -> None:
    """Catalog.add seconds, the store's share of it and, for the embedded store, seconds per statement kind."""
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
        "shared4": (lambda: catalog.shared(four), lambda: run_query(store, "shared", run_ids=ids[:4], n=4,
                                                                           by_position=True)),
        "venn4": (lambda: catalog.venn(four), lambda: run_query(store, "venn", run_ids=ids[:4], by_position=True)),
        "diff2": (lambda: catalog.diff(two), lambda: run_query(store, "diff", run_a=ids[0], run_b=ids[1],
                                                                       by_position=True)),
        "similarity_all": (
            lambda: catalog.similarity(),
            lambda: run_query(store, "similarity", run_ids=ids, weighted=False),
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
        report.add(f"{prefix}_{name}_ms", median_ms(call, cfg.repeat), f"{name} (Catalog), median of {cfg.repeat}",
                   "ms", f"[Cypher alone {cypher_ms:,.1f} ms]")
        report.add(f"{prefix}_{name}_cypher_ms", cypher_ms, f"  {name}, Cypher alone", "ms", show=False)
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


def engine_label() -> str:
    """The selected engine with its version, e.g. "ladybug 0.22.0"."""
    return f"{engine_name()} {getattr(engine(), '__version__', '')}".strip()


def bench_embedded(report: Report, cfg: Config, runs: list[Run], tables: list[RunTables], folder: Path) -> None:
    """Catalog.add against a raw COPY of the same edges, then the query latencies, on the selected engine (its name
    prefixes the figures' keys)."""
    name = engine_name()
    section(f"Embedded ({engine_label()}) ingest")
    catalog, seconds, steps = catalog_ingest(f"kuzu:{folder / 'catalog.kuzu'}", runs)
    try:
        check_counts(catalog, cfg)
        n_edges = sum(t.edges.num_rows for t in tables)
        report_ingest(report, name, seconds, steps, n_edges)
        raw = raw_copy(folder / "raw.kuzu", tables)
        report.add(f"{name}_raw_copy_s", raw, f"raw COPY of all {n_edges:,} edges (Edge, SENDER, RECEIVER)", "s")
        report.add(f"{name}_ingest_ratio", seconds / raw, "ratio Catalog.add / raw COPY", "x")
        report.add(f"{name}_store_ratio", steps["write_runs"] / raw, "ratio store.write_runs / raw COPY", "x")
        copies = sum(steps.get(f"COPY {table}", 0.0) for table in ("Edge", "SENDER", "RECEIVER"))
        report.add(f"{name}_edge_copy_ratio", copies / raw, "ratio catalog's edge COPY statements / raw COPY", "x",
                   "(edges only, commits excluded)")
        section(f"Embedded ({name}) query latency ({cfg.runs} runs)")
        measure_queries(report, name, catalog, cfg)
    finally:
        catalog.close()


def embedded_only(cfg: Config) -> dict[str, Any]:
    """The embedded figures alone on the selected engine, for other_engine's child: the engine's version, the figures
    and their labels (the figures' lines are printed as they come, and the parent passes them on)."""
    runs = build_runs(cfg)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="circuitdb-bench-") as folder:
        bench_embedded(report, cfg, runs, [run_tables(run) for run in runs], Path(folder))
    return {"engine": engine_label(), "figures": report.figures, "labels": report.labels}


def other_engine(report: Report, cfg: Config) -> None:
    """The embedded figures on the engine CIRCUITDB_ENGINE does not select, measured by a child process of its own
    (the two engines cannot be loaded in one) on the same catalog, then both side by side."""
    other = next(name for name in ENGINES if name != engine_name())
    if importlib.util.find_spec(other) is None:
        print(f"\n  {other}'s embedded figures skipped: {other} is not installed (pip install 'circuitdb[{other}]')",
              flush=True)
        return
    command = [sys.executable, str(Path(__file__).resolve()), "--embedded-only", json.dumps(asdict(cfg))]
    code, got = on_engine(command, other)
    if code:
        print(f"\n  {other}'s embedded figures failed: its child process exited {code}", flush=True)
        return
    report.figures.update(got["figures"])
    report.labels.update(got["labels"])
    compare_engines(report, {engine_name(): engine_label(), other: got["engine"]})


def compare_engines(report: Report, versions: dict[str, str]) -> None:
    """Every embedded figure of both engines side by side, with the ratio of ladybug's to kuzu's."""
    first, second = ENGINES
    section(f"Embedded: {versions[first]} against {versions[second]}, same catalog (ratio above 1: {first}'s figure is "
            f"larger, i.e. slower for s and ms, faster for edges/s)")
    print(f"  {'figure':<56} {'unit':<8} {first:>12} {second:>12} {'ratio':>8}", flush=True)
    ratios = {}
    for key, (label, unit) in report.labels.items():
        suffix = key.removeprefix(f"{first}_")
        a, b = report.figures.get(key), report.figures.get(f"{second}_{suffix}")
        if key.startswith(f"{first}_") and isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
            ratios[suffix] = a / b
            print(f"  {label:<56} {unit:<8} {shown(a):>12} {shown(b):>12} {a / b:>7,.2f}x", flush=True)
    report.figures["engines"] = versions
    report.figures[f"{first}_over_{second}"] = ratios


def neo4j_test_server() -> Any:
    """The tests' Neo4j server module (heap from CIRCUITDB_TEST_NEO4J_HEAP, 2g unless set), or None without Java."""
    sys.path.insert(0, str(TESTS))
    import neo4j_server

    if not neo4j_server.java_available():
        print("  Neo4j skipped: java, javac and mvn are needed for the Neo4j test server", flush=True)
        return None
    os.environ.setdefault("CIRCUITDB_TEST_NEO4J_HEAP", "2g")  # heap and page cache of docker-compose.yml's team server
    os.environ.setdefault("CIRCUITDB_TEST_NEO4J_PAGECACHE_MB", "1024")
    os.environ.pop("CIRCUITDB_NEO4J_PASSWORD", None)  # the test server runs without auth
    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)
    return neo4j_server


def bench_neo4j(report: Report, cfg: Config, runs: list[Run], tables: list[RunTables]) -> None:
    """Start the test server, ingest the same runs through Catalog.add, time the queries, stop the server."""
    section("Neo4j ingest")
    neo4j_server = neo4j_test_server()
    if neo4j_server is None:
        return
    started, (uri, proc) = timed(neo4j_server.start)
    try:
        report.add("neo4j_start_s", started, f"server start (heap {os.environ['CIRCUITDB_TEST_NEO4J_HEAP']}, page cache "
                   f"{os.environ['CIRCUITDB_TEST_NEO4J_PAGECACHE_MB']} MB)", "s")
        warm_up(report, uri, runs)
        catalog, seconds, steps = catalog_ingest(uri, runs)
        try:
            check_counts(catalog, cfg)
            report_ingest(report, "neo4j", seconds, steps, sum(t.edges.num_rows for t in tables))
            section(f"Neo4j query latency ({cfg.runs} runs)")
            measure_queries(report, "neo4j", catalog, cfg)
            report_ratios(report)
        finally:
            catalog.close()
    finally:
        neo4j_server.stop(proc)


def warm_up(report: Report, uri: str, runs: list[Run]) -> None:
    """Add, then delete, copies of the first runs on models of their own: a just-started server spends as much CPU
    compiling its code (the JVM's JIT) as on the writes, which a team's running server has long done. Then the same
    copies once more with one writer: the baseline of the timed ingest's concurrent writers. The timed ingest finds
    none of its own model's components stored."""
    with Catalog(uri) as catalog:
        for key, label, writers in (("cold", "warm-up: {n} runs on the just-started server", Neo4jStore.writers),
                                    ("one_writer", "{n} runs with one writer (warm server)", 1)):
            copies = [replace(run, model=Model(f"warm-up-{key}", MODEL.n_layers, MODEL.n_heads, MODEL.d_model))
                      for run in runs[:WARM_UP_RUNS]]
            catalog.store.writers = writers
            seconds, ids = timed(lambda: catalog.add(copies))  # noqa: B023 - called at once
            for run_id in ids:
                catalog.delete(run_id)
            report.add(f"neo4j_{key}_ingest_edges_per_s", sum(len(r.edges) for r in copies) / seconds,
                       label.format(n=len(copies)) + " (deleted after)", "edges/s")


def report_ratios(report: Report) -> None:
    """Neo4j's venn and diff latency over the embedded store's on the selected engine (both measured in this run)."""
    for name in ("venn4", "diff2"):
        embedded, neo4j = report.figures.get(f"{engine_name()}_{name}_ms"), report.figures.get(f"neo4j_{name}_ms")
        if embedded and neo4j:
            report.add(f"neo4j_{name}_ratio", neo4j / embedded, f"ratio {name}: Neo4j / embedded ({engine_name()})", "x")
    one, all_writers = report.figures.get("neo4j_one_writer_ingest_edges_per_s"), report.figures.get("neo4j_ingest_edges_per_s")
    if one and all_writers:
        report.add("neo4j_writers_ratio", all_writers / one,
                   f"ratio Neo4j ingest: {Neo4jStore.writers} writers / one writer (edges/s)", "x")


def print_targets(report: Report, cfg: Config) -> None:
    """The issue's targets next to the figures (informational: nothing here changes the exit code)."""
    section("Targets (informational)")
    name = engine_name()
    report.target(f"{name} ingest (Catalog.add) within 2x raw COPY", f"{name}_ingest_ratio", KUZU_INGEST_MAX_RATIO,
                  True, "x")
    report.target(f"{name} store.write_runs within 2x raw COPY", f"{name}_store_ratio", KUZU_INGEST_MAX_RATIO, True, "x")
    for backend in (name, "neo4j"):
        if backend == "neo4j" and cfg.skip_neo4j:
            continue
        note = "" if backend == name else " (same bound, Neo4j)"
        report.target(f"{backend} shared (4 runs) < 50 ms{note}", f"{backend}_shared4_ms", SHARED_VENN_MAX_MS, True, "ms")
        report.target(f"{backend} venn (4 runs) < 50 ms{note}", f"{backend}_venn4_ms", SHARED_VENN_MAX_MS, True, "ms")
        report.target(f"{backend} similarity ({cfg.runs} runs) < 500 ms{note}", f"{backend}_similarity_all_ms",
                      SIMILARITY_MAX_MS, True, "ms")
    for backend in (name,) if cfg.skip_neo4j else (name, "neo4j"):
        report.target(f"{backend} similarity --edges ({cfg.runs} runs) < 1 s", f"{backend}_similarity_edges_ms",
                      EDGE_SIMILARITY_MAX_MS, True, "ms")
    if not cfg.skip_neo4j:
        report.target("Neo4j ingest >= 50,000 edges/s (Catalog.add)", "neo4j_ingest_edges_per_s",
                      NEO4J_MIN_EDGES_PER_S, False, "edges/s")
        for name in ("venn4", "diff2"):
            report.target(f"Neo4j {name} within 3x the embedded store", f"neo4j_{name}_ratio", NEO4J_MAX_RATIO, True, "x")


# ---------------------------------------------------------------- whole-catalog questions (--scale)

# The pairwise Cypher similarity circuitdb used before (the in-run baseline of --scale): the overlap of every pair of
# runs is joined and summed inside the database.
OLD_SIZES = {
    False: "MATCH (r:Run)-[i:INCLUDES]->(:Component) WHERE r.id IN $run_ids "
           "RETURN r.id AS run, count(*) AS size, sum(coalesce(abs(i.score), 1.0)) AS mass",
    True: "MATCH {edge} WHERE e.run_id IN $run_ids RETURN e.run_id AS run, count(*) AS size, sum(abs(e.weight)) AS mass",
}
OLD_PAIRS = {
    ("kuzu", False): (
        "MATCH (a:Run)-[ia:INCLUDES]->(c:Component)<-[ib:INCLUDES]-(b:Run) "
        "WHERE a.id IN $run_ids AND b.id IN $run_ids AND a.id < b.id "
        "WITH a.id AS run_a, b.id AS run_b, coalesce(abs(ia.score), 1.0) AS sa, coalesce(abs(ib.score), 1.0) AS sb "
        "RETURN run_a, run_b, count(*) AS shared, sum(CASE WHEN sa < sb THEN sa ELSE sb END) AS shared_min"
    ),
    ("neo4j", False): (
        "MATCH (r:Run)-[i:INCLUDES]->(c:Component) WHERE r.id IN $run_ids "
        "WITH c, r.id AS run, coalesce(abs(i.score), 1.0) AS s ORDER BY run "
        "WITH c, collect(run) AS runs, collect(s) AS ss WHERE size(runs) > 1 "
        "UNWIND range(0, size(runs) - 2) AS x UNWIND range(x + 1, size(runs) - 1) AS y "
        "RETURN runs[x] AS run_a, runs[y] AS run_b, count(*) AS shared, "
        "sum(CASE WHEN ss[x] < ss[y] THEN ss[x] ELSE ss[y] END) AS shared_min"
    ),
    True: (
        "MATCH {pair} "
        "WHERE ea.run_id IN $run_ids AND eb.run_id IN $run_ids AND ea.run_id < eb.run_id AND ea.input = eb.input "
        "WITH ea.run_id AS run_a, eb.run_id AS run_b, abs(ea.weight) AS wa, abs(eb.weight) AS wb "
        "RETURN run_a, run_b, count(*) AS shared, sum(CASE WHEN wa < wb THEN wa ELSE wb END) AS shared_min"
    ),
}
SIMILARITY_VARIANTS = {"components": (False, False), "components_weighted": (False, True), "edges": (True, False),
                       "edges_weighted": (True, True)}


def old_similarity(store: Any, ids: list[str], edges: bool, weighted: bool) -> np.ndarray:
    """The Jaccard matrix as circuitdb computed it before: sizes, then every pair's overlap, by Cypher."""
    edge = EDGE_PATTERN[store.backend]
    pair = {"kuzu": "(s:Component)<-[:SENDER]-(ea:Edge)-[:RECEIVER]->(t:Component), (s)<-[:SENDER]-(eb:Edge)-[:RECEIVER]->(t)",
            "neo4j": "(s:Component)-[ea:EDGE]->(t:Component), (s)-[eb:EDGE]->(t)"}[store.backend]
    sizes = {row["run"]: row for row in store.read(OLD_SIZES[edges].replace("{edge}", edge), {"run_ids": ids})}
    pairs = store.read(OLD_PAIRS[True if edges else (store.backend, False)].replace("{pair}", pair), {"run_ids": ids})
    field, shared_field = ("mass", "shared_min") if weighted else ("size", "shared")
    size = np.array([float(sizes.get(r, {}).get(field) or 0) for r in ids])
    common = np.zeros((len(ids), len(ids)))
    position = {r: i for i, r in enumerate(ids)}
    for row in pairs:
        a, b = position[row["run_a"]], position[row["run_b"]]
        common[a, b] = common[b, a] = float(row[shared_field])
    union = size[:, None] + size[None, :] - common
    matrix = np.divide(common, union, out=np.ones_like(common), where=union > 0)
    np.fill_diagonal(matrix, 1.0)
    return matrix


def old_export(catalog: Catalog, path: Path) -> None:
    """The JSON export as circuitdb wrote it before: every run fetched on its own, one json.dumps of the document."""
    runs = {info.id: catalog.run(info.id) for info in catalog.runs()}
    heads = [{"id": r.id, "model": r.model.name, "task": r.task.name, "method": r.method, "ablation": r.ablation,
              "metric": r.metric, "threshold": r.threshold, "nests_in": r.nests_in} for r in runs.values()]
    document = {"format": FORMAT, "version": VERSION, "runs": [run_to_dict(runs[i]) for i in export_order(heads)]}
    path.write_text(json.dumps(document, indent=1))


def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory of this process now (VmRSS), or its peak (VmHWM: unlike ru_maxrss, not raised to the parent's
    peak by the fork and exec that started this process)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(f"{field}:")) / 1024


def child_task(spec: dict[str, Any]) -> dict[str, Any]:
    """One measured task in this (child) process: seconds of the task alone, and this process's peak memory."""
    task, url, path = spec["task"], spec["url"], Path(spec.get("path", ""))
    runs = read_native(path)[: spec["count"]] if task == "import_each" else []
    start = rss_mb()
    began = time.perf_counter()
    with Catalog(url, read_only=not task.startswith("import")) as catalog:
        if task == "import":
            catalog.import_file("json", path)
        elif task == "import_each":
            for run in runs:
                catalog.add(run)
        elif task in ("similarity_old", "similarity_new"):
            edges, weighted = spec["edges"], spec["weighted"]
            if task == "similarity_old":
                matrix = old_similarity(catalog.store, [r.id for r in catalog.runs()], edges, weighted)
            else:
                matrix = catalog.similarity(edges=edges, weighted=weighted).matrix.to_numpy()
            np.save(path, matrix)
        elif task == "export_old":
            old_export(catalog, path)
        elif task == "export_new":
            catalog.export(Selection(), path)
        else:
            raise SystemExit(f"unknown child task {task!r}")
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "peak_mb": rss_mb("VmHWM"), "start_mb": start}


# A child that runs this script with the driver's Rust extension (neo4j-rust-ext) hidden: the driver then decodes
# records with its own Python code, as it does where the extension is not installed.
WITHOUT_RUST = ("import runpy, sys; sys.modules['neo4j._rust'] = None; sys.argv = sys.argv[1:]; "
                "runpy.run_path(sys.argv[0], run_name='__main__')")


def driver_has_rust() -> bool:
    """Whether neo4j-rust-ext is installed (the driver picks it up by itself)."""
    return importlib.util.find_spec("neo4j._rust") is not None


def in_child(spec: dict[str, Any], timeout_s: float, without_rust: bool = False) -> dict[str, Any]:
    """Run child_task(spec) in a fresh interpreter (`without_rust`: with the driver's Rust extension hidden); its
    figures, or {"error": why}."""
    command = [sys.executable, *(("-c", WITHOUT_RUST) if without_rust else ()), str(Path(__file__).resolve()),
               "--child", json.dumps(spec)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"stopped after {timeout_s:g} s"}
    if done.returncode:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return {"error": (lines[-1] if lines else f"exit {done.returncode}")[:160]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def kuzu_size_mb(path: Path) -> float:
    """The embedded catalog file with its write-ahead log, if one is left."""
    wal = path.with_name(path.name + ".wal")
    return (path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)) / 1e6


def add_task(report: Report, key: str, label: str, got: dict[str, Any]) -> bool:
    """Seconds and peak memory of a child task, or its error; True when it ran."""
    if "error" in got:
        report.add(f"{key}_s", "failed", label, "", f"[{got['error']}]")
        return False
    report.add(f"{key}_s", got["seconds"], label, "s", f"[peak {got['peak_mb']:,.0f} MB, at start {got['start_mb']:,.0f} MB]")
    report.figures[f"{key}_peak_mb"] = got["peak_mb"]
    return True


def add_ratio(report: Report, key: str, old: str, new: str, label: str) -> None:
    """old / new of seconds and of peak memory, where both ran."""
    seconds = [report.figures.get(f"{k}_s") for k in (old, new)]
    peaks = [report.figures.get(f"{k}_peak_mb") for k in (old, new)]
    if all(isinstance(v, float) for v in seconds):
        report.add(f"{key}_ratio", seconds[0] / seconds[1], label, "x", f"[peak memory {peaks[0] / peaks[1]:,.2f}x]")


def scale_questions(report: Report, cfg: Config, backend: str, url: str, n: int, folder: Path) -> None:
    """Similarity (old pairwise Cypher against the new way, same matrix) and JSON export (old per-run fetch against
    the new batched stream, same bytes) over all `n` runs of a loaded catalog. On Neo4j the new similarity is timed
    twice: its first call after the import, then the call the other figures compare with (the server warm)."""
    prefix = f"{engine_name() if backend == 'kuzu' else backend}_{n}"
    with Catalog(url, read_only=True) as catalog:  # warm the store's caches before the first measured task
        catalog.query("MATCH (:Run)-[i:INCLUDES]->(:Component) RETURN count(i) AS n")
        catalog.query(f"MATCH {EDGE_PATTERN[backend]} RETURN count(e) AS n")
    for name, (edges, weighted) in SIMILARITY_VARIANTS.items():
        spec = {"url": url, "edges": edges, "weighted": weighted}
        if backend == "neo4j":  # the server's first run of a query after the import reads its pages and compiles
            # its code (seconds at 2,000 runs); timed on its own, so that the figures below compare like with like
            first = in_child({**spec, "task": "similarity_new", "path": str(folder / f"{name}_new.npy")}, cfg.child_timeout_s)
            add_task(report, f"{prefix}_similarity_{name}_first", f"similarity {name}, new, its first call on this server", first)
        new = in_child({**spec, "task": "similarity_new", "path": str(folder / f"{name}_new.npy")}, cfg.child_timeout_s)
        add_task(report, f"{prefix}_similarity_{name}_new", f"similarity {name}, new (sparse incidence)", new)
        if backend == "neo4j" and driver_has_rust():  # cheap: at any size
            python = in_child({**spec, "task": "similarity_new", "path": str(folder / f"{name}_python.npy")},
                              cfg.child_timeout_s, without_rust=True)
            label = f"similarity {name}, new, driver without its Rust extension"
            if add_task(report, f"{prefix}_similarity_{name}_python", label, python) and "error" not in new:
                same = np.array_equal(np.load(folder / f"{name}_python.npy"), np.load(folder / f"{name}_new.npy"))
                add_ratio(report, f"{prefix}_similarity_{name}_rust", f"{prefix}_similarity_{name}_python",
                          f"{prefix}_similarity_{name}_new",
                          f"  without / with neo4j-rust-ext {'(same matrix)' if same else '(MATRICES DIFFER)'}")
        if n > min(cfg.baseline_max_runs, cfg.old_similarity_max_runs):
            continue
        old = in_child({**spec, "task": "similarity_old", "path": str(folder / f"{name}_old.npy")}, cfg.child_timeout_s)
        label = f"similarity {name}, old (pairwise Cypher)"
        if add_task(report, f"{prefix}_similarity_{name}_old", label, old) and "error" not in new:
            same = np.allclose(np.load(folder / f"{name}_old.npy"), np.load(folder / f"{name}_new.npy"), rtol=0, atol=1e-9)
            report.figures[f"{prefix}_similarity_{name}_same"] = bool(same)
            add_ratio(report, f"{prefix}_similarity_{name}", f"{prefix}_similarity_{name}_old",
                      f"{prefix}_similarity_{name}_new", f"  old / new {'(same matrix)' if same else '(MATRICES DIFFER)'}")
    new = in_child({"task": "export_new", "url": url, "path": str(folder / "new.json")}, cfg.child_timeout_s)
    add_task(report, f"{prefix}_export_new", "export .json, new (batched, streamed)", new)
    if n <= cfg.baseline_max_runs:
        old = in_child({"task": "export_old", "url": url, "path": str(folder / "old.json")}, cfg.child_timeout_s)
        if add_task(report, f"{prefix}_export_old", "export .json, old (run by run, one string)", old) and "error" not in new:
            same = filecmp.cmp(folder / "old.json", folder / "new.json", shallow=False)
            report.figures[f"{prefix}_export_same"] = same
            add_ratio(report, f"{prefix}_export", f"{prefix}_export_old", f"{prefix}_export_new",
                      f"  old / new {'(same bytes)' if same else '(FILES DIFFER)'}")
    for name in ("new.json", "old.json"):
        (folder / name).unlink(missing_ok=True)


def scale_embedded(report: Report, cfg: Config, n: int, folder: Path, export: Path) -> None:
    """The embedded store at one catalog size, on the selected engine (its name prefixes the keys): the batched import
    against runs added one at a time, then the whole-catalog questions."""
    section(f"{n:,} runs: embedded ({engine_label()})")
    p = f"{engine_name()}_{n}"
    catalog = folder / "catalog.kuzu"
    if add_task(report, f"{p}_import", f"import json of {n:,} runs (write_runs, batches of {IMPORT_ROWS:,} rows)",
                in_child({"task": "import", "url": f"kuzu:{catalog}", "path": str(export)}, cfg.child_timeout_s)):
        report.add(f"{p}_file_mb", kuzu_size_mb(catalog), "  catalog file", "MB")
    each = folder / "each.kuzu"
    count = min(n, cfg.import_each)
    if add_task(report, f"{p}_import_each", f"baseline: first {count} runs added one at a time",
                in_child({"task": "import_each", "url": f"kuzu:{each}", "path": str(export), "count": count},
                         cfg.child_timeout_s)) and f"{p}_import_s" in report.figures:
        one, batch = report.figures[f"{p}_import_each_s"] / count, report.figures[f"{p}_import_s"] / n
        report.add(f"{p}_import_ratio", one / batch, "  per run: one at a time / batched import", "x",
                   f"[file per run {kuzu_size_mb(each) / count * n / report.figures[f'{p}_file_mb']:,.1f}x]")
    scale_questions(report, cfg, "kuzu", f"kuzu:{catalog}", n, folder)


def bench_scale(report: Report, cfg: Config) -> None:
    """Per catalog size: import of one export file, then whole-catalog similarity and export, on the embedded store
    and Neo4j."""
    per_run = Config(runs=4, memberships=4 * cfg.scale_members, edges=4 * cfg.scale_edges)
    per_run.check()
    print(f"  {cfg.scale_members} members and {cfg.scale_edges} edges per run (core of {per_run.core_members} "
          f"members / {per_run.core_edges} edges in every run, pool of {per_run.pool:,} features); peak memory is "
          f"the peak resident set (VmHWM) of a child process doing only that task (interpreter, imports and open store "
          f"included; not the Neo4j server's)", flush=True)
    neo4j_server = None if cfg.skip_neo4j else neo4j_test_server()
    with tempfile.TemporaryDirectory(prefix="circuitdb-scale-") as tmp:
        for n in cfg.scale:
            folder = Path(tmp) / str(n)
            folder.mkdir()
            sized = Config(runs=n, memberships=n * cfg.scale_members, edges=n * cfg.scale_edges, seed=cfg.seed)
            export = folder / "runs.json"
            export.write_text(dumps(build_runs(sized)))
            if not cfg.skip_embedded:
                scale_embedded(report, cfg, n, folder, export)
            if neo4j_server:
                section(f"{n:,} runs: Neo4j")
                uri, proc = neo4j_server.start()
                try:
                    add_task(report, f"neo4j_{n}_import", f"import json of {n:,} runs (write_runs: a transaction per run)",
                             in_child({"task": "import", "url": uri, "path": str(export)}, cfg.child_timeout_s))
                    scale_questions(report, cfg, "neo4j", uri, n, folder)
                finally:
                    neo4j_server.stop(proc)
            shutil.rmtree(folder)


def scale_backends(cfg: Config) -> tuple[str, ...]:
    """The stores --scale measures, as their keys name them: the embedded one by its engine."""
    return tuple(b for b, skip in ((engine_name(), cfg.skip_embedded), ("neo4j", cfg.skip_neo4j)) if not skip)


def print_scale_summary(report: Report, cfg: Config) -> None:
    """One line per size and store: seconds (peak MB) of the old and new similarity of components and JSON export."""
    section("Summary: seconds (peak MB); old = the way before, measured above in this run")

    def cell(key: str) -> str:
        value, peak = report.figures.get(f"{key}_s"), report.figures.get(f"{key}_peak_mb")
        return f"{value:,.1f} ({peak:,.0f})" if isinstance(value, float) else str(value or "-")

    print(f"  {'runs':>6} {'store':<7} {'similarity old':>16} {'similarity new':>16} {'export old':>16} {'export new':>16} "
          f"{'import':>16} {'file MB':>8}", flush=True)
    for n in cfg.scale:
        for backend in scale_backends(cfg):
            p = f"{backend}_{n}"
            size = report.figures.get(f"{p}_file_mb")
            print(f"  {n:>6} {backend:<7} {cell(f'{p}_similarity_components_old'):>16} "
                  f"{cell(f'{p}_similarity_components_new'):>16} {cell(f'{p}_export_old'):>16} {cell(f'{p}_export_new'):>16} "
                  f"{cell(f'{p}_import'):>16} {f'{size:,.0f}' if size else '-':>8}", flush=True)


SCALE_SIMILARITY_MAX_S, SCALE_MAX_MB, SCALE_EXPORT_MAX_S = 5.0, 1024.0, 30.0
ISSUE_BEFORE = ("similarity over all runs on the embedded store 6.8 s / 471 MB at 500 runs, 18 s / 1.2 GB at 1,000, "
                "34 s / 4.0 GB at 2,000; on Neo4j 11 s, 42 s, failure at 2,000; export of 2,000 runs about 300 s / "
                "1.7 GB; 2,000 runs imported as one batch 31 s / 29 MB file, one at a time 45 min / 2.27 GB")


def print_scale_targets(report: Report, cfg: Config) -> None:
    """Whole-catalog bounds at each size (informational): similarity < 5 s and < 1 GB, export < 30 s."""
    section("Targets (informational): similarity < 5 s and < 1 GB, JSON export < 30 s, at every size")
    for n in cfg.scale:
        for backend in scale_backends(cfg):
            p = f"{backend}_{n}"
            for name in SIMILARITY_VARIANTS:
                report.target(f"{backend} {n:,} runs: similarity {name}", f"{p}_similarity_{name}_new_s",
                              SCALE_SIMILARITY_MAX_S, True, "s")
                report.target(f"{backend} {n:,} runs: similarity {name}, peak memory",
                              f"{p}_similarity_{name}_new_peak_mb", SCALE_MAX_MB, True, "MB")
            report.target(f"{backend} {n:,} runs: export .json", f"{p}_export_new_s", SCALE_EXPORT_MAX_S, True, "s")
    print(f"\n  before (issue 17, its own catalog): {ISSUE_BEFORE}", flush=True)


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
    parser.add_argument("--skip-neo4j", action="store_true", help="benchmark the embedded store only")
    parser.add_argument("--skip-embedded", action="store_true", help="with --scale: benchmark Neo4j only")
    parser.add_argument("--scale", type=lambda text: tuple(int(n) for n in text.split(",")), default=(),
                        help="instead: whole-catalog similarity, export and import at these numbers of runs, e.g. "
                             "500,1000,2000, each against the old way in the same run")
    parser.add_argument("--scale-members", type=int, default=300, help="members per run with --scale (default 300)")
    parser.add_argument("--scale-edges", type=int, default=300, help="edges per run with --scale (default 300)")
    parser.add_argument("--import-each", type=int, default=100,
                        help="runs added one at a time as the import baseline with --scale (default 100)")
    parser.add_argument("--baseline-max-runs", type=int, default=10**9,
                        help="time the old similarity and export only up to this many runs (default: always)")
    parser.add_argument("--old-similarity-max-runs", type=int, default=1000,
                        help="time the old pairwise similarity only up to this many runs (default 1,000: on the embedded "
                             "store its memory grows with the pairs of runs sharing a member, 4.8 GB at 1,000 runs of the "
                             "default catalog, about four times that at 2,000)")
    parser.add_argument("--child-timeout", type=float, default=900.0,
                        help="seconds one measured task may take with --scale (default 900)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: one measured task, as JSON
    parser.add_argument("--embedded-only", help=argparse.SUPPRESS)  # internal: other_engine's child, the Config as JSON
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_task(json.loads(args.child))), flush=True)
        raise SystemExit(0)
    if args.embedded_only:
        spec = json.loads(args.embedded_only)
        print(json.dumps(embedded_only(Config(**{**spec, "scale": tuple(spec["scale"])}))), flush=True)
        raise SystemExit(0)
    cfg = Config(runs=args.runs, edges=args.edges, memberships=args.memberships, repeat=args.repeat,
                 edge_repeat=args.edge_repeat, edge_budget_s=args.edge_budget, seed=args.seed,
                 skip_neo4j=args.skip_neo4j, skip_embedded=args.skip_embedded, scale=args.scale, scale_members=args.scale_members,
                 scale_edges=args.scale_edges, import_each=args.import_each, baseline_max_runs=args.baseline_max_runs,
                 old_similarity_max_runs=args.old_similarity_max_runs,
                 child_timeout_s=args.child_timeout)
    if cfg.skip_embedded and (not cfg.scale or cfg.skip_neo4j):
        parser.error("--skip-embedded needs --scale, and leaves Neo4j: not with --skip-neo4j")
    cfg.check()
    return cfg


def main(argv: list[str] | None = None) -> int:
    began = time.perf_counter()
    cfg = parse_args(argv)
    report = Report()
    if cfg.scale:
        section(f"Whole-catalog questions at {', '.join(f'{n:,}' for n in cfg.scale)} runs")
        bench_scale(report, cfg)
        print_scale_summary(report, cfg)
        print_scale_targets(report, cfg)
        section("Done")
        report.add("total_s", time.perf_counter() - began, "whole benchmark", "s")
        print(json.dumps({"config": asdict(cfg), "figures": report.figures, "targets": report.targets}), flush=True)
        return 0
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
        bench_embedded(report, cfg, runs, tables, Path(folder))
    other_engine(report, cfg)
    if not cfg.skip_neo4j:
        bench_neo4j(report, cfg, runs, tables)
    print_targets(report, cfg)
    section("Done")
    report.add("total_s", time.perf_counter() - began, "whole benchmark", "s")
    print(json.dumps({"config": asdict(cfg), "figures": report.figures, "targets": report.targets}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
