"""Importer for auto-circuit `PruneScores` (`torch.save` of {dest module name: tensor [..., head?, src index]}): every
edge's score of a factorized TransformerLens graph, read without torch and named as EAP-IG names them."""

from __future__ import annotations

import re
from pathlib import Path

from circuitdb.domain import Edge, Model, Run, Task
from circuitdb.errors import CircuitdbError
from circuitdb.ingest.files import provenance, read_bytes
from circuitdb.ingest.torchfile import read_torch_file
from circuitdb.lazy import np

# dest modules of auto-circuit's factorized graph: a head's q/k/v input (or its one attention input without
# separate_qkv), an MLP's input, and the last residual stream (the logits)
DEST = re.compile(r"^blocks\.(\d+)\.hook_(q_input|k_input|v_input|attn_in|mlp_in|resid_post)$")
ORDER = {"q_input": 0, "attn_in": 0, "k_input": 1, "v_input": 2, "mlp_in": 3, "resid_post": 4}  # EAP-IG's receiver order


def read_auto_circuit(path: Path | str, model: Model, task: Task, method: str = "auto-circuit",
                      ablation: str = "patch", metric: str = "logit_diff") -> Run:
    """A run holding every scored edge of the file as its score list (the circuit is cut from it later); sources are
    auto-circuit's order: Resid Start, then per layer A{L}.0 ... A{L}.{H-1} and MLP {L}."""
    raw = read_bytes(path)
    data = read_torch_file(path, raw)
    if not isinstance(data, dict) or not data or not all(isinstance(k, str) for k in data):
        raise CircuitdbError(f"{path}: not auto-circuit PruneScores (expected a dict of dest module name -> tensor)")
    dests = {}
    for key, value in data.items():
        found = DEST.match(key)
        if found is None:
            hint = " (the factorized graph only; this looks unfactorized)" if "resid" in key else ""
            raise CircuitdbError(f"{path}: {key!r} is not a dest module of auto-circuit's factorized graph{hint}")
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            raise CircuitdbError(f"{path}: {key}: scores must be a float tensor, got {type(value).__name__}")
        dests[key] = (int(found.group(1)), found.group(2), value)
    ends = [layer for layer, kind, _ in dests.values() if kind == "resid_post"]
    if len(ends) != 1:
        raise CircuitdbError(f"{path}: needs exactly one blocks.L.hook_resid_post (the logits), found {len(ends)}")
    n_layers = ends[0] + 1
    heads = {v.shape[-2] for _, kind, v in dests.values() if kind not in ("mlp_in", "resid_post") and v.ndim >= 2}
    if not heads:
        raise CircuitdbError(f"{path}: no attention head inputs (blocks.L.hook_q_input, ...): not auto-circuit's "
                             "factorized graph of a transformer")
    if len(heads) != 1:
        raise CircuitdbError(f"{path}: attention inputs disagree on the number of heads ({sorted(heads)})")
    (n_heads,) = heads
    has_mlps = any(kind == "mlp_in" for _, kind, _ in dests.values())
    sources = ["input"]
    for layer in range(n_layers):
        sources += [f"a{layer}.h{h}" for h in range(n_heads)] + ([f"m{layer}"] if has_mlps else [])
    shape = _shape(path, model, n_layers, n_heads)
    scores: dict[str, float] = {}
    for key, (layer, kind, values) in sorted(dests.items(), key=lambda item: (item[1][0], ORDER[item[1][1]])):
        per_head = kind not in ("mlp_in", "resid_post")
        if values.ndim != 1 + per_head:
            raise CircuitdbError(f"{path}: {key} has shape {list(values.shape)}; per-position scores (seq_len) are not "
                                 "read: sum them over positions first")
        if values.shape[-1] > len(sources):
            raise CircuitdbError(f"{path}: {key} scores {values.shape[-1]} sources; the model has {len(sources)}")
        if not np.isfinite(values).all():
            raise CircuitdbError(f"{path}: {key} holds NaN or infinite scores")
        receivers = ([(f"a{layer}.h{h}", "" if kind == "attn_in" else kind[0]) for h in range(n_heads)] if per_head
                     else [("logits" if kind == "resid_post" else f"m{layer}", "")])
        rows = values.reshape(len(receivers), -1).tolist()
        for (receiver, qkv), row in zip(receivers, rows):
            for sender, score in zip(sources, row):
                scores[Edge(sender, receiver, 0.0, qkv).name] = score
    return Run(model=shape, task=task, method=method, ablation=ablation, metric=metric,
               params=provenance(path, raw, "auto-circuit"), scores=scores)


def _shape(path: Path | str, model: Model, n_layers: int, n_heads: int) -> Model:
    """The model with the shape the file shows; a known shape that disagrees is an error."""
    for what, known, found in (("layers", model.n_layers, n_layers), ("heads", model.n_heads, n_heads)):
        if known is not None and known != found:
            raise CircuitdbError(f"{path}: scores a model of {found} {what}; {model.name} has {known}")
    return Model(model.name, n_layers, n_heads, model.d_model, model.source)
