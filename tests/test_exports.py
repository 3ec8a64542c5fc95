"""Graphviz pictures, Venn/UpSet plots and tables built from real query results."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from fixtures import catalog_runs

from circuitdb import Catalog, CircuitdbError, Selection
from circuitdb.analysis.circuit_graph import REGION_COLOURS, overlap_graph, to_dot, write_picture
from circuitdb.analysis.plots import heatmap, venn_plot
from circuitdb.analysis.tables import write_table
from circuitdb.queries.selection import labels

RUNS = catalog_runs()


@pytest.fixture(scope="module")
def cat(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    catalog = Catalog(f"kuzu:{tmp_path_factory.mktemp('x') / 'c.kuzu'}")
    catalog.add(RUNS)
    return catalog


def three(cat: Catalog, only_shared: bool = False):
    runs = cat.select(Selection(tasks=("numerals", "numwords", "months"), thresholds=(0.8,), methods=("prune",)))
    members, edges = cat.circuits(runs)
    return runs, overlap_graph(labels(runs), [r.id for r in runs], members, edges, only_shared)


def test_overlap_graph_regions_match_the_runs(cat: Catalog) -> None:
    runs, graph = three(cat)
    sets = [set(cat.run(r.id).components) for r in runs]
    for name, data in graph.nodes(data=True):
        assert data["region"] == sum(1 << i for i, s in enumerate(sets) if name in s)
    edge_sets = [{(e.sender, e.receiver) for e in cat.run(r.id).edges} for r in runs]
    for a, b, data in graph.edges(data=True):
        assert data["region"] == sum(1 << i for i, s in enumerate(edge_sets) if (a, b) in s)


def test_only_shared_keeps_the_shared_subcircuit(cat: Catalog) -> None:
    runs, graph = three(cat, only_shared=True)
    shared = cat.shared(Selection(run_ids=tuple(r.id for r in runs)))
    assert set(graph.nodes) == set(shared.members["component"])
    assert all(d["region"] == 7 for *_, d in graph.edges(data=True))


def test_dot_colours_nodes_by_membership_and_widths_by_weight(cat: Catalog, tmp_path: Path) -> None:
    _, graph = three(cat)
    dot = to_dot(graph, "three").source
    node = re.search(r'"a4\.h4" \[fillcolor="([^"]+)"', dot)
    assert node and node.group(1) == REGION_COLOURS[7]  # a core head: in all three circuits
    widths = [float(w) for w in re.findall(r'penwidth="?([\d.]+)', dot)]
    assert min(widths) >= 0.6 and max(widths) == pytest.approx(4.6)
    assert "numerals & numwords & months" in dot
    path = write_picture(to_dot(graph), tmp_path / "g.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert write_picture(to_dot(graph), tmp_path / "g.dot").read_text().startswith("digraph")
    with pytest.raises(CircuitdbError, match="picture format"):
        write_picture(to_dot(graph), tmp_path / "g.jpg")


def test_at_most_three_circuits_in_a_picture(cat: Catalog) -> None:
    runs = cat.select(Selection(thresholds=(0.8,), methods=("prune",)))
    members, edges = cat.circuits(runs)
    with pytest.raises(CircuitdbError, match="1 to 3 circuits"):
        overlap_graph(labels(runs), [r.id for r in runs], members, edges)


@pytest.mark.parametrize("n_sets", [2, 3, 5])
def test_venn_and_upset_plots(cat: Catalog, tmp_path: Path, n_sets: int) -> None:
    tasks = ("numerals", "numwords", "months", "days", "greater_than")[:n_sets]
    result = cat.venn(Selection(tasks=tasks, thresholds=(0.8,), methods=("prune",)))
    path = venn_plot(result.labels, result.regions, tmp_path / "v.png")
    assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 5000


def test_heatmap_and_tables(cat: Catalog, tmp_path: Path) -> None:
    matrix = cat.similarity(Selection(thresholds=(0.8,), methods=("prune",))).matrix
    assert heatmap(matrix, tmp_path / "h.png").read_bytes()[:4] == b"\x89PNG"
    frame = cat.shared(Selection(tasks=("numerals", "months"), thresholds=(0.8,), methods=("prune",))).members
    back = pd.read_csv(write_table(frame, tmp_path / "t.csv"))
    assert list(back["component"]) == list(frame["component"])
    assert [r["component"] for r in json.loads(write_table(frame, tmp_path / "t.json").read_text())] == list(frame["component"])
