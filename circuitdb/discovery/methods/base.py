"""What a discovery method is to the job loop: a `Method` record (in the spirit of auto-circuit's `PruneAlgo`), the
`Step` it is handed at each threshold and the `Circuit` it returns; and the ranked-list search that EAP and SAE
attribution share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from circuitdb.discovery.models import LoadedModel
from circuitdb.discovery.tasks import TaskData
from circuitdb.domain import Edge, Run
from circuitdb.progress import Reporter

if TYPE_CHECKING:
    from circuitdb.discovery.spec import JobSpec

K = TypeVar("K")


class Scorer(Protocol):
    """What the loop needs of an evaluator (`evaluate.Evaluator`, `features.FeatureEvaluator`): one task's data and the
    performance of a circuit (a set of members it knows) with everything else, or the circuit itself, ablated."""

    data: TaskData

    def faithfulness(self, members: set) -> float: ...

    def completeness(self, members: set) -> float: ...


@dataclass
class Step:
    """One threshold of one ladder, as a method's `find` gets it."""

    spec: JobSpec
    ev: Any  # the method's evaluator on this task
    threshold: float
    parent: Run | None  # the stricter circuit (found now or stored earlier); None at the top of the ladder
    scores: Callable[[], dict] | None  # the method's ranking on this task (`Method.score`), computed on first call
    reporter: Reporter
    label: str  # task@threshold (method), for progress

    def start(self, what: str, total: int | None = None) -> Callable[[int], None]:
        """A progress bar for one piece of this step's work; returns `advance(n)`."""
        return self.reporter.start(f"{what} {self.label}", total)


@dataclass
class Circuit:
    """What a method found at one threshold: the members its evaluator scores, the run's components (with scores) and
    edges, the params it adds, whether it was searched within the parent (so the run nests in it), a few words on
    its size for the progress line, the run's measures the method itself took (`edge_faithfulness`, `cpr`, `cmd`),
    and the score of every edge an edge method ranked, kept with the run to cut it again later."""

    members: set
    components: dict[str, float | None]
    edges: list[Edge]
    params: dict
    nested: bool
    summary: str
    measures: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)  # the full ranking an edge method scored (edge name -> score)


@dataclass(frozen=True)
class Method:
    """One discovery method: what it needs, how it finds a circuit at one threshold, what its runs record."""

    name: str  # as --method spells it
    # the evaluators it scores circuits with, one per task (methods naming the same function share them)
    evaluators: Callable[[LoadedModel, JobSpec, dict[str, TaskData]], dict[str, Scorer]]
    find: Callable[[Step], Circuit]  # the circuit at one threshold, given the evaluator and the stricter parent
    options: tuple[str, ...]  # the JobSpec fields every run's params record
    score: Callable[[Any, JobSpec], dict] | None = None  # a ranking, computed once per task and only when a run needs it
    variant: Callable[[Any], str] | None = None  # what tells its runs apart beyond the name (sae-attr: the dictionaries)
    packages: tuple[str, ...] = ()  # versions recorded beyond torch, transformer-lens and circuitdb

    def run_method(self, ev: Any) -> str:
        """The method its runs record (and their ids hash): `prune`, `sae-attr:resid2+resid3`."""
        return self.name if self.variant is None else f"{self.name}:{self.variant(ev)}"


def by_score(scores: dict[K, float]) -> list[K]:
    """The keys, highest score first (ties keep their order)."""
    return sorted(scores, key=lambda key: -scores[key])


def shortest_prefix(ranked: list[K], faithfulness: Callable[[list[K]], float], threshold: float,
                    progress: Callable[[int], None] = lambda n: None) -> list[K]:
    """The shortest prefix of `ranked` whose circuit reaches `threshold`, by binary search (a longer prefix is taken to
    score no lower); the whole list when no shorter one does."""
    lo, hi = 1, len(ranked)
    while lo < hi:
        mid = (lo + hi) // 2
        progress(1)
        if faithfulness(ranked[:mid]) >= threshold:
            hi = mid
        else:
            lo = mid + 1
    return ranked[:lo]
