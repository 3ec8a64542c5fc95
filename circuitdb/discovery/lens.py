"""TransformerLens's model classes as discovery meets them: 3.x has HookedTransformer and the TransformerBridge, 4.x
removed HookedTransformer and keeps the bridge. Discovery asks `hooked(model)` rather than importing the class, so it
imports under either; what needs a HookedTransformer says so in one line under 4.x."""

from __future__ import annotations

from importlib.metadata import version

from circuitdb.errors import CircuitdbError

try:
    from transformer_lens import HookedTransformer, HookedTransformerConfig
except ImportError:  # TransformerLens 4
    HookedTransformer = HookedTransformerConfig = None


def hooked(model: object) -> bool:
    """Whether `model` is a HookedTransformer (never, under TransformerLens 4)."""
    return HookedTransformer is not None and isinstance(model, HookedTransformer)


def require_hooked(what: str) -> None:
    """Refuse, in one line, what only a HookedTransformer can be (the toy model, a TransformerLens checkpoint)."""
    if HookedTransformer is None:
        raise CircuitdbError(f"{what} is a HookedTransformer, which TransformerLens {version('transformer-lens')} no "
                             f"longer has (install transformer-lens<4, or load a Hugging Face folder through the "
                             f"bridge: --model bridge:./folder)")
