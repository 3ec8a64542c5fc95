"""The field's circuit formats: score files keep every score and are cut again later; EAP-IG/MIB, auto-circuit, ACDC
and circuit-tracer files in and out, on both stores."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from circuitdb import Catalog, CircuitdbError, Selection
from circuitdb.domain import graph_edges

LAYERS, HEADS = 2, 4  # the toy model's shape


def scored_graph(seed: int = 0, in_graph: float = 0.2, layers: int = LAYERS, heads: int = HEADS) -> dict:
    """An EAP-IG graph JSON of the full graph with random scores, some edges in the graph, as Graph.to_json lays out."""
    rng = random.Random(seed)
    edges = {}
    for sender, receiver, qkv in graph_edges(layers, heads):
        name = f"{sender}->{receiver}" + (f"<{qkv}>" if qkv else "")
        edges[name] = {"score": rng.gauss(0, 1), "in_graph": rng.random() < in_graph}
    kept = {end for name, e in edges.items() if e["in_graph"] for end in name.split("<")[0].split("->")}
    names = ["input", *(f"a{l_}.h{h}" for l_ in range(layers) for h in range(heads)), *(f"m{l_}" for l_ in range(layers)),
             "logits"]
    nodes = {n: {"in_graph": n in kept, "score": None} for n in names}
    return {"cfg": {"n_layers": layers, "n_heads": heads, "parallel_attn_mlp": False, "d_model": 32},
            "nodes": nodes, "edges": edges}


def write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def ranked(edges: dict, signed: bool = False) -> list[str]:
    return sorted(edges, key=lambda n: edges[n]["score"] if signed else abs(edges[n]["score"]), reverse=True)


def test_a_score_file_keeps_every_score_and_cuts_later(catalog: Catalog, tmp_path: Path) -> None:
    """All edge scores are stored with the in-graph circuit; cuts by top-n, fraction, |score| or signed score are runs
    of their own, linked to the scores they came from, and the same cut again replaces itself."""
    graph = scored_graph()
    path = write(tmp_path / "graph.json", graph)
    (info,) = catalog.import_file("eap-ig", path, model="toy", task="digits")
    run = catalog.run(info.id)
    assert run.scores == {n: e["score"] for n, e in graph["edges"].items()}
    assert sorted(e.name for e in run.edges) == sorted(n for n, e in graph["edges"].items() if e["in_graph"])
    assert run.params["source_tool"] == "EAP-IG" and len(run.params["source_sha256"]) == 64

    (top,) = catalog.cut(info.id, top_n=7)
    cut = catalog.run(top.id)
    assert [e.name for e in sorted(cut.edges, key=lambda e: -abs(e.weight))] == ranked(graph["edges"])[:7]
    assert (cut.cut, cut.params["cut_from"], cut.scores) == ("top-n 7 |score|", info.id, {})
    ends = {end for e in cut.edges for end in (e.sender, e.receiver)}
    assert set(cut.components) == ends

    (signed,) = catalog.cut(info.id, fraction=0.1, absolute=False)
    want = ranked(graph["edges"], signed=True)[: round(0.1 * len(graph["edges"]))]
    assert sorted(e.name for e in catalog.run(signed.id).edges) == sorted(want)
    (above,) = catalog.cut(info.id, min_score=1.5)
    assert sorted(e.name for e in catalog.run(above.id).edges) == sorted(
        n for n, e in graph["edges"].items() if abs(e["score"]) >= 1.5)
    assert len({info.id, top.id, signed.id, above.id}) == 4
    catalog.cut(info.id, top_n=7)
    assert len(catalog.runs()) == 4  # the same cut again replaced its earlier copy


@pytest.mark.parametrize(("cut", "message"), [
    ({}, "exactly one of"), ({"top_n": 3, "fraction": 0.5}, "exactly one of"), ({"top_n": 10**6}, "more than the"),
    ({"fraction": 1.5}, r"--fraction must be in \(0, 1\]"), ({"min_score": 99.0}, "keeps nothing"),
])
def test_impossible_cuts_are_refused_and_write_nothing(tmp_path: Path, cut: dict, message: str) -> None:
    with Catalog(f"kuzu:{tmp_path / 'c.kuzu'}") as catalog:
        (info,) = catalog.import_file("eap-ig", write(tmp_path / "g.json", scored_graph()), model="toy", task="digits")
        with pytest.raises(CircuitdbError, match=message):
            catalog.cut(info.id, **cut)
        (child,) = catalog.cut(info.id, top_n=3)
        with pytest.raises(CircuitdbError, match="no score list"):
            catalog.cut(child.id, top_n=1)
        assert len(catalog.runs()) == 2


# --- independent spellings of the other tools' names, from their own documentation and code ---

def auto_circuit_name(src: str, dest: str) -> str:
    """An auto-circuit edge (`Resid Start`, `A0.1`, `MLP 0` -> `A1.0.Q`, `A1.0`, `MLP 1`, `Resid End`) in EAP-IG's
    spelling."""
    def node(text: str) -> str:
        if text in ("Resid Start", "Resid End"):
            return "input" if text == "Resid Start" else "logits"
        if text.startswith("MLP "):
            return "m" + text[4:]
        layer, head = text[1:].split(".")[:2]
        return f"a{layer}.h{head}"
    qkv = dest.rsplit(".", 1)[1].lower() if dest.count(".") == 2 else ""
    return f"{node(src)}->{node(dest)}" + (f"<{qkv}>" if qkv else "")


@pytest.mark.parametrize("suffix", ["", "_noqkv"])
def test_auto_circuit_scores_match_auto_circuits_own_edges(catalog: Catalog, examples: Path, suffix: str) -> None:
    """Files written by auto-circuit 1.0.1 (tests/data/build_auto_circuit.py): every edge's score, as auto-circuit's
    own Edge objects read it, is the score of the edge of the same name; a cut is the top edges of that list."""
    data = Path(__file__).parent / "data" / "auto_circuit"
    truth = json.loads((data / f"edges{suffix}.json").read_text())
    (info,) = catalog.import_file("auto-circuit", data / f"prune_scores{suffix}.pt", model="toy", task="digits")
    run = catalog.run(info.id)
    want = {auto_circuit_name(e["src"], e["dest"]): e["score"] for e in truth["edges"]}
    assert run.scores.keys() == want.keys()
    assert all(abs(run.scores[n] - want[n]) < 1e-7 for n in want)
    assert (run.params["source_tool"], run.components, run.edges) == ("auto-circuit", {}, [])
    (top,) = catalog.cut(info.id, top_n=5)
    assert {e.name for e in catalog.run(top.id).edges} == set(sorted(want, key=lambda n: -abs(want[n]))[:5])


def acdc_files(tmp_path: Path) -> tuple[Path, Path, dict[str, float]]:
    """An ACDC subgraph (`save_subgraph`: torch.save of {(receiver, index, sender, index): present}) and edge list
    (`save_edges`: pickle of [((receiver, TorchIndex, sender, TorchIndex), effect size tensor)]) built as ACDC builds
    them, with a stand-in for its TorchIndex class; and the edges they hold in EAP-IG's spelling."""
    import pickle
    import sys
    import types

    import torch

    module = types.ModuleType("acdc.TLACDCEdge")

    class TorchIndex:
        def __init__(self, items: tuple) -> None:
            self.as_index = tuple(slice(None) if x is None else x for x in items)
            self.hashable_tuple = tuple(items)

    TorchIndex.__module__ = module.__name__
    TorchIndex.__qualname__ = "TorchIndex"
    module.TorchIndex = TorchIndex
    whole = (None,)
    present = {
        ("blocks.1.hook_q_input", (None, None, 3), "blocks.0.attn.hook_result", (None, None, 1)): ("a0.h1->a1.h3<q>", 0.5),
        ("blocks.1.hook_v_input", (None, None, 0), "blocks.0.hook_resid_pre", whole): ("input->a1.h0<v>", -0.25),
        ("blocks.0.hook_mlp_in", whole, "blocks.0.attn.hook_result", (None, None, 2)): ("a0.h2->m0", 0.125),
        ("blocks.1.hook_resid_post", whole, "blocks.1.hook_mlp_out", whole): ("m1->logits", 2.0),
        ("blocks.1.hook_resid_post", whole, "blocks.1.attn.hook_result", (None, None, 3)): ("a1.h3->logits", 1.0),
    }
    inside = ("blocks.1.attn.hook_q", (None, None, 3), "blocks.1.hook_q_input", (None, None, 3))  # within a head
    absent = ("blocks.1.hook_k_input", (None, None, 2), "blocks.0.hook_mlp_out", whole)
    subgraph = {**{key: True for key in present}, inside: True, absent: False}
    torch.save(subgraph, tmp_path / "subgraph.pth")
    sys.modules.update({"acdc": types.ModuleType("acdc"), "acdc.TLACDCEdge": module})
    try:
        listed = [((r, TorchIndex(ri), s, TorchIndex(si)), torch.tensor(effect))
                  for (r, ri, s, si), (_, effect) in present.items()]
        listed.append(((inside[0], TorchIndex(inside[1]), inside[2], TorchIndex(inside[3])), None))
        with (tmp_path / "edges.pkl").open("wb") as out:
            pickle.dump(listed, out)
    finally:
        del sys.modules["acdc"], sys.modules["acdc.TLACDCEdge"]
    return tmp_path / "subgraph.pth", tmp_path / "edges.pkl", dict(present.values())


def test_acdc_subgraphs_and_edge_lists(catalog: Catalog, tmp_path: Path) -> None:
    subgraph, edge_list, want = acdc_files(tmp_path)
    (first,) = catalog.import_file("acdc", subgraph, model="toy", task="digits")
    (second,) = catalog.import_file("acdc", edge_list, model="toy", task="digits", method="acdc-effects")
    circuit, effects = catalog.run(first.id), catalog.run(second.id)
    assert {e.name for e in circuit.edges} == set(want) and circuit.scores == {}
    assert {e.name: e.weight for e in effects.edges} == want == effects.scores
    assert set(circuit.components) == {"input", "a0.h1", "a0.h2", "a1.h0", "a1.h3", "m0", "m1", "logits"}
    assert catalog.similarity(edges=True).matrix.to_numpy().min() == 1.0


def eapig_pt(graph: dict, path: Path) -> Path:
    """`Graph.to_pt`'s layout of a JSON graph: dense [sender, receiver input] matrices indexed by EAP-IG's own
    `src_nodes` (input, per layer heads then MLP) and `dst_nodes` (per layer heads' q, then k, then v, then the MLP;
    logits last) lists."""
    import torch

    layers, heads = graph["cfg"]["n_layers"], graph["cfg"]["n_heads"]
    src = ["input"] + [n for layer in range(layers) for n in [*(f"a{layer}.h{h}" for h in range(heads)), f"m{layer}"]]
    dst = [n for layer in range(layers) for n in [*(f"a{layer}.h{h}<{x}>" for x in "qkv" for h in range(heads)),
                                                  f"m{layer}"]] + ["logits"]
    scores, kept = torch.zeros(len(src), len(dst)), torch.zeros(len(src), len(dst), dtype=torch.bool)
    for name, edge in graph["edges"].items():
        sender, receiver = name.split("->")
        scores[src.index(sender), dst.index(receiver)] = edge["score"]
        kept[src.index(sender), dst.index(receiver)] = edge["in_graph"]
    nodes = torch.tensor([graph["nodes"][n]["in_graph"] for n in src])
    torch.save({"cfg": graph["cfg"], "src_nodes": src, "dst_nodes": dst, "edges_scores": scores,
                "edges_in_graph": kept, "nodes_in_graph": nodes}, path)
    return path


def test_eapig_json_and_pt_hold_the_same_run_and_export_round_trips(catalog: Catalog, tmp_path: Path) -> None:
    """A graph read from JSON and from EAP-IG's .pt layout is the same circuit and score list (float32 in the .pt);
    exported again as EAP-IG JSON, it is the full graph in EAP-IG's layout and reads back exactly."""
    graph = scored_graph(seed=3)
    (from_json,) = catalog.import_file("eap-ig", write(tmp_path / "g.json", graph), model="toy", task="digits")
    (from_pt,) = catalog.import_file("eap-ig", eapig_pt(graph, tmp_path / "g.pt"), model="toy", task="digits",
                                     method="eap-ig-pt")
    a, b = catalog.run(from_json.id), catalog.run(from_pt.id)
    assert sorted(e.name for e in a.edges) == sorted(e.name for e in b.edges)
    assert a.scores.keys() == b.scores.keys()
    assert all(abs(a.scores[n] - b.scores[n]) < 1e-6 for n in a.scores)
    out = tmp_path / "export.json"
    catalog.export(Selection(run_ids=(from_json.id,)), out, fmt="eap-ig")
    written = json.loads(out.read_text())
    assert list(written) == ["cfg", "nodes", "edges"] and list(written["edges"]) == list(graph["edges"])
    assert written["edges"] == graph["edges"]
    assert {n for n, v in written["nodes"].items() if v["in_graph"]} == set(a.components)
    (again,) = catalog.import_file("eap-ig", out, model="toy", task="digits", method="again")
    back = catalog.run(again.id)
    assert (back.components, back.edges, back.scores) == (a.components, a.edges, a.scores)
