"""Measure circuits: performance = m(circuit) / m(full model), everything outside the circuit ablated, m the run's
metric (mean logit difference, mean probability of the answer, or minus the KL divergence from the full model, which
is normalised by the empty circuit instead); and the fuller `Measure` of a circuit: the performance, the metric
normalised by the empty circuit, KL divergence to the full model, accuracy.

An `Evaluator` holds one model x task x intervention and counts the forward passes it runs (for the benchmarks).
`performance` is the reference: TransformerLens's own forward with ablation hooks. Runs from a cached layer
(`performance_from`, `resid`) go through `LeanBlocks` where the architecture allows: the same computation (equal up to
float rounding) minus every head and MLP whose output the ablation overwrites anyway, and minus the positions the
metric never reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch
import torch.nn.functional as F

from circuitdb.discovery.ablation import (
    Replacement,
    embed,
    heads_add_up,
    last_logits,
    logit_diff,
    replacement,
    run_blocks,
)
from circuitdb.discovery.graph import Masks, ModelGraph
from circuitdb.discovery.lens import HookedTransformer, hooked
from circuitdb.discovery.models import LoadedModel
from circuitdb.discovery.spec import METRICS
from circuitdb.discovery.tasks import TaskData
from circuitdb.domain import DIRECTIONS
from circuitdb.errors import CircuitdbError

LEAN_ARCHITECTURES = (None, "GPT2LMHeadModel")  # None: a config built in code (the toy model, benchmarks)
NOT_LEAN_FLAGS = ("parallel_attn_mlp", "attn_only", "use_local_attn", "use_qk_norm", "use_attention_sinks",
                  "use_logn_attn", "use_normalization_before_and_after", "load_in_4bit")


def lean_fits(model: HookedTransformer) -> bool:
    """Whether `LeanBlocks` reproduces this model's blocks: GPT-2 style (pre-norm, learned absolute positions, plain
    causal multi-head attention, then the MLP); any other model keeps TransformerLens's forward, and a
    TransformerBridge Hugging Face's."""
    cfg = model.cfg
    return (hooked(model) and cfg.original_architecture in LEAN_ARCHITECTURES
            and cfg.positional_embedding_type == "standard"
            and cfg.attention_dir == "causal" and cfg.n_key_value_heads is None and cfg.clip_qkv is None
            and not any(getattr(cfg, flag, False) for flag in NOT_LEAN_FLAGS)
            and not (getattr(cfg, "attn_scores_soft_cap", None) or 0) > 0)


class LeanBlocks:
    """Transformer blocks under keep-masks that compute only what a circuit keeps.

    An ablated head or MLP outputs its replacement whatever its input, so its output is a constant (per layer and
    set of ablated heads, kept until that set changes); kept heads get q/k/v from weights sliced to those heads. Blocks
    whose later positions nobody reads run queries, outputs and the MLP only at the last position (`last`).
    Residual streams are `[K, N, pos, d]` (K variants of N prompts) so per-prompt replacements broadcast.
    """

    def __init__(self, model: HookedTransformer, repl: Replacement) -> None:
        self.model, self.repl = model, repl
        self.n_layers = model.cfg.n_layers
        self._weights: dict[int, tuple[tuple[int, ...], tuple[torch.Tensor, ...]]] = {}  # layer -> (heads, slices)
        self._constants: dict[int, tuple[tuple[int, ...], torch.Tensor]] = {}  # layer -> (ablated heads, constant)
        self._shared: tuple | None = None  # (layer, input, heads, last, writes, swaps) of the last `split` block

    def weights(self, layer: int, heads: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
        """q|k|v weight `[3 h dh, d]` and bias, and W_O `[h dh, d]` sliced to `heads` (the last slice per layer is kept)."""
        cached = self._weights.get(layer)
        if cached is None or cached[0] != heads:
            attn, index = self.model.blocks[layer].attn, torch.tensor(heads)
            w = torch.cat([m[index].transpose(1, 2).flatten(0, 1) for m in (attn.W_Q, attn.W_K, attn.W_V)])
            b = torch.cat([m[index].flatten() for m in (attn.b_Q, attn.b_K, attn.b_V)])
            cached = heads, (w, b, attn.W_O[index].flatten(0, 1))
            self._weights[layer] = cached
        return cached[1]

    def attention(self, layer: int, normed: torch.Tensor, heads: tuple[int, ...], last: bool) -> torch.Tensor:
        """z `[B, q, h, dh]` of `heads` from the normalized stream `[B, pos, d]`; q = 1 (last position) if `last`."""
        w, b, _ = self.weights(layer, heads)
        n_b, pos, hd = normed.shape[0], normed.shape[1], w.shape[0] // 3
        if last:
            q = F.linear(normed[:, -1:], w[:hd], b[:hd])
            k, v = F.linear(normed, w[hd:], b[hd:]).split(hd, -1)
        else:
            q, k, v = F.linear(normed, w, b).split(hd, -1)
        q, k, v = (t.view(n_b, t.shape[1], len(heads), -1).transpose(1, 2) for t in (q, k, v))  # [B, h, pos, dh]
        scores = q @ k.transpose(-1, -2) / self.model.blocks[layer].attn.attn_scale
        if not last:  # the last query sees every key; the others only earlier ones
            causal = torch.ones(pos, pos, dtype=torch.bool, device=scores.device).tril()
            scores = scores.masked_fill(~causal, float("-inf"))
        return (scores.softmax(-1) @ v).transpose(1, 2)

    def replaced(self, layer: int, heads: tuple[int, ...], n_q: int) -> torch.Tensor:
        """What `heads` write `[B|1, q, h, d]` at the last `n_q` positions when ablated: their replacement z times W_O."""
        index = torch.tensor(heads, dtype=torch.long)
        z = self.repl.z[layer][:, -n_q:, index]
        return torch.einsum("bqhk,hkd->bqhd", z, self.model.blocks[layer].attn.W_O[index])

    def constant(self, layer: int, ablated: torch.Tensor, n_q: int) -> torch.Tensor:
        """The attention output's part that does not depend on the input: ablated heads' writes plus b_O `[B|1, q, d]`
        at the last `n_q` positions (the latest per layer is kept: pruning changes it only on a removal)."""
        heads = tuple(ablated.nonzero()[:, 0].tolist())
        cached = self._constants.get(layer)
        if cached is None or cached[0] != heads:
            out = self.replaced(layer, heads, self.repl.z[layer].shape[1]).sum(2) + self.model.blocks[layer].attn.b_O
            cached = self._constants[layer] = heads, out
        return cached[1][:, -n_q:]

    def mlp(self, layer: int, mid: torch.Tensor) -> torch.Tensor:
        """The MLP's output for a stream `[..., q, d]` of any leading shape."""
        block = self.model.blocks[layer]
        flat = mid.reshape(-1, *mid.shape[-2:])
        return block.mlp(block.ln2(flat)).view_as(mid)

    def block(self, layer: int, x: torch.Tensor, heads: torch.Tensor, keep_mlp: bool, last: bool) -> torch.Tensor:
        """One block for all variants `[K, N, pos, d]` under one mask (heads `[n_heads]` bool); only the last position
        comes out if `last`."""
        n_q = 1 if last else x.shape[2]
        kept = tuple(heads.nonzero()[:, 0].tolist())
        out = self.constant(layer, ~heads, n_q)
        if kept:
            z = self.attention(layer, self.model.blocks[layer].ln1(x.flatten(0, 1)), kept, last)
            out = out + (z.flatten(-2) @ self.weights(layer, kept)[2]).view(*x.shape[:2], n_q, -1)
        mid = x[:, :, -n_q:] + out
        return mid + (self.mlp(layer, mid) if keep_mlp else self.repl.mlp[layer][:, -n_q:])

    def head_outputs(self, layer: int, x: torch.Tensor, heads: tuple[int, ...], last: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Each head's write `[N, q, h, d]` from the shared input `[N, pos, d]`, and what ablating it adds (replacement
        write minus write); reused while the input and layer stay the same and `heads` only shrinks (a layer's tests)."""
        shared = self._shared
        fresh = shared is None or shared[0] != layer or shared[1] is not x or shared[3] != last
        if fresh or not set(heads) <= set(shared[2]):
            _, _, w_o = self.weights(layer, heads)
            z = self.attention(layer, self.model.blocks[layer].ln1(x), heads, last)
            out = torch.einsum("nqhk,hkd->nqhd", z, w_o.view(len(heads), -1, w_o.shape[-1]))
            swap = self.replaced(layer, heads, out.shape[1]) - out
            self._shared = shared = layer, x, heads, last, out, swap
        index = [shared[2].index(h) for h in heads]
        return shared[4][:, :, index], shared[5][:, :, index]

    def split(self, layer: int, x: torch.Tensor, heads: torch.Tensor, mlps: torch.Tensor, last: bool) -> torch.Tensor:
        """The block where K variants part (heads `[K, n_heads]`, mlps `[K]`) from a shared input `[N, pos, d]`: the
        heads any variant keeps run once, and each variant swaps in the replacement's write for the heads it drops;
        an MLP runs only for the variants that keep it."""
        n_q = 1 if last else x.shape[1]
        union = heads.any(0)
        kept = tuple(union.nonzero()[:, 0].tolist())
        attn = self.constant(layer, ~union, n_q).unsqueeze(0)  # [1, B|1, q, d]
        if kept:
            per_head, swap = self.head_outputs(layer, x, kept, last)  # [N, q, h, d] each
            dropped = ~heads[:, list(kept)]  # [K, h]
            attn = attn + per_head.sum(2)
            if dropped.any():
                attn = attn + torch.einsum("kh,nqhd->knqd", dropped.to(swap), swap)
        mid = (x[:, -n_q:] + attn).expand(heads.shape[0], -1, -1, -1)
        post = mid + self.repl.mlp[layer][:, -n_q:]
        if mlps.any():
            post[mlps] = mid[mlps] + self.mlp(layer, mid[mlps])
        return post

    def final(self, masks: Masks, start: int, resid: torch.Tensor) -> torch.Tensor:
        """The final residual stream at the last position `[K*N, 1, d]` from a shared input `[N, pos, d]` entering
        block `start`; the variants must agree on every block after `start`.

        Other positions matter only as keys and values of kept heads, so from the last block with a kept head on
        (or from `start` if there is none) only the last position is computed.
        """
        later = masks.heads[0, start + 1:].any(-1).nonzero()
        tail = start + 1 + int(later[-1]) if len(later) else start
        x = self.split(start, resid, masks.heads[:, start], masks.mlps[:, start], start >= tail)
        for layer in range(start + 1, self.n_layers):
            x = self.block(layer, x, masks.heads[0, layer], bool(masks.mlps[0, layer]), layer >= tail)
        return x.flatten(0, 1)

    def resid(self, masks: Masks, start: int, resid: torch.Tensor, stop: int) -> torch.Tensor:
        """The residual stream `[N, pos, d]` after blocks start..stop-1 of a one-variant circuit."""
        x = resid.unsqueeze(0)
        for layer in range(start, stop):
            x = self.block(layer, x, masks.heads[0, layer], bool(masks.mlps[0, layer]), False)
        return x[0]


@dataclass(frozen=True)
class Measure:
    """A circuit's numbers on its task's clean prompts, at the last position: `faithfulness` its performance under
    the run's metric m; `normalised` (m(C) - m(empty)) / (m(full) - m(empty)), the empty circuit being every node and
    edge at its reference; `kl` the mean KL(full || circuit) in nats; `accuracy` the share of prompts whose top-1
    token is the answer."""

    faithfulness: float
    normalised: float
    kl: float
    accuracy: float


@dataclass
class Evaluator:
    """Scores keep-masks on one task's clean prompts, with ablation values taken from its corrupted prompts.

    `direction="denoising"` (paired patching only) turns this around: the corrupted prompts run, the circuit's heads and
    MLPs take their clean values, and performance is (m(C) - m(corrupted)) / (m(clean) - m(corrupted)). It is the
    noising computation with the prompts swapped and every mask complemented (`_masks`), so pruning, lean blocks and
    caching work unchanged.

    `lean=False` runs every cached-layer evaluation through TransformerLens's forward too (the benchmark's middle line).
    """

    lm: LoadedModel
    data: TaskData
    ablation: str = "mean"
    seed: int = 0
    lean: bool = True
    metric: str = "logit_diff"  # logit_diff, prob or kl
    direction: str = "noising"
    repl: Replacement = field(init=False)
    full: float = field(init=False)  # m(full model)
    base: float = field(init=False)  # the m a performance of 0 stands for: 0, or m(empty) for kl
    passes: int = field(default=0, init=False)  # forwards of the prompt batch, one per variant
    blocks: int = field(default=0, init=False)  # transformer blocks run, summed over variants

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise CircuitdbError(f"unknown metric {self.metric!r} (use {', '.join(METRICS)})")
        if self.direction not in DIRECTIONS:
            raise CircuitdbError(f"unknown direction {self.direction!r} (use {', '.join(DIRECTIONS)})")
        denoising = self.direction == "denoising"
        if denoising and self.ablation != "patch":
            raise CircuitdbError(f"denoising restores clean values into each prompt's corrupted run: it needs --ablation "
                                 f"patch, not {self.ablation}")
        run_on, reference_on = (self.data.corrupt, self.data.clean) if denoising else (self.data.clean, self.data.corrupt)
        self.repl = replacement(self.lm, reference_on, self.ablation, self.seed, self.data.templates)
        self.embedded = embed(self.lm.model, run_on)
        self.runner = LeanBlocks(self.lm.model, self.repl) if self.lean and lean_fits(self.lm.model) else None
        with torch.no_grad():
            full = run_blocks(self.lm, embed(self.lm.model, self.data.clean), 0, Masks.full(self.graph), self.repl)
            self.full_logprobs = self._last_logits(full).log_softmax(-1)  # [N, vocab]
            self.full = self.value(full).item()
            if denoising:  # the corrupted run as it is
                empty = run_blocks(self.lm, self.embedded, 0, Masks.full(self.graph), self.repl)
            else:  # every node and the embedding at its reference
                nothing = Masks.full(self.graph)
                nothing.heads[:], nothing.mlps[:] = False, False
                empty = run_blocks(self.lm, self.repl.embed.expand_as(self.embedded), 0, nothing, self.repl)
            self.empty = self.value(empty).item()  # m(empty)
        self.base = self.empty if self.metric == "kl" or denoising else 0.0
        if self.metric == "logit_diff" and self.full <= 0:
            raise CircuitdbError(f"task {self.data.name}: the full model's mean logit difference is {self.full:.4g}, "
                                 "not above 0: there is no performance to keep")
        if self.full - self.empty <= 1e-3 * max(abs(self.full), abs(self.empty)):
            raise CircuitdbError(
                f"task {self.data.name}: under {self.metric} the full model scores {self.full:.4g} and the empty circuit "
                f"({self.ablation}) {self.empty:.4g}, too close to normalise faithfulness by; use another --ablation")

    def value(self, final: torch.Tensor) -> torch.Tensor:
        """The metric m per variant `[K]` of final residual streams `[K*N, pos, d]` (differentiable): the mean logit
        difference, the mean probability of the answer, or minus the mean KL(full || circuit)."""
        if self.metric == "logit_diff":
            return logit_diff(self.lm.model, final, self.data.answers, self.data.distractors)
        logprobs = self._last_logits(final).log_softmax(-1).view(-1, self.data.n, self.full_logprobs.shape[-1])
        if self.metric == "prob":
            return logprobs[:, torch.arange(self.data.n), self.data.answers].exp().mean(-1)
        return -(self.full_logprobs.exp() * (self.full_logprobs - logprobs)).sum(-1).mean(-1)

    def measure(self, final: torch.Tensor) -> Measure:
        """The `Measure` of one circuit from its final residual stream `[N, pos, d]`."""
        with torch.no_grad():
            m = self.value(final).item()
            logits = self._last_logits(final)
            logprobs = logits.log_softmax(-1)
            kl = (self.full_logprobs.exp() * (self.full_logprobs - logprobs)).sum(-1).mean().item()
            accuracy = (logits.argmax(-1) == self.data.answers).float().mean().item()
        return Measure((m - self.base) / (self.full - self.base), (m - self.empty) / (self.full - self.empty), kl,
                       accuracy)

    def measure_nodes(self, names: set[str]) -> Measure:
        """The `Measure` of a node circuit: everything outside it at its reference."""
        self.passes += 1
        with torch.no_grad():
            return self.measure(run_blocks(self.lm, self.embedded, 0, self._masks(self.graph.mask(names)), self.repl))

    def _masks(self, masks: Masks) -> Masks:
        """The keep-masks to run: the circuit's own, or under denoising their complement (the nodes left to run on
        the corrupted prompts, every circuit node taking its clean value)."""
        if self.direction == "noising":
            return masks
        return Masks(~masks.heads, ~masks.mlps & self.graph.has_mlps)

    def _last_logits(self, final: torch.Tensor) -> torch.Tensor:
        """Logits at the last position `[K*N, vocab]` of final residual streams `[K*N, pos, d]`."""
        return last_logits(self.lm.model, final)

    @property
    def graph(self) -> ModelGraph:
        """The model's graph: circuit names to keep-masks and back."""
        return self.lm.graph

    @property
    def n_layers(self) -> int:
        return self.lm.graph.n_layers

    def resid(self, masks: Masks, start: int, resid: torch.Tensor, stop: int | None = None) -> torch.Tensor:
        """Residual stream after running blocks start..stop-1 of each variant from `resid` `[N, pos, d]`."""
        stop = self.n_layers if stop is None else stop
        self.blocks += masks.k * (stop - start)
        masks = self._masks(masks)
        with torch.no_grad():
            if self.runner is not None and masks.k == 1:
                return self.runner.resid(masks, start, resid, stop)
            return run_blocks(self.lm, resid, start, masks, self.repl, stop)

    def performance_from(self, masks: Masks, start: int, resid: torch.Tensor) -> torch.Tensor:
        """Performance `[K]` of each variant, running only from layer `start` on a cached residual stream (lean when
        the variants differ in block `start` only, as one layer's pruning candidates do)."""
        self.passes += masks.k
        self.blocks += masks.k * (self.n_layers - start)
        masks = self._masks(masks)
        after = slice(start + 1, None)
        lean = self.runner is not None and bool((masks.heads[:, after] == masks.heads[:1, after]).all()) \
            and bool((masks.mlps[:, after] == masks.mlps[:1, after]).all())
        with torch.no_grad():
            if lean:
                return self.score(self.runner.final(masks, start, resid))
            return self.score(run_blocks(self.lm, resid, start, masks, self.repl))

    def performance(self, masks: Masks) -> torch.Tensor:
        """Performance `[K]` of each variant: one full TransformerLens forward from the embedding (the reference)."""
        self.passes += masks.k
        self.blocks += masks.k * self.n_layers
        with torch.no_grad():
            return self.score(run_blocks(self.lm, self.embedded, 0, self._masks(masks), self.repl))

    def score(self, final: torch.Tensor) -> torch.Tensor:
        """Performance `[K]` of final residual streams `[K*N, pos, d]` (only the last position is read)."""
        return (self.value(final) - self.base) / (self.full - self.base)

    def layer_inputs(self, masks: Masks) -> list[torch.Tensor]:
        """Residual stream entering each block under a one-variant mask (one forward, cached for a sweep)."""
        out, x = [self.embedded], self.embedded
        for layer in range(self.n_layers - 1):
            x = self.resid(masks, layer, x, layer + 1)
            out.append(x)
        return out

    @cached_property
    def heads_add_up(self) -> bool:
        """`ablation.heads_add_up` on one of the task's prompts, measured once: the edge methods ask on every call."""
        return heads_add_up(self.lm, self.data.clean[:1])

    def faithfulness(self, names: set[str]) -> float:
        """Performance with everything outside the circuit ablated."""
        return self.performance(self.graph.mask(names)).item()

    def completeness(self, names: set[str]) -> float:
        """Performance with the circuit itself ablated (low means the circuit is what carries the task)."""
        mask = self.graph.mask(names)
        return self.performance(Masks(~mask.heads, ~mask.mlps & self.graph.has_mlps)).item()
