"""Model, Task, Run, Component, Edge: the catalog's plain data, with canonical names and their parsers.

Names follow EAP-IG/MIB (`input`, `a9.h1`, `m9`, `m9.n12`, `logits`, `f<dictionary>/<index>`) so
circuits from other tools line up; the parsers also take what researchers type (`9.1`, `L9H1`, `MLP 9`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import unicodedata
import zlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache

from circuitdb.errors import CircuitdbError

INT64_MAX = 2**63 - 1  # the stores keep integers (layers, indices, seeds, sizes) as signed 64-bit numbers
KINDS = ("embed", "head", "mlp", "neuron", "sae_feature", "error", "logits")
EDGE_INPUTS = ("", "q", "k", "v")


@dataclass(frozen=True, order=False)
class Component:
    """One node of a circuit: a head, an MLP, a neuron, an SAE feature, the embedding or the logits."""

    kind: str
    layer: int | None = None
    index: int | None = None  # a head's, neuron's or feature's; the token of a logit node (`logits/464`)
    dictionary: str = ""
    position: int | None = None  # the token position, where the source is per position (attribution graphs)

    @property
    def name(self) -> str:
        """The canonical EAP-IG/MIB spelling, with `@<position>` where there is one."""
        return self.base if self.position is None else f"{self.base}@{self.position}"

    @property
    def base(self) -> str:
        """The name without its position: what a comparison by name alone matches."""
        if self.kind == "head":
            return f"a{self.layer}.h{self.index}"
        if self.kind == "mlp":
            return f"m{self.layer}"
        if self.kind == "neuron":
            return f"m{self.layer}.n{self.index}"
        if self.kind == "sae_feature":
            return f"f{self.dictionary}/{self.index}"
        if self.kind == "error":
            return f"f{self.dictionary}/err"
        if self.kind == "logits" and self.index is not None:
            return f"logits/{self.index}"
        return "input" if self.kind == "embed" else "logits"

    def sort_key(self) -> tuple:
        """Forward order: input, then per layer heads, MLP, neurons, features; logits last; by position within each."""
        rank = {"embed": (-1, 0), "logits": (10**9, 0)}.get(self.kind)
        if rank is None:
            rank = (self.layer if self.layer is not None else 10**8, KINDS.index(self.kind))
        return (*rank, self.dictionary, self.index if self.index is not None else -1,
                self.position if self.position is not None else -1)

    def row(self, model: str) -> dict:
        """The Component node's properties in `model`'s catalog."""
        return {"id": component_id(model, self.name), "model_id": model, "name": self.name, "kind": self.kind,
                "layer": self.layer, "index": self.index, "dictionary": self.dictionary or None,
                "position": self.position, "base": self.base}


_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^a(\d+)\.h(\d+)$"), "head"),
    (re.compile(r"^(?:l|layer\s*)?(\d+)\s*[.,:/ ]\s*(?:h|head\s*)?(\d+)$"), "head"),
    (re.compile(r"^l(\d+)\s*h(\d+)$"), "head"),
    (re.compile(r"^a(\d+)\s*h(\d+)$"), "head"),
    (re.compile(r"^\[\s*(\d+)\s*,\s*(\d+)\s*\]$"), "head"),
    (re.compile(r"^\(\s*(\d+)\s*,\s*(\d+)\s*\)$"), "head"),
    (re.compile(r"^m(\d+)\.n(\d+)$"), "neuron"),
    (re.compile(r"^(?:m|mlp\s*|mlp_?)(\d+)$"), "mlp"),
]
_FEATURE = re.compile(r"^f([A-Za-z0-9_.\-]+)/(\d+|err)$")
_POSITION = re.compile(r"^(.+?)\s*@\s*(\d+)$")
_LOGIT = re.compile(r"^logits/(\d+)$")


def dictionary_layer(dictionary: str) -> int | None:
    """The layer an SAE dictionary reads, taken from the first number in its name (`resid3` -> 3)."""
    found = re.search(r"\d+", dictionary)
    return int(found.group()) if found else None


def parse_component(text: str | list | tuple) -> Component:
    """Read a component name in any accepted spelling; raise CircuitdbError on anything else."""
    if isinstance(text, (list, tuple)):
        if len(text) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in text):
            return Component("head", text[0], text[1])
        raise CircuitdbError(f"not a component name: {text!r} (a head is [layer, head])")
    if isinstance(text, int) and not isinstance(text, bool):
        return Component("mlp", text)
    if not isinstance(text, str):
        raise CircuitdbError(f"not a component name: {text!r}")
    return _parse_name(text)


@lru_cache(maxsize=1 << 16)
def _parse_name(text: str) -> Component:
    """The string case of parse_component, cached: catalogs repeat the same few thousand names millions of times."""
    try:
        found = _parse_raw(text.strip())
    except ValueError:  # a number of thousands of digits (int() refuses those)
        raise CircuitdbError(f"not a component name: {_short(text)!r} (a layer or index of far too many digits)") from None
    if found is None:
        raise CircuitdbError(
            f"not a component name: {text!r} (use a9.h1, m9, m9.n12, input, logits, f<dict>/<index>, or 9.1, L9H1, MLP 9)"
        )
    return found


def _parse_raw(raw: str) -> Component | None:
    """The component `raw` (stripped) spells, or None; `NAME@POSITION` is NAME at a token position."""
    positioned = _POSITION.match(raw)
    if positioned:
        found = _parse_raw(positioned.group(1))
        return None if found is None else replace(found, position=int(positioned.group(2)))
    logit = _LOGIT.match(raw.lower())
    if logit:
        return Component("logits", index=int(logit.group(1)))
    feature = _FEATURE.match(raw)
    if feature:
        dictionary, index = feature.groups()
        layer = dictionary_layer(dictionary)
        if index == "err":
            return Component("error", layer, None, dictionary)
        return Component("sae_feature", layer, int(index), dictionary)
    low = raw.lower()
    if low in ("input", "embed", "embedding", "emb"):
        return Component("embed")
    if low in ("logits", "output", "unembed"):
        return Component("logits")
    for pattern, kind in _PATTERNS:
        found = pattern.match(low)
        if found:
            numbers = [int(g) for g in found.groups()]
            return Component(kind, numbers[0], numbers[1] if len(numbers) > 1 else None)
    return None


def canonical(text: str | list | tuple) -> str:
    """The canonical name of any accepted spelling."""
    return _canonical_name(text) if isinstance(text, str) else parse_component(text).name


@lru_cache(maxsize=1 << 16)
def _canonical_name(text: str) -> str:
    """canonical() of a string, cached: validating a run asks it for every member and both ends of every edge."""
    return _parse_name(text).name


def graph_edges(n_layers: int, n_heads: int, mlps: bool = True, parallel: bool = False) -> list[tuple[str, str, str]]:
    """Every edge of a model's full EAP-IG graph as (sender, receiver, q/k/v), in receiver order: into each head's q, k
    and v from every earlier node, into each MLP (from its own layer's heads too, unless attention and MLP run in
    parallel) and into the logits from all (32,491 for GPT-2 small)."""
    senders, edges = ["input"], []
    for layer in range(n_layers):
        heads = [f"a{layer}.h{h}" for h in range(n_heads)]
        edges += [(s, r, x) for x in "qkv" for r in heads for s in senders]
        into_mlp = senders if parallel else senders + heads
        senders = senders + heads
        if mlps:
            edges += [(s, f"m{layer}", "") for s in into_mlp]
            senders.append(f"m{layer}")
    return edges + [(s, "logits", "") for s in senders]


def component_id(model: str, name: str) -> str:
    """The graph id of a component: `<model>/<name>`."""
    return f"{model}/{name}"


@dataclass(frozen=True)
class Edge:
    """A weighted patching edge of one run; `input` is q, k or v for a head receiver, else empty."""

    sender: str
    receiver: str
    weight: float = 0.0
    input: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity of an edge across runs: (sender, receiver, input)."""
        return (self.sender, self.receiver, self.input)

    @property
    def name(self) -> str:
        """The EAP-IG spelling `a0.h1->a2.h3<q>`."""
        return f"{self.sender}->{self.receiver}" + (f"<{self.input}>" if self.input else "")


_EDGE_NAME = re.compile(r"^(.+?)->(.+?)(?:<([qkv])>)?$")


def parse_edge_name(text: str) -> tuple[str, str, str]:
    """Split an EAP-IG edge name `a0.h1->a2.h3<q>` into canonical (sender, receiver, input)."""
    found = _EDGE_NAME.match(text.strip())
    if not found:
        raise CircuitdbError(f"not an edge name: {text!r} (expected SENDER->RECEIVER or SENDER->RECEIVER<q|k|v>)")
    sender, receiver, qkv = found.groups()
    return canonical(sender), canonical(receiver), qkv or ""


@dataclass(frozen=True)
class Model:
    """A transformer the circuits were found in."""

    name: str
    n_layers: int | None = None
    n_heads: int | None = None
    d_model: int | None = None
    source: str = ""

    @property
    def id(self) -> str:
        return self.name

    def check(self) -> Model:
        """Refuse a model the catalog cannot hold: a bad name, or a shape that is not positive 64-bit integers."""
        check_name(self.name, "model name")
        for what in ("n_layers", "n_heads", "d_model"):
            check_int(getattr(self, what), f"model {self.name} {what}", 1)
        if not isinstance(self.source, str):
            raise CircuitdbError(f"model {self.name} source must be text, got {self.source!r}")
        return self

    def lacks(self, component: Component) -> str | None:
        """Why `component` is not part of this model (a layer or head beyond its shape), or None, also when the
        shape is unknown."""
        layers, heads = self.n_layers, self.n_heads
        if component.kind in ("head", "mlp", "neuron") and layers is not None and component.layer >= layers:
            return f"{_short(component.name)} does not exist in {self.name}, which has {layers} layers (0..{layers - 1})"
        if component.kind == "head" and heads is not None and component.index >= heads:
            return (f"{_short(component.name)} does not exist in {self.name}, which has {heads} heads per layer "
                    f"(0..{heads - 1})")
        return None


def _short(text: str, width: int = 40) -> str:
    """`text`, cut to `width` characters for an error line."""
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass(frozen=True)
class Task:
    """A behaviour a circuit is found for (digits, months, ioi, ...)."""

    name: str
    family: str = ""
    description: str = ""
    n_prompts: int | None = None

    @property
    def id(self) -> str:
        return self.name

    def check(self) -> Task:
        """Refuse a task the catalog cannot hold: a bad name or a prompt count that is not a 64-bit integer."""
        check_name(self.name, "task name")
        for what in ("family", "description"):
            if not isinstance(getattr(self, what), str):
                raise CircuitdbError(f"task {self.name} {what} must be text, got {getattr(self, what)!r}")
        check_int(self.n_prompts, f"task {self.name} n_prompts")
        return self


def check_threshold(value: float | None) -> float | None:
    """A performance threshold is a fraction of the full model in (0, 1]."""
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not (0 < value <= 1):
        raise CircuitdbError(f"threshold must be in (0, 1], got {value!r}")
    return float(value)


def check_name(value: object, what: str) -> str:
    """A name (model, task, method, vector ...) as the catalog keeps it: non-empty text without control characters
    or surrounding spaces; raise CircuitdbError saying what is wrong."""
    if not isinstance(value, str):
        raise CircuitdbError(f"{what} must be text, got {value!r}")
    if not value:
        raise CircuitdbError(f"{what} is empty")
    if not value.strip():
        raise CircuitdbError(f"{what} {value!r} is only whitespace")
    control = next((c for c in value if unicodedata.category(c) == "Cc"), None)
    if control is not None:
        raise CircuitdbError(f"{what} {value!r} contains a control character (U+{ord(control):04X})")
    if value != value.strip():
        raise CircuitdbError(f"{what} {value!r} starts or ends with a space")
    return value


def check_int(value: object, what: str, minimum: int | None = 0) -> int | None:
    """None, or an integer in `minimum`..2**63-1 (what the stores hold); raise CircuitdbError otherwise."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise CircuitdbError(f"{what} must be an integer, got {value!r}")
    low = -INT64_MAX - 1 if minimum is None else minimum
    if not low <= value <= INT64_MAX:
        shown = value if abs(value) < 10**30 else f"an integer of {len(str(abs(value)))} digits"
        raise CircuitdbError(f"{what} must be an integer in {low}..{INT64_MAX}, got {shown}")
    return value


def check_number(value: object, what: str) -> float | None:
    """None, or a finite number as a float; raise CircuitdbError otherwise (NaN and infinities included)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CircuitdbError(f"{what} must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise CircuitdbError(f"{what} must be a finite number, got an integer of {len(str(abs(value)))} digits") from None
    if not math.isfinite(number):
        raise CircuitdbError(f"{what} must be a finite number, got {value!r}")
    return number


def check_json_object(value: object, what: str) -> dict:
    """A dict that JSON can hold exactly (string keys, no NaN or infinities); raise CircuitdbError otherwise."""
    if not isinstance(value, dict):
        raise CircuitdbError(f"{what} must be a JSON object (a mapping), got {value!r}")
    try:
        json.dumps(value, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise CircuitdbError(f"{what} cannot be stored as JSON: {exc}") from None
    return value


def check_timestamp(value: object, what: str) -> str:
    """An ISO 8601 date and time (or empty, when unknown); raise CircuitdbError otherwise."""
    if not isinstance(value, str):
        raise CircuitdbError(f"{what} must be an ISO 8601 date and time as text, got {value!r}")
    if value:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise CircuitdbError(f"{what} must be an ISO 8601 date and time, got {value!r}") from None
    return value


def now() -> str:
    """The current UTC time as ISO 8601, to the second: when a run was made."""
    return datetime.now(UTC).isoformat(timespec="seconds")


# a run's measured numbers (each None when not measured), as stored on its Run node
MEASURES = ("faithfulness", "faithfulness_normalised", "edge_faithfulness", "kl", "accuracy", "completeness", "cpr", "cmd")
DIRECTIONS = ("noising", "denoising")


@dataclass
class Run:
    """One circuit: model x task x method x ablation x metric x threshold, its members, edges and provenance."""

    model: Model
    task: Task
    method: str
    threshold: float | None = None
    ablation: str = "mean"
    metric: str = "logit_diff"
    components: dict[str, float | None] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    faithfulness: float | None = None  # the node circuit's m(C) / m(full)
    completeness: float | None = None
    direction: str = "noising"  # the circuit kept clean, the rest at its reference (denoising: the reverse)
    faithfulness_normalised: float | None = None  # (m(C) - m(empty)) / (m(full) - m(empty))
    edge_faithfulness: float | None = None  # the stored edge set's m / m(full), evaluated jointly
    kl: float | None = None  # mean KL(full || circuit) at the last position, nats
    accuracy: float | None = None  # share of prompts whose top-1 token is the answer
    cpr: float | None = None  # area under the faithfulness curve of the method's edge ranking (MIB)
    cmd: float | None = None  # area under |1 - faithfulness| of that curve (MIB)
    params: dict = field(default_factory=dict)
    dataset_hash: str = ""
    seed: int | None = None
    versions: dict = field(default_factory=dict)
    created_at: str = field(default_factory=now)
    nests_in: str | None = None
    evaluations: dict[str, float] = field(default_factory=dict)
    # the full ranked list a score file gave (edge or component names -> score), kept so the run can be cut again
    scores: dict[str, float] = field(default_factory=dict)
    cut: str = ""  # the rule this circuit was cut from another run's scores by (`top-n 200 |score|`); part of its id

    @property
    def id(self) -> str:
        """Deterministic: a hash of the defining fields, so a re-run replaces its own earlier copy."""
        return run_id(self.model.name, self.task.name, self.method, self.ablation, self.metric, self.threshold,
                      self.direction, self.cut)

    def validate(self) -> Run:
        """Canonicalise names and check the run is whole and fits its model (when the model's shape is known); raise
        CircuitdbError naming the first problem."""
        self._check_fields()
        if not isinstance(self.components, dict) or not isinstance(self.edges, list):
            raise CircuitdbError("components must be a mapping of names to scores and edges a list")
        members: dict[str, float | None] = {}
        for raw, score in self.components.items():
            name = canonical(raw)
            component = parse_component(name)
            if max(component.layer or 0, component.index or 0) > INT64_MAX:
                raise CircuitdbError(f"component {_short(name)}: a layer or index beyond 2**63 - 1 cannot be stored")
            if (component.position or 0) > INT64_MAX:
                raise CircuitdbError(f"component {_short(name)}: a position beyond 2**63 - 1 cannot be stored")
            problem = self.model.lacks(component)
            if problem:
                raise CircuitdbError(f"component {problem}")
            if score is not None and not (isinstance(score, (int, float)) and math.isfinite(score)):
                raise CircuitdbError(f"component {name}: score must be a finite number, got {score!r}")
            members[name] = None if score is None else float(score)
        edges, seen = [], set()
        for row, edge in enumerate(self.edges):
            try:
                fixed = _checked_edge(edge, members)
            except CircuitdbError as exc:
                raise CircuitdbError(f"edge {row} ({edge.name}): {exc}") from None
            if fixed.key in seen:
                raise CircuitdbError(f"edge {row} ({edge.name}): duplicate edge")
            seen.add(fixed.key)
            edges.append(fixed)
        self.components, self.edges = members, edges
        self.scores = _checked_scores(self.model, self.scores)
        return self

    def _check_fields(self) -> None:
        """Every field but the members and edges has the type and range the catalog stores."""
        if not isinstance(self.model, Model) or not isinstance(self.task, Task):
            raise CircuitdbError(f"a run needs a Model and a Task, got {self.model!r} and {self.task!r}")
        self.model.check()
        self.task.check()
        for what in ("method", "ablation", "metric"):
            check_name(getattr(self, what), what)
        check_threshold(self.threshold)
        for measure in MEASURES:
            setattr(self, measure, check_number(getattr(self, measure), measure))
        if self.direction not in DIRECTIONS:
            raise CircuitdbError(f"direction must be one of {', '.join(DIRECTIONS)}, got {self.direction!r}")
        check_json_object(self.params, "params")
        check_json_object(self.versions, "versions")
        if not isinstance(self.dataset_hash, str):
            raise CircuitdbError(f"dataset_hash must be text, got {self.dataset_hash!r}")
        check_int(self.seed, "seed", None)
        check_timestamp(self.created_at, "created_at")
        if self.nests_in is not None:
            check_name(self.nests_in, "nests_in (the parent run's id)")
        if not isinstance(self.cut, str):
            raise CircuitdbError(f"cut must be text (the rule the circuit was cut by), got {self.cut!r}")
        if not isinstance(self.evaluations, dict):
            raise CircuitdbError(f"evaluations must map task names to performances, got {self.evaluations!r}")
        for task, performance in self.evaluations.items():
            check_name(task, "evaluation task name")
            if check_number(performance, f"performance on {task}") is None:
                raise CircuitdbError(f"performance on {task} must be a finite number, got None")


def _checked_edge(edge: Edge, members: dict[str, float | None]) -> Edge:
    """The edge with canonical names, or CircuitdbError saying what is wrong with it."""
    sender, receiver = canonical(edge.sender), canonical(edge.receiver)
    if edge.input not in EDGE_INPUTS:
        raise CircuitdbError(f"input must be q, k, v or empty, got {edge.input!r}")
    if edge.input and parse_component(receiver).kind != "head":
        raise CircuitdbError("a q/k/v input needs a head receiver")
    if not (isinstance(edge.weight, (int, float)) and math.isfinite(edge.weight)):
        raise CircuitdbError(f"weight must be a finite number, got {edge.weight!r}")
    for end in (sender, receiver):
        if end not in members:
            raise CircuitdbError(f"{end} is not a component of the run")
    if (sender, receiver) == (edge.sender, edge.receiver) and isinstance(edge.weight, float):
        return edge
    return Edge(sender, receiver, float(edge.weight), edge.input)


def _checked_scores(model: Model, scores: object) -> dict[str, float]:
    """A run's score list with canonical names (`a0.h1->a2.h3<q>` for edges), each a finite number in the model."""
    if not isinstance(scores, dict):
        raise CircuitdbError(f"scores must map edge or component names to numbers, got {type(scores).__name__}")
    checked: dict[str, float] = {}
    for raw, value in scores.items():
        if not isinstance(raw, str):
            raise CircuitdbError(f"scores: {raw!r} is not an edge or component name")
        if "->" in raw:
            sender, receiver, qkv = parse_edge_name(raw)
            ends, name = (sender, receiver), Edge(sender, receiver, 0.0, qkv).name
        else:
            name = canonical(raw)
            ends = (name,)
        for end in ends:
            problem = model.lacks(parse_component(end))
            if problem:
                raise CircuitdbError(f"scores: {_short(raw)}: {problem}")
        if check_number(value, f"score of {_short(raw)}") is None:
            raise CircuitdbError(f"scores: {_short(raw)} has no score")
        if name in checked:
            raise CircuitdbError(f"scores: {_short(raw)} is listed twice")
        checked[name] = float(value)
    return checked


def pack_scores(scores: dict[str, float]) -> str:
    """A score list as one compact text (zlib-compressed JSON, base64): GPT-2 small's 32,491 edges take 0.48 MB at full
    float precision, 0.30 MB at 8 digits (what edge methods keep)."""
    if not scores:
        return ""
    text = json.dumps([list(scores), list(scores.values())], separators=(",", ":"))
    return base64.b64encode(zlib.compress(text.encode(), 6)).decode("ascii")


def unpack_scores(packed: str | None) -> dict[str, float]:
    """The score list `pack_scores` wrote."""
    if not packed:
        return {}
    names, values = json.loads(zlib.decompress(base64.b64decode(packed)))
    return dict(zip(names, values))


def check_cut(top_n: int | None, fraction: float | None, min_score: float | None) -> None:
    """Exactly one cut, each in its range: top_n >= 1, fraction in (0, 1], min_score a finite number."""
    if sum(v is not None for v in (top_n, fraction, min_score)) != 1:
        raise CircuitdbError("cut by exactly one of --top-n, --fraction and --min-score")
    check_int(top_n, "--top-n", 1)
    check_number(min_score, "--min-score")
    if fraction is not None and (check_number(fraction, "--fraction") is None or not 0 < fraction <= 1):
        raise CircuitdbError(f"--fraction must be in (0, 1], got {fraction!r}")


def cut_scores(scores: dict[str, float], *, top_n: int | None = None, fraction: float | None = None,
               min_score: float | None = None, absolute: bool = True) -> tuple[dict[str, float | None], list[Edge], str]:
    """The circuit a score list gives at one cut: the top `top_n` entries, the top `fraction` of them, or those
    scoring at least `min_score`, ranked by |score| or signed score (ties in list order). Edges are cut when the list
    has any (their ends become members, with their own scores where listed); else components. Returns the members,
    the edges and the rule as text."""
    check_cut(top_n, fraction, min_score)
    if not scores:
        raise CircuitdbError("the run has no score list to cut (runs imported from score files keep one)")
    edge_names = [n for n in scores if "->" in n]
    pool = edge_names or list(scores)
    key = (lambda n: abs(scores[n])) if absolute else scores.__getitem__
    ranked = sorted(pool, key=key, reverse=True)
    if top_n is not None:
        if top_n > len(pool):
            raise CircuitdbError(f"--top-n {top_n} is more than the {len(pool)} scored "
                                 f"{'edges' if edge_names else 'components'}")
        chosen, rule = ranked[:top_n], f"top-n {top_n}"
    elif fraction is not None:
        chosen, rule = ranked[: max(1, round(fraction * len(pool)))], f"fraction {fraction:g}"
    else:
        chosen, rule = [n for n in ranked if key(n) >= min_score], f"min-score {min_score:g}"
        if not chosen:
            raise CircuitdbError(f"--min-score {min_score:g} keeps nothing (the highest score is {key(ranked[0]):g})")
    rule += " |score|" if absolute else " signed"
    if not edge_names:
        return {n: scores[n] for n in chosen}, [], rule
    edges = [Edge(sender, receiver, scores[n], qkv) for n in chosen for sender, receiver, qkv in [parse_edge_name(n)]]
    members: dict[str, float | None] = {}
    for edge in edges:
        for end in (edge.sender, edge.receiver):
            members.setdefault(end, scores.get(end))
    return members, edges, rule


def run_id(model: str, task: str, method: str, ablation: str, metric: str, threshold: float | None,
           direction: str = "noising", cut: str = "") -> str:
    """Hash of the fields that define a run (16 hex digits); a denoising run's differs from its noising twin's, a
    cut's from its parent's (and noising, uncut ids are those of runs made before runs had a direction or a cut)."""
    fields = [model, task, method, ablation, metric, threshold] + ([direction] if direction != "noising" or cut else [])
    fields += [cut] if cut else []
    key = json.dumps(fields, separators=(",", ":"))
    return hashlib.sha1(key.encode()).hexdigest()[:16]


# Shapes of common TransformerLens models, so imports can check heads and layers exist: (n_layers, n_heads, d_model).
KNOWN_SHAPES = {
    "gpt2-small": (12, 12, 768),
    "gpt2": (12, 12, 768),
    "gpt2-medium": (24, 16, 1024),
    "gpt2-large": (36, 20, 1280),
    "gpt2-xl": (48, 25, 1600),
    "pythia-70m": (6, 8, 512),
    "pythia-160m": (12, 12, 768),
    "pythia-410m": (24, 16, 1024),
    "attn-only-2l": (2, 8, 512),
    "gelu-2l": (2, 8, 512),
}


def model_named(name: str) -> Model:
    """A Model by name, with its shape when circuitdb knows it."""
    shape = KNOWN_SHAPES.get(name)
    return Model(name, *shape, source="transformer_lens") if shape else Model(name)


@dataclass(frozen=True)
class Relation:
    """A stored relation between two components, e.g. features with similar decoder directions (`cosine`) or a
    feature's best match in another model (`match`); each end is (model, component name)."""

    sender_model: str
    sender: str
    receiver_model: str
    receiver: str
    kind: str
    weight: float
    source: str


@dataclass
class SteeringVector:
    """A direction in the residual stream entering block `layer` of a model, kept with its values."""

    model: str
    name: str
    layer: int
    values: list[float]
    description: str = ""

    @property
    def id(self) -> str:
        return f"{self.model}/{self.name}"

    @property
    def norm(self) -> float:
        return math.sqrt(sum(v * v for v in self.values))
