"""Measure circuits: performance = LD(circuit) / LD(full model), everything outside the circuit ablated.

An `Evaluator` holds one model x task x ablation and counts the forward passes it runs (for the benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from circuitdb.discovery.ablation import Masks, Replacement, embed, logit_diff, replacement, run_blocks
from circuitdb.discovery.graph import names_mask
from circuitdb.discovery.models import LoadedModel
from circuitdb.discovery.tasks import TaskData, full_logit_diff


@dataclass
class Evaluator:
    """Scores keep-masks on one task's clean prompts, with ablation values taken from its corrupted prompts."""

    lm: LoadedModel
    data: TaskData
    ablation: str = "mean"
    seed: int = 0
    repl: Replacement = field(init=False)
    full: float = field(init=False)
    passes: int = field(default=0, init=False)  # forwards of the prompt batch, one per variant
    blocks: int = field(default=0, init=False)  # transformer blocks run, summed over variants

    def __post_init__(self) -> None:
        self.repl = replacement(self.lm.model, self.data.corrupt, self.ablation, self.seed)
        self.full = full_logit_diff(self.lm, self.data)
        self.embedded = embed(self.lm.model, self.data.clean)

    @property
    def n_layers(self) -> int:
        return self.lm.model.cfg.n_layers

    def resid(self, masks: Masks, start: int, resid: torch.Tensor, stop: int | None = None) -> torch.Tensor:
        """Residual stream after running blocks start..stop-1 of each variant from `resid` `[N, pos, d]`."""
        stop = self.n_layers if stop is None else stop
        self.blocks += masks.k * (stop - start)
        with torch.no_grad():
            return run_blocks(self.lm.model, resid, start, masks, self.repl, stop)

    def performance_from(self, masks: Masks, start: int, resid: torch.Tensor) -> torch.Tensor:
        """Performance `[K]` of each variant, running only from layer `start` on a cached residual stream."""
        self.passes += masks.k
        final = self.resid(masks, start, resid)
        with torch.no_grad():
            return logit_diff(self.lm.model, final, self.data.answers, self.data.distractors) / self.full

    def performance(self, masks: Masks) -> torch.Tensor:
        """Performance `[K]` of each variant from the embedding."""
        return self.performance_from(masks, 0, self.embedded)

    def layer_inputs(self, masks: Masks) -> list[torch.Tensor]:
        """Residual stream entering each block under a one-variant mask (one forward, cached for a sweep)."""
        out, x = [self.embedded], self.embedded
        for layer in range(self.n_layers - 1):
            x = self.resid(masks, layer, x, layer + 1)
            out.append(x)
        return out

    def faithfulness(self, names: set[str]) -> float:
        """Performance with everything outside the circuit ablated."""
        return self.performance(names_mask(self.lm.model.cfg, names)).item()

    def completeness(self, names: set[str]) -> float:
        """Performance with the circuit itself ablated (low means the circuit is what carries the task)."""
        mask = names_mask(self.lm.model.cfg, names)
        return self.performance(Masks(~mask.heads, ~mask.mlps)).item()
