"""Edge scores: exact path patching, and EAP / EAP-IG, all under the run's one intervention.

Path patching adds (the sender's reference output - its output on the clean prompts) to one receiver input only
(a head's q, k or v input, an MLP's input, or the final residual stream) and measures the circuit's performance; the
edge's weight is the drop. EAP estimates the same drop for every edge at once from one backward pass (first-order),
EAP-IG averages the gradients over inputs interpolated from the reference embedding to the clean one. The reference
is the intervention's (`edge_circuits.sender_references`): mean, zero, resample or paired corrupted (patch).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import torch

from circuitdb.discovery.ablation import Hook, ablation_hooks, embed, run_blocks, split_inputs
from circuitdb.discovery.edge_circuits import sender_references
from circuitdb.discovery.evaluate import Evaluator
from circuitdb.discovery.graph import EdgeKey, GraphEdge, Masks


def node_outputs(ev: Evaluator, tokens: torch.Tensor, masks: Masks) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """Each node's output `[N, pos, d_model]` under the circuit, and the residual stream entering every block (+ final).

    A head's output is its z times its slice of W_O (what TransformerLens's hook_result holds), computed from hook_z so
    the model never has to run with per-head results switched on.
    """
    model, graph = ev.lm.model, ev.graph
    blocks, logits = graph.blocks, graph.nodes["logits"]
    wanted = {node.hook for node in graph.senders} | {b.resid_pre for b in blocks} | {logits.inputs[""]}
    with torch.no_grad(), model.hooks(fwd_hooks=ablation_hooks(ev.lm, masks, ev.repl)):
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in wanted)
        outputs = {"input": cache[graph.nodes["input"].hook]}
        for layer, heads in enumerate(graph.heads):
            result = torch.einsum("nphk,hkd->nphd", cache[blocks[layer].z], model.blocks[layer].attn.W_O)
            outputs |= {head.name: result[:, :, head.index] for head in heads}
            outputs[graph.mlps[layer].name] = cache[graph.mlps[layer].hook]
    return outputs, [*(cache[b.resid_pre] for b in blocks), cache[logits.inputs[""]]]


def path_patch(ev: Evaluator, masks: Masks, edges: list[GraphEdge], batch: int = 32,
               progress: Callable[[int], None] | None = None) -> dict[EdgeKey, float]:
    """Exact effect of each edge: circuit performance minus performance with that edge alone at its reference."""
    clean, streams = node_outputs(ev, ev.data.clean, masks)
    refs = dict(zip((s.name for s in ev.graph.senders), sender_references(ev)))
    with torch.no_grad():
        base = ev.score(streams[-1]).item()
    by_layer: dict[int, list[GraphEdge]] = defaultdict(list)
    for edge in edges:
        by_layer[edge.receiver.layer].append(edge)
    effects: dict[EdgeKey, float] = {}
    for layer, group in sorted(by_layer.items()):
        for i in range(0, len(group), batch):
            chunk = group[i:i + batch]
            deltas = [refs[e.sender.name] - clean[e.sender.name] for e in chunk]
            scores = _patched(ev, masks, layer, streams, chunk, deltas)
            effects |= {edge.key: base - score for edge, score in zip(chunk, scores.tolist())}
            ev.passes += len(chunk)
            if progress:
                progress(len(chunk))
    return effects


def _head_input(model, layer: int, head: int, qkv: str, resid: torch.Tensor) -> torch.Tensor:
    """Head `head`'s q, k or v `[N, pos, d_head]` computed from a residual stream entering its block."""
    attn = model.blocks[layer].attn
    weight, bias = {"q": (attn.W_Q, attn.b_Q), "k": (attn.W_K, attn.b_K), "v": (attn.W_V, attn.b_V)}[qkv]
    return model.blocks[layer].ln1(resid) @ weight[head] + bias[head]


def _patched(ev: Evaluator, masks: Masks, layer: int, streams: list[torch.Tensor], chunk: list[GraphEdge],
             deltas: list[torch.Tensor]) -> torch.Tensor:
    """Performance `[K]` with each of K edges patched, running from the receiver's layer.

    A q/k/v edge changes only that head's q, k or v: it is recomputed from the block's input plus the sender's delta
    and written into hook_q/k/v; an MLP edge adds the delta at hook_mlp_in; a logits edge adds it to the final stream.
    """
    model, k, n = ev.lm.model, len(chunk), ev.data.n
    with torch.no_grad():
        if layer == ev.n_layers:
            final = streams[-1].repeat(k, 1, 1) + torch.cat(deltas)
            return ev.score(final)
        block = ev.graph.blocks[layer]
        replace: dict[str, list] = defaultdict(list)
        add: list = []
        for slot, (edge, delta) in enumerate(zip(chunk, deltas)):
            head = edge.receiver.index
            if edge.receiver.kind == "head":
                value = _head_input(model, layer, head, edge.qkv, streams[layer] + delta)
                replace[block.qkv[edge.qkv]].append((slot, head, value))
            else:
                add.append((slot, delta))
        extra: list[Hook] = [(name, _setting(k, n, items)) for name, items in replace.items()]
        if add:
            extra.append((block.mlp_in, _adding(k, n, add)))
        ev.blocks += k * (ev.n_layers - layer)
        final = run_blocks(ev.lm, streams[layer], layer, masks.repeat(k), ev.repl, extra=extra)
        return ev.score(final)


def _adding(k: int, n: int, deltas: list[tuple[int, torch.Tensor]]) -> Callable:
    """A hook adding each (slot, delta `[N, pos, d]`) to variant `slot` of an activation `[K*N, pos, d]`."""

    def hook(act_KNPD: torch.Tensor, hook: object) -> torch.Tensor:
        grouped = act_KNPD.view(k, n, *act_KNPD.shape[1:]).clone()
        for slot, delta_NPD in deltas:
            grouped[slot] += delta_NPD
        return grouped.view_as(act_KNPD)

    return hook


def _setting(k: int, n: int, values: list[tuple[int, int, torch.Tensor]]) -> Callable:
    """A hook writing each (slot, head, value `[N, pos, d_head]`) into that variant's head of an activation
    `[K*N, pos, n_heads, d_head]`."""

    def hook(act_KNPHD: torch.Tensor, hook: object) -> torch.Tensor:
        grouped = act_KNPHD.view(k, n, *act_KNPHD.shape[1:]).clone()
        for slot, head, value_NPD in values:
            grouped[slot, :, :, head] = value_NPD
        return grouped.view_as(act_KNPHD)

    return hook


def eap_scores(ev: Evaluator, ig_steps: int = 0, masks: Masks | None = None, chunk: int = 8) -> dict[EdgeKey, float]:
    """Estimated performance drop of every edge of the graph (EAP; EAP-IG with `ig_steps` > 0), inside the circuit
    `masks` (everything else at its reference) or the full model."""
    graph = ev.graph
    masks = masks if masks is not None else Masks.full(graph)
    clean, _ = node_outputs(ev, ev.data.clean, masks)
    refs = sender_references(ev)
    delta = torch.stack([(ref - clean[s.name]).expand_as(clean[s.name]) for s, ref in zip(graph.senders, refs)],
                        dim=2)  # [N, pos, F, d]
    with split_inputs(ev.lm.model):
        grads = _receiver_grads(ev, ig_steps, masks)  # [N, pos, R, d]
    scores = torch.zeros(len(graph.senders), grads.shape[2])
    for i in range(0, delta.shape[0], chunk):
        scores += torch.einsum("npfd,nprd->fr", delta[i:i + chunk], grads[i:i + chunk])
    # a positive score estimates a drop in performance, as path patching measures it
    drops = (-scores / (ev.full - ev.base)).tolist()  # [sender (its forward order), receiver]
    return {e.key: drops[e.sender.order][graph.column[e.receiver.name, e.qkv]] for e in graph.edges}


def _receiver_grads(ev: Evaluator, ig_steps: int, masks: Masks) -> torch.Tensor:
    """d(metric)/d(receiver input) `[N, pos, R, d]` under `masks`, averaged over IG steps when asked."""
    model, graph = ev.lm.model, ev.graph
    clean_in = embed(model, ev.data.clean)
    reference_in = ev.repl.embed.expand_as(clean_in)
    alphas = [1.0] if ig_steps <= 0 else [(i + 1) / ig_steps for i in range(ig_steps)]
    names = list(dict.fromkeys(r.inputs[qkv] for r, qkv in graph.receivers if r.kind != "logits"))  # a hook per input
    total: torch.Tensor | None = None
    for alpha in alphas:
        grads: dict[str, torch.Tensor] = {}

        def keep(grad: torch.Tensor, hook, grads: dict = grads) -> None:
            grads[hook.name] = grad.detach()

        x = (reference_in + alpha * (clean_in - reference_in)).detach().requires_grad_(True)
        with model.hooks(fwd_hooks=ablation_hooks(ev.lm, masks, ev.repl), bwd_hooks=[(name, keep) for name in names]):
            final = model(x, start_at_layer=0, stop_at_layer=graph.n_layers)
            final.retain_grad()
            ev.value(final).sum().backward()
        ev.passes += 1
        stacked = []
        for receiver, qkv in graph.receivers:  # heads' q, k, v [N, pos, n_heads, d] and the MLP per layer, the logits
            if receiver.kind == "head":
                stacked.append(grads[receiver.inputs[qkv]][:, :, receiver.index])
            else:
                stacked.append(final.grad if receiver.kind == "logits" else grads[receiver.inputs[qkv]])
        step = torch.stack(stacked, dim=2)  # gradients of the mean over prompts: summing over prompts gives the mean
        total = step if total is None else total + step
    return total / len(alphas)
