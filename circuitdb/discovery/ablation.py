"""Ablation for head and feature circuits alike: reference values (mean / zero / resample over the corrupted prompts)
and keep-mask hooks that swap them in, K circuit variants x N prompts in one forward pass.

Head circuits: a variant is a pair of keep-masks (`graph.Masks`); every head or MLP it does not keep outputs its
`Replacement` instead. Runs can start at any layer from a cached residual stream, which is what makes layer-by-layer
pruning cheap. Feature circuits (`features.py`) mask their feature and error activations with the same two functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from circuitdb.discovery.graph import Masks
from circuitdb.discovery.lens import HookedTransformer
from circuitdb.discovery.models import LoadedModel
from circuitdb.discovery.spec import ABLATIONS, INTERVENTIONS
from circuitdb.errors import CircuitdbError

Hook = tuple[str, Callable]


def reference(acts_NX: torch.Tensor, ablation: str, seed: int = 0, templates_N: torch.Tensor | None = None) -> torch.Tensor:
    """What an ablated activation takes, from its values on the reference prompts `[N, ...]`: their mean per position
    `[1, ...]`, the mean over the prompts of each prompt's template `[N, ...]` (mean-per-template), zeros `[1, ...]`,
    the prompts in a seeded shuffle `[N, ...]` (resample), or each prompt's own corrupted value `[N, ...]` (patch:
    paired corrupted patching)."""
    if ablation not in INTERVENTIONS:
        raise CircuitdbError(f"unknown ablation {ablation!r} (use {', '.join(ABLATIONS)})")
    if ablation == "mean-per-template":
        templates_N = torch.zeros(acts_NX.shape[0], dtype=torch.long) if templates_N is None else templates_N
        means = {int(t): acts_NX[templates_N == t].mean(0) for t in templates_N.unique()}
        return torch.stack([means[int(t)] for t in templates_N])
    if ablation == "patch":
        return acts_NX
    if ablation == "resample":
        return acts_NX[torch.randperm(acts_NX.shape[0], generator=torch.Generator().manual_seed(seed))]
    mean = acts_NX.mean(0, keepdim=True)
    return torch.zeros_like(mean) if ablation == "zero" else mean


def keep_or_reference(act_KNX: torch.Tensor, keep_KX: torch.Tensor, ref_NX: torch.Tensor) -> torch.Tensor:
    """Per variant k of an activation `[K*N, ...]`: itself where `keep[k]` is True, the reference `[1|N, ...]` elsewhere;
    `keep` `[K, ...]` broadcasts against one prompt's activation."""
    grouped = act_KNX.view(keep_KX.shape[0], -1, *act_KNX.shape[1:])
    return torch.where(keep_KX.unsqueeze(1), grouped, ref_NX.unsqueeze(0)).view_as(act_KNX)


def masking_hook(keep_KX: torch.Tensor, ref_NX: torch.Tensor) -> Callable:
    """A hook applying `keep_or_reference` (masks live on the CPU, the activations on the job's device)."""
    keep_KX = keep_KX.to(ref_NX.device)

    def hook(act_KNX: torch.Tensor, hook: object) -> torch.Tensor:
        return keep_or_reference(act_KNX, keep_KX, ref_NX)

    return hook


@dataclass
class Replacement:
    """What ablated heads and MLPs output, per layer: head outputs z `[B|1, pos, n_heads, d_head]`, MLP outputs
    `[B|1, pos, d_model]`; and the reference of the embedding `[B|1, pos, d_model]` (what a removed edge from the
    input carries)."""

    z: list[torch.Tensor]
    mlp: list[torch.Tensor]
    embed: torch.Tensor


def activations(lm: LoadedModel, tokens: torch.Tensor) -> Replacement:
    """Per-prompt head outputs (hook_z), MLP outputs and embedding of a plain run: the source of every reference."""
    blocks = lm.graph.blocks
    names = {b.z for b in blocks} | {b.mlp_out for b in blocks if b.mlp_out} | {blocks[0].resid_pre}
    with torch.no_grad():
        _, cache = lm.model.run_with_cache(tokens, names_filter=lambda name: name in names)
    return Replacement([cache[b.z] for b in blocks], [cache[b.mlp_out] for b in blocks if b.mlp_out],
                       cache[blocks[0].resid_pre])


def replacement(lm: LoadedModel, reference_tokens: torch.Tensor, ablation: str, seed: int = 0,
                templates_N: torch.Tensor | None = None) -> Replacement:
    """The heads' and MLPs' `reference` values on the reference prompts."""
    acts = activations(lm, reference_tokens)

    def ref(acts_NX: torch.Tensor) -> torch.Tensor:
        return reference(acts_NX, ablation, seed, templates_N)

    return Replacement([ref(z) for z in acts.z], [ref(m) for m in acts.mlp], ref(acts.embed))


def ablation_hooks(lm: LoadedModel, masks: Masks, repl: Replacement, first_layer: int = 0) -> list[Hook]:
    """Hooks that swap in the replacement for every head and MLP a variant leaves out, from `first_layer` on."""
    hooks: list[Hook] = []
    for block in lm.graph.blocks[first_layer:]:
        keep_heads, keep_mlp = masks.heads[:, block.layer], masks.mlps[:, block.layer]  # [K, n_heads], [K]
        if not keep_heads.all():
            hooks.append((block.z, masking_hook(keep_heads[:, None, :, None], repl.z[block.layer])))
        if block.mlp_out is not None and not keep_mlp.all():
            hooks.append((block.mlp_out, masking_hook(keep_mlp[:, None, None], repl.mlp[block.layer])))
    return hooks


@contextmanager
def split_inputs(model: HookedTransformer) -> Iterator[None]:
    """Per-head q/k/v inputs (hook_q_input ...), needed to reach single edges into heads; off again afterwards. Per-head
    outputs come from hook_z and W_O, so TransformerLens's costly per-head results stay off."""
    model.set_use_split_qkv_input(True)
    try:
        yield
    finally:
        model.set_use_split_qkv_input(False)


def embed(model: HookedTransformer, tokens: torch.Tensor) -> torch.Tensor:
    """The residual stream entering block 0 `[N, pos, d_model]`."""
    return model(tokens, stop_at_layer=0)


def run_blocks(
    lm: LoadedModel,
    resid_NPD: torch.Tensor,
    start: int,
    masks: Masks,
    repl: Replacement,
    stop: int | None = None,
    extra: list[Hook] = (),
) -> torch.Tensor:
    """Residual stream `[K*N, pos, d_model]` after blocks start..stop-1 for each variant, from a shared input `[N, pos, d]`."""
    x = resid_NPD.repeat(masks.k, 1, 1)
    stop = lm.graph.n_layers if stop is None else stop
    if start == stop:
        return x
    with lm.model.hooks(fwd_hooks=ablation_hooks(lm, masks, repl, start) + list(extra)):
        return lm.model(x, start_at_layer=start, stop_at_layer=stop)


def head_outputs(model: HookedTransformer, layer: int, z_NPHK: torch.Tensor) -> torch.Tensor:
    """Each head's output `[N, pos, n_heads, d_model]`: its z times its slice of W_O (what TransformerLens's
    hook_result holds, without running the model with per-head results on).

    Where the attention output is normalized before it joins the residual stream (Gemma 2's RMSNorm after
    attention), a head's output is its share of the normalized sum: its z W_O times the norm's gain over the RMS of
    the sum of all heads at that position, so the shares add up to what attention adds."""
    out_NPHD = torch.einsum("nphk,hkd->nphd", z_NPHK, model.blocks[layer].attn.W_O)
    gain_D = post_attention_gain(model, layer)
    if gain_D is None:
        return out_NPHD
    total_NPD = out_NPHD.sum(2) + model.blocks[layer].attn.b_O
    return out_NPHD * gain_D / (total_NPD.pow(2).mean(-1, keepdim=True) + model.cfg.eps).sqrt()[:, :, None]


def post_attention_gain(model: HookedTransformer, layer: int) -> torch.Tensor | None:
    """The gain `[d_model]` of the norm a block applies to its attention output (`ln1_post`), None where it has
    none: the norm's output on a vector of ones times that vector's RMS, so any RMSNorm parametrization reads alike."""
    post = getattr(model.blocks[layer], "ln1_post", None)
    if post is None or isinstance(post, torch.nn.Identity):
        return None
    ones = model.blocks[layer].attn.W_O.new_ones(1, 1, model.cfg.d_model)
    with torch.no_grad():
        return post(ones)[0, 0] * (1 + model.cfg.eps) ** 0.5


def heads_add_up(lm: LoadedModel, tokens: torch.Tensor) -> bool:
    """Whether the heads' outputs (`head_outputs`, plus b_O where attention is not normalized after) are what
    attention adds to the residual stream, measured in block 0 on `tokens` `[B, pos]`; the edge methods need it."""
    model, block = lm.model, lm.graph.blocks[0]
    names = {block.z, block.resid_pre, block.resid_post, block.mlp_out}
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    added = cache[block.resid_post] - cache[block.resid_pre] - (cache[block.mlp_out] if block.mlp_out else 0)
    heads = head_outputs(model, 0, cache[block.z]).sum(2)
    if post_attention_gain(model, 0) is None:
        heads = heads + model.blocks[0].attn.b_O
    return bool(torch.allclose(heads, added, atol=1e-4, rtol=1e-3))


def final_norm(model: HookedTransformer, resid: torch.Tensor) -> torch.Tensor:
    """The final normalization of a residual stream `[..., d_model]` (none in a LayerNorm-free model)."""
    return model.ln_final(resid) if hasattr(model, "ln_final") else resid


def soft_cap(model: HookedTransformer, logits: torch.Tensor) -> torch.Tensor:
    """Logits as the model outputs them: squashed into (-cap, cap) where the model caps them (Gemma 2), else as is."""
    cap = getattr(model.cfg, "output_logits_soft_cap", None) or 0.0
    return cap * torch.tanh(logits / cap) if cap > 0 else logits


def last_logits(model: HookedTransformer, resid_final: torch.Tensor) -> torch.Tensor:
    """Logits at the last position `[B, vocab]` of final residual streams `[B, pos, d_model]`."""
    return soft_cap(model, model.unembed(final_norm(model, resid_final[:, -1:]))[:, 0])


def logit_diff(model: HookedTransformer, resid_final: torch.Tensor, answers: torch.Tensor,
               distractors: torch.Tensor) -> torch.Tensor:
    """Mean over prompts of logit(answer) - logit(distractor) at the last position, per variant `[K]`.

    Only the two needed unembedding columns are computed, not the whole vocabulary (each capped as the model caps
    its logits).
    """
    n = answers.shape[0]
    last = final_norm(model, resid_final[:, -1:, :])[:, 0].view(-1, n, model.W_U.shape[0])  # [K, N, d]
    if getattr(model.cfg, "output_logits_soft_cap", None):
        pair = torch.einsum("knd,dnc->knc", last, model.W_U[:, torch.stack([answers, distractors], 1)])
        pair = soft_cap(model, pair + model.b_U[torch.stack([answers, distractors], 1)])
        return (pair[..., 0] - pair[..., 1]).mean(-1)
    direction = (model.W_U[:, answers] - model.W_U[:, distractors]).T  # [N, d]
    bias = model.b_U[answers] - model.b_U[distractors]
    per_prompt = (last * direction).sum(-1) + bias
    return per_prompt.mean(-1)
