"""Iterative node pruning (the seqcont method): drop every head or MLP the circuit can do without.

Start from all heads and MLPs (or a stricter circuit). A backward sweep (last layer to first; in each layer the MLP,
then heads 0..n) removes a component for good if the circuit without it still scores at least `threshold` of the full
model; a forward sweep (first layer to last, heads then MLP) follows; sweeps alternate until one removes nothing.

Speed: a candidate in layer L only changes layers >= L, so each test runs from the cached residual stream entering
layer L, and the candidates of one layer are tested together in batches; the first that passes is taken and the rest
re-tested, which gives exactly the sequential order's decisions. The evaluator's lean blocks (`evaluate.LeanBlocks`)
then compute only what a test needs: layer L's heads once for all its candidates (an MLP candidate costs nothing more
in layer L), no ablated head or MLP anywhere, and only the last position from the last kept head on. `prune_plain`
runs the same algorithm with one full TransformerLens forward per candidate: the benchmark's baseline.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import torch

from circuitdb.discovery.evaluate import Evaluator
from circuitdb.discovery.graph import Masks

Candidate = tuple[int, int | None]  # (layer, head) or (layer, None) for the MLP
Progress = Callable[[int], None]


@dataclass
class Pruned:
    """A pruning result: the kept components, the circuit's performance and what it cost."""

    names: list[str]
    performance: float
    sweeps: int
    passes: int


def _layer_candidates(masks: Masks, layer: int, backward: bool) -> list[Candidate]:
    heads = [(layer, h) for h in range(masks.heads.shape[2]) if masks.heads[0, layer, h]]
    mlp = [(layer, None)] if masks.mlps[0, layer] else []
    return mlp + heads if backward else heads + mlp


def _without(masks: Masks, candidates: list[Candidate]) -> Masks:
    """K variants of the circuit, variant i without candidate i."""
    out = masks.repeat(len(candidates))
    for i, (layer, head) in enumerate(candidates):
        if head is None:
            out.mlps[i, layer] = False
        else:
            out.heads[i, layer, head] = False
    return out


def _remove(masks: Masks, candidate: Candidate) -> None:
    layer, head = candidate
    if head is None:
        masks.mlps[0, layer] = False
    else:
        masks.heads[0, layer, head] = False


def _test_layer(ev: Evaluator, masks: Masks, layer: int, resid: torch.Tensor, threshold: float, backward: bool,
                batch: int, progress: Progress | None) -> bool:
    """Test the layer's candidates in order, batched; remove each that keeps performance >= threshold.

    The batch grows while candidates fail and drops to one after a removal, since a removal voids the rest of its
    batch (they must be re-tested against the smaller circuit).
    """
    pending, removed, size = _layer_candidates(masks, layer, backward), False, 1
    while pending:
        chunk = pending[:size]
        scores = ev.performance_from(_without(masks, chunk), layer, resid)
        passing = [i for i, s in enumerate(scores.tolist()) if s >= threshold]
        done = passing[0] + 1 if passing else len(chunk)
        size = 1 if passing else min(2 * size, batch)
        if passing:
            _remove(masks, chunk[passing[0]])
            removed = True
        if progress:
            progress(done)
        pending = pending[done:]
    return removed


def _sweep(ev: Evaluator, masks: Masks, threshold: float, backward: bool, batch: int, progress: Progress | None) -> bool:
    """One sweep over the layers with layer-cached residual streams."""
    n = ev.n_layers
    removed = False
    if backward:  # removals at layer L leave the inputs of layers <= L unchanged: one cached forward serves the sweep
        inputs = ev.layer_inputs(masks)
        for layer in reversed(range(n)):
            removed |= _test_layer(ev, masks, layer, inputs[layer], threshold, True, batch, progress)
        return removed
    resid = ev.embedded
    for layer in range(n):
        removed |= _test_layer(ev, masks, layer, resid, threshold, False, batch, progress)
        if layer + 1 < n:
            resid = ev.resid(masks, layer, resid, layer + 1)
    return removed


def prune(ev: Evaluator, threshold: float, start: Masks | None = None, batch: int = 8,
          progress: Progress | None = None) -> Pruned:
    """Alternate backward and forward sweeps until one removes nothing. `batch` caps the candidates scored together:
    on CPU a bigger batch costs more per candidate (memory traffic), so the cap mostly bounds memory."""
    masks = start.repeat(1) if start is not None else Masks.full(ev.graph)
    passes, sweeps, backward = ev.passes, 0, True
    while True:
        sweeps += 1
        if not _sweep(ev, masks, threshold, backward, batch, progress):
            break
        backward = not backward
    return Pruned(ev.graph.names(masks), ev.performance_from(masks, 0, ev.embedded).item(), sweeps, ev.passes - passes)


def prune_plain(ev: Evaluator, threshold: float, start: Masks | None = None) -> Pruned:
    """The same algorithm with one full forward from the embedding per candidate: the benchmark's baseline."""
    masks = start.repeat(1) if start is not None else Masks.full(ev.graph)
    passes, sweeps, backward = ev.passes, 0, True
    while True:
        sweeps += 1
        removed = False
        layers = reversed(range(ev.n_layers)) if backward else range(ev.n_layers)
        for layer in layers:
            for candidate in _layer_candidates(masks, layer, backward):
                if ev.performance(_without(masks, [candidate])).item() >= threshold:
                    _remove(masks, candidate)
                    removed = True
        if not removed:
            break
        backward = not backward
    return Pruned(ev.graph.names(masks), ev.performance(masks).item(), sweeps, ev.passes - passes)


def random_order_circuits(ev: Evaluator, threshold: float, orders: int, seed: int = 0,
                          progress: Progress | None = None) -> list[list[str]]:
    """Prune `orders` times from the full model, each sweep visiting every component in a fresh random order: the
    circuits found. Each candidate is scored alone from the embedding (random orders leave no layer to cache)."""
    rng = random.Random(seed)
    circuits = []
    for _ in range(orders):
        masks = Masks.full(ev.graph)
        while True:
            cands = [c for layer in range(ev.n_layers) for c in _layer_candidates(masks, layer, True)]
            rng.shuffle(cands)
            removed = False
            for candidate in cands:
                if ev.performance_from(_without(masks, [candidate]), 0, ev.embedded).item() >= threshold:
                    _remove(masks, candidate)
                    removed = True
            if progress:
                progress(1)
            if not removed:
                break
        circuits.append(ev.graph.names(masks))
    return circuits


def survival(ev: Evaluator, threshold: float, orders: int, seed: int = 0, progress: Progress | None = None) -> dict[str, float]:
    """Robustness: per component, the fraction of `orders` random-order prunings whose circuit keeps it."""
    circuits = random_order_circuits(ev, threshold, orders, seed, progress)
    return {name: sum(name in c for c in circuits) / orders for name in ev.graph.names(Masks.full(ev.graph))}


def member_scores(ev: Evaluator, names: list[str]) -> dict[str, float]:
    """Each member's importance: how much performance drops when it alone is removed from the final circuit."""
    if not names:
        return {}
    masks = ev.graph.mask(set(names))
    base = ev.performance(masks).item()
    candidates = [(ev.graph.nodes[n].layer, ev.graph.nodes[n].index) for n in names]
    drops = ev.performance(_without(masks, candidates))
    return {name: round(base - drop, 8) for name, drop in zip(names, drops.tolist())}
