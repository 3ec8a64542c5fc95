"""EAP-IG graphs in and out (`Graph.to_json` / `to_pt`, and MIB circuit-track submission folders): nodes and edges
`a0.h1->a2.h3<q>` with in_graph and score; the in-graph ones are the circuit, every score is kept for cutting it
again. Exports write the full graph EAP-IG's `Graph.from_json` reads back."""

from __future__ import annotations

import json
import math
from pathlib import Path

from circuitdb.domain import (
    Edge,
    Model,
    Run,
    Task,
    canonical,
    check_threshold,
    graph_edges,
    parse_component,
    parse_edge_name,
)
from circuitdb.errors import CircuitdbError
from circuitdb.ingest.files import fail, provenance, read_bytes, read_json
from circuitdb.ingest.torchfile import read_torch_file
from circuitdb.lazy import np

# MIB's edge fractions for a submission of circuits rather than scores (its CPR/CMD x positions, the full model last)
PARALLEL = "parallel_attn_mlp"  # EAP-IG's cfg key: an MLP then reads its block's input, not its own layer's heads
MIB_FRACTIONS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


def read_eapig(
    path: Path | str,
    model: Model,
    task: Task,
    method: str = "eap-ig",
    threshold: float | None = None,
    ablation: str = "patch",
    metric: str = "logit_diff",
) -> Run:
    """A `.json` or `.pt` graph as a run: the in-graph nodes and edges are its circuit (endpoints of in-graph edges
    are members even if unflagged), all scores, in the graph or not, its score list."""
    check_threshold(threshold)
    if Path(path).suffix.lower() in (".pt", ".pth"):
        shape, members, edges, scores, raw, parallel = _read_pt(path, model)
    else:
        shape, members, edges, scores, raw, parallel = _read_json(path, model)
    if len(set(scores.values())) == 1 and next(iter(scores.values())) == 0:
        scores = {}  # all zero: a circuit without scores (MIB's binary circuits, an export of an unscored run)
    if not members and not scores:
        raise CircuitdbError(f"{path}: the graph has no score and no node or edge in_graph; nothing to import")
    params = provenance(path, raw, "EAP-IG") | ({PARALLEL: True} if parallel else {})
    return Run(model=shape, task=task, method=method, threshold=threshold, ablation=ablation, metric=metric,
               components=members, edges=edges, params=params, scores=scores)


def _shape(path: Path | str, model: Model, cfg: object) -> Model:
    if not isinstance(cfg, dict):
        raise CircuitdbError(f"{path}: 'cfg' must be an object (n_layers, n_heads, d_model)")
    shape = Model(model.name, model.n_layers or cfg.get("n_layers"), model.n_heads or cfg.get("n_heads"),
                  model.d_model or cfg.get("d_model"), model.source)
    try:
        return shape.check()
    except CircuitdbError as exc:
        raise CircuitdbError(f"{path}: {exc} (from the file's cfg)") from None


def _read_json(path: Path | str, model: Model) -> tuple:
    data, text = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict) or not isinstance(data.get("edges"), dict):
        raise CircuitdbError(f"{path}:1: not an EAP-IG graph (expected an object with 'cfg', 'nodes' and 'edges')")
    try:
        shape = _shape(path, model, data.get("cfg") or {})
    except CircuitdbError as exc:
        raise fail(path, text, '"cfg"', str(exc).removeprefix(f"{path}: ")) from None
    members: dict[str, float | None] = {}
    scores: dict[str, float] = {}
    for name, node in data["nodes"].items():
        info = node if isinstance(node, dict) else {"in_graph": node}  # EAP-IG before 2025 wrote bare booleans
        if not isinstance(info.get("in_graph"), bool):
            raise fail(path, text, json.dumps(name), f"node {name!r} has no boolean in_graph")
        try:
            canonical_name = canonical(name)
        except CircuitdbError as exc:
            raise fail(path, text, json.dumps(name), str(exc)) from None
        problem = shape.lacks(parse_component(canonical_name))
        if problem:
            raise fail(path, text, json.dumps(name), f"node {problem}")
        score = _number(path, text, name, info.get("score"))
        if score is not None:
            scores[canonical_name] = score
        if info["in_graph"]:
            members[canonical_name] = score
    edges = []
    for name, info in data["edges"].items():
        if not isinstance(info, dict) or not isinstance(info.get("in_graph"), bool):
            raise fail(path, text, json.dumps(name), f"edge {name!r} needs in_graph (bool) and score")
        try:
            sender, receiver, qkv = parse_edge_name(name)
        except CircuitdbError as exc:
            raise fail(path, text, json.dumps(name), str(exc)) from None
        for end in (sender, receiver):
            problem = shape.lacks(parse_component(end))
            if problem:
                raise fail(path, text, json.dumps(name), f"edge {name}: {problem}")
        weight = _number(path, text, name, info.get("score"))
        if weight is not None:
            scores[Edge(sender, receiver, 0.0, qkv).name] = weight
        if info["in_graph"]:
            edges.append(Edge(sender, receiver, 0.0 if weight is None else weight, qkv))
    for edge in edges:
        for end in (edge.sender, edge.receiver):
            members.setdefault(end, scores.get(end))
    return shape, members, edges, scores, text.encode(), bool((data.get("cfg") or {}).get(PARALLEL))


def _number(path: Path | str, text: str, name: str, value: object) -> float | None:
    """A score; None when absent or NaN (EAP-IG writes NaN for an unscored node)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isinf(value):
        raise fail(path, text, json.dumps(name), f"{name!r}: score must be a number, got {value!r}")
    return float(value)


def forward_index(name: str, n_heads: int) -> int:
    """A sender's row in EAP-IG's score matrix: input 0, then per layer its heads and its MLP."""
    node = parse_component(name)
    if node.kind == "embed":
        return 0
    return 1 + node.layer * (n_heads + 1) + (node.index if node.kind == "head" else n_heads)


def backward_index(name: str, qkv: str, n_layers: int, n_heads: int) -> int:
    """A receiver input's column: per layer the heads' q, then k, then v inputs, then the MLP; the logits last."""
    node = parse_component(name)
    if node.kind == "logits":
        return n_layers * (3 * n_heads + 1)
    base = node.layer * (3 * n_heads + 1)
    return base + ("qkv".index(qkv) * n_heads + node.index if node.kind == "head" else 3 * n_heads)


def _read_pt(path: Path | str, model: Model) -> tuple:
    raw = read_bytes(path)
    data = read_torch_file(path, raw)
    needed = ("cfg", "edges_scores", "edges_in_graph", "nodes_in_graph")
    if not isinstance(data, dict) or any(k not in data for k in needed):
        raise CircuitdbError(f"{path}: not an EAP-IG .pt graph (needs {', '.join(needed)})")
    shape = _shape(path, model, data["cfg"])
    n_layers, n_heads = data["cfg"]["n_layers"], data["cfg"]["n_heads"]
    rows, cols = 1 + n_layers * (n_heads + 1), n_layers * (3 * n_heads + 1) + 1
    matrix, kept, flags = (np.asarray(data[k]) for k in needed[1:])
    if matrix.shape != (rows, cols) or kept.shape != (rows, cols) or flags.shape != (rows,):
        raise CircuitdbError(f"{path}: edges_scores {list(matrix.shape)}, edges_in_graph {list(kept.shape)} and "
                             f"nodes_in_graph {list(flags.shape)} must be [{rows}, {cols}], [{rows}, {cols}], [{rows}]")
    node_scores = np.asarray(data["nodes_scores"]) if "nodes_scores" in data else None
    senders = ["input"] + [n for layer in range(n_layers) for n in [*(f"a{layer}.h{h}" for h in range(n_heads)),
                                                                    f"m{layer}"]]
    members: dict[str, float | None] = {}
    scores: dict[str, float] = {}
    for row, name in enumerate(senders):
        score = None if node_scores is None or np.isnan(node_scores[row]) else float(node_scores[row])
        if score is not None:
            scores[name] = score
        if flags[row]:
            members[name] = score
    edges = []
    for sender, receiver, qkv in graph_edges(n_layers, n_heads, parallel=bool(data["cfg"].get(PARALLEL))):
        cell = forward_index(sender, n_heads), backward_index(receiver, qkv, n_layers, n_heads)
        score = float(matrix[cell])
        if not math.isfinite(score):
            raise CircuitdbError(f"{path}: edge {sender}->{receiver} has score {score}")
        scores[Edge(sender, receiver, 0.0, qkv).name] = score
        if kept[cell]:
            edges.append(Edge(sender, receiver, score, qkv))
            members.setdefault(sender, scores.get(sender))
            members.setdefault(receiver, scores.get(receiver))
    return shape, members, edges, scores, raw, bool(data["cfg"].get(PARALLEL))


def eapig_graph(run: Run) -> dict:
    """The run as EAP-IG's `Graph.to_json` lays out the full graph: every node and edge, in_graph for the run's
    members and edges, each edge's score from the run's score list (else its weight in the run, else 0, as EAP-IG
    reads a missing score); node scores where the run has them (NaN for the rest, as EAP-IG writes them). The graph
    of a model with parallel attention and MLP where the run says so (`params.parallel_attn_mlp`)."""
    n_layers, n_heads, parallel = run.model.n_layers, run.model.n_heads, bool(run.params.get(PARALLEL))
    if n_layers is None or n_heads is None:
        raise CircuitdbError(f"run {run.id}: the EAP-IG format needs the model's layers and heads; "
                             f"{run.model.name}'s are not recorded")
    edges = graph_edges(n_layers, n_heads, parallel=parallel)
    names = ["input", *dict.fromkeys(r for _, r, _ in edges)]
    outside = [n for n in run.components if n not in names]
    if outside:
        raise CircuitdbError(f"run {run.id}: {outside[0]} is not a node of an EAP-IG graph (heads, MLPs, input, logits)")
    kept = {e.name: e.weight for e in run.edges}
    full = {Edge(s, r, 0.0, x).name for s, r, x in edges}
    missing = sorted(set(kept) - full)
    if missing:
        raise CircuitdbError(f"run {run.id}: edge {missing[0]} is not in {run.model.name}'s EAP-IG graph")
    scored_nodes = any(n in run.scores or run.components.get(n) is not None for n in names)
    nodes = {}
    for name in names:
        nodes[name] = {"in_graph": name in run.components}
        if scored_nodes:
            score = run.scores.get(name, run.components.get(name))
            nodes[name]["score"] = math.nan if score is None else score
    cfg = {"n_layers": n_layers, "n_heads": n_heads, PARALLEL: parallel, "d_model": run.model.d_model}
    return {"cfg": cfg, "nodes": nodes,
            "edges": {name: {"score": run.scores.get(name, kept.get(name, 0.0)), "in_graph": name in kept}
                      for name in (Edge(s, r, 0.0, x).name for s, r, x in edges)}}


def mib_folder(run: Run) -> str:
    """The MIB submission folder of a run: `{task}_{model}`."""
    return f"{run.task.name}_{run.model.name}"


def read_mib(folder: Path | str, model: Model | None, task: Task | None, method: str = "eap-ig",
             ablation: str = "patch", metric: str = "logit_diff") -> list[Run]:
    """A MIB circuit-track submission: a `{task}_{model}` folder (or a folder of them) holding one score file, or up
    to 9 circuits at increasing edge fractions (each a run of its own, told apart by its file name). The folder names
    the task and model unless `task` and `model` are given."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CircuitdbError(f"{folder}: not a folder (a MIB submission is a {{task}}_{{model}} folder of .json/.pt files)")
    inner = sorted(p for p in folder.iterdir() if p.is_dir() and "_" in p.name)
    parts = inner if inner and not _graph_files(folder) else [folder]
    if len(parts) > 1 and (model is not None or task is not None):
        raise CircuitdbError(f"{folder}: holds {len(parts)} task_model folders; --model and --task name one")
    runs = []
    for part in parts:
        files = _graph_files(part)
        if not files:
            raise CircuitdbError(f"{part}: no .json or .pt graph in the folder")
        if (model is None or task is None) and "_" not in part.name:
            raise CircuitdbError(f"{part}: a MIB folder is named {{task}}_{{model}} (e.g. ioi_gpt2); give --model and --task")
        task_name, _, model_name = part.name.partition("_")
        shape = model or Model(model_name)
        for file in files:
            run = read_eapig(file, shape, task or Task(task_name), method, None, ablation, metric)
            if len(files) > 1:
                run.cut = f"circuit {file.name}"
            runs.append(run)
    return runs


def _graph_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".json", ".pt"))


def write_mib(runs: list[Run], folder: Path) -> list[Path]:
    """Runs as a MIB submission under `folder`: per `{task}_{model}`, a run's score list as `importances.json`, or
    runs without scores as up to 9 circuit files; the files written."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(mib_folder(run), []).append(run)
    plans = []
    for name, group in groups.items():
        scored = [r for r in group if r.scores]
        if scored and len(group) > 1:
            raise CircuitdbError(f"{name}: a MIB folder holds one score file or only circuits; select one run with "
                                 f"scores (selected: {len(group)} runs, {len(scored)} with scores)")
        if len(group) > len(MIB_FRACTIONS):
            raise CircuitdbError(f"{name}: a MIB folder holds at most {len(MIB_FRACTIONS)} circuits, selected {len(group)}")
        if scored:
            plans.append((folder / name / "importances.json", group[0]))
        else:
            ordered = sorted(group, key=lambda r: len(r.edges))
            plans += [(folder / name / f"circuit-{k:02d}.json", run) for k, run in enumerate(ordered)]
    graphs = [(path, eapig_graph(run)) for path, run in plans]  # every run checked before the first file is written
    for path, graph in graphs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(graph))
    return [path for path, _ in graphs]
