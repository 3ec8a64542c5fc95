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

from circuitdb.discovery.ablation import Hook, ablation_hooks, embed, head_outputs, run_blocks
from circuitdb.discovery.edge_circuits import sender_references
from circuitdb.discovery.evaluate import Evaluator
from circuitdb.discovery.graph import Block, EdgeKey, GraphEdge, Masks
from circuitdb.discovery.lens import hooked


def node_outputs(ev: Evaluator, tokens: torch.Tensor, masks: Masks) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """Each node's output `[N, pos, d_model]` under the circuit, and the residual stream entering every block (+ final).

    A head's output is its z times its slice of W_O (what TransformerLens's hook_result holds), computed from hook_z so
    the model never has to run with per-head results switched on.
    """
    model, graph = ev.lm.model, ev.graph
    blocks, logits = graph.blocks, graph.nodes["logits"]
    wanted = {node.hook for node in graph.senders} | {b.resid_pre for b in blocks} | {logits.inputs[""]}
    with torch.no_grad(), model.hooks(fwd_hooks=ablation_hooks(ev.lm, masks, ev.repl)):
        _, cache = model.run_with_cache(tokens, stop_at_layer=graph.n_layers, names_filter=lambda name: name in wanted)
        outputs = {"input": cache[graph.nodes["input"].hook]}
        for layer, heads in enumerate(graph.heads):
            result = head_outputs(model, layer, cache[blocks[layer].z])
            outputs |= {head.name: result[:, :, head.index] for head in heads}
            if graph.has_mlps:
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


def eap_scores(ev: Evaluator, ig_steps: int = 0, masks: Masks | None = None) -> dict[EdgeKey, float]:
    """Estimated performance drop of every edge of the graph (EAP; EAP-IG with `ig_steps` > 0), inside the circuit
    `masks` (everything else at its reference) or the full model.

    An edge's score is the sender's (clean - reference) output dotted with the gradient at the receiver's input, summed
    over prompts and positions (gradients of the mean over prompts, averaged over the IG steps): per block one matrix
    product of its senders' deltas `[F, N*pos*d]` with its receiver inputs' gradients. The model runs without split
    q/k/v inputs, which would triple the cost of its forward and backward pass (`_block_grads`).
    """
    model, graph = ev.lm.model, ev.graph
    refs = sender_references(ev)
    masks = masks if masks is not None else Masks.full(graph)
    clean_in = embed(model, ev.data.clean)
    reference_in = ev.repl.embed.expand_as(clean_in)
    alphas = [1.0] if ig_steps <= 0 else [(i + 1) / ig_steps for i in range(ig_steps)]
    grads: list[torch.Tensor] = []  # per block [3 n_heads + 1, N*pos*d] (receivers in graph order), the logits' [1, ...]
    block_grads = _block_grads if hooked(model) else _block_grads_autograd
    for alpha in alphas:
        saved = _run(ev, masks, torch.lerp(reference_in, clean_in, alpha))
        step = [block_grads(model, block, saved) for block in graph.blocks]
        step.append(saved[graph.nodes["logits"].inputs[""]].reshape(1, -1))
        grads = step if not grads else [total.add_(g) for total, g in zip(grads, step)]
    delta = _deltas(ev, saved, refs)  # the last step (alpha 1) ran on the clean input
    scores = delta.new_zeros(len(graph.senders), len(graph.receivers))  # [sender (its forward order), receiver]
    column = 0
    for group in grads:
        # the group's last receiver (the MLP, the logits, else a head) reads every sender its other receivers read
        upstream = len(graph.upstream(graph.receivers[column + len(group) - 1][0]))
        scores[:upstream, column:column + len(group)] = delta[:upstream] @ group.T
        column += len(group)
    # a positive score estimates a drop in performance, as path patching measures it
    drops = (scores / ((ev.full - ev.base) * len(alphas))).tolist()
    return {e.key: drops[e.sender.order][graph.column[e.receiver.name, e.qkv]] for e in graph.edges}


def _run(ev: Evaluator, masks: Masks, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """One forward and backward pass of the metric (its mean over prompts) under `masks` from the input `x` `[N, pos, d]`, by
    hook name: each block's input, head outputs z and MLP output, and the gradients at each block's q, k, v and MLP
    input and at the final residual stream."""
    model, graph = ev.lm.model, ev.graph
    saved: dict[str, torch.Tensor] = {}

    def keep(tensor: torch.Tensor, hook) -> None:
        saved[hook.name] = tensor.detach()

    outputs = [(name, keep) for block in graph.blocks for name in (block.resid_pre, block.z, block.mlp_out) if name]
    inputs = [name for block in graph.blocks for name in (*block.qkv.values(), block.mlp_in) if name]
    inputs.append(graph.nodes["logits"].inputs[""])
    with model.hooks(fwd_hooks=ablation_hooks(ev.lm, masks, ev.repl) + outputs, bwd_hooks=[(n, keep) for n in inputs]):
        final = model(x.detach().requires_grad_(True), start_at_layer=0, stop_at_layer=graph.n_layers)
        ev.value(final).sum().backward()
    ev.passes += 1
    return saved


def _deltas(ev: Evaluator, saved: dict[str, torch.Tensor], refs: list[torch.Tensor]) -> torch.Tensor:
    """Each sender's output in the run `saved` minus its reference, `[senders (forward order), N*pos*d]`; a head's
    output is its z times its slice of W_O."""
    model, graph = ev.lm.model, ev.graph
    parts = [saved[graph.nodes["input"].hook][None]]
    for block in graph.blocks:
        parts.append(head_outputs(model, block.layer, saved[block.z]).movedim(2, 0))
        parts += [saved[block.mlp_out][None]] if block.mlp_out else []
    delta = torch.cat(parts)
    for output, ref in zip(delta, refs):
        output -= ref
    return delta.flatten(1)


def _block_grads_autograd(model, block: Block, saved: dict[str, torch.Tensor]) -> torch.Tensor:
    """`_block_grads` for a model whose norm before attention is a module of its own (a TransformerBridge's: Gemma's
    RMSNorm scales by 1 + w, for one): each head's q, k, v gradient times its slice of W_Q/W_K/W_V, pulled back
    through that module by autograd on one copy of the block's input per head `[3 n_heads, N, pos, d]`."""
    attn = model.blocks[block.layer].attn
    x = saved[block.resid_pre]  # [N, pos, d]
    weight = torch.cat([attn.W_Q, attn.W_K, attn.W_V])  # [3 n_heads, d, d_head]
    g = torch.cat([saved[name] for name in block.qkv.values()], 2)  # [N, pos, 3 n_heads, d_head]
    at_norm = torch.einsum("nphk,hdk->hnpd", g, weight)  # [3 n_heads, N, pos, d]
    copies = x.expand(weight.shape[0], *x.shape).reshape(-1, *x.shape[1:]).detach().requires_grad_(True)
    with torch.enable_grad():
        model.blocks[block.layer].ln1(copies).backward(at_norm.reshape(copies.shape))
    heads = copies.grad.view(weight.shape[0], -1)
    return torch.cat([heads, saved[block.mlp_in].reshape(1, -1)]) if block.mlp_in else heads


def _block_grads(model, block: Block, saved: dict[str, torch.Tensor]) -> torch.Tensor:
    """One block's receiver-input gradients `[3 n_heads + 1, N*pos*d]`: each head's q, k, v gradient g pulled back
    through its slice W of W_Q/W_K/W_V and through ln1 at the block's input x (what split q/k/v inputs would hold),
    then the MLP input's gradient.

    ln1 (x centred for LN/LNPre; s = sqrt(mean(x^2) + eps), n = x / s; times w for LN/RMS) pulls a gradient u back to
    (uw - mean(uw) - n mean(uw n)) / s with uw = g (W w)^T; in closed form each head's gradient is written once, where
    autograd through ln1 on a copy of x per head costs several times more.
    """
    kind, attn = model.cfg.normalization_type, model.blocks[block.layer].attn
    x = saved[block.resid_pre]  # [N, pos, d]
    if kind in ("LN", "LNPre"):
        x = x - x.mean(-1, keepdim=True)
    scale = (x.pow(2).mean(-1, keepdim=True) + model.cfg.eps).sqrt() if kind else torch.ones_like(x[..., :1])
    normed = (x / scale).flatten(0, 1)  # [N*pos, d]
    weight = torch.cat([attn.W_Q, attn.W_K, attn.W_V])  # [3 n_heads, d, d_head]
    if kind in ("LN", "RMS"):
        weight = weight * model.blocks[block.layer].ln1.w[:, None]
    g = (torch.cat([saved[name] for name in block.qkv.values()], 2) / scale[..., None]).flatten(0, 1)  # [N*pos, 3h, dh]
    grads = x.new_empty(weight.shape[0] + bool(block.mlp_in), x.numel())
    heads = grads[:weight.shape[0]].view(weight.shape[0], *normed.shape)  # [3 n_heads, N*pos, d]
    torch.bmm(g.transpose(0, 1), weight.transpose(1, 2), out=heads)
    if kind:
        along = torch.einsum("hnd,nd->hn", heads, normed) / normed.shape[1]  # mean(uw n) / s
        heads.addcmul_(along[..., None], normed, value=-1)
    if kind in ("LN", "LNPre"):
        heads.sub_(torch.einsum("nhk,hk->hn", g, weight.mean(1))[..., None])
    if block.mlp_in:
        grads[-1] = saved[block.mlp_in].flatten()
    return grads
