"""Where a sweep's work runs: in this process (`local`), or as Ray tasks on a cluster (`ray`).

A unit of work is one (model, task, method) threshold ladder: its thresholds nest, so a ladder runs in order inside one
unit, and units run side by side. Each Ray worker process keeps the models and jobs it has loaded, so the units of one
model that land on it load the model once. A `Ledger` actor on the driver's node counts units and relays news; with the
embedded store it also holds the catalog, so every run is written on the driver's machine as it arrives, while with a
server store (`direct`) the workers write straight into it. A worker killed mid-unit has its unit retried by Ray; the
retry skips the runs already stored and every write replaces its run by id, so nothing is lost or written twice.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from circuitdb.discovery.spec import JobSpec
from circuitdb.domain import Run
from circuitdb.errors import CircuitdbError
from circuitdb.progress import Reporter

if TYPE_CHECKING:  # torch is imported by the workers only: the driver stays light
    from circuitdb.discovery.jobs import Job
    from circuitdb.discovery.models import LoadedModel

EXECUTORS = ("local", "ray")
FORWARDED_ENV = ("CIRCUITDB_", "NEO4J_", "HF_")  # credentials and offline switches the workers need
RETRIES = 3  # attempts Ray makes after a worker dies mid-unit
RAY_RESOURCES = {"num_cpus": "CPU", "num_gpus": "GPU"}  # a task's request -> the cluster's resource


class Sink(Protocol):
    """Where runs go: a picklable handle that opens its catalog where it is used."""

    def stored(self, run_id: str) -> Run | None:
        """The stored run with this id, if any."""

    def add(self, run: Run) -> None:
        """Write one run (replacing a run of the same id)."""

    def close(self) -> None:
        """Let go of the store."""


@dataclass(frozen=True)
class Unit:
    """One (model, task, method) threshold ladder of a job: what the executors schedule."""

    index: int
    spec: JobSpec
    task: str
    method: str

    @property
    def label(self) -> str:
        return f"{self.spec.model}/{self.task}/{self.method}"


def units(specs: list[JobSpec]) -> list[Unit]:
    """The ladders of the jobs, in the order the local executor runs them."""
    ladders = [(spec, task, method) for spec in specs for task in dict.fromkeys(spec.tasks)
               for method in dict.fromkeys(spec.methods)]
    return [Unit(i, spec, task, method) for i, (spec, task, method) in enumerate(ladders)]


class Ledger:
    """The sweep's bookkeeping on the driver's node: units started (and how often: a retry starts again), runs written,
    news for the driver's progress; with `sink` (the embedded store) also the store's one writer."""

    def __init__(self, sink: Sink | None) -> None:
        self.sink = sink
        self.attempts: dict[int, int] = {}
        self.written: list[str] = []
        self.notes: list[str] = []

    def start(self, index: int) -> None:
        self.attempts[index] = self.attempts.get(index, 0) + 1

    def stored(self, run_id: str) -> Run | None:
        return self.sink.stored(run_id)

    def add(self, run: Run) -> None:
        self.sink.add(run)
        self.written.append(run.id)

    def wrote(self, run_id: str) -> None:
        self.written.append(run_id)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def news(self) -> tuple[list[str], set[int], int]:
        """Notes since the last call, the units ever started, and how many starts were retries."""
        notes, self.notes = self.notes, []
        return notes, set(self.attempts), sum(self.attempts.values()) - len(self.attempts)

    def finish(self) -> list[str]:
        """The ids written, once; the store is let go."""
        if self.sink is not None:
            self.sink.close()
        return list(dict.fromkeys(self.written))


class _Notes(Reporter):
    """A worker's reporter: news goes to the ledger (bars stay on the driver), and is there before the unit returns,
    so the driver relays a unit's last line with its end."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger

    def note(self, text: str) -> None:
        import ray

        ray.get(self.ledger.note.remote(text))


_MODELS: dict[tuple[str, str], LoadedModel] = {}  # per worker process: loaded once, shared by its units
_JOBS: dict[str, Job] = {}


def _job(spec: JobSpec) -> Job:
    """The worker's job for `spec`, built on first use; jobs of one model share the loaded model."""
    from circuitdb.discovery.jobs import Job
    from circuitdb.discovery.models import load_model

    key = repr(spec)
    if key not in _JOBS:
        model = (spec.model, spec.device)
        if model not in _MODELS:
            _MODELS[model] = load_model(spec.model, spec.device)
        _JOBS[key] = Job(spec, _MODELS[model])
    return _JOBS[key]


def _ladder(unit: Unit, ledger: Any, sink: Sink | None) -> list[str]:
    """A Ray task: run one unit; runs go to `sink` (written here) or through the ledger (written on the driver's node)."""
    import ray

    ray.get(ledger.start.remote(unit.index))  # first: a worker killed while torch loads has started its unit too
    from circuitdb.discovery.methods import METHODS

    if sink is None:
        on_run: Callable[[Run], None] = lambda run: ray.get(ledger.add.remote(run))  # noqa: E731
        existing: Callable[[str], Run | None] = lambda run_id: ray.get(ledger.stored.remote(run_id))  # noqa: E731
    else:
        def on_run(run: Run) -> None:
            sink.add(run)
            ray.get(ledger.wrote.remote(run.id))

        existing = sink.stored
    runs = _job(unit.spec).ladder(unit.task, METHODS[unit.method], on_run, existing, _Notes(ledger))
    return [run.id for run in runs]


def run_ray(specs: list[JobSpec], sink: Sink, direct: bool, resources: dict[str, float], address: str | None,
            reporter: Reporter) -> list[str]:
    """Run every unit as a Ray task on the cluster at `address` (a new local one when None); returns the ids written.
    `direct`: workers write into `sink` themselves (a server store); otherwise the ledger on this node writes."""
    try:
        import ray
    except ImportError:
        raise CircuitdbError("--executor ray needs Ray: pip install 'circuitdb[ray]'") from None
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}
    joined = ray.is_initialized()  # a Ray the caller started is used as it is, and left running
    if not joined:
        _check_reachable(address)
        try:
            ray.init(address=address, runtime_env={"env_vars": env}, logging_level="error", log_to_driver=False)
        except ConnectionError as exc:
            raise CircuitdbError(f"no Ray cluster at {address}: {str(exc).splitlines()[0]}") from None
    try:
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        ledger = ray.remote(Ledger).options(num_cpus=0, scheduling_strategy=here).remote(None if direct else sink)
        task = ray.remote(_ladder).options(max_retries=RETRIES, **resources)
        return _follow(ray, ledger, lambda unit: task.remote(unit, ledger, sink if direct else None), units(specs),
                       lambda: _slots(ray.cluster_resources(), resources), reporter)
    finally:
        if not joined:
            ray.shutdown()


def _check_reachable(address: str | None, timeout_s: float = 5) -> None:
    """Fail in seconds, with one line, when a `HOST:PORT` cluster does not answer (Ray itself keeps trying for minutes)."""
    if address is None or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise CircuitdbError(f"--address must be auto, HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise CircuitdbError(f"no Ray cluster at {address}: {exc.strerror or exc}") from None


def _slots(cluster: dict[str, float], resources: dict[str, float]) -> int:
    """How many units the cluster runs at once. The driver keeps no more than that in flight: Ray lends a task's CPU
    to another while the task waits in `ray.get` (on the ledger), which would start more units than there are CPUs."""
    fits = [int(cluster.get(RAY_RESOURCES[name], 0) // need) for name, need in resources.items() if need]
    return max(1, min(fits, default=1))


def _follow(ray: Any, ledger: Any, submit: Callable[[Unit], Any], todo: list[Unit], slots: Callable[[], int],
            reporter: Reporter) -> list[str]:
    """Run the units as many at a time as the cluster has `slots` (asked again, as a cluster may grow), showing done /
    running / failed, and relay the workers' news; a unit that fails (after Ray's retries) does not stop the others,
    and is reported at the end with the first error."""
    total, waiting = len(todo), list(reversed(todo))
    advance = reporter.start("units", total)
    pending: dict[Any, Unit] = {}
    done: set[int] = set()
    failed: list[tuple[str, str]] = []
    while pending or waiting:
        room = slots() if waiting else 0
        while waiting and len(pending) < room:
            unit = waiting.pop()
            pending[submit(unit)] = unit
        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0.5)
        for ref in ready:
            unit = pending.pop(ref)
            try:
                ray.get(ref)
            except Exception as exc:  # a unit's own error (RayTaskError) or a worker lost beyond its retries
                failed.append((unit.label, _reason(exc)))
                reporter.note(f"unit {unit.label} failed: {failed[-1][1]}")
            done.add(unit.index)
            advance(1)
        notes, started, retries = ray.get(ledger.news.remote())
        for text in notes:
            reporter.note(text)
        running = len(started - done)
        reporter.status(f"units: {len(done) - len(failed)} done, {running} running, {len(failed)} failed"
                        + (f", {retries} retried" if retries else ""))
    written = ray.get(ledger.finish.remote())
    if failed:
        label, reason = failed[0]
        raise CircuitdbError(f"{len(failed)} of {total} units failed ({len(written)} runs written); {label}: {reason}")
    return written


def _reason(exc: Exception) -> str:
    """The one line of a failed unit: the circuitdb error it raised, else the exception's own first line."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, CircuitdbError):
        return str(cause)
    text = str(cause or exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
