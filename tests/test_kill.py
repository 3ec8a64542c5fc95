"""kill -9 at any moment leaves only whole runs, on both stores: importing new runs, replacing a large run, and
`circuitdb discover`, killed at a random moment of the write or (embedded store) while the engine checkpoints.

After each kill the catalog is reopened by a writer (which discards what the killed one staged) and every run is
checked against what its writer meant: memberships and edges counted, edge weights summed, no stray edges. Trials
per kill moment: CIRCUITDB_KILL_TRIALS (default 1) and CIRCUITDB_KILL_DISCOVER_TRIALS (default 1; the closing
figures use 30 of each), edges per run CIRCUITDB_KILL_EDGES.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from big_run import big_tables
from conftest import wipe_neo4j

from circuitdb import Catalog
from circuitdb.schema import EDGE_PATTERN
from circuitdb.store.engine import engine_name

HERE = Path(__file__).parent
TRIALS = int(os.environ.get("CIRCUITDB_KILL_TRIALS", "1"))
EDGES = int(os.environ.get("CIRCUITDB_KILL_EDGES", "0"))
DISCOVER_TRIALS = int(os.environ.get("CIRCUITDB_KILL_DISCOVER_TRIALS", "1"))
MOMENTS = {"kuzu": ("random", "checkpoint"), "neo4j": ("random",)}


def settled(url: str) -> None:
    """Wait until Neo4j has finished the killed client's transaction (committed if its COMMIT was already sent,
    rolled back otherwise): read-committed queries running beside that commit could see part of it."""
    import neo4j

    with neo4j.GraphDatabase.driver(url, auth=None) as driver:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            queries = driver.execute_query("SHOW TRANSACTIONS YIELD currentQuery RETURN currentQuery").records
            if all(r["currentQuery"].startswith("SHOW TRANSACTIONS") for r in queries):
                return
            time.sleep(0.1)
    raise AssertionError("the killed writer's transaction is still open on Neo4j after 120 s")


def whole_runs(url: str) -> dict[str, float]:
    """Every run with the sum of its edge weights, after checking that each is whole: as many memberships and
    edges as the run says it has, and no edge outside a run."""
    if not url.startswith("kuzu:"):
        settled(url)
    with Catalog(url) as cat:
        runs = cat.store.read("MATCH (r:Run) OPTIONAL MATCH (r)-[i:INCLUDES]->() "
                              "RETURN r.id AS id, r.n_nodes AS nodes, r.n_edges AS edges, count(i) AS members")
        edges = {e["id"]: e for e in cat.store.read(
            f"MATCH {EDGE_PATTERN[cat.store.backend]} RETURN e.run_id AS id, count(e) AS n, sum(e.weight) AS w")}
        if cat.store.backend == "kuzu":  # no Edge node without both ends
            assert cat.store.read("MATCH (e:Edge) RETURN count(e) AS n") == [{"n": sum(e["n"] for e in edges.values())}]
    weights = {}
    for run in runs:
        assert run["members"] == run["nodes"], f"run {run['id']}: {run['members']} of {run['nodes']} memberships"
        got = edges.pop(run["id"], {"n": 0, "w": 0.0})
        assert got["n"] == run["edges"], f"run {run['id']}: {got['n']} of {run['edges']} edges"
        weights[run["id"]] = round(got["w"] or 0.0, 6)
    assert not edges, f"edges outside any run: {sorted(edges)}"
    return weights


def weight(n_edges: int, seed: int) -> float:
    return round(sum(big_tables(n_edges, seed=seed).edges.column("weight").to_pylist()), 6)


def kill(proc: subprocess.Popen, url: str, moment: str, span: float) -> bool:
    """SIGKILL `proc` at a random moment within `span` seconds, or while Kuzu checkpoints (its `.shadow` file
    exists; the first or second checkpoint, at random). Whether the moment was reached before the process ended."""
    if moment == "random":
        deadline = time.monotonic() + random.uniform(0, span)
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
    else:
        shadow, wanted, seen, was = Path(f"{url[len('kuzu:'):]}.shadow"), random.choice((1, 2)), 0, False
        while proc.poll() is None:
            now = shadow.exists()
            seen += now and not was
            was = now
            if now and seen >= wanted:
                time.sleep(random.uniform(0, 0.01))
                break
            time.sleep(0.0002)
    hit = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return hit


def writer(url: str, n_edges: int, seed: int, *tasks: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(HERE / "big_run.py"), url, str(n_edges), str(seed), *tasks],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    return proc


def timed_write(url: str, n_edges: int, seed: int, *tasks: str) -> float:
    """Seconds the write itself takes (from `writing` to the end)."""
    proc = writer(url, n_edges, seed, *tasks)
    started = time.monotonic()
    assert proc.wait() == 0
    return time.monotonic() - started


def store_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "kuzu":
        return f"kuzu:{tmp_path / 'kill.kuzu'}"
    url = request.getfixturevalue("neo4j_url")
    wipe_neo4j(url)
    return url


@pytest.mark.parametrize("backend", ["kuzu", "neo4j"])
def test_kill_during_replacement_of_a_large_run(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """The run stays whole and is either its old or its new copy; the other run is untouched."""
    url = store_for(backend, tmp_path, request)
    n = EDGES or (100_000 if backend == "kuzu" else 30_000)
    timed_write(url, 2_000, 7, "other")
    span = timed_write(url, n, 0)
    current, other, landed = weight(n, 0), weight(2_000, 7), []
    for trial, moment in enumerate(m for _ in range(TRIALS) for m in MOMENTS[backend]):
        seed = trial + 1
        landed.append(kill(writer(url, n, seed), url, moment, span))
        runs = whole_runs(url)
        assert sorted(runs.values()) == sorted([other, runs[big_tables(10).run_id]])
        got = runs[big_tables(10).run_id]
        assert got in (current, weight(n, seed)), f"trial {trial} ({moment}): neither the old nor the new copy"
        current = got
    print(f"replacement on {backend}: {sum(landed)} of {len(landed)} kills landed mid-write, every run whole after")


@pytest.mark.parametrize("backend", ["kuzu", "neo4j"])
def test_kill_during_import_of_new_runs(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Each run of a batch of two new runs arrives whole or not at all (on Kuzu the batch as one); what was there
    stays."""
    url = store_for(backend, tmp_path, request)
    n = EDGES or (100_000 if backend == "kuzu" else 30_000)
    span, landed = timed_write(url, n, 0, "first"), []
    for trial, moment in enumerate(m for _ in range(TRIALS) for m in MOMENTS[backend]):
        before = whole_runs(url)
        landed.append(kill(writer(url, n, trial + 1, f"new{trial}a", f"new{trial}b"), url, moment, span * 2))
        after = whole_runs(url)
        new = {k: v for k, v in after.items() if k not in before}
        assert {k: after[k] for k in before} == before
        # Kuzu publishes a batch in one transaction; Neo4j writes a run per transaction (each whole, checked above)
        assert len(new) in ((0, 2) if backend == "kuzu" else (0, 1, 2)), f"trial {trial} ({moment}): {len(new)} runs"
    print(f"import on {backend}: {sum(landed)} of {len(landed)} kills landed mid-write, every run whole after")


DISCOVER = ["discover", "--model", "toy", "--task", "digits", "--threshold", "0.9", "--threshold", "0.8",
            "--edges", "none", "--prompts", "16"]


@pytest.mark.parametrize("backend", ["kuzu", "neo4j"])
def test_kill_during_discover(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """`circuitdb discover` killed while it writes its ladder leaves whole runs only."""
    url = store_for(backend, tmp_path, request)
    command = [sys.executable, "-m", "circuitdb", *DISCOVER, "--store"]
    started = time.monotonic()
    subprocess.run([*command, url], check=True, capture_output=True)
    span = time.monotonic() - started
    assert len(whole_runs(url)) == 2
    landed = []
    for trial, moment in enumerate(m for _ in range(DISCOVER_TRIALS) for m in MOMENTS[backend]):
        fresh = f"kuzu:{tmp_path / f'd{trial}.kuzu'}" if backend == "kuzu" else url
        if backend == "neo4j":
            wipe_neo4j(url)
        proc = subprocess.Popen([*command, fresh], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        landed.append(kill(proc, fresh, moment, span))
        if backend == "neo4j" or Path(fresh[len("kuzu:"):]).exists():
            assert len(whole_runs(fresh)) <= 2
    print(f"discover on {backend}: {sum(landed)} of {len(landed)} kills landed before it ended, every run whole after")


@pytest.mark.xfail(engine_name() == "kuzu", reason="Kuzu 0.11.3 at times loses data when a writer of small runs is "
                   "killed (1 of 3 sets of 60 kills): its SENDER and RECEIVER tables come back empty", strict=False)
def test_kill_during_import_of_small_runs_leaves_whole_runs_and_a_writable_file(tmp_path: Path) -> None:
    """Small runs (300 edges, 4,000 memberships: a circuit of SAE features) as the large ones above: every run whole
    after each kill, and the catalog still takes a new run at the end."""
    url = f"kuzu:{tmp_path / 'kill.kuzu'}"
    span = timed_write(url, 300, 0, "first")
    for trial, moment in enumerate(m for _ in range(TRIALS) for m in MOMENTS["kuzu"]):
        before = whole_runs(url)
        kill(writer(url, 300, trial + 1, f"new{trial}a", f"new{trial}b"), url, moment, span * 2)
        after = whole_runs(url)
        assert {k: after[k] for k in before} == before
        assert len(after) - len(before) in (0, 2), f"trial {trial} ({moment})"
    timed_write(url, 300, 999, "after")
