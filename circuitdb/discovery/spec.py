"""What a discovery job is asked to do (`JobSpec`) and its checks, torch-free: bad options are refused before torch is
imported, a model loaded or a store file created."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from circuitdb.domain import check_threshold
from circuitdb.errors import CircuitdbError

ABLATIONS = ("mean", "zero", "resample")
EDGE_METHODS = ("path", "eap", "eap-ig", "none")


@dataclass
class JobSpec:
    """What to discover, with every method's options (`Method.options` says which of them its runs' params record)."""

    model: str
    tasks: list[str]
    thresholds: list[float]
    methods: list[str] = field(default_factory=lambda: ["prune"])
    saes: list[str] = field(default_factory=list)  # sae-attr's dictionaries
    edges: str = "path"  # the head methods' options, to nested ... robust
    ablation: str = "mean"
    n_prompts: int = 64
    seed: int = 0
    nested: bool = True
    edge_threshold: float = 0.99
    ig_steps: int = 5
    robust: int = 0
    top_k: int | None = None  # sae-attr's options, to check_top
    node_threshold: float | None = None
    min_edge: float = 0.005
    check_top: int = 20
    device: str = "cpu"

    def check(self) -> JobSpec:
        """Refuse impossible jobs before any model is loaded."""
        for t in self.thresholds:
            check_threshold(t)
        if not self.tasks or not self.thresholds:
            raise CircuitdbError("a job needs at least one --task and one --threshold")
        for method in self.methods:
            if method not in METHOD_CHECKS:
                raise CircuitdbError(f"unknown method {method!r} (use {', '.join(METHOD_CHECKS)})")
        if self.ablation not in ABLATIONS:
            raise CircuitdbError(f"unknown ablation {self.ablation!r} (use {', '.join(ABLATIONS)})")
        if self.n_prompts < 4:
            raise CircuitdbError("--prompts must be at least 4")
        for check in dict.fromkeys(METHOD_CHECKS[m] for m in self.methods):
            check(self)
        return self


def _head_options(spec: JobSpec) -> None:
    """The head methods' edge options."""
    if spec.edges not in EDGE_METHODS:
        raise CircuitdbError(f"unknown edge method {spec.edges!r} (use {', '.join(EDGE_METHODS)})")
    if not 0 < spec.edge_threshold <= 1:
        raise CircuitdbError(f"edge threshold must be in (0, 1], got {spec.edge_threshold}")


def _feature_options(spec: JobSpec) -> None:
    """sae-attr's feature options."""
    if not spec.saes:
        raise CircuitdbError("sae-attr needs at least one --sae")
    if spec.top_k is not None and spec.top_k < 1:
        raise CircuitdbError(f"--top-k must be at least 1, got {spec.top_k}")
    if spec.min_edge < 0:
        raise CircuitdbError(f"--min-edge must be >= 0, got {spec.min_edge}")
    if spec.check_top < 0:
        raise CircuitdbError(f"--check-top must be >= 0, got {spec.check_top}")


# every method of the registry (`methods/`) by name, with the check of its options
METHOD_CHECKS: dict[str, Callable[[JobSpec], None]] = {
    "prune": _head_options, "eap": _head_options, "eap-ig": _head_options, "sae-attr": _feature_options,
}
