"""Sixteen processes open one fresh, schema-less Neo4j at the same moment and write runs that share components."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import random
import time
from multiprocessing.synchronize import Barrier
from queue import Queue

from circuitdb import Catalog, Edge, Model, Run, Task
from circuitdb.schema import neo4j_schema

WRITERS = 16
ROUNDS = int(os.environ.get("CIRCUITDB_RACE_ROUNDS", "4"))  # 4 by default for CI time; the closing figures used 10
MODEL = Model("toy-shared", 4, 4, 64, "test")
HEADS = [f"a{layer}.h{head}" for layer in range(4) for head in range(4)]


def writer_runs(writer: int, round_: int) -> list[Run]:
    """A parent run and a child nesting in it, on the one shared model; members overlap across writers, and every
    run is evaluated on one shared task."""
    rng = random.Random(round_ * WRITERS + writer)
    parent = ["input", *sorted(rng.sample(HEADS, 8)), "logits"]
    runs: list[Run] = []
    for threshold, members in ((0.9, parent), (0.8, [*parent[:5], "logits"])):
        edges = [Edge(a, b, rng.uniform(-1, 1)) for a, b in itertools.pairwise(members)]
        runs.append(Run(MODEL, Task(f"task{writer}"), "prune", threshold, components=dict.fromkeys(members, 1.0), edges=edges,
                        nests_in=runs[-1].id if runs else None, evaluations={"shared": 0.5}))
    return runs


def _writer(url: str, writer: int, barrier: Barrier, rounds: Queue, results: Queue) -> None:
    """Each round: wait for all writers, then open the catalog and add this writer's runs; report any error."""
    while (round_ := rounds.get()) is not None:
        runs = writer_runs(writer, round_)
        barrier.wait(timeout=120)
        try:
            with Catalog(url) as catalog:
                catalog.add(runs)
            results.put((writer, ""))
        except Exception as exc:
            results.put((writer, f"{type(exc).__name__}: {exc}"))


def one(catalog: Catalog, cypher: str) -> int:
    return catalog.query(cypher).records()[0]["n"]


def test_sixteen_processes_open_a_fresh_server_at_once(neo4j_url: str) -> None:
    from conftest import wipe_neo4j

    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(WRITERS), spawn.Queue()
    rounds = [spawn.Queue() for _ in range(WRITERS)]
    writers = [spawn.Process(target=_writer, args=(neo4j_url, i, barrier, rounds[i], results)) for i in range(WRITERS)]
    for process in writers:
        process.start()
    try:
        for round_ in range(ROUNDS):
            wipe_neo4j(neo4j_url, schema=True)
            started = time.monotonic()
            for queue in rounds:
                queue.put(round_)
            failed = {w: error for w, error in (results.get(timeout=180) for _ in range(WRITERS)) if error}
            print(f"round {round_}: {time.monotonic() - started:.1f}s")
            assert failed == {}, f"round {round_}"
            runs = [run for w in range(WRITERS) for run in writer_runs(w, round_)]
            with Catalog(neo4j_url, read_only=True) as catalog:
                stored = catalog.query("MATCH (r:Run) RETURN r.id AS id").records()
                assert sorted(r["id"] for r in stored) == sorted(r.id for r in runs)
                components = len({n for r in runs for n in r.components})
                assert one(catalog, "MATCH (c:Component) RETURN count(c) AS n") == components
                assert one(catalog, "MATCH (c:Component) RETURN count(DISTINCT c.id) AS n") == components
                assert one(catalog, "MATCH (m:Model) RETURN count(m) AS n") == 1
                assert one(catalog, "MATCH (t:Task) RETURN count(t) AS n") == WRITERS + 1
                assert one(catalog, "MATCH (:Run)-[i:INCLUDES]->() RETURN count(i) AS n") == sum(len(r.components) for r in runs)
                assert one(catalog, "MATCH ()-[e:EDGE]->() RETURN count(e) AS n") == sum(len(r.edges) for r in runs)
                assert one(catalog, "MATCH (:Run)-[x:NESTS_IN]->() RETURN count(x) AS n") == WRITERS
                assert one(catalog, "MATCH (:Run)-[x:EVALUATED_ON]->() RETURN count(x) AS n") == len(runs)
                for kind, statements in neo4j_schema().items():
                    assert set(statements) <= {r["name"] for r in catalog.store.read(f"SHOW {kind} YIELD name")}
    finally:
        for queue in rounds:
            queue.put(None)
        for process in writers:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
