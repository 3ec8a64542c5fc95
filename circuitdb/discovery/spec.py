"""What a discovery job is asked to do (`JobSpec`) and its checks, torch-free: bad options are refused before torch is
imported, a model loaded, a store file created or a stored run looked up (so a re-run with a bad option is refused,
not skipped)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import get_args, get_origin, get_type_hints

from circuitdb.discovery.devices import check_device
from circuitdb.domain import DIRECTIONS, check_int, check_name, check_number, check_threshold
from circuitdb.errors import CircuitdbError

ABLATIONS = ("mean", "zero", "resample", "patch")  # the one intervention of a run; patch: paired corrupted
MEANS = ("pooled", "per-template")
METRICS = ("logit_diff", "prob", "kl")  # m: mean logit difference, mean p(answer), minus the mean KL from the full model
INTERVENTIONS = (*ABLATIONS, "mean-per-template")  # what a run records: --means per-template makes mean that
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
    means: str = "pooled"  # mean over all corrupted prompts, or over those of each prompt's template
    metric: str = "logit_diff"
    direction: str = "noising"  # denoising: the circuit restored into each prompt's corrupted run (prune, --ablation patch)
    n_prompts: int = 64
    seed: int = 0
    nested: bool = True
    ig_steps: int | None = None  # integration steps; None: each method's default
    signed: bool = False  # rank edges by signed score rather than |score|
    robust: int = 0
    top_k: int | None = None  # sae-attr's options, to check_top
    node_threshold: float | None = None
    min_edge: float = 0.005
    check_top: int = 20
    device: str = "cpu"

    def check(self) -> JobSpec:
        """Refuse impossible jobs before any model is loaded (and before any stored run is looked up)."""
        self._check_types()
        for t in self.thresholds:
            check_threshold(t)
        if not self.tasks or not self.thresholds:
            raise CircuitdbError("a job needs at least one --task and one --threshold")
        check_name(self.model, "--model")
        for task in self.tasks:
            check_name(task, "--task")
        for method in self.methods:
            if method not in METHOD_CHECKS:
                raise CircuitdbError(f"unknown method {method!r} (use {', '.join(METHOD_CHECKS)})")
        if self.ablation not in ABLATIONS:
            raise CircuitdbError(f"unknown ablation {self.ablation!r} (use {', '.join(ABLATIONS)})")
        if self.metric not in METRICS:
            raise CircuitdbError(f"unknown --metric {self.metric!r} (use {', '.join(METRICS)})")
        if self.means not in MEANS:
            raise CircuitdbError(f"unknown --means {self.means!r} (use {', '.join(MEANS)})")
        if self.means == "per-template" and self.ablation != "mean":
            raise CircuitdbError(f"--means per-template applies to --ablation mean, not {self.ablation}")
        if self.direction not in DIRECTIONS:
            raise CircuitdbError(f"unknown --direction {self.direction!r} (use {', '.join(DIRECTIONS)})")
        if self.direction == "denoising" and (self.ablation != "patch" or set(self.methods) != {"prune"}
                                              or self.edges != "none"):
            raise CircuitdbError("--direction denoising restores circuit nodes into each prompt's corrupted run: it "
                                 "needs --ablation patch, --method prune and --edges none (edge circuits are noising)")
        if self.n_prompts < 4:
            raise CircuitdbError(f"--prompts must be at least 4, got {self.n_prompts}")
        for check in dict.fromkeys(METHOD_CHECKS[m] for m in self.methods):
            check(self)
        check_device(self.device)
        return self

    @property
    def intervention(self) -> str:
        """What the runs record as their ablation: mean-per-template for --means per-template, else --ablation."""
        return "mean-per-template" if self.means == "per-template" else self.ablation

    def steps(self, default: int) -> int:
        """The integration steps asked for, else the method's `default`."""
        return default if self.ig_steps is None else self.ig_steps

    def _check_types(self) -> None:
        """Every option has its field's type (a sweep file can hold anything): text, a 64-bit integer, a finite
        number, true/false, or a list of them."""
        for option, hint in get_type_hints(JobSpec).items():
            _check_type(OPTION_NAMES.get(option, "--" + option.replace("_", "-")), getattr(self, option), hint)


OPTION_NAMES = {"n_prompts": "--prompts", "tasks": "--task", "thresholds": "--threshold", "methods": "--method",
                "saes": "--sae"}
TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "text"}


def _check_type(name: str, value: object, hint: object) -> None:
    """Refuse `value` unless it is of type `hint` (bool, int, float, str, X | None or list[X]); integers must fit 64
    bits, numbers be finite (the options' own ranges are checked by the job and its methods)."""
    args = get_args(hint)
    if type(None) in args:
        if value is None:
            return
        hint = next(a for a in args if a is not type(None))
    if get_origin(hint) is list:
        if not isinstance(value, (list, tuple)):
            raise CircuitdbError(f"{name} must be a list, got {value!r}")
        for item in value:
            _check_type(name, item, get_args(hint)[0])
        return
    if hint is int:
        check_int(value, name, None)
    elif hint is float:
        if not isinstance(value, str):  # a threshold given as text gets the threshold's own message
            check_number(value, name)
    elif not isinstance(value, hint) or (hint is not bool and isinstance(value, bool)):
        raise CircuitdbError(f"{name} must be {TYPE_WORDS[hint]}, got {value!r}")


def _head_options(spec: JobSpec) -> None:
    """The options of the head methods (prune, eap, eap-ig): edges and pruning."""
    if spec.edges not in EDGE_METHODS:
        raise CircuitdbError(f"unknown edge method {spec.edges!r} (use {', '.join(EDGE_METHODS)})")
    if spec.ig_steps is not None and spec.ig_steps < 1:
        raise CircuitdbError(f"--ig-steps must be at least 1 (integration steps of EAP-IG), got {spec.ig_steps}")
    if spec.robust < 0:
        raise CircuitdbError(f"--robust must be 0 (off) or a number of random pruning orders, got {spec.robust}")


def _feature_options(spec: JobSpec) -> None:
    """The options of sae-attr: its dictionaries and feature selection."""
    if spec.metric != "logit_diff":
        raise CircuitdbError(f"sae-attr measures the logit difference; --metric {spec.metric} applies to prune, path, "
                             "eap and eap-ig")
    if not spec.saes:
        raise CircuitdbError("sae-attr needs at least one --sae")
    for sae in spec.saes:
        check_name(sae, "--sae")
    if spec.top_k is not None and spec.top_k < 1:
        raise CircuitdbError(f"--top-k must be at least 1, got {spec.top_k}")
    if spec.ig_steps is not None and spec.ig_steps < 1:
        raise CircuitdbError(f"--ig-steps must be at least 1 (1: plain attribution patching), got {spec.ig_steps}")
    if spec.min_edge < 0:
        raise CircuitdbError(f"--min-edge must be >= 0, got {spec.min_edge}")
    if spec.check_top < 0:
        raise CircuitdbError(f"--check-top must be >= 0, got {spec.check_top}")


# every method of the registry (`methods/`, which checks it names these same ones) by name, with the check of its options
METHOD_CHECKS: dict[str, Callable[[JobSpec], None]] = {
    "prune": _head_options, "path": _head_options, "eap": _head_options, "eap-ig": _head_options, "sae-attr": _feature_options,
}
