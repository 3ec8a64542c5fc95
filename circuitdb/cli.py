"""The `circuitdb` command: each command parses its options, calls the `Catalog` method of the same name (or one
`circuitdb.discovery` function) and renders the result. No logic of its own."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from circuitdb.catalog import EXPORT_FORMATS, IMPORT_METHODS
from circuitdb.cli_common import (
    AT_LEAST_0,
    AT_LEAST_1,
    MODEL_HELP,
    PROMPTS,
    Group,
    open_catalog,
    output_options,
    render,
    selection,
    selection_options,
    store_option,
    wait_seconds,
)
from circuitdb.errors import CircuitdbError
from circuitdb.queries.results import Runs
from circuitdb.queries.selection import label_of

PATH = click.Path(dir_okay=False, path_type=Path)


@click.group(cls=Group)
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.option("--wait", default=10.0, show_default=True, envvar="CIRCUITDB_WAIT",
              help="Seconds to wait while another process holds the embedded catalog file.")
@click.version_option(package_name="circuitdb")
def main(debug: bool, wait: float) -> None:
    """A graph catalog of transformer circuits: import, compare, export."""


@main.command()
@store_option
def init(store: str | None) -> None:
    """Create the catalog schema (idempotent)."""
    with open_catalog(store) as catalog:
        result = catalog.init()
    click.echo(f"{result.what}, {result.count} runs")


@main.command("from-kuzu")
@click.argument("old", type=click.Path(dir_okay=False, path_type=Path))
@store_option
def from_kuzu(old: Path, store: str | None) -> None:
    """Copy a catalog Kuzu 0.11.3 wrote (circuitdb before ladybug) into a new embedded catalog (needs
    pip install 'circuitdb[kuzu]')."""
    with open_catalog(store) as catalog:
        result = catalog.from_kuzu(old)
    rows = result.facts["rows"]
    click.echo(f"{result.what}: {result.count} runs, {rows['Edge']} edges, {rows['Component']} components, "
               f"{rows['RELATES']} feature relations, {rows['SteeringVector']} steering vectors")


def echo_runs(verb: str, runs: Runs) -> None:
    for info in runs:
        click.echo(f"{verb} {info.id}  {label_of(info)}  {info.n_nodes} nodes, {info.n_edges} edges")


@main.group("import")
def import_() -> None:
    """Import circuits from files of other tools or circuitdb's own export."""


def _with(options: list[Callable]) -> Callable:
    """A decorator applying click `options` in the order listed (as stacked decorators would read)."""

    def decorate(f: Callable) -> Callable:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


CUT_OPTIONS = [
    click.option("--top-n", type=AT_LEAST_1, help="Keep the N highest-ranked edges (components when none are scored)."),
    click.option("--fraction", type=float, help="Keep this fraction of them, in (0, 1]."),
    click.option("--min-score", type=float, help="Keep those scoring at least this."),
    click.option("--signed", is_flag=True, help="Rank by signed score instead of |score|."),
]


def _import_command(kind: str, doc: str, model: bool | None, threshold: bool | None, cut: bool) -> None:
    """`import KIND PATH`: one command per format, all calling `Catalog.import_file`; `model` says whether --model and
    --task are required (None: no such options), `threshold` whether --threshold is (None: none), `cut` whether the
    file has scores to cut a circuit from at once."""
    options = [click.argument("path", type=PATH), store_option]
    if model is not None:
        options += [click.option("--model", required=model, help="Model the circuit was found in."),
                    click.option("--task", required=model, help="Task name."),
                    click.option("--method", default=IMPORT_METHODS[kind], show_default=True)]
    if threshold is not None:
        options.append(click.option("--threshold", type=float, required=threshold, default=None,
                                    help="Performance threshold of the circuit, in (0, 1]." + (
                                        "" if threshold else " Give it if the graph was cut at one.")))
    if kind == "seqcont":
        options.append(click.option("--ablation", default="mean", show_default=True))
    options += CUT_OPTIONS if cut else []

    def command(path: Path, store: str | None, signed: bool = False, **meta: Any) -> None:
        with open_catalog(store) as catalog:
            echo_runs("imported", catalog.import_file(kind, path, **meta, **({"absolute": False} if signed else {})))

    command.__doc__ = doc
    import_.command(kind)(_with(options)(command))


_import_command("seqcont", 'A seqcont result file {"heads": [[layer, head], ...], "mlps": [layer, ...]}.', True, True,
                False)
_import_command("eap-ig", "An EAP-IG graph (Graph.to_json .json or to_pt .pt): in-graph nodes and edges are the circuit, "
                "every score is kept.", True, False, True)
_import_command("mib", "A MIB circuit-track submission: {task}_{model} folders of one score file or up to 9 circuits.",
                False, None, True)
_import_command("auto-circuit", "auto-circuit PruneScores (torch.save of {dest module: scores}): every edge's score.",
                True, None, True)
_import_command("acdc", "An ACDC subgraph (save_subgraph .pth) or edge list with effect sizes (save_edges pickle).",
                True, False, True)
_import_command("circuit-tracer", "A circuit-tracer / Neuronpedia attribution graph JSON: features, errors, tokens "
                "and logits per position, with link weights.", True, None, True)
_import_command("json", "circuitdb's own export (`circuitdb export -o runs.json`).", None, None, False)


@main.command()
@selection_options
@store_option
@output_options
def runs(store: str | None, fmt: str | None, **kw: Any) -> None:
    """List runs (id, model, task, method, threshold, faithfulness, sizes)."""
    with open_catalog(store, read_only=True) as catalog:
        render(catalog.runs(selection(**kw)), fmt)


@main.command()
@click.argument("run_id")
@_with(CUT_OPTIONS)
@store_option
def cut(run_id: str, top_n: int | None, fraction: float | None, min_score: float | None, signed: bool,
        store: str | None) -> None:
    """Cut a circuit from a run's stored score list and write it as its own run, linked to RUN_ID."""
    with open_catalog(store) as catalog:
        echo_runs("cut", catalog.cut(run_id, top_n, fraction, min_score, absolute=not signed))


@main.command()
@click.argument("run_id")
@store_option
@output_options
def show(run_id: str, store: str | None, fmt: str | None) -> None:
    """One run: provenance, members with scores, edges with weights."""
    with open_catalog(store, read_only=True) as catalog:
        render(catalog.show(run_id), fmt)


@main.command()
@click.argument("run_id")
@click.option("--top", type=AT_LEAST_1, default=200, show_default=True, help="The N strongest edges (by |weight|).")
@click.option("--min-weight", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Only edges with |weight| at least this.")
@store_option
@output_options
def subgraph(run_id: str, top: int, min_weight: float, store: str | None, fmt: str | None) -> None:
    """A run's N strongest edges and members (cut in the store: a large run sends only those)."""
    with open_catalog(store, read_only=True) as catalog:
        render(catalog.subgraph(run_id, top, min_weight), fmt)


@main.command()
@click.argument("run_id")
@click.argument("name")
@click.option("--top", type=AT_LEAST_1, default=50, show_default=True, help="The N strongest edges each way.")
@store_option
@output_options
def component(run_id: str, name: str, top: int, store: str | None, fmt: str | None) -> None:
    """One component of a run: its score, its edges in and out, and every run that includes it."""
    with open_catalog(store, read_only=True) as catalog:
        render(catalog.component(run_id, name, top), fmt)


@main.command()
@store_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (this machine only by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port (0: any free one).")
def serve(store: str | None, host: str, port: int) -> None:
    """A read-only web view of the catalog in a browser (runs, circuits, comparisons, ladders, features)."""
    from circuitdb.serve import serve

    serve(store, host, port, wait_seconds())


@main.command()
@selection_options
@click.option("--edges", is_flag=True, help="Shared edges instead of components.")
@click.option("--by-position/--by-name", default=True,
              help="Components are the same by name and token position (default), or by name alone.")
@store_option
@output_options
def shared(store: str | None, fmt: str | None, edges: bool, by_position: bool, **kw: Any) -> None:
    """Components (or edges) present in every selected run."""
    with open_catalog(store, read_only=True) as catalog:
        render(catalog.shared(selection(**kw), edges, by_position), fmt)


@main.command()
@selection_options
@click.option("--edges", is_flag=True, help="Regions of edges instead of components.")
@click.option("-o", "--output", "plot", type=PATH, help="Venn/UpSet plot (.png/.svg).")
@click.option("--by-position/--by-name", default=True,
              help="Components are the same by name and token position (default), or by name alone.")
@store_option
@output_options
def venn(store: str | None, fmt: str | None, edges: bool, plot: Path | None, by_position: bool, **kw: Any) -> None:
    """Venn regions (count and members) of 2-4 runs; an UpSet table for more."""
    with open_catalog(store, read_only=True) as catalog:
        render(catalog.venn(selection(**kw), edges, plot, by_position), fmt)


@main.command()
@selection_options
@click.option("--edges", is_flag=True, help="Diff edges instead of components.")
@click.option("--by-position/--by-name", default=True,
              help="Components are the same by name and token position (default), or by name alone.")
@store_option
@output_options
def diff(store: str | None, fmt: str | None, edges: bool, by_position: bool, **kw: Any) -> None:
    """Only in A, only in B, in both (A and B are the two selected runs, in the order given)."""
    with open_catalog(store, read_only=True) as catalog:
        render(catalog.diff(selection(**kw), edges, by_position), fmt)


@main.command()
@selection_options
@click.option("--edges", is_flag=True, help="Jaccard of edge sets instead of component sets.")
@click.option("--weighted", is_flag=True, help="Weighted Jaccard: sum of min |score| / sum of max |score|.")
@click.option("-o", "--output", "plot", type=PATH, help="Heatmap (.png/.svg).")
@click.option("--by-position/--by-name", default=True,
              help="Components are the same by name and token position (default), or by name alone.")
@store_option
@output_options
def similarity(store: str | None, fmt: str | None, edges: bool, weighted: bool, plot: Path | None, by_position: bool,
               **kw: Any) -> None:
    """Jaccard similarity matrix over the selected runs (all runs when nothing is selected)."""
    with open_catalog(store, read_only=True) as catalog:
        render(catalog.similarity(selection(**kw), edges, weighted, plot, by_position), fmt)


@main.command()
@selection_options
@click.option("-o", "--output", "plot", type=PATH, help="The curves in one plot (.png/.svg/.pdf).")
@store_option
@output_options
def curve(store: str | None, fmt: str | None, plot: Path | None, **kw: Any) -> None:
    """Faithfulness at 0.1 ... 100 % of each selected run's ranked edges, with CPR and CMD (MIB)."""
    with open_catalog(store, read_only=True) as catalog:
        render(catalog.curve(selection(**kw), plot), fmt)


@main.command()
@click.option("--model", required=True)
@click.option("--task", required=True)
@click.option("--method", "methods", multiple=True, help="Only runs of this method (repeatable).")
@store_option
@output_options
def ladder(model: str, task: str, methods: tuple[str, ...], store: str | None, fmt: str | None) -> None:
    """Circuit size and members per threshold of one model x task, and how each nests in the stricter one."""
    with open_catalog(store, read_only=True) as catalog:
        render(catalog.ladder(model, task, methods), fmt)


@main.command()
@selection_options
@click.option("-o", "--output", "path", required=True, type=PATH,
              help=".dot/.gv/.svg/.png/.pdf picture (1-3 runs), .json runs (circuitdb format), .csv memberships.")
@click.option("--only-shared", is_flag=True, help="Picture only what all selected runs share.")
@click.option("--top", type=AT_LEAST_1, default=None, help="Picture only each run's N strongest components (by |score|).")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default=None,
              help="Another tool's format: eap-ig (one run: EAP-IG's full-graph JSON), mib (a submission folder), "
              "neuronpedia (one run: an attribution graph).")
@store_option
def export(store: str | None, path: Path, only_shared: bool, top: int | None, fmt: str | None, **kw: Any) -> None:
    """Export the selected runs as a Graphviz picture, circuitdb JSON, a CSV table, or another tool's format."""
    with open_catalog(store, read_only=True) as catalog:
        result = catalog.export(selection(**kw), path, only_shared, top, fmt)
    click.echo(f"{result.what} ({result.count} runs)")


def parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    """`NAME=VALUE` pairs; a value is JSON when it parses as JSON, else the string itself."""
    values: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise CircuitdbError(f"--param {item!r}: expected NAME=VALUE")
        try:
            values[name] = json.loads(raw)
        except json.JSONDecodeError:
            values[name] = raw
    return values


@main.command()
@click.argument("cypher")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Cypher parameter (JSON or string).")
@click.option("--timeout", default=30.0, show_default=True, help="Stop the query after this many seconds.")
@store_option
@output_options
def query(cypher: str, params: tuple[str, ...], timeout: float, store: str | None, fmt: str | None) -> None:
    """Run one read-only Cypher statement: writes, files, extensions and settings are refused."""
    with open_catalog(store, read_only=True) as catalog:
        render(catalog.query(cypher, parse_params(params), timeout), fmt)


@main.command()
@click.argument("run_id")
@store_option
def delete(run_id: str, store: str | None) -> None:
    """Remove one run (its memberships and edges; shared components stay)."""
    with open_catalog(store, create=False) as catalog:
        info = catalog.delete(run_id)
    click.echo(f"deleted {info.id}")


def _job_options(f: Callable) -> Callable:
    for option in reversed([
        click.option("--method", "methods", multiple=True, default=("prune",), show_default=True,
                     help="prune (iterative node pruning); path, eap, eap-ig (rank every edge of the full graph by "
                          "path patching, EAP, EAP-IG; keep the fewest whose edge circuit holds)."),
        click.option("--edges", default="path", show_default=True,
                     help="How pruned circuits rank their edges (path, eap, eap-ig) before keeping the fewest whose edge "
                          "circuit holds, or none."),
        click.option("--ablation", default="mean", show_default=True,
                     help="The one intervention for nodes and edges: mean, zero, resample (over corrupted prompts) or "
                          "patch (each prompt's own corrupted run)."),
        click.option("--metric", default="logit_diff", show_default=True,
                     help="What performance measures: logit_diff (answer - distractor), prob (p(answer)) or kl (1 - "
                          "KL(full || circuit) / KL(full || empty circuit))."),
        click.option("--means", default="pooled", show_default=True,
                     help="Mean ablation over all corrupted prompts (pooled) or over each prompt's template "
                          "(per-template; runs record ablation mean-per-template)."),
        click.option("--direction", default="noising", show_default=True,
                     help="noising (the circuit runs on clean prompts, the rest at its reference) or denoising (the "
                          "circuit's nodes restored into each prompt's corrupted run; --ablation patch, --edges none)."),
        click.option("--prompts", "n_prompts", type=PROMPTS, default=64, show_default=True,
                     help="Prompts per task before filtering."),
        click.option("--seed", default=0, show_default=True),
        click.option("--nested/--no-nested", default=True, show_default=True,
                     help="Prune each lower threshold starting from the stricter threshold's circuit."),
        click.option("--ig-steps", type=AT_LEAST_1, default=None, help="Integration steps of EAP-IG (default 5)."),
        click.option("--signed", is_flag=True, help="Rank edges by signed score instead of |score|."),
        click.option("--robust", type=AT_LEAST_0, default=0, show_default=True,
                     help="Also prune over K random orders; record survival."),
        click.option("--device", default="cpu", show_default=True),
        store_option,
    ]):
        f = option(f)
    return f


@main.command()
@click.option("--model", required=True, help=MODEL_HELP)
@click.option("--task", "tasks", multiple=True, required=True, help="Built-in task (digits, numwords, months, days, "
              "greater_than; options :bare :down :repeatLast :switchLast) or a .yaml/.jsonl task file.")
@click.option("--threshold", "thresholds", multiple=True, type=float, required=True, help="Performance threshold in (0, 1].")
@_job_options
def discover(model: str, tasks: tuple[str, ...], thresholds: tuple[float, ...], store: str | None, **kw: Any) -> None:
    """Find circuits per task and threshold and write each run into the catalog as soon as it is done."""
    from circuitdb.progress import RichReporter

    with open_catalog(store) as catalog, RichReporter() as reporter:
        written = catalog.discover(model, list(tasks), list(thresholds), reporter, **kw)
    click.echo(f"{len(written)} runs written")


@main.command()
@selection_options
@click.option("--on", "on_tasks", multiple=True, required=True, help="Task whose data scores the circuits (repeatable).")
@click.option("--prompts", "n_prompts", type=PROMPTS, default=64, show_default=True, help="Prompts per task before filtering.")
@click.option("--seed", default=0, show_default=True)
@click.option("--save", is_flag=True, help="Record the scores as EVALUATED_ON in the catalog.")
@click.option("--device", default="cpu", show_default=True)
@store_option
@output_options
def evaluate(store: str | None, fmt: str | None, on_tasks: tuple[str, ...], n_prompts: int, seed: int, save: bool,
             device: str, **kw: Any) -> None:
    """Score the selected circuits on other tasks' data (performance = LD(circuit) / LD(model) there)."""
    from circuitdb.progress import RichReporter

    with open_catalog(store, read_only=not save) as catalog, RichReporter() as reporter:
        result = catalog.evaluate(selection(**kw), list(on_tasks), n_prompts, seed, device, save, reporter)
    render(result, fmt)


@main.command()
@selection_options
@click.option("--prompts", "n_prompts", type=PROMPTS, default=64, show_default=True, help="Prompts before filtering.")
@click.option("--seed", default=0, show_default=True)
@click.option("--intervention", default="patch", show_default=True,
              help="How removed edges are replaced: patch (corrupted prompts' activations, as EAP-IG and MIB), mean, zero.")
@click.option("--device", default="cpu", show_default=True)
@store_option
def measure(store: str | None, n_prompts: int, seed: int, intervention: str, device: str, **kw: Any) -> None:
    """Measure imported score lists on their model and task: faithfulness curve, CPR, CMD (then `curve` draws it)."""
    from circuitdb.progress import RichReporter

    with open_catalog(store) as catalog, RichReporter() as reporter:
        echo_runs("measured", catalog.measure(selection(**kw), n_prompts, seed, device, intervention, reporter))


@main.command()
@click.argument("path", type=PATH)
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: in this process; ray: each (model, task, method) ladder a Ray task on a cluster.")
@click.option("--address", default=None, help="The Ray cluster to join (e.g. auto, or HOST:6379); default: start a "
              "local one.")
@store_option
def sweep(path: Path, executor: str, address: str | None, store: str | None) -> None:
    """Run a sweep file (YAML: models, tasks, thresholds, methods and any `discover` option); stored runs are skipped."""
    from circuitdb.catalog import sweep
    from circuitdb.progress import RichReporter

    with RichReporter() as reporter:
        written = sweep(path, store, reporter, wait_seconds(), executor, address)
    click.echo(f"{len(written)} runs written")


@main.group()
def toy() -> None:
    """The shipped toy sequence-continuation model."""


@toy.command("train")
@click.option("--seed", default=0, show_default=True)
@click.option("--steps", type=AT_LEAST_1, default=None, help="Train exactly this many steps (default: until held-out prompts "
              "are all right).")
@click.option("-o", "--output", "path", type=PATH, default=None, help="Checkpoint path (default: the shipped one).")
def toy_train(seed: int, steps: int | None, path: Path | None) -> None:
    """Retrain the toy model from scratch (deterministic for a seed) and save the checkpoint."""
    from circuitdb.discovery.toy import train_and_save
    from circuitdb.progress import RichReporter

    with RichReporter() as reporter:
        path, report = train_and_save(seed, path, reporter, steps)
    click.echo(f"wrote {path}: held-out accuracy {report['heldout_accuracy']:.1%} after {report['steps']} steps "
               f"({report['seconds']:.0f} s)")


@toy.command("train-sae")
@click.option("--model", default="toy", show_default=True, help="toy, or a toy checkpoint NAME.pt.")
@click.option("--seed", default=0, show_default=True)
@click.option("--steps", type=AT_LEAST_1, default=6000, show_default=True, help="Training steps of each SAE.")
@click.option("-o", "--output", "path", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the SAEs (default: the shipped ones).")
def toy_train_sae(model: str, seed: int, steps: int, path: Path | None) -> None:
    """Retrain the toy SAEs (residual stream entering blocks 2 and 3) from scratch; print FVU and dead features."""
    from circuitdb.discovery.sae import train_and_save_saes
    from circuitdb.progress import RichReporter

    with RichReporter() as reporter:
        reports = train_and_save_saes(model, seed, path, reporter, steps)
    for r in reports:
        click.echo(f"wrote {r['folder']}: FVU {r['fvu']:.3f}, dead {r['dead_fraction']:.1%}, "
                   f"L0 {r['l0']:.1f}, {r['seconds']:.0f} s")


def _register() -> None:
    """The feature and steering command groups live in their own module."""
    from circuitdb.feature_cli import features, steer

    main.add_command(features)
    main.add_command(steer)


_register()
