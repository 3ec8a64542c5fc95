"""`Catalog`: THE Python API. Every CLI command calls one of its methods (the method is named after the command:
`circuitdb features match` is `Catalog.features_match`) and renders the result object it returns.

Discovery methods import torch lazily, so opening a catalog and asking it questions stays torch-free.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from circuitdb.domain import (
    MEASURES,
    Model,
    Relation,
    Run,
    SteeringVector,
    Task,
    check_cut,
    check_int,
    check_name,
    check_number,
    cut_scores,
    model_named,
    now,
    parse_component,
)
from circuitdb.errors import CircuitdbError
from circuitdb.ingest.features import relation_rows, steering_rows
from circuitdb.ingest.files import check_output, writing
from circuitdb.ingest.tables import run_tables
from circuitdb.lazy import pd
from circuitdb.progress import Reporter
from circuitdb.queries import run_query
from circuitdb.queries.features import SteeringInfo, across, feature_list, related, resolve_component, steering, steering_vectors
from circuitdb.queries.overlap import diff, ladder, shared, venn
from circuitdb.queries.results import (
    ComponentDetail,
    Curves,
    Diff,
    Ladder,
    Rows,
    RunDetail,
    Runs,
    Shared,
    Similarity,
    Subgraph,
    Venn,
    Written,
    runs_title,
)
from circuitdb.queries.runs import curve_points, export_runs, fetch_run
from circuitdb.queries.selection import RunInfo, Selection, all_runs, label_of, labels, resolve
from circuitdb.queries.similarity import similarity
from circuitdb.queries.subgraph import component_detail, subgraph
from circuitdb.store.base import Store, open_store, store_url

IMPORT_METHODS = {"seqcont": "prune", "eap-ig": "eap-ig", "mib": "eap-ig", "auto-circuit": "auto-circuit", "acdc": "acdc",
                  "circuit-tracer": "circuit-tracer"}  # the method a file's runs get unless told
IMPORT_KINDS = (*IMPORT_METHODS, "json")
EXPORT_FORMATS = ("eap-ig", "mib", "neuronpedia")
IMPORT_ROWS = 200_000  # memberships + edges per batch of an import: bounds its memory (and a Kuzu transaction)


def replace_with_cut(parent: Run, top_n: int | None, fraction: float | None, min_score: float | None,
                     absolute: bool) -> Run:
    """The run `cut_scores` cuts from `parent`'s score list: its own members, edges and rule, no measures yet (the
    parent's curve is its score list's, not the cut's)."""
    members, edges, rule = cut_scores(parent.scores, top_n=top_n, fraction=fraction, min_score=min_score,
                                      absolute=absolute)
    params = {k: v for k, v in parent.params.items() if k not in ("curve", "measured")} | {"cut_from": parent.id}
    return replace(parent, components=members, edges=edges, scores={}, cut=rule, nests_in=None, evaluations={},
                   params=params, created_at=now(), **dict.fromkeys(MEASURES))


class Catalog:
    """A catalog of circuits in one store (`kuzu:PATH` by default, or a Neo4j URL)."""

    def __init__(self, url: str | None = None, *, read_only: bool = False, create: bool = True, wait: float = 10,
                 lazy: bool = False) -> None:
        """`read_only` for questions (many readers may share the embedded file); `wait` seconds for another process
        that holds the embedded file (a writer locks it while it writes); `lazy` opens the store at its first use,
        after a method has checked its input, so a refused call leaves no new file or schema behind (the CLI opens
        catalogs so)."""
        if url is not None and not isinstance(url, str):
            raise CircuitdbError(f"store must be a URL (kuzu:PATH, bolt://HOST:PORT), got {url!r}")
        if check_number(wait, "--wait") < 0:
            raise CircuitdbError(f"--wait must be a number of seconds >= 0, got {wait:g}")
        self.url, self.wait = store_url(url), wait
        self._open = lambda: open_store(url, read_only=read_only, create=create, wait=wait)
        self._store: Store | None = None if lazy else self._open()

    @property
    def store(self) -> Store:
        """The open store (opened now if the catalog was made lazy and this is its first use)."""
        if self._store is None:
            self._store = self._open()
        return self._store

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def release(self) -> None:
        """Let other processes use the embedded file until the next call (a long-lived reader between questions)."""
        if self._store is not None:
            self._store.release()

    def _ready(self) -> None:
        """Open the store now (input checked, work ahead): one that cannot be opened fails before the work, not after."""
        _ = self.store

    # writing
    def init(self) -> Written:
        """Create the schema if missing (idempotent); says how many runs the catalog holds."""
        self.store.init()
        return Written(f"catalog ready ({self.store.backend})", len(all_runs(self.store)), {"backend": self.store.backend})

    def from_kuzu(self, path: Path | str) -> Written:
        """Copy a catalog that Kuzu 0.11.3 wrote (circuitdb before ladybug) into this one, a new embedded catalog:
        every run, edge, feature relation and steering vector, in one transaction. Needs kuzu installed beside
        (`circuitdb[kuzu]`); the old file is brought up to date by Kuzu first, as any writable open does."""
        from circuitdb.store.move import copy_from_kuzu

        if self.store.backend != "kuzu":
            raise CircuitdbError("from-kuzu copies into an embedded catalog (--store kuzu:NEW_FILE), not into Neo4j")
        counts = copy_from_kuzu(self.store, Path(path))
        return Written(f"copied {path} into {self.url}", counts["Run"], {"rows": counts})

    def add(self, runs: Run | Iterable[Run]) -> list[str]:
        """Write runs (each atomically, replacing an earlier copy with the same id); all are validated first."""
        batch = [runs] if isinstance(runs, Run) else list(runs)
        tables = [run_tables(run) for run in batch]
        self._check_stored_shapes(batch)
        self.store.write_runs(tables)
        return [t.run_id for t in tables]

    def _check_stored_shapes(self, batch: list[Run]) -> None:
        """A run whose own model has no shape still has to fit the shape the catalog holds for that model."""
        unknown = sorted({r.model.name for r in batch if r.model.n_layers is None or r.model.n_heads is None})
        if not unknown:
            return
        stored = {row["id"]: row for row in run_query(self.store, "model_shapes", models=unknown)}
        for run in batch:
            row = stored.get(run.model.name)
            if row is None:
                continue
            shape = Model(run.model.name, run.model.n_layers or row["n_layers"], run.model.n_heads or row["n_heads"])
            for name in run.components:
                problem = shape.lacks(parse_component(name))
                if problem:
                    raise CircuitdbError(f"run {run.id}: component {problem} (as the catalog records it)")

    def add_relations(self, relations: list[Relation]) -> int:
        """Write feature relations, replacing stored ones from the same sources; the number written."""
        rows = relation_rows(relations)
        self.store.write_relations(rows)
        return len(rows.relations)

    def add_steering(self, vector: SteeringVector, kind: str | None = None, links: list[dict] | None = None) -> None:
        """Write a steering vector and, with `kind`, replace its DECOMPOSES_INTO or SHIFTS links."""
        self.store.write_steering(steering_rows(vector, kind, links))

    def import_file(self, kind: str, path: Path | str, model: str | None = None, task: str | None = None,
                    threshold: float | None = None, method: str | None = None, ablation: str = "mean",
                    top_n: int | None = None, fraction: float | None = None, min_score: float | None = None,
                    absolute: bool = True) -> Runs:
        """Read another tool's file (IMPORT_KINDS) or circuitdb's own export (`json`) and write its runs; with a cut
        (`top_n`, `fraction` or `min_score`), also the circuit cut from each imported score list."""
        if kind not in IMPORT_KINDS:
            raise CircuitdbError(f"unknown import format {kind!r} (use {', '.join(IMPORT_KINDS)})")
        cutting = any(v is not None for v in (top_n, fraction, min_score))
        if cutting:
            check_cut(top_n, fraction, min_score)  # a bad cut is refused before anything is read
        if kind == "json":
            from circuitdb.ingest.native import native_batches

            written: list[str] = []
            for batch in native_batches(path, IMPORT_ROWS):  # all runs are checked before the first batch comes
                written += self.add(batch)
            return self._written(written)
        if kind != "mib" and (model is None or task is None):
            raise CircuitdbError(f"importing a {kind} file needs its model and task")
        for value, what in ((model, "model name"), (task, "task name")):
            if value is not None:
                check_name(value, what)
        method = check_name(IMPORT_METHODS[kind] if method is None else method, "method")
        shape, named = (model_named(model) if model else None), (Task(task) if task else None)
        if kind == "seqcont":
            from circuitdb.ingest.seqcont import read_seqcont

            if threshold is None:
                raise CircuitdbError("a seqcont file needs the threshold its circuit was found at")
            check_name(ablation, "ablation")
            runs = [read_seqcont(path, shape, named, threshold, method, ablation)]
        elif kind == "eap-ig":
            from circuitdb.ingest.eapig import read_eapig

            runs = [read_eapig(path, shape, named, method, threshold)]
        elif kind == "mib":
            from circuitdb.ingest.eapig import read_mib

            runs = read_mib(path, shape, named, method)
        elif kind == "auto-circuit":
            from circuitdb.ingest.autocircuit import read_auto_circuit

            runs = [read_auto_circuit(path, shape, named, method)]
        elif kind == "acdc":
            from circuitdb.ingest.acdc import read_acdc

            runs = [read_acdc(path, shape, named, method, threshold)]
        else:
            from circuitdb.ingest.neuronpedia import read_neuronpedia

            runs = [read_neuronpedia(path, shape, named, method)]
        cut = [replace_with_cut(run, top_n, fraction, min_score, absolute) for run in runs if run.scores] if cutting else []
        return self._written(self.add(runs + cut))

    def cut(self, run_id: str, top_n: int | None = None, fraction: float | None = None, min_score: float | None = None,
            absolute: bool = True) -> Runs:
        """Cut a circuit from a run's score list (top n, top fraction, or score at least `min_score`; by |score| or
        signed) and write it as a run of its own, linked to the run it came from by `params.cut_from`."""
        return self._written(self.add(replace_with_cut(self.run(run_id), top_n, fraction, min_score, absolute)))

    def delete(self, run_id: str) -> RunInfo:
        """Remove one run (a unique id prefix of 4+ digits will do); its memberships and edges go, components stay."""
        (info,) = self.select(Selection(run_ids=(run_id,)), maximum=1)
        if not self.store.delete_run(info.id):
            raise CircuitdbError(f"unknown run {run_id!r}")
        return info

    def has_run(self, run_id: str) -> bool:
        return bool(run_query(self.store, "run", run_ids=[run_id]))

    def stored(self, run_id: str) -> Run | None:
        """The stored run with this exact id, or None: lets a job skip finished runs and nest under stored ones."""
        return self.run(run_id) if self.has_run(run_id) else None

    def _job(self, job: Callable[[Callable[[Run], Any], Callable[[str], Run | None]], list[Run]]) -> Runs:
        """Run a discovery job that writes each run as it finishes; between its writes the store is released, so
        other processes can read (and write) the embedded file while the job computes."""

        def released(call: Callable) -> Callable:
            def run(arg: Any) -> Any:
                try:
                    return call(arg)
                finally:
                    self.store.release()

            return run

        self.store.release()
        return self._written([r.id for r in job(released(self.add), released(self.stored))])

    def _written(self, ids: list[str]) -> Runs:
        return Runs(self.select(Selection(run_ids=tuple(dict.fromkeys(ids))))) if ids else Runs([])

    # reading
    def runs(self, selection: Selection | None = None) -> Runs:
        """All runs, or those a selection names (an empty selection result is an error)."""
        empty = selection is None or selection == Selection()
        return Runs(all_runs(self.store) if empty else resolve(self.store, selection))

    def select(self, selection: Selection, minimum: int = 1, maximum: int | None = None) -> list[RunInfo]:
        """The runs a selection names, in the order asked; an error says what matched when it is not minimum..maximum."""
        return resolve(self.store, selection, minimum, maximum)

    def run(self, run_id: str) -> Run:
        """One whole run; a unique id prefix of at least 4 digits is enough."""
        (info,) = self.select(Selection(run_ids=(run_id,)))
        return fetch_run(self.store, info.id)

    def show(self, run_id: str) -> RunDetail:
        """One run as a result: provenance, members with scores, edges with weights."""
        from circuitdb.ingest.native import run_to_dict

        return RunDetail(run_to_dict(self.run(run_id)))

    def subgraph(self, run_id: str, top: int = 200, min_weight: float = 0.0) -> Subgraph:
        """A run's `top` strongest edges by |weight| (at least `min_weight`) and members by |score|, with the ends of
        those edges: the store sorts and cuts, so a picture of a run of 30,000 edges fetches only what it shows. A run
        whose score list (an imported EAP-IG score file) scores more edges than it stores is shown from that list:
        its top edges by |score|, each marked `in_circuit` or only scored, so the picture reaches past the circuit."""
        _at_least(top, 1, "--top")
        if check_number(min_weight, "--min-weight") is None or min_weight < 0:
            raise CircuitdbError(f"--min-weight must be a number >= 0, got {min_weight!r}")
        (info,) = self.select(Selection(run_ids=(run_id,)))
        nodes, edges, scored = subgraph(self.store, info, top, float(min_weight))
        return Subgraph(info, nodes, edges, top, float(min_weight), scored)

    def component(self, run_id: str, component: str, top: int = 50) -> ComponentDetail:
        """One component of a run: its score, its `top` strongest edges in and out, and every run that includes it."""
        _at_least(top, 1, "--top")
        (info,) = self.select(Selection(run_ids=(run_id,)))
        node, edges, memberships = component_detail(self.store, info, component, top)
        known = {r.id: r for r in all_runs(self.store)}
        runs = [{"run": m["run"], "label": label_of(known[m["run"]]), "score": m["score"]}
                for m in memberships if m["run"] in known]
        runs.sort(key=lambda r: (r["run"] != info.id, r["label"], r["run"]))
        return ComponentDetail(info, node, edges, runs)

    def shared(self, selection: Selection, edges: bool = False, by_position: bool = True) -> Shared:
        """Components (edges) present in every selected run, with mean and min score (weight); a component is its name
        and token position, or its name alone unless `by_position` (as in venn, diff and similarity)."""
        runs = self.select(selection)
        return Shared(runs, shared(self.store, runs, edges, by_position), edges, by_position)

    def venn(self, selection: Selection, edges: bool = False, plot: Path | None = None, by_position: bool = True) -> Venn:
        """Venn regions of 2-4 runs, an UpSet table past that; `plot` draws it (.png/.svg)."""
        if plot:
            check_output(plot)
        runs = self.select(selection, minimum=2)
        result = Venn(runs, labels(runs), venn(self.store, runs, edges, by_position), edges, by_position)
        if plot:
            from circuitdb.analysis.plots import venn_plot

            with writing(plot):
                venn_plot(result.labels, result.regions, plot, "edges" if edges else "components")
        return result

    def diff(self, selection: Selection, edges: bool = False, by_position: bool = True) -> Diff:
        """Only in A, only in B and in both, for the two selected runs in the order asked."""
        a, b = self.select(selection, minimum=2, maximum=2)
        return Diff(a, b, diff(self.store, a, b, edges, by_position), edges, by_position)

    def similarity(self, selection: Selection | None = None, edges: bool = False, weighted: bool = False,
                   plot: Path | None = None, by_position: bool = True) -> Similarity:
        """Jaccard matrix over the selected runs (all when none is given); `plot` draws the heatmap."""
        if plot:
            check_output(plot)
        runs = list(self.runs(selection))
        if not runs:
            raise CircuitdbError("the catalog has no runs")
        every = selection is None or selection == Selection()
        result = Similarity(runs, similarity(self.store, runs, edges, weighted, every, by_position), edges, weighted,
                            by_position)
        if plot:
            from circuitdb.analysis.plots import heatmap

            with writing(plot):
                heatmap(result.matrix, plot, result.title)
        return result

    def curve(self, selection: Selection, plot: Path | None = None) -> Curves:
        """The faithfulness curves of the selected runs (runs of path, eap and eap-ig carry one); `plot` draws them in
        one figure, methods side by side."""
        if plot:
            check_output(plot)
        runs = self.select(selection)
        result = Curves(runs, labels(runs), curve_points(self.store, runs))
        if plot:
            from circuitdb.analysis.plots import curve_plot

            with writing(plot):
                legend = {r.id: f"{label} (CPR {r.cpr:.3f}, CMD {r.cmd:.3f})" for r, label in zip(runs, result.labels)}
                curve_plot(result.points, legend, plot, runs_title(runs))
        return result

    def ladder(self, model: str, task: str, methods: tuple[str, ...] = ()) -> Ladder:
        """Per threshold of one model x task: size, members and nesting against the stricter circuit."""
        return Ladder(model, task, ladder(self.store, model, task, methods))

    def circuits(self, runs: list[RunInfo]) -> tuple[list[dict], list[dict]]:
        """Membership rows and edge rows of these runs, for pictures of one circuit or an overlap."""
        ids = [r.id for r in runs]
        return run_query(self.store, "members", run_ids=ids), run_query(self.store, "edges", run_ids=ids)

    def export(self, selection: Selection, path: Path, only_shared: bool = False, top: int | None = None,
               fmt: str | None = None) -> Written:
        """The selected runs as circuitdb JSON (.json), memberships (.csv) or a picture of 1-3 runs
        (.dot/.gv/.svg/.png/.pdf; `only_shared` keeps what all share, `top` each run's N strongest components); or in
        another tool's format `fmt`: `eap-ig` (one run, EAP-IG's full-graph JSON), `mib` (a submission folder) or
        `neuronpedia` (one run of features, errors, embeddings and logits: an attribution graph)."""
        from circuitdb.analysis.circuit_graph import PICTURE_SUFFIXES, overlap_graph, strongest, to_dot, write_picture
        from circuitdb.analysis.tables import write_table

        path = Path(path)
        if fmt is not None:
            return self._export_as(fmt, selection, path)
        suffix = path.suffix.lower()
        if suffix not in (".json", ".csv", *PICTURE_SUFFIXES):
            raise CircuitdbError(f"{path}: export to .json, .csv or a picture ({', '.join(PICTURE_SUFFIXES)})")
        if top is not None:
            _at_least(top, 1, "--top")
        check_output(path)
        runs = self.select(selection)
        if suffix == ".json":
            from circuitdb.ingest.native import write_document

            part = path.with_name(path.name + ".part")  # written run by run, renamed when whole
            try:
                with writing(path), part.open("w") as out:
                    write_document(out, export_runs(self.store, runs))
                with writing(path):
                    part.replace(path)
            finally:
                part.unlink(missing_ok=True)
            return Written(f"wrote {path}", len(runs), {"path": str(path)})
        members, edges = self.circuits(runs)
        if top is not None:
            members, edges = strongest(members, edges, top)
        if suffix == ".csv":
            with writing(path):
                write_table(pd.DataFrame(members, columns=["run", "component", "kind", "layer", "score"]), path)
        else:
            graph = overlap_graph(labels(runs), [r.id for r in runs], members, edges, only_shared)
            title = ("shared: " if only_shared else "") + runs_title(runs)
            with writing(path):
                write_picture(to_dot(graph, title), path)
        return Written(f"wrote {path}", len(runs), {"path": str(path)})

    def _export_as(self, fmt: str, selection: Selection, path: Path) -> Written:
        """Runs in another tool's format, every run checked before a file is written."""
        from circuitdb.ingest import eapig

        if fmt not in EXPORT_FORMATS:
            raise CircuitdbError(f"unknown export format {fmt!r} (use {', '.join(EXPORT_FORMATS)})")
        if fmt == "mib":
            if path.exists() and not path.is_dir():
                raise CircuitdbError(f"{path}: a MIB submission is a folder; give a folder name")
            check_output(path / "importances.json" if path.is_dir() else path)
            runs = self.select(selection)
            files = eapig.write_mib([fetch_run(self.store, r.id) for r in runs], path)
            return Written(f"wrote {len(files)} file{'s' if len(files) != 1 else ''} under {path}", len(runs),
                           {"path": str(path)})
        from circuitdb.ingest.neuronpedia import neuronpedia_graph

        check_output(path)
        (info,) = self.select(selection, maximum=1)
        run = fetch_run(self.store, info.id)
        text = json.dumps(eapig.eapig_graph(run) if fmt == "eap-ig" else neuronpedia_graph(run))
        with writing(path):
            path.write_text(text)
        return Written(f"wrote {path}", 1, {"path": str(path)})

    def query(self, cypher: str, params: dict[str, Any] | None = None, timeout: float = 30) -> Rows:
        """User Cypher: one statement that only reads the catalog (no writes, files, extensions or settings; the store's
        own plan of the statement decides), stopped after `timeout` seconds."""
        if not timeout > 0 or not math.isfinite(timeout):
            raise CircuitdbError(f"--timeout must be a positive number of seconds, got {timeout}")
        rows = self.store.query(cypher, params, timeout)
        return Rows("rows", pd.DataFrame(rows), f"{len(rows)} rows")

    # discovery (torch, imported on use)
    def discover(self, model: Any, tasks: list[Any], thresholds: list[float], reporter: Reporter | None = None,
                 **options: Any) -> Runs:
        """Find head/MLP circuits per task and threshold (options as `circuitdb discover`); each run is written as soon
        as it is done, stored runs are skipped (and still serve as the parent of the next threshold).

        `model` is a name or folder as on the command line, or a HookedTransformer or TransformerBridge object; each
        task a name or file, or data: `TaskData.from_tokens(...)`, `TaskData.from_prompts(...)` or `Prompts` (named by
        their `name`)."""
        from circuitdb.discovery.spec import JobSpec

        lm = None
        if not isinstance(model, str):
            from circuitdb.discovery.models import LoadedModel

            lm = model if isinstance(model, LoadedModel) else LoadedModel.of(model)
        given = {t.name: t for t in tasks if not isinstance(t, str)}
        names = [t if isinstance(t, str) else t.name for t in tasks]
        spec = JobSpec(model=model if lm is None else lm.name, tasks=names, thresholds=list(thresholds), **options).check()
        return self._discover([spec], reporter, lm, given)

    def sweep(self, path: Path, reporter: Reporter | None = None, executor: str = "local",
              address: str | None = None) -> Runs:
        """Run every job of a sweep file into this catalog (all checked before the first runs). `executor`: `local`
        (in this process) or `ray`: each (model, task, method) ladder a Ray task on the cluster at `address` (a new
        local cluster when None); the workers write into a Neo4j store themselves, the embedded file is written here."""
        from circuitdb.discovery.executors import EXECUTORS
        from circuitdb.discovery.sweep import read_sweep

        if executor not in EXECUTORS:
            raise CircuitdbError(f"unknown executor {executor!r} (use {', '.join(EXECUTORS)})")
        if address is not None and executor != "ray":
            raise CircuitdbError("--address names a Ray cluster: it needs --executor ray")
        plan = read_sweep(path)
        if executor == "local":
            return self._discover(plan.specs, reporter)
        from circuitdb.discovery.executors import run_ray

        direct = self.store.backend == "neo4j"
        self.store.release()
        ids = run_ray(plan.specs, RunSink(_portable(self.url), self.wait), direct, plan.resources, address,
                      reporter or Reporter())
        return self._written(ids)

    def _discover(self, specs: list, reporter: Reporter | None, lm: Any = None, given: dict | None = None) -> Runs:
        """Run checked jobs (on a model already loaded, with tasks given as data); torch is imported only now, and the
        store is released while it and the model load."""
        self.store.release()  # opened first if the catalog is lazy: a store that cannot open fails before the work
        from circuitdb.discovery.jobs import discover

        return self._job(lambda on_run, existing: [r for spec in specs
                                                   for r in discover(spec, on_run, existing, reporter, lm, given)])

    def evaluate(self, selection: Selection, on: list[str], n_prompts: int = 64, seed: int = 0, device: str = "cpu",
                 save: bool = False, reporter: Reporter | None = None) -> Rows:
        """Each selected circuit's performance on each task's data; `save` stores them as EVALUATED_ON."""
        from circuitdb.discovery.devices import check_device

        if not on:
            raise CircuitdbError("give at least one task to score the circuits on (--on)")
        for task in on:
            check_name(task, "--on task")
        _at_least(n_prompts, 4, "--prompts")
        check_int(seed, "--seed", None)
        check_device(device)
        infos = self.select(selection)
        runs = [self.run(r.id) for r in infos]
        self.store.release()  # others may use the file while the circuits are scored
        from circuitdb.discovery.jobs import evaluate_runs

        rows = evaluate_runs(runs, list(on), n_prompts, seed, device, reporter)
        if save:
            for run in runs:
                self.store.write_evaluations(run.id, [{"task": r["task"], "performance": float(r["performance"])}
                                                      for r in rows if r["run"] == run.id and r["task"] != run.task.name])
        names = dict(zip([r.id for r in infos], labels(infos)))
        table = pd.DataFrame(rows).pivot(index="run", columns="task", values="performance")
        table = table.loc[[r.id for r in infos]].rename(index=names).reset_index()
        return Rows("rows", pd.DataFrame(rows), "performance of each circuit (rows) on each task's data (columns)",
                    extra=[("table", table)])

    def measure(self, selection: Selection, n_prompts: int = 64, seed: int = 0, device: str = "cpu",
                intervention: str = "patch", reporter: Reporter | None = None) -> Runs:
        """Measure the selected runs that hold a score list (imported score files) on their model and task: the
        faithfulness curve of their edges ranked by |score|, CPR and CMD, and their in-graph edges' faithfulness;
        stored with each run. Runs without one (cuts) are left as they are."""
        from circuitdb.discovery.devices import check_device
        from circuitdb.discovery.spec import INTERVENTIONS

        _at_least(n_prompts, 4, "--prompts")
        check_int(seed, "--seed", None)
        check_device(device)
        if intervention not in INTERVENTIONS:
            raise CircuitdbError(f"unknown intervention {intervention!r} (use {', '.join(INTERVENTIONS)})")
        runs = [run for run in (self.run(r.id) for r in self.select(selection)) if run.scores]
        if not runs:
            raise CircuitdbError(f"no run of {selection.describe()} holds a score list to measure (runs imported from "
                                 "score files and edge methods' runs keep one; cuts of them do not)")
        self.store.release()  # others may use the file while the runs are measured
        from circuitdb.discovery.jobs import measure_scores

        return self._written(self.add(measure_scores(runs, n_prompts, seed, device, intervention, reporter)))

    def features_discover(self, model: str, saes: list[str], tasks: list[str], thresholds: list[float],
                          reporter: Reporter | None = None, **options: Any) -> Runs:
        """SAE feature circuits per task and threshold (options as `circuitdb features discover`), written as runs."""
        from circuitdb.discovery.spec import JobSpec

        return self._discover([JobSpec(model=model, methods=["sae-attr"], saes=list(saes), tasks=list(tasks),
                                       thresholds=list(thresholds), **options).check()], reporter)

    def features_cosine(self, model: str, saes: list[str], cutoff: float = 0.5, top: int = 5) -> Written:
        """Store decoder-direction cosine relations (|cos| >= cutoff, `top` partners) within and across dictionaries."""
        check_number(cutoff, "--cutoff")
        _at_least(top, 1, "--top")

        from circuitdb.discovery.models import load_model
        from circuitdb.discovery.relations import cosine_relations
        from circuitdb.discovery.sae import load_dictionary

        self._ready()
        lm = load_model(model)
        n = self.add_relations(cosine_relations(lm.name, [load_dictionary(s, lm) for s in saes], cutoff, top))
        return Written(f"cosine relations written (|cos| >= {cutoff:g})", n)

    def features_match(self, models: list[str], saes: list[str], prompts: list[str], min_score: float = 0.0) -> Rows:
        """Match each feature of model A (first model and SAE) to its best-correlated feature of model B on the same
        prompts, and store the matches."""
        if len(models) != 2 or len(saes) != 2:
            raise CircuitdbError("give exactly two models and two SAEs (A's, then B's)")
        check_number(min_score, "--min-score")

        from circuitdb.discovery.models import load_model
        from circuitdb.discovery.relations import match_on_prompts
        from circuitdb.discovery.sae import load_dictionary

        self._ready()
        lms = [load_model(m) for m in models]
        dicts = [load_dictionary(s, lm) for s, lm in zip(saes, lms)]
        if lms[0].name == lms[1].name and dicts[0].name == dicts[1].name:
            raise CircuitdbError("matching a dictionary with itself: name one of them, e.g. --sae copy=PATH")
        relations = match_on_prompts(lms[0], dicts[0], lms[1], dicts[1], list(prompts), min_score)
        self.add_relations(relations)
        frame = pd.DataFrame([{"feature": r.sender, "match": r.receiver, "correlation": r.weight} for r in relations],
                             columns=["feature", "match", "correlation"])
        frame = frame.sort_values(["correlation", "feature"], ascending=[False, True]).reset_index(drop=True)
        mean = round(float(frame["correlation"].mean()), 6) if len(frame) else None
        title = (f"{len(frame)} features of {lms[0].name}:{dicts[0].name} matched in {lms[1].name}:{dicts[1].name} "
                 f"(mean r {mean})")
        return Rows("matches", frame, title, {"model_a": lms[0].name, "model_b": lms[1].name, "matched": len(frame),
                                              "mean_correlation": mean})

    def features_list(self, model: str | None = None, limit: int = 200) -> Rows:
        """The catalog's SAE features (of `model`, or all), those in most runs first, with their run and relation
        counts: what the web view's Features page offers to pick from."""
        _at_least(limit, 1, "--limit")
        frame = feature_list(self.store, model, limit)
        return Rows("features", frame, f"{len(frame)} SAE features" + (f" of {model}" if model else ""))

    def features_related(self, feature: str, model: str | None = None, kinds: tuple[str, ...] = (),
                         min_weight: float = 0.0, limit: int = 20, plot: Path | None = None) -> Rows:
        """A feature's stored relations (cosine, match) and its co-membership in circuits, strongest first per kind;
        `plot` draws them (Graphviz)."""
        _at_least(limit, 1, "--limit")
        check_number(min_weight, "--min-weight")
        if plot:
            check_output(plot)
        center = resolve_component(self.store, feature, model)
        frame = related(self.store, center, min_weight, limit)
        if kinds:
            frame = frame[frame["kind"].isin(kinds)].reset_index(drop=True)
        if plot:
            from circuitdb.analysis.circuit_graph import relation_dot, write_picture

            with writing(plot):
                write_picture(relation_dot(center, frame.to_dict("records")), plot)
        return Rows("relations", frame, f"relations of {center}", {"feature": center})

    def features_across(self, selection: Selection, to_model: str | None = None, to_method: str | None = None) -> Rows:
        """Features shared by the selected runs (model A), their matches in model B, and whether B's runs for the same
        tasks and thresholds share the matches too."""
        if to_model is None and len(selection.models) != 1:
            raise CircuitdbError("give one model for A, or the model B to carry its features to")
        b = Selection(models=(to_model or selection.models[0],), tasks=selection.tasks, thresholds=selection.thresholds,
                      methods=(to_method,) if to_method else ())
        frame = across(self.store, self.select(selection), self.select(b))
        kept = int(frame["match_shared"].sum())
        title = f"{len(frame)} features shared in A; {kept} of their matches shared in B"
        return Rows("features", frame, title, {"shared_in_a": len(frame), "matched": int(frame["match"].notna().sum()),
                                               "shared_in_b": kept})

    def steer_build(self, name: str, model: str, layer: int, plus: str, minus: str, description: str = "",
                    n_prompts: int = 64, seed: int = 0) -> Written:
        """mean(PLUS) - mean(MINUS) at the last position of the residual stream entering `layer`, stored as a node."""
        check_name(name, "steering vector name")
        check_int(layer, "--layer")
        _at_least(n_prompts, 4, "--prompts")
        check_int(seed, "--seed", None)

        from circuitdb.discovery.models import load_model
        from circuitdb.discovery.steering import build, prompt_groups

        self._ready()
        lm = load_model(model)
        vector = build(lm, layer, prompt_groups(plus, lm, n_prompts, seed), prompt_groups(minus, lm, n_prompts, seed))
        stored = SteeringVector(lm.name, name, layer, vector.tolist(), description or f"{plus} - {minus}")
        self.add_steering(stored)
        return Written(f"wrote steering vector {stored.id}: layer {layer}, norm {stored.norm:.3f}", 1,
                       {"id": stored.id, "layer": layer, "norm": stored.norm})

    def steer_decompose(self, name: str, model: str, sae: str, top_k: int = 8) -> Rows:
        """Explain the vector by SAE features (k-sparse OMP fit and the encoder's read-out); store DECOMPOSES_INTO."""
        _at_least(top_k, 1, "--top-k")

        from circuitdb.discovery.sae import load_dictionary
        from circuitdb.discovery.steering import decompose

        self._ready()
        lm, info = self._vector(model, name)
        dictionary = load_dictionary(sae, lm)
        dec = decompose(info.values, info.layer, dictionary, top_k)
        links = [{"name": f"f{dictionary.name}/{i}", "coef": c, "method": m}
                 for m, coefs in (("omp", dec.omp), ("encoder", dec.encoder)) for i, c in coefs.items()]
        self.add_steering(SteeringVector(lm.name, name, info.layer, info.values, info.description), "DECOMPOSES_INTO", links)
        title = (f"{info.id} in {dictionary.name}: reconstruction cosine {dec.omp_cosine:.3f} (OMP, k={top_k}), "
                 f"{dec.encoder_cosine:.3f} (encoder top-k)")
        return Rows("features", pd.DataFrame(links).rename(columns={"name": "feature"}), title,
                    {"vector": info.id, "dictionary": dictionary.name, "top_k": top_k,
                     "omp_cosine": round(dec.omp_cosine, 6), "encoder_cosine": round(dec.encoder_cosine, 6)})

    def steer_effects(self, name: str, model: str, saes: list[str], on: str, coef: float = 1.0, top: int = 10,
                      n_prompts: int = 64, seed: int = 0) -> Rows:
        """Add coef x vector and measure which later features change (mean at the last position); store SHIFTS."""
        check_number(coef, "--coef")
        _at_least(top, 1, "--top")
        _at_least(n_prompts, 4, "--prompts")
        check_int(seed, "--seed", None)

        from circuitdb.discovery.sae import load_dictionary
        from circuitdb.discovery.steering import effects, prompt_groups, shift_links

        self._ready()
        lm, info = self._vector(model, name)
        dictionaries = [load_dictionary(s, lm) for s in saes]
        deltas, tokens = effects(lm, info.values, info.layer, coef, prompt_groups(on, lm, n_prompts, seed), dictionaries, top)
        links = shift_links(deltas, dictionaries, top, coef)
        self.add_steering(SteeringVector(lm.name, name, info.layer, info.values, info.description), "SHIFTS", links)
        rows = pd.DataFrame(links, columns=["name", "layer", "delta", "coef"]).rename(columns={"name": "feature"})
        rising = pd.DataFrame(tokens, columns=["token", "logit_delta"])
        return Rows("shifts", rows, f"{info.id} x {coef:g} on {on}: feature shifts", {"vector": info.id, "coef": coef, "on": on},
                    extra=[("rising_tokens", rising)])

    def _vector(self, model: str, name: str) -> tuple[Any, SteeringInfo]:
        """(loaded model, stored vector with its values)."""
        from circuitdb.discovery.models import load_model

        lm = load_model(model)
        return lm, self.steer_show(name, lm.name)

    def steer_show(self, name: str, model: str) -> SteeringInfo:
        """A stored steering vector with its values, decomposition and shifts."""
        return steering(self.store, model, name)

    def steer_list(self) -> Rows:
        """All stored steering vectors (values left out)."""
        return Rows("vectors", steering_vectors(self.store), "steering vectors")

    def resolve_component(self, component: str, model: str | None = None) -> str:
        """The graph id of a component named as `model/name` or by name (with `model` when ambiguous)."""
        return resolve_component(self.store, component, model)


def _at_least(value: object, minimum: int, option: str) -> int:
    """An integer option that counts something: at least `minimum` and within 64 bits; else one line naming it."""
    number = check_int(value, option, None)
    if number is None or number < minimum:
        raise CircuitdbError(f"{option} must be at least {minimum}, got {value}")
    return value


def sweep(path: Path, store: str | None = None, reporter: Reporter | None = None, wait: float = 10,
          executor: str = "local", address: str | None = None) -> Runs:
    """Run a sweep file into `store`, or into the store the file names, or the default one."""
    from circuitdb.discovery.sweep import read_sweep

    spec = read_sweep(path)  # a bad file is refused before the store is opened
    with Catalog(store or spec.store, wait=wait) as catalog:
        return catalog.sweep(path, reporter, executor, address)


class RunSink:
    """A catalog by URL that travels to other processes (Ray workers, the sweep's ledger) and opens there on first use,
    once per process; the store is released after every call, so other processes can use it in between."""

    _open: dict[tuple[str, float], Catalog] = {}

    def __init__(self, url: str, wait: float = 10) -> None:
        self.url, self.wait = url, wait

    def _catalog(self) -> Catalog:
        key = (self.url, self.wait)
        if key not in RunSink._open:
            RunSink._open[key] = Catalog(self.url, wait=self.wait)
        return RunSink._open[key]

    def stored(self, run_id: str) -> Run | None:
        catalog = self._catalog()
        try:
            return catalog.stored(run_id)
        finally:
            catalog.store.release()

    def add(self, run: Run) -> None:
        catalog = self._catalog()
        try:
            catalog.add(run)
        finally:
            catalog.store.release()

    def close(self) -> None:
        catalog = RunSink._open.pop((self.url, self.wait), None)
        if catalog is not None:
            catalog.close()


def _portable(url: str) -> str:
    """The URL as another process on this machine reads it: an embedded file by its absolute path."""
    return f"kuzu:{Path(url[len('kuzu:'):]).expanduser().resolve()}" if url.startswith("kuzu:") else url
