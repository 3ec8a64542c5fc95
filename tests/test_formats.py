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


def scored_graph(seed: int = 0, in_graph: float = 0.2, layers: int = LAYERS, heads: int = HEADS,
                 parallel: bool = False) -> dict:
    """An EAP-IG graph JSON of the full graph with random scores, some edges in the graph, as Graph.to_json lays out."""
    rng = random.Random(seed)
    edges = {}
    for sender, receiver, qkv in graph_edges(layers, heads, parallel=parallel):
        name = f"{sender}->{receiver}" + (f"<{qkv}>" if qkv else "")
        edges[name] = {"score": rng.gauss(0, 1), "in_graph": rng.random() < in_graph}
    kept = {end for name, e in edges.items() if e["in_graph"] for end in name.split("<")[0].split("->")}
    names = ["input", *(f"a{l_}.h{h}" for l_ in range(layers) for h in range(heads)), *(f"m{l_}" for l_ in range(layers)),
             "logits"]
    nodes = {n: {"in_graph": n in kept, "score": None} for n in names}
    return {"cfg": {"n_layers": layers, "n_heads": heads, "parallel_attn_mlp": parallel, "d_model": 32},
            "nodes": nodes, "edges": edges}


def write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def edge_key(name: str) -> tuple[str, str, str]:
    """(sender, receiver, q/k/v) of `a0.h1->a1.h2<q>`."""
    pair, _, qkv = name.partition("<")
    sender, receiver = pair.split("->")
    return sender, receiver, qkv.rstrip(">")


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
def test_impossible_cuts_are_refused_and_write_nothing(store_url: str, tmp_path: Path, cut: dict, message: str) -> None:
    with Catalog(store_url) as catalog:
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


TRACER = Path(__file__).parent / "data" / "neuronpedia" / "circuit-tracer-example.json"


def neuronpedia_valid(graph: dict) -> bool:
    """Whether Neuronpedia's published schema (draft-07) accepts the graph, as its uploader checks it."""
    import jsonschema

    schema = json.loads((Path(__file__).parents[1] / "circuitdb" / "ingest" / "schemas" /
                         "neuronpedia-graph.schema.json").read_text())
    return jsonschema.Draft7Validator(schema).is_valid(graph)


def test_circuit_tracer_graphs_keep_positions_and_export_back_exactly(catalog: Catalog, tmp_path: Path) -> None:
    """A graph as circuit-tracer's own models write it: nodes per position (features, an error, embeddings, a logit),
    links as weighted edges; exported, it is the same graph and Neuronpedia's schema accepts it; the same features at
    other positions are other components unless compared by name."""
    original = json.loads(TRACER.read_text())
    (info,) = catalog.import_file("circuit-tracer", TRACER, model="toy", task="cat")
    run = catalog.run(info.id)
    assert set(run.components) == {"input@0", "input@1", "ftc0/1234@1", "ftc1/42@1", "ftc1/err@1", "logits/3290@1"}
    assert {(e.sender, e.receiver): e.weight for e in run.edges} == {
        ("input@1", "ftc0/1234@1"): 4.1, ("input@0", "ftc1/42@1"): 0.7, ("ftc0/1234@1", "ftc1/42@1"): 2.3,
        ("ftc1/42@1", "logits/3290@1"): 1.9, ("ftc1/err@1", "logits/3290@1"): -0.4}
    assert run.components["ftc0/1234@1"] == 0.61  # influence
    out = tmp_path / "graph.json"
    catalog.export(Selection(run_ids=(info.id,)), out, fmt="neuronpedia")
    written = json.loads(out.read_text())
    assert written == original and neuronpedia_valid(written)

    moved = json.loads(TRACER.read_text())
    for node in moved["nodes"]:
        node["ctx_idx"] += 1
        node["node_id"] = node["node_id"].rsplit("_", 1)[0] + f"_{node['ctx_idx']}"
    for link in moved["links"]:
        for end in ("source", "target"):
            link[end] = link[end].rsplit("_", 1)[0] + "_" + str(int(link[end].rsplit("_", 1)[1]) + 1)
    (shifted,) = catalog.import_file("circuit-tracer", write(tmp_path / "moved.json", moved), model="toy", task="cat",
                                     method="shifted")
    pair = Selection(run_ids=(info.id, shifted.id))
    assert list(catalog.shared(pair).members["component"]) == ["input@1"]  # the first token, moved, is at 1
    by_name = catalog.shared(pair, by_position=False).members
    assert set(by_name["component"]) == {"input", "ftc0/1234", "ftc1/42", "ftc1/err", "logits/3290"}
    assert catalog.similarity(pair, by_position=False).matrix.to_numpy().min() == 1.0
    assert catalog.similarity(pair).matrix.to_numpy()[0, 1] < 1.0


@pytest.mark.parametrize(("change", "message"), [
    (lambda g: g["nodes"][2].pop("ctx_idx"), r"graph.json:\d+: not a Neuronpedia graph: nodes\[2\]: 'ctx_idx' is a required"),
    (lambda g: g["links"].append({"source": "9_9_9", "target": "1_42_1", "weight": 1}), "names node '9_9_9'"),
    (lambda g: g["nodes"].append(dict(g["nodes"][2])), "node_id '0_1234_1' names two nodes"),
    (lambda g: g["nodes"][2].update(feature_type="lorsa"), "feature_type 'lorsa' is not read"),
    (lambda g: g.pop("qParams"), "'qParams' is a required property"),
])
def test_bad_attribution_graphs_name_the_problem_and_write_nothing(store_url: str, tmp_path: Path, change,
                                                                  message: str) -> None:
    graph = json.loads(TRACER.read_text())
    change(graph)
    with Catalog(store_url) as catalog:
        with pytest.raises(CircuitdbError, match=message):
            catalog.import_file("circuit-tracer", write(tmp_path / "graph.json", graph), model="toy", task="cat")
        assert len(catalog.runs()) == 0


def auto_circuit_file(graph: dict, path: Path) -> Path:
    """PruneScores as auto-circuit lays them out: per dest module a tensor [head, source] (q/k/v inputs) or [source]
    (MLP input, last residual), sources in its order (Resid Start, per layer A{L}.0.. then MLP {L})."""
    import torch

    layers, heads = graph["cfg"]["n_layers"], graph["cfg"]["n_heads"]
    sources = ["input"] + [n for layer in range(layers) for n in [*(f"a{layer}.h{h}" for h in range(heads)), f"m{layer}"]]
    scores = {}
    for layer in range(layers):
        before = 1 + layer * (heads + 1)
        for x in "qkv":
            scores[f"blocks.{layer}.hook_{x}_input"] = torch.tensor(
                [[graph["edges"][f"{s}->a{layer}.h{h}<{x}>"]["score"] for s in sources[:before]] for h in range(heads)])
        scores[f"blocks.{layer}.hook_mlp_in"] = torch.tensor(
            [graph["edges"][f"{s}->m{layer}"]["score"] for s in sources[:before + heads]])
    scores[f"blocks.{layers - 1}.hook_resid_post"] = torch.tensor([graph["edges"][f"{s}->logits"]["score"] for s in sources])
    torch.save(scores, path)
    return path


def acdc_subgraph(graph: dict, path: Path) -> Path:
    """ACDC's save_subgraph of the graph's in-graph edges (hook names and TorchIndex tuples as ACDC spells them)."""
    import torch

    layers = graph["cfg"]["n_layers"]

    def hook(name: str, role: str) -> tuple:
        """ACDC's hook and index of a node sending (`role` "out") or receiving (q, k, v or "in")."""
        if name in ("input", "logits"):
            return ("blocks.0.hook_resid_pre" if name == "input" else f"blocks.{layers - 1}.hook_resid_post"), (None,)
        if name.startswith("m"):
            return f"blocks.{name[1:]}.hook_{'mlp_out' if role == 'out' else 'mlp_in'}", (None,)
        layer, head = name[1:].split(".h")
        return (f"blocks.{layer}.attn.hook_result" if role == "out" else f"blocks.{layer}.hook_{role}_input"), \
            (None, None, int(head))

    subgraph = {}
    for name, edge in graph["edges"].items():
        sender, receiver = name.split("->")
        receiver, role = (receiver[:-3], receiver[-2]) if receiver.endswith(">") else (receiver, "in")
        subgraph[(*hook(receiver, role), *hook(sender, "out"))] = edge["in_graph"]
    torch.save(subgraph, path)
    return path


def test_one_circuit_through_every_format_is_the_same_circuit(catalog: Catalog, tmp_path: Path) -> None:
    """The same toy circuit as an EAP-IG .json and .pt, a MIB folder, an ACDC subgraph, auto-circuit scores cut at the
    circuit's size, and circuitdb's own export: edge and component similarity 1.0 across all of them."""
    graph = scored_graph(seed=5, in_graph=0.0)
    top = ranked(graph["edges"])[:12]
    for name in top:
        graph["edges"][name]["in_graph"] = True
    kept = {end for name in top for end in name.split("<")[0].split("->")}
    for name, node in graph["nodes"].items():
        node["in_graph"] = name in kept
    (mib := tmp_path / "mib" / "digits_toy").mkdir(parents=True)
    imports = [("eap-ig", write(tmp_path / "g.json", graph)), ("eap-ig", eapig_pt(graph, tmp_path / "g.pt")),
               ("mib", write(mib / "importances.json", graph).parents[1]), ("acdc", acdc_subgraph(graph, tmp_path / "s.pth")),
               ("auto-circuit", auto_circuit_file(graph, tmp_path / "ac.pt"))]
    ids = []
    for k, (kind, path) in enumerate(imports):
        meta = {} if kind == "mib" else {"model": "toy", "task": "digits"}
        runs = catalog.import_file(kind, path, method=f"{kind}-{k}", top_n=12, **meta)
        ids += [r.id for r in runs if r.n_edges]  # the circuits: in-graph edges, or the cut of a score list
    assert len(ids) == 8  # json, pt, mib: the file's circuit and its cut; acdc: the circuit; auto-circuit: the cut
    for edges in (True, False):
        matrix = catalog.similarity(Selection(run_ids=tuple(ids)), edges=edges).matrix.to_numpy()
        assert matrix.min() == 1.0, (edges, matrix)


def test_an_imported_score_list_is_measured_on_its_model(tmp_path: Path, lm) -> None:
    """`measure` scores an imported EAP-IG file's ranking on the toy model's digits: each point of the stored curve is
    the normalised faithfulness of that share of the edges by |score|, as the independent evaluator (TransformerLens
    hooks, a hook per receiver input) measures it; CPR and CMD are the trapezoid areas of that curve."""
    import numpy as np
    from independent import Independent

    from circuitdb.discovery.tasks import build_task

    graph = scored_graph(seed=7, in_graph=0.1)
    with Catalog(f"kuzu:{tmp_path / 'c.kuzu'}") as catalog:
        (info,) = catalog.import_file("eap-ig", write(tmp_path / "g.json", graph), model="toy", task="digits")
        (measured,) = catalog.measure(Selection(run_ids=(info.id,)), n_prompts=24)
        run = catalog.run(measured.id)
        with pytest.raises(CircuitdbError, match="unknown intervention"):
            catalog.measure(Selection(run_ids=(info.id,)), intervention="blur")
    independent = Independent(lm.model, build_task("digits", lm, n_prompts=24), "patch")
    order = [edge_key(n) for n in ranked(graph["edges"])]
    empty = independent.faithfulness(set())
    curve = run.params["curve"]
    for percent, value in zip(curve["percent"], curve["faithfulness"]):
        top = set(order[: max(1, round(percent / 100 * len(order)))])
        assert value == pytest.approx((independent.faithfulness(top) - empty) / (1 - empty), abs=1e-4), percent
    x, f = np.array(curve["percent"]) / 100, np.array(curve["faithfulness"])
    assert run.cpr == pytest.approx(np.trapezoid(f, x), abs=1e-5)
    assert run.cmd == pytest.approx(np.trapezoid(np.abs(1 - f), x), abs=1e-5)
    assert run.edge_faithfulness == pytest.approx(
        independent.faithfulness({(e.sender, e.receiver, e.input) for e in run.edges}), abs=1e-4)
    assert run.scores and run.params["measured"]["intervention"] == "patch"


def test_mib_folders_round_trip(catalog: Catalog, tmp_path: Path) -> None:
    """A MIB submission written by `export --format mib`: a score run becomes {task}_{model}/importances.json, circuits
    without scores up to 9 files; importing the folder gives back the same score list and the same circuits."""
    (scored,) = catalog.import_file("eap-ig", write(tmp_path / "g.json", scored_graph(seed=11)), model="toy",
                                    task="digits")
    cuts = [catalog.cut(scored.id, top_n=n)[0] for n in (5, 10, 20)]
    catalog.export(Selection(run_ids=(scored.id,)), tmp_path / "scores", fmt="mib")
    catalog.export(Selection(run_ids=tuple(c.id for c in cuts)), tmp_path / "circuits", fmt="mib")
    assert sorted(p.name for p in (tmp_path / "circuits" / "digits_toy").iterdir()) == [
        "circuit-00.json", "circuit-01.json", "circuit-02.json"]
    with Catalog(f"kuzu:{tmp_path / 'back.kuzu'}") as back:
        (again,) = back.import_file("mib", tmp_path / "scores")
        assert (again.model, again.task) == ("toy", "digits")
        assert back.run(again.id).scores == catalog.run(scored.id).scores
        circuits = back.import_file("mib", tmp_path / "circuits", method="mib-circuits")
        assert sorted(r.n_edges for r in circuits) == [5, 10, 20]
        want = sorted(sorted(e.key for e in catalog.run(c.id).edges) for c in cuts)
        assert sorted(sorted(e.key for e in back.run(r.id).edges) for r in circuits) == want
        with pytest.raises(CircuitdbError, match="one score file or only circuits"):
            catalog.export(Selection(run_ids=(scored.id, cuts[0].id)), tmp_path / "mixed", fmt="mib")
        assert not (tmp_path / "mixed").exists()


def test_score_lists_cuts_and_positions_survive_circuitdbs_own_export(catalog: Catalog, tmp_path: Path) -> None:
    (scored,) = catalog.import_file("eap-ig", write(tmp_path / "g.json", scored_graph()), model="toy", task="digits")
    (cut,) = catalog.cut(scored.id, fraction=0.05)
    (traced,) = catalog.import_file("circuit-tracer", TRACER, model="toy", task="cat")
    path = tmp_path / "all.json"
    catalog.export(Selection(), path)
    with Catalog(f"kuzu:{tmp_path / 'back.kuzu'}") as back:
        back.import_file("json", path)
        for info in (scored, cut, traced):
            a, b = catalog.run(info.id), back.run(info.id)
            assert (a.components, a.edges, a.scores, a.cut, a.params) == (b.components, b.edges, b.scores, b.cut, b.params)


def evil_pickle(path: Path) -> Path:
    """A torch.save-style archive whose pickle calls os.system: what an unrestricted torch.load would run."""
    import pickle
    import zipfile

    class Evil:
        def __reduce__(self):
            import os
            return os.system, ("touch " + str(path.parent / "pwned"),)

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x/data.pkl", pickle.dumps({"blocks.0.hook_mlp_in": Evil()}, protocol=2))
    return path


@pytest.mark.parametrize(("kind", "make", "message"), [
    ("auto-circuit", lambda p: evil_pickle(p / "evil.pt"), "holds a posix.system"),
    ("acdc", lambda p: evil_pickle(p / "evil.pth"), "holds a posix.system"),
    ("auto-circuit", lambda p: write(p / "x.pt", {}), "not a torch.save file"),
    ("auto-circuit", lambda p: torch_save(p / "u.pt", {"blocks.0.hook_resid_mid": [1.0]}), "unfactorized"),
    ("auto-circuit", lambda p: torch_save(p / "s.pt", {"blocks.0.hook_q_input": [[[1.0]]],
                                                       "blocks.0.hook_resid_post": [[1.0, 2.0]]}), "per-position scores"),
    ("acdc", lambda p: torch_save(p / "a.pth", {("blocks.0.hook_foo", (None,), "blocks.0.hook_resid_pre", (None,)): True,
                                             ("blocks.0.hook_resid_post", (None,), "blocks.0.hook_resid_pre", (None,)): True}),
     "unknown ACDC hook"),
    ("eap-ig", lambda p: torch_save(p / "g.pt", {"cfg": {"n_layers": 2, "n_heads": 4}, "edges_scores": [[0.0]],
                                                 "edges_in_graph": [[True]], "nodes_in_graph": [True]}), "must be \\[11, 27\\]"),
    ("mib", lambda p: (p / "noscore").mkdir() or p / "noscore", "a MIB folder is named"),
])
def test_bad_files_of_other_tools_name_the_problem_and_write_nothing(store_url: str, tmp_path: Path, kind: str, make,
                                                                    message: str) -> None:
    path = make(tmp_path)
    if kind == "mib":
        write(path / "g.json", scored_graph())
    meta = {} if kind == "mib" else {"model": "toy", "task": "digits"}
    with Catalog(store_url) as catalog:
        with pytest.raises(CircuitdbError, match=message):
            catalog.import_file(kind, path, **meta)
        assert len(catalog.runs()) == 0
    assert not (tmp_path / "pwned").exists()


def torch_save(path: Path, data: dict) -> Path:
    """`data` saved by torch, its lists as float (or bool) tensors."""
    import torch

    def tensor(value):
        return torch.tensor(value) if isinstance(value, list) else value

    torch.save({k: tensor(v) for k, v in data.items()}, path)
    return path


def test_a_discovered_edge_circuit_keeps_its_ranking_and_exports_it(tmp_path: Path) -> None:
    """An EAP run keeps the score of every edge it ranked: the circuit is the top of that list (cutting the same number
    of edges gives the same edges), and its EAP-IG export carries those scores with the circuit in the graph."""
    with Catalog(f"kuzu:{tmp_path / 'c.kuzu'}") as catalog:
        (info,) = catalog.discover("toy", ["digits"], [0.8], methods=["eap"], n_prompts=24)
        run = catalog.run(info.id)
        assert len(run.scores) == len(graph_edges(run.model.n_layers, run.model.n_heads))
        (again,) = catalog.cut(info.id, top_n=len(run.edges))
        assert sorted(e.key for e in catalog.run(again.id).edges) == sorted(e.key for e in run.edges)
        catalog.export(Selection(run_ids=(info.id,)), tmp_path / "eap.json", fmt="eap-ig")
    written = json.loads((tmp_path / "eap.json").read_text())
    assert {n: e["score"] for n, e in written["edges"].items()} == run.scores
    assert {n for n, e in written["edges"].items() if e["in_graph"]} == {e.name for e in run.edges}


def test_a_feature_run_exports_as_a_valid_attribution_graph(catalog: Catalog, tmp_path: Path) -> None:
    """A feature circuit as circuitdb's SAE attribution writes it (features and an error of two dictionaries, edges
    to the logits): a graph Neuronpedia's schema accepts, which reads back as the same circuit at position 0."""
    from circuitdb import Edge, Model, Run, Task

    run = Run(Model("toy", 4, 4), Task("digits"), "sae-attr",
              components={"fresid2/17": 0.5, "fresid3/4": 0.25, "fresid3/err": None, "logits": None},
              edges=[Edge("fresid2/17", "fresid3/4", 0.3), Edge("fresid3/4", "logits", 0.7),
                     Edge("fresid3/err", "logits", -0.1)])
    catalog.add(run)
    out = tmp_path / "features.json"
    catalog.export(Selection(run_ids=(run.id,)), out, fmt="neuronpedia")
    graph = json.loads(out.read_text())
    assert neuronpedia_valid(graph)
    assert {n["node_id"] for n in graph["nodes"]} == {"2_17_0", "3_4_0", "3_-1_0", "5_0_0"}
    (back,) = catalog.import_file("circuit-tracer", out, model="toy", task="digits")
    again = catalog.run(back.id)
    assert again.components == {f"{n}@0": s for n, s in run.components.items()}
    assert {(e.sender, e.receiver, e.weight) for e in again.edges} == {(f"{e.sender}@0", f"{e.receiver}@0", e.weight)
                                                                      for e in run.edges}


def test_a_parallel_attention_graph_exports_as_one(catalog: Catalog, tmp_path: Path) -> None:
    """A model whose MLPs read their block's input (GPT-J, Pythia): its graph has no edge from a layer's heads into its
    own MLP, in the file and in the export."""
    graph = scored_graph(seed=2, parallel=True)
    assert "a0.h1->m0" not in graph["edges"]
    (info,) = catalog.import_file("eap-ig", write(tmp_path / "p.json", graph), model="toy", task="digits")
    catalog.export(Selection(run_ids=(info.id,)), tmp_path / "out.json", fmt="eap-ig")
    written = json.loads((tmp_path / "out.json").read_text())
    assert written["cfg"]["parallel_attn_mlp"] is True and written["edges"] == graph["edges"]


@pytest.mark.parametrize("suffix", ["", "_parallel"])
def test_eap_igs_own_files_import_and_export_back_as_eap_ig_wrote_them(catalog: Catalog, tmp_path: Path,
                                                                      suffix: str) -> None:
    """Graphs written by EAP-IG's own Graph.to_json and to_pt (tests/data/build_eap_ig.py): every edge's score and
    in_graph flag as EAP-IG's Edge objects hold them, from either file; exported, the same JSON edges and nodes."""
    data = Path(__file__).parent / "data" / "eap_ig"
    truth = json.loads((data / f"truth{suffix}.json").read_text())
    original = json.loads((data / f"graph{suffix}.json").read_text())
    for k, kind in enumerate(("json", "pt")):
        (info,) = catalog.import_file("eap-ig", data / f"graph{suffix}.{kind}", model="toy2", task="t", method=f"m{k}")
        run = catalog.run(info.id)
        assert run.scores.keys() == truth.keys()
        assert all(abs(run.scores[n] - score) < 1e-6 for n, (score, _) in truth.items())
        assert {e.name for e in run.edges} == {n for n, (_, kept) in truth.items() if kept}
    catalog.export(Selection(run_ids=(info.id,)), tmp_path / "out.json", fmt="eap-ig")
    written = json.loads((tmp_path / "out.json").read_text())
    assert written["cfg"] == original["cfg"]
    assert written["edges"].keys() == original["edges"].keys()
    assert all(abs(written["edges"][n]["score"] - e["score"]) < 1e-6 and written["edges"][n]["in_graph"] == e["in_graph"]
               for n, e in original["edges"].items())
    assert {n for n, v in written["nodes"].items() if v["in_graph"]} == {n for n, v in original["nodes"].items()
                                                                         if v["in_graph"]}
