"""SAE feature circuits: attribution of a task's metric to SAE features, exact ablation, feature-to-feature edges.

Each dictionary is spliced into the model at its hook as `decode(f) + err`, where `err = x - decode(encode(x))` is the
error node, so the spliced model computes exactly what the model does. A feature's attribution estimates the metric's
drop when it is ablated (set to its reference: mean, zero, resample or patch over the corrupted prompts) by integrated
gradients, as Marks et al. (Sparse Feature Circuits) do: the gradient averaged over the dictionary's features and
error interpolated from clean towards the reference (alpha = 0, 1/steps, ..., (steps-1)/steps; one step is plain
attribution patching), times (clean - reference), summed over positions and averaged over prompts, as a fraction of
the full logit difference. Error nodes are attributed the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from circuitdb.discovery.ablation import keep_or_reference, logit_diff, reference
from circuitdb.discovery.models import LoadedModel
from circuitdb.discovery.sae import Dictionary
from circuitdb.discovery.tasks import TaskData, full_logit_diff
from circuitdb.errors import CircuitdbError

Node = tuple[str, int | None]  # (dictionary, feature index) or (dictionary, None) for its error node


def node_name(node: Node) -> str:
    """`fresid2/17`, or `fresid2/err` for the error node."""
    return f"f{node[0]}/{'err' if node[1] is None else node[1]}"


@dataclass
class Reference:
    """What an ablated feature / error node of one dictionary takes: `f [1|N, pos, d_sae]`, `err [1|N, pos, d_model]`."""

    f: torch.Tensor
    err: torch.Tensor


@dataclass
class FeatureEvaluator:
    """One model x task x set of dictionaries: scores keep-masks over features (last column = the error node)."""

    lm: LoadedModel
    data: TaskData
    dictionaries: list[Dictionary]
    ablation: str = "mean"
    seed: int = 0
    full: float = field(init=False)
    refs: dict[str, Reference] = field(init=False)

    def __post_init__(self) -> None:
        """Check names, order dictionaries by layer, measure the full LD and the ablation references once."""
        names = [d.name for d in self.dictionaries]
        if len(set(names)) != len(names):
            raise CircuitdbError(f"dictionary names repeat: {names}; name them NAME=SPEC")
        self.dictionaries = sorted(self.dictionaries, key=lambda d: d.layer)
        self.full = full_logit_diff(self.lm, self.data)
        self.refs = self._references()

    def _references(self) -> dict[str, Reference]:
        """Feature and error values on the corrupted prompts, reduced as the ablation says."""
        hooks = [d.hook for d in self.dictionaries]
        with torch.no_grad():
            _, cache = self.lm.model.run_with_cache(self.data.corrupt, names_filter=lambda n: n in hooks)
        out = {}
        for d in self.dictionaries:
            x = cache[d.hook]
            with torch.no_grad():
                f = d.encode(x)
                err = x - d.decode(f)
            out[d.name] = Reference(*(reference(x, self.ablation, self.seed, self.data.templates) for x in (f, err)))
        return out

    def keep_all(self, k: int = 1) -> dict[str, torch.Tensor]:
        """Keep-masks `[K, d_sae + 1]` per dictionary with everything kept."""
        return {d.name: torch.ones(k, d.size + 1, dtype=torch.bool) for d in self.dictionaries}

    def masks(self, kept: list[set[Node]], complement: bool = False) -> dict[str, torch.Tensor]:
        """Keep-masks of K variants, variant i keeping exactly `kept[i]` (or everything but it)."""
        out = {d.name: torch.zeros(len(kept), d.size + 1, dtype=torch.bool) for d in self.dictionaries}
        for row, nodes in enumerate(kept):
            for name, index in nodes:
                out[name][row, -1 if index is None else index] = True
        return {n: ~m for n, m in out.items()} if complement else out

    def performance(self, keep: dict[str, torch.Tensor]) -> torch.Tensor:
        """Performance `[K]`: LD with the features each variant leaves out ablated, over the full model's LD."""
        k = next(iter(keep.values())).shape[0]
        hooks = [(d.hook, self._splice(d, keep[d.name])) for d in self.dictionaries]
        with torch.no_grad(), self.lm.model.hooks(fwd_hooks=hooks):
            resid = self.lm.model(self.data.clean.repeat(k, 1), stop_at_layer=self.lm.model.cfg.n_layers)
            return logit_diff(self.lm.model, resid, self.data.answers, self.data.distractors) / self.full

    def _splice(self, d: Dictionary, keep: torch.Tensor) -> Callable:
        """A hook: `decode(f) + err` at `d` with what each variant of `keep` `[K, d_sae + 1]` leaves out set to its
        reference."""
        ref = self.refs[d.name]
        keep_f, keep_err = keep[:, None, :-1].to(ref.f.device), keep[:, None, -1:].to(ref.f.device)  # [K, 1, d_sae], [K, 1, 1]

        def hook(x_KNPD: torch.Tensor, hook: object) -> torch.Tensor:
            f = d.encode(x_KNPD)
            err = x_KNPD - d.decode(f)
            return d.decode(keep_or_reference(f, keep_f, ref.f)) + keep_or_reference(err, keep_err, ref.err)

        return hook

    def faithfulness(self, nodes: set[Node]) -> float:
        """Performance with every feature and error node outside `nodes` ablated."""
        return self.performance(self.masks([nodes])).item()

    def completeness(self, nodes: set[Node]) -> float:
        """Performance with `nodes` themselves ablated."""
        return self.performance(self.masks([nodes], complement=True)).item()

    def ablation_effects(self, nodes: list[Node], batch: int = 16) -> list[float]:
        """Exact drop in performance when each node alone is ablated (the check on attribution)."""
        out: list[float] = []
        for lo in range(0, len(nodes), batch):
            chunk = nodes[lo:lo + batch]
            keep = self.keep_all(len(chunk))
            for row, (name, index) in enumerate(chunk):
                keep[name][row, -1 if index is None else index] = False
            out += (1 - self.performance(keep)).tolist()
        return out

    def attribution(self, steps: int = 10) -> dict[Node, float]:
        """Integrated-gradient attribution through each dictionary (`steps` = 1: plain attribution patching):
        mean grad x (clean - reference) per node, a fraction of the full LD."""
        scores: dict[Node, float] = {}
        for d in self.dictionaries:
            ref = self.refs[d.name]
            g_f = g_err = 0.0
            for step in range(steps):
                f, err, step_f, step_err = self._leaf_grads(d, step / steps)
                g_f, g_err = g_f + step_f / steps, g_err + step_err / steps
            # the metric is a mean over prompts, so its gradients already carry 1/N: sum, do not average
            per_feature = (g_f * (f - ref.f)).sum((0, 1)) / self.full
            per_error = (g_err * (err - ref.err)).sum() / self.full
            scores |= {(d.name, i): v for i, v in enumerate(per_feature.tolist())}
            scores[(d.name, None)] = per_error.item()
        return scores

    def _leaf_grads(self, d: Dictionary, alpha: float = 0.0) -> tuple[torch.Tensor, ...]:
        """Clean feature and error values at `d`, and the metric's gradients with respect to them at the point
        `alpha` of the way from clean to the reference."""
        leaves: dict[str, torch.Tensor] = {}
        splice = _leaf_splice(d, leaves, self.refs[d.name], alpha)
        with self.lm.model.hooks(fwd_hooks=[(d.hook, splice)]):
            resid = self.lm.model(self.data.clean, stop_at_layer=self.lm.model.cfg.n_layers)
            metric = logit_diff(self.lm.model, resid, self.data.answers, self.data.distractors).sum()
        g_f, g_err = torch.autograd.grad(metric, [leaves["f"], leaves["err"]])
        return leaves["clean_f"], leaves["clean_err"], g_f, g_err

    def edges(self, members: set[Node]) -> dict[tuple[Node, Node], float]:
        """Feature-to-feature edges between consecutive dictionaries, among `members`: for downstream node j,
        sum over positions of dm/df_j x df_j/df_u x (clean - ablated) of upstream node u, mean over prompts, over LD."""
        out: dict[tuple[Node, Node], float] = {}
        for up, down in zip(self.dictionaries, self.dictionaries[1:]):
            senders = sorted((n for n in members if n[0] == up.name), key=_order)
            receivers = sorted((n for n in members if n[0] == down.name), key=_order)
            if senders and receivers:
                out |= self._pair_edges(up, down, senders, receivers)
        return out

    def _pair_edges(self, up: Dictionary, down: Dictionary, senders: list[Node],
                    receivers: list[Node]) -> dict[tuple[Node, Node], float]:
        """Edges from `up`'s senders to `down`'s receivers: one backward per receiver through the upstream leaves."""
        _, _, g_f, g_err = self._leaf_grads(down)
        leaves: dict[str, torch.Tensor] = {}
        captured: dict[str, torch.Tensor] = {}

        def capture(x: torch.Tensor, hook: object) -> None:
            captured["x"] = x

        with self.lm.model.hooks(fwd_hooks=[(up.hook, _leaf_splice(up, leaves)), (down.hook, capture)]):
            self.lm.model(self.data.clean, stop_at_layer=down.layer + 1)
        x = captured["x"]
        f_down = down.encode(x)
        err_down = x - down.decode(f_down)
        ref = self.refs[up.name]
        delta_f, delta_err = leaves["f"].detach() - ref.f, leaves["err"].detach() - ref.err
        out = {}
        for receiver in receivers:
            index = receiver[1]
            target = (g_err * err_down).sum() if index is None else (g_f[..., index] * f_down[..., index]).sum()
            d_f, d_err = torch.autograd.grad(target, [leaves["f"], leaves["err"]], retain_graph=True)
            for sender in senders:
                effect = (d_err * delta_err).sum() if sender[1] is None else (d_f[..., sender[1]] * delta_f[..., sender[1]]).sum()
                out[(sender, receiver)] = effect.item() / self.full
        return out

    def exact_edge(self, sender: Node, receiver: Node) -> float:
        """Exact effect of one edge: patch the receiver to the value it takes with the sender ablated, everything else
        clean, and measure the drop in performance (for checking `edges`)."""
        up = next(d for d in self.dictionaries if d.name == sender[0])
        down = next(d for d in self.dictionaries if d.name == receiver[0])
        keep = {up.name: torch.ones(1, up.size + 1, dtype=torch.bool)}
        keep[up.name][0, -1 if sender[1] is None else sender[1]] = False
        captured = {}

        def capture(x: torch.Tensor, hook: object) -> None:
            f = down.encode(x)
            captured["f"], captured["err"] = f, x - down.decode(f)

        with torch.no_grad(), self.lm.model.hooks(fwd_hooks=[(up.hook, self._splice(up, keep[up.name])),
                                                             (down.hook, capture)]):
            self.lm.model(self.data.clean, stop_at_layer=down.layer + 1)
        patched_f, patched_err = captured["f"], captured["err"]

        def patch(x: torch.Tensor, hook: object) -> torch.Tensor:
            f = down.encode(x)
            err = x - down.decode(f)
            if receiver[1] is None:
                err = patched_err
            else:
                f = f.clone()
                f[..., receiver[1]] = patched_f[..., receiver[1]]
            return down.decode(f) + err

        with torch.no_grad(), self.lm.model.hooks(fwd_hooks=[(down.hook, patch)]):
            resid = self.lm.model(self.data.clean, stop_at_layer=self.lm.model.cfg.n_layers)
            return 1 - (logit_diff(self.lm.model, resid, self.data.answers, self.data.distractors) / self.full).item()


def _leaf_splice(d: Dictionary, leaves: dict[str, torch.Tensor], ref: Reference | None = None,
                 alpha: float = 0.0) -> Callable:
    """A hook splicing `d` in as `decode(f) + err` with f and err fresh leaves (put in `leaves`, with their clean
    values), moved `alpha` of the way to `ref`; gradients stop there: the metric's partial derivatives at the
    dictionary's nodes."""

    def hook(x: torch.Tensor, hook: object) -> torch.Tensor:
        with torch.no_grad():
            f = d.encode(x)
            err = x - d.decode(f)
            leaves["clean_f"], leaves["clean_err"] = f, err
            if alpha:
                f, err = f + alpha * (ref.f - f), err + alpha * (ref.err - err)
        leaves["f"], leaves["err"] = f.requires_grad_(), err.requires_grad_()
        return d.decode(leaves["f"]) + leaves["err"]

    return hook


def _order(node: Node) -> tuple[int, int]:
    """Features by index, the error node last."""
    return (1, 0) if node[1] is None else (0, node[1])
