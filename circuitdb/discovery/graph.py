"""The model's computational graph in EAP-IG/MIB names, built once from its config, and TransformerLens hook names.

Nodes `input`, `a<L>.h<H>`, `m<L>`, `logits` know their layer, kind, index and hooks; edges run from every earlier node
into each head's q, k and v input, each MLP and the logits (32,491 for GPT-2 small). `Masks` keep some of its heads
and MLPs. `hook` is the one place that spells a hook name; everything else reads them from a `Block` or a `Node`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

import torch

from circuitdb.discovery.lens import HookedTransformerConfig

EdgeKey = tuple[str, str, str]  # sender, receiver, q/k/v or ""
QKV = ("q", "k", "v")


def hook(layer: int, point: str) -> str:
    """TransformerLens's name of hook `point` in block `layer`: hook(3, "attn.hook_z") is `blocks.3.attn.hook_z`."""
    return f"blocks.{layer}.{point}"


def hook_layer(name: str) -> int:
    """The block a hook name belongs to: `blocks.3.attn.hook_z` -> 3."""
    return int(name.split(".")[1])


@dataclass(frozen=True)
class Block:
    """The hook names of one transformer block, shapes per prompt batch `[N, pos, ...]`."""

    layer: int
    resid_pre: str  # [N, pos, d_model] entering the block
    z: str  # [N, pos, n_heads, d_head] per-head outputs before W_O
    qkv: dict[str, str]  # q/k/v -> [N, pos, n_heads, d_head]
    qkv_input: dict[str, str]  # q/k/v -> [N, pos, n_heads, d_model] per-head inputs (with split q/k/v inputs on)
    mlp_in: str | None  # [N, pos, d_model]; None in an attention-only model
    mlp_out: str | None  # [N, pos, d_model]
    resid_post: str  # [N, pos, d_model] leaving the block

    @classmethod
    def at(cls, layer: int, mlp: bool = True) -> Block:
        return cls(layer, hook(layer, "hook_resid_pre"), hook(layer, "attn.hook_z"),
                   {x: hook(layer, f"attn.hook_{x}") for x in QKV}, {x: hook(layer, f"hook_{x}_input") for x in QKV},
                   hook(layer, "hook_mlp_in") if mlp else None, hook(layer, "hook_mlp_out") if mlp else None,
                   hook(layer, "hook_resid_post"))


@dataclass(frozen=True, eq=False)
class Node:
    """One node: `kind` embed | head | mlp | logits (as `domain.Component`), its block (`input` 0, `logits` n_layers, as in
    EAP-IG), its head index, its place in forward order, the hook holding its output (a head's is hook_z at `index`;
    the logits have none) and the hooks of its inputs by q/k/v ("" for an MLP's or the logits' one input)."""

    name: str
    kind: str
    layer: int
    index: int | None
    order: int
    hook: str
    inputs: dict[str, str]


@dataclass(frozen=True, eq=False)
class GraphEdge:
    """An edge: the sender's output into the receiver's q, k or v input (heads) or its only input ("")."""

    sender: Node
    receiver: Node
    qkv: str
    key: EdgeKey = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.sender.name, self.receiver.name, self.qkv))


@dataclass
class Masks:
    """Keep-masks of K circuit variants: heads `[K, n_layers, n_heads]`, mlps `[K, n_layers]` (True = in the circuit)."""

    heads: torch.Tensor
    mlps: torch.Tensor

    @property
    def k(self) -> int:
        return self.heads.shape[0]

    @classmethod
    def full(cls, graph: ModelGraph, k: int = 1) -> Masks:
        """K variants keeping everything (an attention-only model has no MLP to keep)."""
        return cls(torch.ones(k, graph.n_layers, graph.n_heads, dtype=torch.bool),
                   torch.full((k, graph.n_layers), graph.has_mlps, dtype=torch.bool))

    def repeat(self, k: int) -> Masks:
        return Masks(self.heads.expand(k, -1, -1).clone(), self.mlps.expand(k, -1).clone())


class ModelGraph:
    """Nodes by name in forward order (input, per layer the heads then the MLP, logits), the blocks' hooks, the
    receivers (each head's q, k, v per layer, then the MLP; the logits last) and every edge, in receiver order.

    An attention-only model has no MLP nodes (`mlps` holds None per layer); in a model with parallel attention and
    MLP, an MLP reads the block's input, so no edge runs from its own layer's heads into it."""

    def __init__(self, n_layers: int, n_heads: int, has_mlps: bool = True, parallel: bool = False,
                 grouped: bool = False) -> None:
        self.n_layers, self.n_heads, self.has_mlps, self.parallel = n_layers, n_heads, has_mlps, parallel
        self.grouped = grouped  # grouped-query attention: heads share keys and values
        self.blocks = [Block.at(layer, has_mlps) for layer in range(n_layers)]
        b = self.blocks
        nodes = [Node("input", "embed", 0, None, 0, b[0].resid_pre, {})]
        self.heads: list[list[Node]] = []  # per layer
        self.mlps: list[Node | None] = []  # per layer
        for layer in range(n_layers):
            self.heads.append([Node(f"a{layer}.h{h}", "head", layer, h, len(nodes) + h, b[layer].z, b[layer].qkv_input)
                               for h in range(n_heads)])
            nodes += self.heads[-1]
            mlp = Node(f"m{layer}", "mlp", layer, None, len(nodes), b[layer].mlp_out, {"": b[layer].mlp_in})
            self.mlps.append(mlp if has_mlps else None)
            nodes += [mlp] if has_mlps else []
        nodes.append(Node("logits", "logits", n_layers, None, len(nodes), "", {"": b[-1].resid_post}))
        self.nodes = {node.name: node for node in nodes}
        self.senders = nodes[:-1]
        self.receivers: list[tuple[Node, str]] = []
        for layer in range(n_layers):
            self.receivers += [(head, x) for x in QKV for head in self.heads[layer]]
            self.receivers += [(self.mlps[layer], "")] if has_mlps else []
        self.receivers.append((self.nodes["logits"], ""))
        self.column = {(r.name, x): i for i, (r, x) in enumerate(self.receivers)}  # a receiver input's place
        self.edges = [GraphEdge(s, r, x) for r, x in self.receivers for s in self.upstream(r)]

    @cached_property
    def possible(self) -> torch.Tensor:
        """Which edges exist, `[senders, receiver inputs]` (built on first use: only edge circuits need it)."""
        return self.edge_matrix(e.key for e in self.edges)

    @classmethod
    def from_config(cls, cfg: HookedTransformerConfig) -> ModelGraph:
        """The graph of a model: its number of layers and heads, whether it has MLPs, runs them in parallel, and
        groups its keys and values (a HookedTransformer's are ungrouped when it is loaded; a bridge's stay grouped)."""
        grouped = (cfg.n_key_value_heads is not None and cfg.n_key_value_heads != cfg.n_heads
                   and not getattr(cfg, "ungroup_grouped_query_attention", False))
        return cls(cfg.n_layers, cfg.n_heads, not cfg.attn_only, bool(cfg.parallel_attn_mlp), grouped)

    def upstream(self, receiver: Node) -> list[Node]:
        """The nodes whose outputs reach `receiver`'s input (a layer's heads before its MLP, unless parallel)."""
        if receiver.kind == "head" or (receiver.kind == "mlp" and self.parallel):
            return self.senders[: self.heads[receiver.layer][0].order]
        return self.senders[: receiver.order]

    def forward(self, names: set[str]) -> list[str]:
        """`names` in forward order."""
        return sorted(names, key=lambda n: self.nodes[n].order)

    def circuit_edges(self, names: set[str]) -> list[GraphEdge]:
        """Edges among a circuit's nodes (the input and logits always count as present)."""
        present = names | {"input", "logits"}
        return [e for e in self.edges if e.sender.name in present and e.receiver.name in present]

    def edge_matrix(self, keys: Iterable[EdgeKey]) -> torch.Tensor:
        """The edges `keys` as a boolean matrix `[senders (forward order), receiver inputs]`, EAP-IG's layout."""
        kept = torch.zeros(len(self.senders), len(self.receivers), dtype=torch.bool)
        for sender, receiver, qkv in keys:
            kept[self.nodes[sender].order, self.column[receiver, qkv]] = True
        return kept

    def components(self, names: set[str] | list[str]) -> set[str]:
        """The heads and MLPs among `names` (other components, e.g. SAE features, are not in this graph)."""
        return {n for n in names if n in self.nodes and self.nodes[n].kind in ("head", "mlp")}

    def mask(self, names: set[str]) -> Masks:
        """A one-variant mask keeping exactly the named heads and MLPs."""
        masks = Masks(torch.zeros(1, self.n_layers, self.n_heads, dtype=torch.bool),
                      torch.zeros(1, self.n_layers, dtype=torch.bool))
        for node in (self.nodes[n] for n in names):
            if node.kind == "head":
                masks.heads[0, node.layer, node.index] = True
            elif node.kind == "mlp":
                masks.mlps[0, node.layer] = True
        return masks

    def names(self, masks: Masks, k: int = 0) -> list[str]:
        """The heads and MLPs variant k keeps, in forward order."""
        heads, mlps = masks.heads[k].tolist(), masks.mlps[k].tolist()
        out = []
        for layer in range(self.n_layers):
            out += [node.name for node in self.heads[layer] if heads[layer][node.index]]
            if mlps[layer]:
                out.append(self.mlps[layer].name)
        return out
