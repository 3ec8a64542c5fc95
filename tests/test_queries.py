"""Every query against answers computed independently in Python from the fixture runs, on Kuzu and on Neo4j."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from itertools import combinations

import numpy as np
import pytest
from conftest import wipe_neo4j
from fixtures import METHODS, TASKS, THRESHOLDS, catalog_runs

from circuitdb import Catalog, CircuitdbError, Run, Selection
from circuitdb.queries import similarity as similarity_module
from circuitdb.queries.results import records

RUNS = catalog_runs()


def find(task: str, threshold: float, method: str = "prune") -> Run:
    (run,) = [r for r in RUNS if (r.task.name, r.threshold, r.method) == (task, threshold, method)]
    return run


def edge_map(run: Run) -> dict[tuple, float]:
    return {e.key: e.weight for e in run.edges}


@pytest.fixture(scope="module", params=["kuzu", "neo4j"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    """The 30-run fixture catalog written once per backend."""
    if request.param == "kuzu":
        url = f"kuzu:{tmp_path_factory.mktemp('q') / 'catalog.kuzu'}"
    else:
        url = request.getfixturevalue("neo4j_url")
        wipe_neo4j(url)
    with Catalog(url) as cat:
        cat.add(RUNS)
        yield cat


def sel(tasks: tuple[str, ...], threshold: float = 0.8, method: str = "prune") -> Selection:
    return Selection(tasks=tasks, thresholds=(threshold,), methods=(method,))


def test_fixture_size(loaded: Catalog) -> None:
    runs = loaded.runs()
    assert len(runs) == len(TASKS) * len(THRESHOLDS) * len(METHODS) == 30
    by_id = {r.id: r for r in RUNS}
    for info in runs:
        run = by_id[info.id]
        assert (info.n_nodes, info.n_edges, info.task, info.threshold) == (
            len(run.components),
            len(run.edges),
            run.task.name,
            run.threshold,
        )


@pytest.mark.parametrize("tasks", [("numerals", "numwords", "months"), ("days", "greater_than"), ("months",)])
def test_shared_components(loaded: Catalog, tasks: tuple[str, ...]) -> None:
    runs = [find(t, 0.8) for t in tasks]
    expected = set.intersection(*(set(r.components) for r in runs))
    frame = loaded.shared(sel(tasks)).members
    assert set(frame["component"]) == expected
    for row in records(frame):
        scores = [r.components[row["component"]] for r in runs]
        if None in scores:
            assert row["mean_score"] is None
        else:
            assert row["mean_score"] == pytest.approx(statistics.mean(scores), abs=1e-9)
            assert row["min_score"] == pytest.approx(min(scores), abs=1e-12)


def test_shared_edges(loaded: Catalog) -> None:
    tasks = ("numerals", "numwords")
    maps = [edge_map(find(t, 0.8)) for t in tasks]
    expected = set(maps[0]) & set(maps[1])
    frame = loaded.shared(sel(tasks), edges=True).members
    got = {(r["sender"], r["receiver"], r["input"]): r["mean_weight"] for r in records(frame)}
    assert set(got) == expected
    for key, weight in got.items():
        assert weight == pytest.approx((maps[0][key] + maps[1][key]) / 2, abs=1e-9)


def test_shared_across_thresholds_of_one_task(loaded: Catalog) -> None:
    frame = loaded.shared(Selection(tasks=("days",), methods=("eap",))).members
    expected = set.intersection(*(set(find("days", t, "eap").components) for t in THRESHOLDS))
    assert set(frame["component"]) == expected


@pytest.mark.parametrize("n_sets", [2, 3, 4, 5])
def test_venn_regions(loaded: Catalog, n_sets: int) -> None:
    tasks = TASKS[:n_sets]
    runs = [find(t, 0.8) for t in tasks]
    result = loaded.venn(sel(tasks), edges=False)
    union = set().union(*(r.components for r in runs))
    expected = {}
    for name in union:
        mask = sum(1 << i for i, r in enumerate(runs) if name in r.components)
        expected.setdefault(mask, set()).add(name)
    got = {row["region"]: set(row["members"]) for row in records(result.regions) if row["count"]}
    assert got == expected
    assert sum(result.regions["count"]) == len(union)
    if n_sets <= 4:
        assert list(result.regions["region"]) == list(range(1, 1 << n_sets))  # every region, empty ones too
    else:
        assert result.upset and all(result.regions["count"] > 0)


def test_venn_edges(loaded: Catalog) -> None:
    tasks = ("numerals", "months")
    maps = [edge_map(find(t, 0.8)) for t in tasks]
    result = loaded.venn(sel(tasks), edges=True)
    counts = dict(zip(result.regions["region"], result.regions["count"]))
    assert counts == {
        1: len(set(maps[0]) - set(maps[1])),
        2: len(set(maps[1]) - set(maps[0])),
        3: len(set(maps[0]) & set(maps[1])),
    }


def test_diff_components_and_edges(loaded: Catalog) -> None:
    a, b = find("numerals", 0.8), find("months", 0.8)
    result = loaded.diff(sel(("numerals", "months")))
    ra, rb, frame = result.a, result.b, result.rows
    assert (ra.id, rb.id) == (a.id, b.id)
    rows = {r["component"]: r for r in records(frame)}
    assert {n for n, r in rows.items() if r["side"] == "only_a"} == set(a.components) - set(b.components)
    assert {n for n, r in rows.items() if r["side"] == "only_b"} == set(b.components) - set(a.components)
    for name in set(a.components) & set(b.components):
        assert rows[name]["side"] == "both"
        if a.components[name] is not None:
            assert rows[name]["delta"] == pytest.approx(b.components[name] - a.components[name], abs=1e-9)
    edges = loaded.diff(sel(("numerals", "months")), edges=True).rows
    ea, eb = edge_map(a), edge_map(b)
    sides = {(r["sender"], r["receiver"], r["input"]): r for r in records(edges)}
    assert {k for k, r in sides.items() if r["side"] == "both"} == set(ea) & set(eb)
    assert {k for k, r in sides.items() if r["side"] == "only_a"} == set(ea) - set(eb)
    for key in set(ea) & set(eb):
        assert sides[key]["delta"] == pytest.approx(eb[key] - ea[key], abs=1e-9)


def jaccard(a: dict, b: dict, weighted: bool) -> float:
    def w(v: float | None) -> float:
        return 1.0 if v is None else abs(v)

    if not weighted:
        return len(set(a) & set(b)) / len(set(a) | set(b))
    common = sum(min(w(a[k]), w(b[k])) for k in set(a) & set(b))
    return common / (sum(map(w, a.values())) + sum(map(w, b.values())) - common)


@pytest.mark.parametrize(("edges", "weighted"), [(False, False), (False, True), (True, False), (True, True)])
def test_similarity_matrix(loaded: Catalog, edges: bool, weighted: bool) -> None:
    matrix = loaded.similarity(Selection(thresholds=(0.8,), methods=("prune",)), edges=edges, weighted=weighted).matrix
    runs = [find(t, 0.8) for t in sorted(TASKS)]  # resolve() orders by task name when no order is given
    assert list(matrix.index) == sorted(TASKS)
    for i, j in combinations(range(len(runs)), 2):
        sets = [edge_map(r) if edges else r.components for r in (runs[i], runs[j])]
        assert matrix.iat[i, j] == pytest.approx(jaccard(*sets, weighted), abs=1e-9)
        assert matrix.iat[i, j] == matrix.iat[j, i]
    assert all(matrix.iat[i, i] == 1.0 for i in range(len(runs)))


@pytest.mark.parametrize(("dense_share", "per_query", "small_nodes"), [(0, 100, 0), (10**9, 100, 1 << 29),
                                                                     (16, 10**6, 1 << 29)])
# every shared item through the sparse product or the dense one, a few runs per query; or all runs in one query (edges:
# a scan of all); edge ends renumbered (as where the store's node numbers are large) or keyed by their numbers as they are
@pytest.mark.parametrize(("edges", "weighted"), [(False, False), (False, True), (True, False), (True, True)])
def test_similarity_of_all_runs(loaded: Catalog, monkeypatch: pytest.MonkeyPatch, dense_share: int, per_query: int,
                                small_nodes: int, edges: bool, weighted: bool) -> None:
    """All 30 runs, the ladders of one task nested and every circuit holding the core: scores of None count 1."""
    monkeypatch.setattr(similarity_module, "DENSE_SHARE", dense_share)
    monkeypatch.setattr(similarity_module, "ITEMS_PER_QUERY", per_query)
    monkeypatch.setattr(similarity_module, "SMALL_NODES", small_nodes)
    result = loaded.similarity(edges=edges, weighted=weighted)
    by_id = {r.id: r for r in RUNS}
    runs = [by_id[i] for i in result.to_dict()["run_ids"]]
    matrix = result.matrix.to_numpy()
    for i, j in combinations(range(len(runs)), 2):
        sets = [edge_map(r) if edges else r.components for r in (runs[i], runs[j])]
        assert matrix[i, j] == matrix[j, i] == pytest.approx(jaccard(*sets, weighted), abs=1e-12)
    assert (matrix.diagonal() == 1.0).all()


@pytest.mark.parametrize("dense_share", [0, 8, 10**9])  # all sparse, both (each kernel), all dense
def test_overlap_kernels_match_a_direct_count(monkeypatch: pytest.MonkeyPatch, dense_share: int) -> None:
    """shared_count and shared_min on a random incidence with rare to common items, tied and zero weights."""
    monkeypatch.setattr(similarity_module, "DENSE_SHARE", dense_share)
    rng = np.random.default_rng(dense_share)
    n, k = 70, 300
    holds = rng.random((n, k)) < np.linspace(0.005, 0.95, k)
    ties = rng.choice([0.0, 0.25, 1.0, 3.0], (n, k))
    weights = np.where(holds, np.where(rng.random((n, k)) < 0.5, ties, rng.random((n, k))), 0.0)
    rows, items = np.nonzero(holds)
    off = ~np.eye(n, dtype=bool)
    counts = similarity_module.shared_count(rows, items, n)
    assert (counts[off] == (holds.astype(int) @ holds.T.astype(int))[off]).all()
    mins = similarity_module.shared_min(rows, items, weights[rows, items], n)
    assert np.allclose(mins[off], np.minimum(weights[:, None, :], weights[None, :, :]).sum(-1)[off], rtol=0, atol=1e-12)
    assert (mins.diagonal() == 0).all()
    assert not similarity_module.shared_min(rows[:0], items[:0], weights[:0, 0], n).any()


def test_ladder_nesting(loaded: Catalog) -> None:
    frame = loaded.ladder("gpt2-small", "months", ("prune",)).rungs
    rows = records(frame)
    assert [r["threshold"] for r in rows] == list(THRESHOLDS)
    for row, threshold in zip(rows, THRESHOLDS):
        assert set(row["members"]) == set(find("months", threshold).components)
        assert row["size"] == len(row["members"])
    assert rows[0]["contains_stricter"] is None
    assert all(r["within_stricter"] for r in rows[1:])  # the fixture prunes each level from the stricter one
    assert not any(r["contains_stricter"] for r in rows[1:])


def test_nests_in_and_evaluations_round_trip(loaded: Catalog) -> None:
    original = find("days", 0.8, "eap")
    back = loaded.run(original.id)
    assert back.nests_in == find("days", 0.9, "eap").id
    assert back.evaluations == original.evaluations
    assert back.components == original.components
    assert sorted(back.edges, key=lambda e: e.key) == sorted(original.edges, key=lambda e: e.key)


def test_selection_errors(loaded: Catalog) -> None:
    with pytest.raises(CircuitdbError, match="unknown task nope"):
        loaded.shared(Selection(tasks=("nope",)))
    with pytest.raises(CircuitdbError, match="ambiguous.*method"):
        loaded.shared(Selection(tasks=("months",), thresholds=(0.8,)))
    with pytest.raises(CircuitdbError, match="no run matches"):
        loaded.shared(Selection(tasks=("months",), thresholds=(0.5,)))
    with pytest.raises(CircuitdbError, match="threshold must be in"):
        Selection(thresholds=(0.0,))
    with pytest.raises(CircuitdbError, match="needs 2"):
        loaded.diff(sel(("months",)))


def answers(cat: Catalog) -> dict:
    """The whole query suite as plain data (floats rounded: the two engines sum in different orders)."""

    def rounded(value: object) -> object:
        if isinstance(value, float):
            return None if math.isnan(value) else round(value, 9)
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rounded(v) for v in value]
        return value

    three = sel(("numerals", "numwords", "months"))
    return rounded(
        {
            "runs": cat.runs().to_dict(),
            "shared": cat.shared(three).to_dict(),
            "shared_edges": cat.shared(three, edges=True).to_dict(),
            "venn": cat.venn(three).to_dict(),
            "upset": cat.venn(sel(TASKS)).to_dict(),
            "diff": cat.diff(sel(("numerals", "months"))).to_dict(),
            "diff_edges": cat.diff(sel(("numerals", "months")), edges=True).to_dict(),
            "similarity": cat.similarity(weighted=True).to_dict(),
            "similarity_edges": cat.similarity(edges=True).to_dict(),
            "ladder": cat.ladder("gpt2-small", "numerals", ("eap",)).to_dict(),
        }
    )


def test_kuzu_and_neo4j_give_identical_answers(neo4j_url: str, tmp_path) -> None:
    wipe_neo4j(neo4j_url)
    with Catalog(f"kuzu:{tmp_path / 'k.kuzu'}") as kuzu_cat, Catalog(neo4j_url) as neo_cat:
        kuzu_cat.add(RUNS)
        neo_cat.add(RUNS)
        assert answers(kuzu_cat) == answers(neo_cat)
