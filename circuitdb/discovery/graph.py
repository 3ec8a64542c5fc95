"""The computational graph in EAP-IG/MIB names: nodes `input`, `a<L>.h<H>`, `m<L>`, `logits`, and its edges.

Edges run from every earlier node into each head's q, k and v input, each MLP and the logits (32,491 for GPT-2 small).
"""

from __future__ import annotations

import torch
from transformer_lens import HookedTransformerConfig

from circuitdb.discovery.ablation import Masks
from circuitdb.domain import parse_component

EdgeKey = tuple[str, str, str]  # sender, receiver, q/k/v or ""


def senders(cfg: HookedTransformerConfig) -> list[str]:
    """Forward nodes in order: input, then per layer the heads and the MLP."""
    out = ["input"]
    for layer in range(cfg.n_layers):
        out += [f"a{layer}.h{h}" for h in range(cfg.n_heads)] + [f"m{layer}"]
    return out


def upstream(cfg: HookedTransformerConfig, receiver: str) -> list[str]:
    """The nodes whose outputs reach `receiver`'s input (attention before the MLP of the same layer)."""
    nodes = senders(cfg)
    if receiver == "logits":
        return nodes
    component = parse_component(receiver)
    layer = component.layer
    cut = 1 + layer * (cfg.n_heads + 1) + (cfg.n_heads if component.kind == "mlp" else 0)
    return nodes[:cut]


def receivers(cfg: HookedTransformerConfig) -> list[tuple[str, str]]:
    """(receiver, input) pairs: each head's q, k, v; each MLP; the logits."""
    out = []
    for layer in range(cfg.n_layers):
        out += [(f"a{layer}.h{h}", qkv) for qkv in "qkv" for h in range(cfg.n_heads)] + [(f"m{layer}", "")]
    return [*out, ("logits", "")]


def all_edges(cfg: HookedTransformerConfig) -> list[EdgeKey]:
    """Every edge of the full graph."""
    return [(s, r, i) for r, i in receivers(cfg) for s in upstream(cfg, r)]


def circuit_edges(cfg: HookedTransformerConfig, nodes: set[str]) -> list[EdgeKey]:
    """Edges among a circuit's nodes (the input and logits always count as present)."""
    present = nodes | {"input", "logits"}
    return [(s, r, i) for s, r, i in all_edges(cfg) if s in present and r in present]


def mask_names(masks: Masks, k: int = 0) -> list[str]:
    """Names of the heads and MLPs variant k keeps, in forward order."""
    heads, mlps = masks.heads[k], masks.mlps[k]
    names = []
    for layer in range(heads.shape[0]):
        names += [f"a{layer}.h{h}" for h in range(heads.shape[1]) if heads[layer, h]]
        if mlps[layer]:
            names.append(f"m{layer}")
    return names


def names_mask(cfg: HookedTransformerConfig, names: set[str]) -> Masks:
    """A one-variant mask keeping exactly the named heads and MLPs."""
    heads = torch.zeros(1, cfg.n_layers, cfg.n_heads, dtype=torch.bool)
    mlps = torch.zeros(1, cfg.n_layers, dtype=torch.bool)
    for name in names:
        component = parse_component(name)
        if component.kind == "head":
            heads[0, component.layer, component.index] = True
        elif component.kind == "mlp":
            mlps[0, component.layer] = True
    return Masks(heads, mlps)
