"""Batched ablation and patching on a HookedTransformer: K circuit variants x N prompts in one forward pass.

A variant is a pair of keep-masks, heads `[K, n_layers, n_heads]` and MLPs `[K, n_layers]`; every component a variant
does not keep outputs its `Replacement` instead (mean / zero / resample of a reference run, or a patch source).
Runs can start at any layer from a cached residual stream, which is what makes layer-by-layer pruning cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from transformer_lens import HookedTransformer

from circuitdb.errors import CircuitdbError

ABLATIONS = ("mean", "zero", "resample")
Hook = tuple[str, Callable]


@dataclass
class Replacement:
    """What ablated components output, per layer: head outputs z `[B|1, pos, n_heads, d_head]`, MLP outputs
    `[B|1, pos, d_model]`."""

    z: list[torch.Tensor]
    mlp: list[torch.Tensor]


@dataclass
class Masks:
    """Keep-masks of K circuit variants: heads `[K, n_layers, n_heads]`, mlps `[K, n_layers]` (True = in the circuit)."""

    heads: torch.Tensor
    mlps: torch.Tensor

    @property
    def k(self) -> int:
        return self.heads.shape[0]

    @classmethod
    def full(cls, model: HookedTransformer, k: int = 1) -> Masks:
        cfg = model.cfg
        return cls(torch.ones(k, cfg.n_layers, cfg.n_heads, dtype=torch.bool), torch.ones(k, cfg.n_layers, dtype=torch.bool))

    def repeat(self, k: int) -> Masks:
        return Masks(self.heads.expand(k, -1, -1).clone(), self.mlps.expand(k, -1).clone())


def activations(model: HookedTransformer, tokens: torch.Tensor) -> Replacement:
    """Per-prompt head outputs (hook_z) and MLP outputs of a plain run: the source for patching and resampling."""
    names = {f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers)}
    names |= {f"blocks.{layer}.hook_mlp_out" for layer in range(model.cfg.n_layers)}
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    n = model.cfg.n_layers
    return Replacement([cache[f"blocks.{i}.attn.hook_z"] for i in range(n)],
                       [cache[f"blocks.{i}.hook_mlp_out"] for i in range(n)])


def replacement(model: HookedTransformer, reference_tokens: torch.Tensor, ablation: str, seed: int = 0) -> Replacement:
    """Mean (per position, over the reference prompts), zero, or resample (a seeded shuffle of the reference prompts)."""
    if ablation not in ABLATIONS:
        raise CircuitdbError(f"unknown ablation {ablation!r} (use {', '.join(ABLATIONS)})")
    acts = activations(model, reference_tokens)
    if ablation == "resample":
        order = torch.randperm(reference_tokens.shape[0], generator=torch.Generator().manual_seed(seed))
        return Replacement([z[order] for z in acts.z], [m[order] for m in acts.mlp])
    means = Replacement([z.mean(0, keepdim=True) for z in acts.z], [m.mean(0, keepdim=True) for m in acts.mlp])
    if ablation == "zero":
        return Replacement([torch.zeros_like(z) for z in means.z], [torch.zeros_like(m) for m in means.mlp])
    return means


def ablation_hooks(masks: Masks, repl: Replacement, n_prompts: int, first_layer: int = 0) -> list[Hook]:
    """Hooks that swap in the replacement for every component a variant leaves out, from `first_layer` on."""
    hooks: list[Hook] = []
    k = masks.k
    for layer in range(first_layer, masks.heads.shape[1]):
        keep_heads = masks.heads[:, layer]
        if not keep_heads.all():
            hooks.append((f"blocks.{layer}.attn.hook_z", _swap(keep_heads[:, None, None, :, None], repl.z[layer], k, n_prompts)))
        keep_mlp = masks.mlps[:, layer]
        if not keep_mlp.all():
            hooks.append((f"blocks.{layer}.hook_mlp_out", _swap(keep_mlp[:, None, None, None], repl.mlp[layer], k, n_prompts)))
    return hooks


def _swap(keep: torch.Tensor, source: torch.Tensor, k: int, n: int) -> Callable:
    """A hook: activation `[K*N, ...]` -> where(keep, activation, source) per variant (masks live on the CPU, the
    activations on the job's device)."""
    keep = keep.to(source.device)

    def hook(act: torch.Tensor, hook: object) -> torch.Tensor:
        grouped = act.view(k, n, *act.shape[1:])
        return torch.where(keep, grouped, source.unsqueeze(0)).view_as(act)

    return hook


@contextmanager
def edge_resolution(model: HookedTransformer) -> Iterator[None]:
    """Per-head outputs (hook_result) and per-head q/k/v inputs, needed to patch single edges; off again afterwards."""
    model.set_use_attn_result(True)
    model.set_use_split_qkv_input(True)
    try:
        yield
    finally:
        model.set_use_attn_result(False)
        model.set_use_split_qkv_input(False)


def embed(model: HookedTransformer, tokens: torch.Tensor) -> torch.Tensor:
    """The residual stream entering block 0 `[N, pos, d_model]`."""
    return model(tokens, stop_at_layer=0)


def run_blocks(
    model: HookedTransformer,
    resid_NPD: torch.Tensor,
    start: int,
    masks: Masks,
    repl: Replacement,
    stop: int | None = None,
    extra: list[Hook] = (),
) -> torch.Tensor:
    """Residual stream `[K*N, pos, d_model]` after blocks start..stop-1 for each variant, from a shared input `[N, pos, d]`."""
    n = resid_NPD.shape[0]
    x = resid_NPD.repeat(masks.k, 1, 1)
    stop = model.cfg.n_layers if stop is None else stop
    if start == stop:
        return x
    hooks = ablation_hooks(masks, repl, n, start) + list(extra)
    with model.hooks(fwd_hooks=hooks):
        return model(x, start_at_layer=start, stop_at_layer=stop)


def logit_diff(model: HookedTransformer, resid_final: torch.Tensor, answers: torch.Tensor,
               distractors: torch.Tensor) -> torch.Tensor:
    """Mean over prompts of logit(answer) - logit(distractor) at the last position, per variant `[K]`.

    Only the two needed unembedding columns are computed, not the whole vocabulary.
    """
    n = answers.shape[0]
    last = model.ln_final(resid_final[:, -1:, :])[:, 0]  # [K*N, d]
    direction = (model.W_U[:, answers] - model.W_U[:, distractors]).T  # [N, d]
    bias = model.b_U[answers] - model.b_U[distractors]
    per_prompt = (last.view(-1, n, last.shape[-1]) * direction).sum(-1) + bias
    return per_prompt.mean(-1)
