"""TransformerLens's TransformerBridge (a Hugging Face model with TransformerLens hook names) seen through the part of
HookedTransformer's interface the methods use, so every method runs on any architecture the bridge wraps.

The bridge runs Hugging Face's own forward: it cannot start at a layer and, told to stop after the last block, returns
logits. `BridgeModel` starts at layer L by writing the given residual stream into `blocks.L.hook_resid_pre` (the
layers before L still run, on placeholder tokens, and their results are discarded) and stops after the last block by
capturing its output. Weights are read once; missing biases (Llama, Gemma) are zeros.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch

PRIVATE_LEVEL = -7  # the hook level of the adapter's own hooks, removed by level without touching the caller's


class _Stop(Exception):
    """Raised by the hook that captured the last block's output, so the final norm and unembedding never run (the
    blocks' forward is complete by then, backward hooks included)."""


@dataclass
class HeadWeights:
    """One block's attention weights as HookedTransformer names them: W_Q/W_K/W_V `[n_heads, d_model, d_head]`,
    W_O `[n_heads, d_head, d_model]`, biases `[n_heads, d_head]` and b_O `[d_model]` (zeros where the model has none)."""

    W_Q: torch.Tensor
    W_K: torch.Tensor
    W_V: torch.Tensor
    W_O: torch.Tensor
    b_Q: torch.Tensor
    b_K: torch.Tensor
    b_V: torch.Tensor
    b_O: torch.Tensor

    @classmethod
    def of(cls, attn: Any) -> HeadWeights:
        weights = {name: getattr(attn, name).detach() for name in ("W_Q", "W_K", "W_V", "W_O")}
        biases = {}
        for name in ("b_Q", "b_K", "b_V"):
            bias = getattr(attn, name, None)
            shape = weights[f"W_{name[-1]}"].shape
            biases[name] = bias.detach() if bias is not None else weights["W_Q"].new_zeros(shape[0], shape[2])
        b_O = getattr(attn, "b_O", None)
        b_O = b_O.detach() if b_O is not None else weights["W_O"].new_zeros(weights["W_O"].shape[-1])
        return cls(**weights, **biases, b_O=b_O)


@dataclass
class BridgeBlock:
    """A block as the methods read it: its attention weights, the norm before attention and the one after it
    (Gemma 2's; None in most models)."""

    attn: HeadWeights
    ln1: torch.nn.Module
    ln1_post: torch.nn.Module | None


def _named(name: str, fn: Any) -> Any:
    """`fn` called with a hook whose name is `name`."""
    named = SimpleNamespace(name=name)
    return lambda act, hook=None: fn(act, named)


class BridgeModel:
    """A TransformerBridge in compatibility mode (HookedTransformer hook names and processed weights) behind the calls
    the discovery methods make: forward with `start_at_layer`/`stop_at_layer`, `hooks`, `run_with_cache`, per-block
    weights, `ln_final`, `unembed`, `W_U`/`b_U` and the hook switches."""

    def __init__(self, bridge: Any) -> None:
        if not getattr(bridge, "compatibility_mode", False):
            bridge.enable_compatibility_mode(disable_warnings=True)
        self.bridge, self.cfg, self.tokenizer = bridge, bridge.cfg, bridge.tokenizer
        self.blocks = [BridgeBlock(HeadWeights.of(block.attn), block.ln1, getattr(block, "ln1_post", None))
                       for block in bridge.blocks]
        self.ln_final, self.unembed = bridge.ln_final, bridge.unembed
        self._final_input = "ln_final.hook_in" if "ln_final.hook_in" in bridge.hook_dict else "unembed.hook_in"
        self.W_U = bridge.W_U.detach()
        b_U = getattr(bridge, "b_U", None)
        self.b_U = b_U.detach() if b_U is not None else self.W_U.new_zeros(self.W_U.shape[1])

    def __call__(self, x: torch.Tensor, start_at_layer: int | None = None, stop_at_layer: int | None = None) -> torch.Tensor:
        """Logits from tokens `[B, pos]`, or the residual stream `[B, pos, d_model]` entering block `stop_at_layer`
        (after the last block when it equals n_layers); from a residual stream `x` entering block `start_at_layer`."""
        n_layers = self.cfg.n_layers
        start = start_at_layer or 0
        if start_at_layer is not None and stop_at_layer == start:
            return x
        tokens = x if start_at_layer is None else x.new_zeros(x.shape[:2], dtype=torch.long)
        own = []
        if start_at_layer is not None:
            own.append((f"blocks.{start}.hook_resid_pre", lambda act, hook: x))
        out: list[torch.Tensor] = []
        if stop_at_layer == n_layers:  # the last block's output, after every hook on it, as the final norm reads it
            def capture(act: torch.Tensor, hook: Any) -> None:
                out.append(act)
                raise _Stop

            own.append((self._final_input, capture))
        with self._first(own):
            try:
                result = self.bridge(tokens, stop_at_layer=None if stop_at_layer == n_layers else stop_at_layer)
            except _Stop:
                return out[0]
        return result

    @contextmanager
    def _first(self, hooks: list[tuple[str, Any]]) -> Iterator[None]:
        """The adapter's hooks, run before any the caller added at the same point (the caller sees what they write)."""
        try:
            for name, fn in hooks:
                self.bridge.hook_dict[name].add_hook(fn, prepend=True, level=PRIVATE_LEVEL)
            yield
        finally:
            for name, _ in hooks:
                self.bridge.hook_dict[name].remove_hooks("fwd", level=PRIVATE_LEVEL)

    def hook_aliases(self) -> dict[str, str]:
        """Each HookedTransformer name the bridge answers to, with the bridge's own name of that hook point
        (`blocks.1.hook_resid_pre` -> `blocks.1.hook_in`), as this architecture wires them."""
        return {name: point.name for name, point in self.bridge.hook_dict.items() if point.name and point.name != name}

    def hooks(self, fwd_hooks: list = (), bwd_hooks: list = ()) -> Any:
        """The bridge's `hooks`, each hook told the name it was added under (the bridge passes its own canonical
        name, `blocks.0.hook_in` for `blocks.0.hook_resid_pre`, and the methods key what they save by name)."""
        return self.bridge.hooks(fwd_hooks=[(n, _named(n, fn)) for n, fn in fwd_hooks],
                                 bwd_hooks=[(n, _named(n, fn)) for n, fn in bwd_hooks])

    def run_with_cache(self, tokens: torch.Tensor, **kwargs: Any) -> tuple[torch.Tensor, Any]:
        return self.bridge.run_with_cache(tokens, **kwargs)

    def set_use_split_qkv_input(self, on: bool) -> None:
        self.bridge.set_use_split_qkv_input(on)

    def set_use_attn_result(self, on: bool) -> None:
        self.bridge.set_use_attn_result(on)

    def set_use_hook_mlp_in(self, on: bool) -> None:
        self.bridge.set_use_hook_mlp_in(on)

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        return self.bridge.parameters()

    def eval(self) -> BridgeModel:
        self.bridge.eval()
        return self
