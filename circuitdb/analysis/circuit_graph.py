"""networkx graphs of one circuit or the overlap of up to 3, and their Graphviz DOT/SVG/PNG rendering."""

from __future__ import annotations

from pathlib import Path

import graphviz
import networkx as nx

from circuitdb.domain import parse_component
from circuitdb.errors import CircuitdbError

# one colour per Venn region of up to 3 sets (bit i = set i), ColorBrewer Set2/Pastel-like
REGION_COLOURS = {1: "#8dd3c7", 2: "#fdb462", 3: "#b3de69", 4: "#bebada", 5: "#80b1d3", 6: "#fccde5", 7: "#fb8072"}
SINGLE_COLOUR = "#cfe2f3"
PICTURE_SUFFIXES = (".dot", ".gv", ".svg", ".png", ".pdf")


def overlap_graph(
    labels: list[str], run_ids: list[str], members: list[dict], edges: list[dict], only_shared: bool = False
) -> nx.DiGraph:
    """Nodes and edges of the runs; each carries `region` (bitmask of the runs containing it) and score/weight."""
    if not 1 <= len(run_ids) <= 3:
        raise CircuitdbError(f"a circuit picture shows 1 to 3 circuits, got {len(run_ids)}")
    bit = {rid: 1 << i for i, rid in enumerate(run_ids)}
    full = (1 << len(run_ids)) - 1
    graph = nx.DiGraph(labels=labels)
    for row in members:
        node = graph.nodes.get(row["component"]) or {"region": 0, "scores": []}
        node["region"] |= bit[row["run"]]
        if row["score"] is not None:
            node["scores"].append(row["score"])
        graph.add_node(row["component"], **node)
    for row in edges:
        key = (row["sender"], row["receiver"])
        data = graph.edges[key] if graph.has_edge(*key) else {"region": 0, "weights": [], "inputs": set()}
        data["region"] |= bit[row["run"]]
        data["weights"].append(abs(row["weight"]))
        if row["input"]:
            data["inputs"].add(row["input"])
        graph.add_edge(*key, **data)
    if only_shared:
        graph.remove_nodes_from([n for n, d in list(graph.nodes(data=True)) if d["region"] != full])
        graph.remove_edges_from([(a, b) for a, b, d in list(graph.edges(data=True)) if d["region"] != full])
    return graph


def strongest(members: list[dict], edges: list[dict], top: int) -> tuple[list[dict], list[dict]]:
    """Each run's `top` components by |score| (unscored ends such as input and logits stay), and the edges among them."""
    if top < 1:
        raise CircuitdbError(f"--top must be at least 1, got {top}")
    ranked = sorted((m for m in members if m["score"] is not None), key=lambda m: (m["run"], -abs(m["score"]), m["component"]))
    keep, count = set(), {}
    for m in ranked:
        if count.get(m["run"], 0) < top:
            keep.add((m["run"], m["component"]))
            count[m["run"]] = count.get(m["run"], 0) + 1
    members = [m for m in members if m["score"] is None or (m["run"], m["component"]) in keep]
    names = {(m["run"], m["component"]) for m in members}
    return members, [e for e in edges if (e["run"], e["sender"]) in names and (e["run"], e["receiver"]) in names]


def _colour(region: int, n_sets: int) -> str:
    return SINGLE_COLOUR if n_sets == 1 else REGION_COLOURS[region]


def to_dot(graph: nx.DiGraph, title: str = "") -> graphviz.Digraph:
    """Graphviz digraph: one rank per layer, colour = which circuits hold the node/edge, pen width = |weight|."""
    labels: list[str] = graph.graph["labels"]
    dot = graphviz.Digraph(
        "circuit",
        graph_attr={
            "rankdir": "BT",
            "label": title,
            "labelloc": "t",
            "fontname": "Helvetica",
            "nodesep": "0.25",
            "ranksep": "0.45",
        },
    )
    dot.attr("node", shape="box", style="filled,rounded", fontname="Helvetica", fontsize="11")
    layers: dict[int, list[str]] = {}
    for name in graph.nodes:
        component = parse_component(name)
        layers.setdefault(component.sort_key()[0], []).append(name)
    previous = None
    for layer in sorted(layers):
        anchor = f"layer_{layer}"
        with dot.subgraph() as rank:
            rank.attr(rank="same")
            caption = {-1: "embed", 10**9: "out"}.get(layer, f"L{layer}")
            rank.node(anchor, caption, shape="plaintext", style="", fontcolor="#888888")
            for name in sorted(layers[layer], key=lambda n: parse_component(n).sort_key()):
                rank.node(name, fillcolor=_colour(graph.nodes[name]["region"], len(labels)))
        if previous:
            dot.edge(previous, anchor, style="invis")
        previous = anchor
    weights = [max(d["weights"]) for *_, d in graph.edges(data=True)] or [1.0]
    top = max(weights) or 1.0
    for a, b, data in sorted(graph.edges(data=True), key=lambda e: (e[0], e[1])):
        width = 0.6 + 4.0 * max(data["weights"]) / top
        colour = "#555555" if len(labels) == 1 else _colour(data["region"], len(labels))
        dot.edge(a, b, penwidth=f"{width:.2f}", color=colour, label="".join(sorted(data["inputs"])), fontsize="9")
    if len(labels) > 1:
        with dot.subgraph(name="cluster_legend") as legend:
            legend.attr(label="in", fontname="Helvetica", style="rounded")
            for region in sorted({d["region"] for _, d in graph.nodes(data=True)}):
                sets = " & ".join(lab for i, lab in enumerate(labels) if region >> i & 1)
                legend.node(f"legend{region}", sets, fillcolor=_colour(region, len(labels)), shape="note")
    return dot


RELATION_COLOURS = {"cosine": "#80b1d3", "match": "#fb8072", "co-member": "#b3de69"}


def relation_dot(center: str, relations: list[dict]) -> graphviz.Graph:
    """A feature's neighbourhood: one edge per relation, coloured by kind, labelled with its weight."""
    dot = graphviz.Graph("relations", graph_attr={"layout": "neato", "overlap": "false", "label": f"relations of {center}",
                                                   "labelloc": "t", "fontname": "Helvetica"})
    dot.attr("node", shape="box", style="filled,rounded", fontname="Helvetica", fontsize="10", fillcolor="#eeeeee")
    dot.node(center, fillcolor="#ffd966")
    for row in relations:
        dot.node(row["other"])
        colour = RELATION_COLOURS.get(row["kind"], "#999999")
        dot.edge(center, row["other"], label=f"{row['kind']} {row['weight']:.2f}", color=colour, fontsize="8",
                 penwidth=f"{0.6 + 3 * min(abs(row['weight']), 1.0):.2f}")
    return dot


def write_picture(dot: graphviz.Digraph | graphviz.Graph, path: Path) -> Path:
    """Write DOT text (`.dot`/`.gv`, no binary needed) or render SVG/PNG/PDF with Graphviz's `dot`."""
    suffix = path.suffix.lower().lstrip(".")
    if f".{suffix}" not in PICTURE_SUFFIXES:
        raise CircuitdbError(f"{path}: picture format must be {', '.join(PICTURE_SUFFIXES)}")
    if suffix in ("dot", "gv"):
        path.write_text(dot.source)
        return path
    try:
        path.write_bytes(dot.pipe(format=suffix))
    except graphviz.ExecutableNotFound:
        raise CircuitdbError(
            "rendering needs Graphviz's `dot` (apt-get install graphviz); .dot output works without it"
        ) from None
    return path
