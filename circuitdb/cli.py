"""The `circuitdb` command: parse options, call the library, render a table or exact JSON. No logic of its own."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pandas as pd

from circuitdb.catalog import Catalog
from circuitdb.cli_common import (
    Group,
    emit,
    existing_run,
    json_option,
    print_frame,
    runs_title,
    selection,
    selection_options,
    store_option,
)
from circuitdb.domain import Task, model_named
from circuitdb.errors import CircuitdbError
from circuitdb.queries.selection import RunInfo, Selection, label_of, labels


@click.group(cls=Group)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="circuitdb")
def main(debug: bool) -> None:
    """A graph catalog of transformer circuits: import, compare, export."""


@main.command()
@store_option
def init(store: str | None) -> None:
    """Create the catalog schema (idempotent)."""
    with Catalog(store) as catalog:
        click.echo(f"catalog ready ({catalog.store.backend}), {len(catalog.runs())} runs")


@main.group("import")
def import_() -> None:
    """Import circuits from files of other tools or circuitdb's own export."""


def _import_options(f: Callable) -> Callable:
    for option in reversed(
        [
            click.argument("path", type=click.Path(dir_okay=False, path_type=Path)),
            click.option("--model", required=True, help="Model the circuit was found in."),
            click.option("--task", required=True, help="Task name."),
            store_option,
        ]
    ):
        f = option(f)
    return f


def _report(catalog: Catalog, ids: list[str]) -> None:
    for info in catalog.select(Selection(run_ids=tuple(ids))):
        click.echo(f"imported {info.id}  {label_of(info)}  {info.n_nodes} nodes, {info.n_edges} edges")


@import_.command("seqcont")
@_import_options
@click.option("--threshold", required=True, type=float, help="Performance threshold of the circuit, in (0, 1].")
@click.option("--method", default="prune", show_default=True)
@click.option("--ablation", default="mean", show_default=True)
def import_seqcont(path: Path, model: str, task: str, store: str | None, threshold: float, method: str, ablation: str) -> None:
    """A seqcont result file {"heads": [[layer, head], ...], "mlps": [layer, ...]}."""
    from circuitdb.ingest.seqcont import read_seqcont

    run = read_seqcont(path, model_named(model), Task(task), threshold, method, ablation)
    with Catalog(store) as catalog:
        _report(catalog, catalog.add(run))


@import_.command("eap-ig")
@_import_options
@click.option("--method", default="eap-ig", show_default=True)
@click.option("--threshold", type=float, default=None, help="Threshold the graph was cut at, if any.")
def import_eapig(path: Path, model: str, task: str, store: str | None, method: str, threshold: float | None) -> None:
    """An EAP-IG graph JSON (Graph.to_json): in-graph nodes and edges with their scores."""
    from circuitdb.ingest.eapig import read_eapig

    run = read_eapig(path, model_named(model), Task(task), method, threshold)
    with Catalog(store) as catalog:
        _report(catalog, catalog.add(run))


@import_.command("json")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@store_option
def import_json(path: Path, store: str | None) -> None:
    """circuitdb's own export (`circuitdb export -o runs.json`)."""
    from circuitdb.ingest.native import read_native

    runs = read_native(path)
    with Catalog(store) as catalog:
        _report(catalog, catalog.add(runs))


@main.command()
@selection_options
@store_option
@json_option
def runs(store: str | None, as_json: bool, **kw: Any) -> None:
    """List runs (id, model, task, method, threshold, faithfulness, sizes)."""
    sel = selection(**kw)
    with Catalog(store, create=False) as catalog:
        found = catalog.runs(None if sel == Selection() else sel)
    frame = pd.DataFrame([r.as_dict() for r in found], columns=list(RunInfo.__dataclass_fields__))
    emit([r.as_dict() for r in found], as_json, lambda: print_frame(frame.drop(columns=["created_at"]), f"{len(found)} runs"))


@main.command()
@click.argument("run_id")
@store_option
@json_option
def show(run_id: str, store: str | None, as_json: bool) -> None:
    """One run: provenance, members with scores, edges with weights."""
    from circuitdb.ingest.native import run_to_dict

    with Catalog(store, create=False) as catalog:
        run = catalog.run(run_id)
    data = run_to_dict(run)

    def table() -> None:
        head = {k: v for k, v in data.items() if k not in ("components", "edges")}
        for key, value in head.items():
            click.echo(f"{key:>13}: {value}")
        print_frame(pd.DataFrame(data["components"], columns=["name", "score"]), "components")
        if data["edges"]:
            print_frame(pd.DataFrame(data["edges"], columns=["sender", "receiver", "input", "weight"]), "edges")

    emit(data, as_json, table)


@main.command()
@selection_options
@click.option("--edges", is_flag=True, help="Shared edges instead of components.")
@store_option
@json_option
def shared(store: str | None, as_json: bool, edges: bool, **kw: Any) -> None:
    """Components (or edges) present in every selected run."""
    from circuitdb.analysis.tables import records

    with Catalog(store, create=False) as catalog:
        runs = catalog.select(selection(**kw))
        frame = catalog.shared(Selection(run_ids=tuple(r.id for r in runs)), edges)
    data = {"runs": [r.as_dict() for r in runs], "edges" if edges else "components": records(frame)}
    emit(data, as_json, lambda: print_frame(frame, f"shared by {runs_title(runs)}: {len(frame)}"))


@main.command()
@selection_options
@click.option("--edges", is_flag=True, help="Regions of edges instead of components.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Venn/UpSet plot (.png/.svg).")
@store_option
@json_option
def venn(store: str | None, as_json: bool, edges: bool, output: Path | None, **kw: Any) -> None:
    """Venn regions (count and members) of 2-4 runs; an UpSet table for more."""
    from circuitdb.analysis.plots import venn_plot

    with Catalog(store, create=False) as catalog:
        result = catalog.venn(selection(**kw), edges)
    if output:
        venn_plot(result.labels, result.regions, output, "edges" if edges else "components")
    emit(
        result.as_dict(),
        as_json,
        lambda: print_frame(result.regions, ("UpSet" if result.upset else "Venn") + f": {', '.join(result.labels)}"),
    )
    if output and not as_json:
        click.echo(f"wrote {output}")


@main.command()
@selection_options
@click.option("--edges", is_flag=True, help="Diff edges instead of components.")
@store_option
@json_option
def diff(store: str | None, as_json: bool, edges: bool, **kw: Any) -> None:
    """Only in A, only in B, in both (A and B are the two selected runs, in the order given)."""
    from circuitdb.analysis.tables import records

    with Catalog(store, create=False) as catalog:
        (a, b), frame = catalog.diff(selection(**kw), edges)
    data = {"a": a.as_dict(), "b": b.as_dict(), "rows": records(frame)}
    emit(data, as_json, lambda: print_frame(frame, f"A = {label_of(a)}   B = {label_of(b)}"))


@main.command()
@selection_options
@click.option("--edges", is_flag=True, help="Jaccard of edge sets instead of component sets.")
@click.option("--weighted", is_flag=True, help="Weighted Jaccard: sum of min |score| / sum of max |score|.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Heatmap (.png/.svg).")
@store_option
@json_option
def similarity(store: str | None, as_json: bool, edges: bool, weighted: bool, output: Path | None, **kw: Any) -> None:
    """Jaccard similarity matrix over the selected runs (all runs when nothing is selected)."""
    from circuitdb.analysis.plots import heatmap
    from circuitdb.analysis.tables import matrix_records

    sel = selection(**kw)
    with Catalog(store, create=False) as catalog:
        matrix = catalog.similarity(None if sel == Selection() else sel, edges, weighted)
    if output:
        heatmap(matrix, output, ("weighted " if weighted else "") + "Jaccard of " + ("edges" if edges else "components"))
    emit(matrix_records(matrix), as_json, lambda: print_frame(matrix.reset_index(names="")))


@main.command()
@click.option("--model", required=True)
@click.option("--task", required=True)
@click.option("--method", "methods", multiple=True)
@store_option
@json_option
def ladder(model: str, task: str, methods: tuple[str, ...], store: str | None, as_json: bool) -> None:
    """Circuit size and members per threshold of one model x task, and how each nests in the stricter one."""
    from circuitdb.analysis.tables import records

    with Catalog(store, create=False) as catalog:
        frame = catalog.ladder(model, task, methods)
    emit(records(frame), as_json, lambda: print_frame(frame, f"{model}/{task}"))


@main.command()
@selection_options
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help=".dot/.gv/.svg/.png/.pdf picture (1-3 runs), .json runs (circuitdb format), .csv memberships.",
)
@click.option("--only-shared", is_flag=True, help="Picture only what all selected runs share.")
@click.option("--top", type=int, default=None, help="Picture only each run's N strongest components (by |score|).")
@store_option
def export(store: str | None, output: Path, only_shared: bool, top: int | None, **kw: Any) -> None:
    """Export the selected runs as a Graphviz picture, circuitdb JSON or a CSV table."""
    from circuitdb.analysis.circuit_graph import overlap_graph, strongest, to_dot, write_picture
    from circuitdb.analysis.tables import write_table
    from circuitdb.ingest.native import dumps

    suffix = output.suffix.lower()
    with Catalog(store, create=False) as catalog:
        runs = catalog.select(selection(**kw))
        if suffix == ".json":
            output.write_text(dumps([catalog.run(r.id) for r in runs]))
        else:
            members, edges = catalog.circuits(runs)
            if top is not None:
                members, edges = strongest(members, edges, top)
            if suffix == ".csv":
                write_table(pd.DataFrame(members, columns=["run", "component", "kind", "layer", "score"]), output)
            else:
                graph = overlap_graph(labels(runs), [r.id for r in runs], members, edges, only_shared)
                title = ("shared: " if only_shared else "") + runs_title(runs)
                write_picture(to_dot(graph, title), output)
    click.echo(f"wrote {output} ({len(runs)} runs)")


@main.command()
@click.argument("cypher")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Cypher parameter (JSON or string).")
@store_option
@json_option
def query(cypher: str, params: tuple[str, ...], store: str | None, as_json: bool) -> None:
    """Run your own Cypher, read-only: the store refuses any write."""
    values: dict[str, Any] = {}
    for item in params:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise CircuitdbError(f"--param {item!r}: expected NAME=VALUE")
        try:
            values[name] = json.loads(raw)
        except json.JSONDecodeError:
            values[name] = raw
    with Catalog(store, read_only=True) as catalog:
        rows = catalog.query(cypher, values)
    emit(rows, as_json, lambda: print_frame(pd.DataFrame(rows)))


@main.command()
@click.argument("run_id")
@store_option
def delete(run_id: str, store: str | None) -> None:
    """Remove one run (its memberships and edges; shared components stay)."""
    with Catalog(store, create=False) as catalog:
        info = catalog.run(run_id)
        catalog.delete(info.id)
    click.echo(f"deleted {info.id}")


def _run_job(spec: Any, store: str | None) -> None:
    from circuitdb.discovery.jobs import discover
    from circuitdb.progress import RichReporter

    with Catalog(store) as catalog, RichReporter() as reporter:
        runs = discover(spec, on_run=catalog.add, existing=existing_run(catalog), reporter=reporter)
    click.echo(f"{len(runs)} runs written")


def _job_options(f: Callable) -> Callable:
    for option in reversed([
        click.option("--method", "methods", multiple=True, default=("prune",), show_default=True,
                     help="prune (iterative node pruning), eap, eap-ig (edge attribution over the full graph)."),
        click.option("--edges", default="path", show_default=True, help="Edges of pruned circuits: path, eap, eap-ig, none."),
        click.option("--ablation", default="mean", show_default=True, help="mean, zero or resample (over corrupted prompts)."),
        click.option("--prompts", "n_prompts", default=64, show_default=True, help="Prompts per task before filtering."),
        click.option("--seed", default=0, show_default=True),
        click.option("--nested/--no-nested", default=True, show_default=True,
                     help="Prune each lower threshold starting from the stricter threshold's circuit."),
        click.option("--edge-threshold", default=0.99, show_default=True,
                     help="Keep edges whose patched performance falls below this fraction of the circuit's."),
        click.option("--ig-steps", default=5, show_default=True, help="Integration steps of EAP-IG."),
        click.option("--robust", default=0, show_default=True, help="Also prune over K random orders; record survival."),
        click.option("--device", default="cpu", show_default=True),
        store_option,
    ]):
        f = option(f)
    return f


@main.command()
@click.option("--model", required=True, help="toy, a local Hugging Face model folder, or a TransformerLens name.")
@click.option("--task", "tasks", multiple=True, required=True, help="Built-in task (digits, numwords, months, days, "
              "greater_than; options :bare :down :repeatLast :switchLast) or a .yaml/.jsonl task file.")
@click.option("--threshold", "thresholds", multiple=True, type=float, required=True, help="Performance threshold in (0, 1].")
@_job_options
def discover(model: str, tasks: tuple[str, ...], thresholds: tuple[float, ...], store: str | None, **kw: Any) -> None:
    """Find circuits per task and threshold and write each run into the catalog as soon as it is done."""
    from circuitdb.discovery.jobs import JobSpec

    spec = JobSpec(model=model, tasks=list(tasks), thresholds=list(thresholds), methods=list(kw.pop("methods")), **kw)
    _run_job(spec.check(), store)


@main.command()
@selection_options
@click.option("--on", "on_tasks", multiple=True, required=True, help="Task whose data scores the circuits (repeatable).")
@click.option("--prompts", "n_prompts", default=64, show_default=True, help="Prompts per task before filtering.")
@click.option("--seed", default=0, show_default=True)
@click.option("--save", is_flag=True, help="Record the scores as EVALUATED_ON in the catalog.")
@click.option("--device", default="cpu", show_default=True)
@store_option
@json_option
def evaluate(store: str | None, as_json: bool, on_tasks: tuple[str, ...], n_prompts: int, seed: int, save: bool,
             device: str, **kw: Any) -> None:
    """Score the selected circuits on other tasks' data (performance = LD(circuit) / LD(model) there)."""
    from circuitdb.discovery.jobs import evaluate_runs
    from circuitdb.progress import RichReporter

    with Catalog(store, create=False) as catalog:
        infos = catalog.select(selection(**kw))
        runs = [catalog.run(r.id) for r in infos]
        with RichReporter() as reporter:
            rows = evaluate_runs(runs, list(on_tasks), n_prompts, seed, device, reporter)
        if save:
            for run in runs:
                scores = {r["task"]: r["performance"] for r in rows if r["run"] == run.id}
                run.evaluations |= {task: p for task, p in scores.items() if task != run.task.name}
            catalog.add(runs)
    names = dict(zip([r.id for r in infos], labels(infos)))
    table = pd.DataFrame(rows).pivot(index="run", columns="task", values="performance")
    table = table.loc[[r.id for r in infos]].rename(index=names).reset_index()
    emit(rows, as_json, lambda: print_frame(table, "performance of each circuit (rows) on each task's data (columns)"))


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@store_option
def sweep(path: Path, store: str | None) -> None:
    """Run a sweep file (YAML: models, tasks, thresholds, methods and any `discover` option); stored runs are skipped."""
    from circuitdb.discovery.sweep import read_sweep

    specs, file_store = read_sweep(path)
    for spec in specs:
        _run_job(spec, store or file_store)


@main.group()
def toy() -> None:
    """The shipped toy sequence-continuation model."""


@toy.command("train")
@click.option("--seed", default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Checkpoint path (default: the shipped one).")
def toy_train(seed: int, output: Path | None) -> None:
    """Retrain the toy model from scratch (deterministic for a seed) and save the checkpoint."""
    from circuitdb.discovery.toy import TOY_PATH, save_toy, train_toy
    from circuitdb.progress import RichReporter

    with RichReporter() as reporter:
        advance = reporter.start("training the toy model")
        model, codec, report = train_toy(seed, progress=lambda step, total, accuracy: advance(1))
    path = output or TOY_PATH
    save_toy(model, codec, report, path)
    click.echo(f"wrote {path}: held-out accuracy {report['heldout_accuracy']:.1%} after {report['steps']} steps "
               f"({report['seconds']:.0f} s)")


@toy.command("train-sae")
@click.option("--model", default="toy", show_default=True, help="toy, or a toy checkpoint NAME.pt.")
@click.option("--seed", default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the SAEs (default: the shipped ones).")
def toy_train_sae(model: str, seed: int, output: Path | None) -> None:
    """Retrain the toy SAEs (residual stream entering blocks 2 and 3) from scratch; print FVU and dead features."""
    from circuitdb.discovery.models import load_model
    from circuitdb.discovery.sae import TOY_SAE_DIR, train_toy_saes
    from circuitdb.progress import RichReporter

    with RichReporter() as reporter:
        advance = reporter.start("training the toy SAEs")
        if model != "toy" and output is None:
            raise CircuitdbError("give -o FOLDER for another model's SAEs (the shipped ones belong to the toy model)")
        reports = train_toy_saes(load_model(model), seed, output or TOY_SAE_DIR, lambda step, total: advance(1))
    for r in reports:
        folder = (output or TOY_SAE_DIR) / f"resid{r['layer']}"
        click.echo(f"wrote {folder}: FVU {r['fvu']:.3f}, dead {r['dead_fraction']:.1%}, "
                   f"L0 {r['l0']:.1f}, {r['seconds']:.0f} s")


def _register() -> None:
    """The feature and steering command groups live in their own module."""
    from circuitdb.feature_cli import features, steer

    main.add_command(features)
    main.add_command(steer)


_register()
