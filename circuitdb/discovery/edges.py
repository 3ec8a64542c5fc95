"""Edge scores: exact path patching between a circuit's nodes, and EAP / EAP-IG over the full graph.

Path patching adds (sender output on corrupted prompts - sender output on clean prompts) to one receiver input only
(a head's q, k or v input, an MLP's input, or the final residual stream) and measures the circuit's performance; the
edge's weight is the drop. EAP estimates the same drop for every edge at once from one backward pass (first-order),
EAP-IG averages the gradients over inputs interpolated from corrupted to clean.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import torch

from circuitdb.discovery.ablation import Hook, Masks, ablation_hooks, edge_resolution, embed, logit_diff, run_blocks
from circuitdb.discovery.evaluate import Evaluator
from circuitdb.discovery.graph import EdgeKey, receivers, senders, upstream
from circuitdb.domain import parse_component


def node_outputs(ev: Evaluator, tokens: torch.Tensor, masks: Masks) -> tuple[dict[str, torch.Tensor], list[torch.Tensor]]:
    """Each node's output `[N, pos, d_model]` under the circuit, and the residual stream entering every block (+ final).

    A head's output is its z times its slice of W_O (what TransformerLens's hook_result holds), computed from hook_z so
    the model never has to run with per-head results switched on.
    """
    model, n_layers = ev.lm.model, ev.n_layers
    wanted = {f"blocks.{n_layers - 1}.hook_resid_post"}
    for layer in range(n_layers):
        wanted |= {f"blocks.{layer}.attn.hook_z", f"blocks.{layer}.hook_mlp_out", f"blocks.{layer}.hook_resid_pre"}
    with torch.no_grad(), model.hooks(fwd_hooks=ablation_hooks(masks, ev.repl, tokens.shape[0])):
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in wanted)
        outputs = {"input": cache["blocks.0.hook_resid_pre"]}
        for layer in range(n_layers):
            result = torch.einsum("nphk,hkd->nphd", cache[f"blocks.{layer}.attn.hook_z"], model.blocks[layer].attn.W_O)
            outputs |= {f"a{layer}.h{h}": result[:, :, h] for h in range(result.shape[2])}
            outputs[f"m{layer}"] = cache[f"blocks.{layer}.hook_mlp_out"]
    streams = [cache[f"blocks.{layer}.hook_resid_pre"] for layer in range(n_layers)]
    return outputs, [*streams, cache[f"blocks.{n_layers - 1}.hook_resid_post"]]


def path_patch(ev: Evaluator, masks: Masks, edges: list[EdgeKey], batch: int = 32,
               progress: Callable[[int], None] | None = None) -> dict[EdgeKey, float]:
    """Exact effect of each edge: circuit performance minus performance with that edge alone patched to corrupted."""
    model = ev.lm.model
    clean, streams = node_outputs(ev, ev.data.clean, masks)
    corrupt, _ = node_outputs(ev, ev.data.corrupt, masks)
    with torch.no_grad():
        base = (logit_diff(model, streams[-1], ev.data.answers, ev.data.distractors) / ev.full).item()
    by_layer: dict[int, list[EdgeKey]] = defaultdict(list)
    for edge in edges:
        by_layer[ev.n_layers if edge[1] == "logits" else parse_component(edge[1]).layer].append(edge)
    effects: dict[EdgeKey, float] = {}
    for layer, group in sorted(by_layer.items()):
        for i in range(0, len(group), batch):
            chunk = group[i:i + batch]
            deltas = [corrupt[s] - clean[s] for s, _, _ in chunk]
            scores = _patched(ev, masks, layer, streams, chunk, deltas)
            effects |= {edge: base - score for edge, score in zip(chunk, scores.tolist())}
            ev.passes += len(chunk)
            if progress:
                progress(len(chunk))
    return effects


def _head_input(model, layer: int, head: int, qkv: str, resid: torch.Tensor) -> torch.Tensor:
    """Head `head`'s q, k or v `[N, pos, d_head]` computed from a residual stream entering its block."""
    attn = model.blocks[layer].attn
    weight, bias = {"q": (attn.W_Q, attn.b_Q), "k": (attn.W_K, attn.b_K), "v": (attn.W_V, attn.b_V)}[qkv]
    return model.blocks[layer].ln1(resid) @ weight[head] + bias[head]


def _patched(ev: Evaluator, masks: Masks, layer: int, streams: list[torch.Tensor], chunk: list[EdgeKey],
             deltas: list[torch.Tensor]) -> torch.Tensor:
    """Performance `[K]` with each of K edges patched, running from the receiver's layer.

    A q/k/v edge changes only that head's q, k or v: it is recomputed from the block's input plus the sender's delta
    and written into hook_q/k/v; an MLP edge adds the delta at hook_mlp_in; a logits edge adds it to the final stream.
    """
    model, k, n = ev.lm.model, len(chunk), ev.data.n
    with torch.no_grad():
        if layer == ev.n_layers:
            final = streams[-1].repeat(k, 1, 1) + torch.cat(deltas)
            return logit_diff(model, final, ev.data.answers, ev.data.distractors) / ev.full
        replace: dict[str, list] = defaultdict(list)
        add: list = []
        for slot, ((_, receiver, qkv), delta) in enumerate(zip(chunk, deltas)):
            component = parse_component(receiver)
            if component.kind == "head":
                value = _head_input(model, layer, component.index, qkv, streams[layer] + delta)
                replace[f"blocks.{layer}.attn.hook_{qkv}"].append((slot, component.index, value))
            else:
                add.append((slot, None, delta))
        extra: list[Hook] = [(hook, _setting(k, n, items)) for hook, items in replace.items()]
        if add:
            extra.append((f"blocks.{layer}.hook_mlp_in", _adding(k, n, add)))
        ev.blocks += k * (ev.n_layers - layer)
        final = run_blocks(model, streams[layer], layer, masks.repeat(k), ev.repl, extra=extra)
        return logit_diff(model, final, ev.data.answers, ev.data.distractors) / ev.full


def _adding(k: int, n: int, items: list[tuple[int, int | None, torch.Tensor]]) -> Callable:
    """A hook adding delta `[N, pos, d]` to slot k of a `[K*N, pos, d]` activation."""

    def hook(act: torch.Tensor, hook: object) -> torch.Tensor:
        grouped = act.view(k, n, *act.shape[1:]).clone()
        for slot, _, delta in items:
            grouped[slot] += delta
        return grouped.view_as(act)

    return hook


def _setting(k: int, n: int, items: list[tuple[int, int, torch.Tensor]]) -> Callable:
    """A hook writing value `[N, pos, d_head]` into slot k, head h of a `[K*N, pos, H, d_head]` activation."""

    def hook(act: torch.Tensor, hook: object) -> torch.Tensor:
        grouped = act.view(k, n, *act.shape[1:]).clone()
        for slot, head, value in items:
            grouped[slot, :, :, head] = value
        return grouped.view_as(act)

    return hook


def eap_scores(ev: Evaluator, ig_steps: int = 0, chunk: int = 8) -> dict[EdgeKey, float]:
    """Estimated performance drop of every edge of the full graph (EAP; EAP-IG with `ig_steps` > 0), no ablation."""
    with edge_resolution(ev.lm.model):
        return _eap_scores(ev, ig_steps, chunk)


def _eap_scores(ev: Evaluator, ig_steps: int, chunk: int) -> dict[EdgeKey, float]:
    model, cfg = ev.lm.model, ev.lm.model.cfg
    full = Masks.full(model)
    clean, _ = node_outputs(ev, ev.data.clean, full)
    corrupt, _ = node_outputs(ev, ev.data.corrupt, full)
    names = senders(cfg)
    delta = torch.stack([corrupt[s] - clean[s] for s in names], dim=2)  # [N, pos, F, d]
    grads = _receiver_grads(ev, ig_steps)  # [N, pos, R, d]
    scores = torch.zeros(len(names), grads.shape[2])
    for i in range(0, delta.shape[0], chunk):
        scores += torch.einsum("npfd,nprd->fr", delta[i:i + chunk], grads[i:i + chunk])
    scores = -scores / ev.full  # a positive score estimates a drop in performance, as path patching measures it
    index = {s: i for i, s in enumerate(names)}
    out = {}
    for r, (receiver, qkv) in enumerate(receivers(cfg)):
        for sender in upstream(cfg, receiver):
            out[(sender, receiver, qkv)] = scores[index[sender], r].item()
    return out


def _receiver_grads(ev: Evaluator, ig_steps: int) -> torch.Tensor:
    """d(mean logit difference)/d(receiver input) `[N, pos, R, d]`, averaged over IG steps when asked."""
    model, cfg = ev.lm.model, ev.lm.model.cfg
    clean_in, corrupt_in = embed(model, ev.data.clean), embed(model, ev.data.corrupt)
    alphas = [1.0] if ig_steps <= 0 else [(i + 1) / ig_steps for i in range(ig_steps)]
    total: torch.Tensor | None = None
    for alpha in alphas:
        grads: dict[str, torch.Tensor] = {}

        def keep(grad: torch.Tensor, hook, grads: dict = grads) -> None:
            grads[hook.name] = grad.detach()

        names = [f"blocks.{layer}.hook_{x}_input" for layer in range(cfg.n_layers) for x in "qkv"]
        names += [f"blocks.{layer}.hook_mlp_in" for layer in range(cfg.n_layers)]
        x = (corrupt_in + alpha * (clean_in - corrupt_in)).detach().requires_grad_(True)
        with model.hooks(bwd_hooks=[(name, keep) for name in names]):
            final = model(x, start_at_layer=0, stop_at_layer=cfg.n_layers)
            final.retain_grad()
            logit_diff(model, final, ev.data.answers, ev.data.distractors).sum().backward()
        ev.passes += 1
        stacked = []
        for layer in range(cfg.n_layers):
            for qkv in "qkv":
                g = grads[f"blocks.{layer}.hook_{qkv}_input"]
                stacked += [g[:, :, h] for h in range(cfg.n_heads)]
            stacked.append(grads[f"blocks.{layer}.hook_mlp_in"])
        stacked.append(final.grad)
        step = torch.stack(stacked, dim=2)  # gradients of the mean over prompts: summing over prompts gives the mean
        total = step if total is None else total + step
    return total / len(alphas)
