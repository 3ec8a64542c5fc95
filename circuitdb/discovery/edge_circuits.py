"""Edge circuits evaluated as a whole (EAP-IG's `evaluate_graph` semantics), and faithfulness curves of edge rankings.

Every receiver input (a head's q, k or v input, an MLP's input, the logits) reads the residual stream minus, for each
edge into it that the circuit leaves out, the sender's output minus its reference: a removed edge carries the
sender's reference (the run's one intervention) and a kept edge its value in this very forward pass. A node with no
kept out-edge is thus at its reference everywhere, which is node ablation; the empty edge circuit is the model run
on references alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch

from circuitdb.discovery.ablation import Hook, head_outputs, split_inputs
from circuitdb.discovery.evaluate import Evaluator, Measure
from circuitdb.discovery.graph import EdgeKey
from circuitdb.errors import CircuitdbError

CURVE_PERCENTS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)  # the MIB circuit track's edge fractions


def sender_references(ev: Evaluator) -> list[torch.Tensor]:
    """Each sender's reference output `[1|N, pos, d]`, in forward order: the embedding's, each head's z times its
    slice of W_O, each MLP's. Every edge method starts here, so here a model they cannot handle is refused."""
    model, graph, repl = ev.lm.model, ev.graph, ev.repl
    if ev.direction == "denoising":
        raise CircuitdbError("the edge methods measure noising only; denoising runs are node circuits (--edges none)")
    if graph.grouped:
        raise CircuitdbError(f"{ev.lm.name} shares keys and values among heads (grouped-query attention), which the "
                             "TransformerBridge does not ungroup, so heads have no k/v input of their own; load it without "
                             "bridge: (TransformerLens ungroups them), or use --method prune --edges none")
    if not ev.heads_add_up:
        raise CircuitdbError(f"{ev.lm.name}: its heads' outputs do not add up to what attention adds to the residual "
                             "stream (an unknown transform after attention), so the edge methods do not apply; "
                             "use --method prune --edges none")
    refs = [repl.embed]
    for layer, heads in enumerate(graph.heads):
        per_head = head_outputs(model, layer, repl.z[layer])
        refs += [per_head[:, :, head.index] for head in heads]
        refs += [repl.mlp[layer]] if graph.has_mlps else []
    return refs


def edge_final(ev: Evaluator, kept_SR: torch.Tensor) -> torch.Tensor:
    """The final residual stream `[N, pos, d]` of the edge circuit `kept` `[senders, receiver inputs]` on the clean
    prompts, every edge it leaves out at its reference."""
    model, graph = ev.lm.model, ev.graph
    removed = (graph.possible & ~kept_SR).float()
    refs = sender_references(ev)
    diffs: list[torch.Tensor] = []  # per sender so far: its output in this pass minus its reference `[N, pos, d]`

    def record_input(resid_NPD: torch.Tensor, hook: object) -> None:
        diffs.append(resid_NPD - refs[0])

    def record_heads(layer: int) -> Callable:
        def hook(z_NPHK: torch.Tensor, hook: object) -> None:
            out_NPHD = head_outputs(model, layer, z_NPHK)
            diffs.extend(out_NPHD[:, :, h] - refs[len(diffs)] for h in range(graph.n_heads))
        return hook

    def record_mlp(out_NPD: torch.Tensor, hook: object) -> None:
        diffs.append(out_NPD - refs[len(diffs)])

    def heads_input(columns: list[int]) -> Callable:
        def hook(x_NPHD: torch.Tensor, hook: object) -> torch.Tensor:
            return x_NPHD - torch.einsum("npsd,sh->nphd", torch.stack(diffs, 2), removed[: len(diffs), columns])
        return hook

    def one_input(column: int) -> Callable:
        def hook(x_NPD: torch.Tensor, hook: object) -> torch.Tensor:
            return x_NPD - torch.einsum("npsd,s->npd", torch.stack(diffs, 2), removed[: len(diffs), column])
        return hook

    hooks: list[Hook] = [(graph.blocks[0].resid_pre, record_input)]
    for block, heads, mlp in zip(graph.blocks, graph.heads, graph.mlps):
        for qkv, name in block.qkv_input.items():
            hooks.append((name, heads_input([graph.column[h.name, qkv] for h in heads])))
        hooks.append((block.z, record_heads(block.layer)))
        if mlp is not None:
            hooks += [(block.mlp_in, one_input(graph.column[mlp.name, ""])), (block.mlp_out, record_mlp)]
    hooks.append((graph.blocks[-1].resid_post, one_input(graph.column["logits", ""])))
    ev.passes += 1
    with torch.no_grad(), split_inputs(model), model.hooks(fwd_hooks=hooks):
        return model(ev.embedded, start_at_layer=0, stop_at_layer=graph.n_layers)


def measure_edges(ev: Evaluator, edges: Iterable[EdgeKey]) -> Measure:
    """The `Measure` of the circuit made of exactly `edges`, evaluated jointly."""
    return ev.measure(edge_final(ev, ev.graph.edge_matrix(edges)))


def curve(ev: Evaluator, ranked: list[EdgeKey]) -> dict:
    """Normalised faithfulness of the top 0.1 ... 100 % of `ranked` (at least one edge), with the areas the MIB
    circuit track reports over the edge fraction (trapezoids): CPR under f, CMD under |1 - f|."""
    x = np.array(CURVE_PERCENTS) / 100
    f = np.array([measure_edges(ev, ranked[: max(1, round(p * len(ranked)))]).normalised for p in x])
    return {"percent": list(CURVE_PERCENTS), "faithfulness": [round(float(v), 6) for v in f],
            "cpr": float(np.trapezoid(f, x)), "cmd": float(np.trapezoid(np.abs(1 - f), x))}
