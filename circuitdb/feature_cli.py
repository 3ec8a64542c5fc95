"""`circuitdb features ...` and `circuitdb steer ...`: each command calls `Catalog.features_<command>` or
`Catalog.steer_<command>` and renders the result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from circuitdb.cli_common import (
    AT_LEAST_0,
    AT_LEAST_1,
    MODEL_HELP,
    PROMPTS,
    open_catalog,
    output_options,
    render,
    selection,
    selection_options,
    store_option,
)

SAE_HELP = "SAE dictionary: toy:resid2, a local SAELens folder, or RELEASE/SAE_ID; NAME=SPEC renames it (repeatable)."
PROMPTS_HELP = ("A task (digits, months:bare, a .yaml/.jsonl task file) whose clean prompts are used, or a .txt file, "
                "one prompt a line.")
PATH = click.Path(dir_okay=False, path_type=Path)


@click.group()
def features() -> None:
    """SAE features: discover feature circuits, relate features, match them across models."""


@features.command("discover")
@click.option("--model", required=True, help=MODEL_HELP)
@click.option("--sae", "saes", multiple=True, required=True, help=SAE_HELP)
@click.option("--task", "tasks", multiple=True, required=True, help="Task (as for `discover`), repeatable.")
@click.option("--threshold", "thresholds", multiple=True, type=float, required=True, help="Performance threshold in (0, 1].")
@click.option("--top-k", type=AT_LEAST_1, default=None, help="At most this many features (and error nodes) per circuit.")
@click.option("--node-threshold", type=float, default=None,
              help="Only features whose attribution is at least this fraction of the full logit difference.")
@click.option("--min-edge", default=0.005, show_default=True, help="Keep feature edges with |weight| >= this fraction of the LD.")
@click.option("--ig-steps", type=AT_LEAST_1, default=None,
              help="Integration steps of node attribution (default 10, as Marks et al.; 1: plain attribution patching).")
@click.option("--check-top", type=AT_LEAST_0, default=20, show_default=True,
              help="Ablate the circuit's N strongest nodes exactly and record their rank agreement with attribution.")
@click.option("--ablation", default="mean", show_default=True,
              help="mean, zero, resample (over corrupted prompts) or patch (each prompt's own corrupted run).")
@click.option("--means", default="pooled", show_default=True, help="pooled or per-template (mean ablation only).")
@click.option("--prompts", "n_prompts", type=PROMPTS, default=64, show_default=True, help="Prompts per task before filtering.")
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@store_option
def features_discover(store: str | None, model: str, saes: tuple[str, ...], tasks: tuple[str, ...],
                      thresholds: tuple[float, ...], **kw: Any) -> None:
    """Feature circuits per task and threshold (attribution through the SAEs, checked by exact ablation), written as runs."""
    from circuitdb.progress import RichReporter

    with open_catalog(store) as catalog, RichReporter() as reporter:
        written = catalog.features_discover(model, list(saes), list(tasks), list(thresholds), reporter, **kw)
    click.echo(f"{len(written)} feature runs written")


@features.command("cosine")
@click.option("--model", required=True)
@click.option("--sae", "saes", multiple=True, required=True, help=SAE_HELP)
@click.option("--cutoff", default=0.5, show_default=True, help="Keep pairs with |decoder cosine| >= this.")
@click.option("--top", type=AT_LEAST_1, default=5, show_default=True,
              help="At most this many partners per feature and dictionary pair.")
@store_option
def features_cosine(model: str, saes: tuple[str, ...], cutoff: float, top: int, store: str | None) -> None:
    """Store decoder-direction cosine relations within and across the model's dictionaries."""
    with open_catalog(store) as catalog:
        result = catalog.features_cosine(model, list(saes), cutoff, top)
    click.echo(f"{result.count} {result.what}")


@features.command("match")
@click.option("--model", "models", multiple=True, required=True, help="Model A, then model B.")
@click.option("--sae", "saes", multiple=True, required=True, help="Model A's dictionary, then model B's. " + SAE_HELP)
@click.option("--prompts", "sources", multiple=True, required=True, help=PROMPTS_HELP + " Repeatable.")
@click.option("--min-score", default=0.0, show_default=True, help="Store matches with correlation >= this.")
@click.option("--top", type=AT_LEAST_0, default=10, show_default=True, help="Rows to print (all with --json/--csv).")
@store_option
@output_options
def features_match(models: tuple[str, ...], saes: tuple[str, ...], sources: tuple[str, ...], min_score: float, top: int,
                   store: str | None, fmt: str | None) -> None:
    """Match each feature of model A to its best-correlated feature of model B on the same prompts; store the matches."""
    with open_catalog(store) as catalog:
        result = catalog.features_match(list(models), list(saes), list(sources), min_score)
    if fmt is None:
        result.rows = result.rows.head(top)
    render(result, fmt)


@features.command("list")
@click.option("--model", default=None, help="Only this model's features.")
@click.option("--limit", type=AT_LEAST_1, default=200, show_default=True, help="At most this many, most runs first.")
@store_option
@output_options
def features_list(model: str | None, limit: int, store: str | None, fmt: str | None) -> None:
    """The catalog's SAE features, with how many runs include each and how many relations each has."""
    with open_catalog(store, read_only=True) as catalog:
        render(catalog.features_list(model, limit), fmt)


@features.command("related")
@click.argument("feature")
@click.option("--model", default=None, help="Model of FEATURE, when its name alone is ambiguous.")
@click.option("--kind", "kinds", multiple=True, help="Only these relation kinds (cosine, match, co-member).")
@click.option("--min-weight", default=0.0, show_default=True, help="Only relations with |weight| >= this.")
@click.option("--limit", type=AT_LEAST_1, default=20, show_default=True, help="Strongest relations per kind.")
@click.option("-o", "--output", "plot", type=PATH, help="Graphviz picture (.dot/.png/.svg).")
@store_option
@output_options
def features_related(feature: str, model: str | None, kinds: tuple[str, ...], min_weight: float, limit: int,
                     plot: Path | None, store: str | None, fmt: str | None) -> None:
    """A feature's relations: decoder cosine, cross-model matches, and co-membership in circuits."""
    with open_catalog(store, read_only=True) as catalog:
        render(catalog.features_related(feature, model, kinds, min_weight, limit, plot), fmt)


@features.command("across")
@selection_options
@click.option("--to-model", default=None, help="Model B (default: model A, e.g. with another dictionary).")
@click.option("--to-method", default=None, help="Method of B's runs, e.g. sae-attr:resid2 (default: any).")
@store_option
@output_options
def features_across(store: str | None, fmt: str | None, to_model: str | None, to_method: str | None, **kw: Any) -> None:
    """Features shared by the selected runs (model A), their matches in model B, and whether B's runs for the same
    tasks and thresholds share the matches too."""
    with open_catalog(store, read_only=True) as catalog:
        render(catalog.features_across(selection(**kw), to_model, to_method), fmt)


@click.group()
def steer() -> None:
    """Steering vectors: build from two prompt sets, decompose into SAE features, measure downstream effects."""


def _vector_options(f: Callable) -> Callable:
    """NAME, --model and --store, which every `steer` command takes."""
    for option in reversed([click.argument("name"), click.option("--model", required=True, help="The vector's model."),
                            store_option]):
        f = option(f)
    return f


@steer.command("build")
@_vector_options
@click.option("--layer", required=True, type=AT_LEAST_0, help="Residual stream entering this block.")
@click.option("--plus", required=True, help=PROMPTS_HELP)
@click.option("--minus", required=True, help=PROMPTS_HELP)
@click.option("--description", default="", help="What the vector is meant to do.")
@click.option("--prompts", "n_prompts", type=PROMPTS, default=64, show_default=True, help="Prompts per task source.")
@click.option("--seed", default=0, show_default=True)
def steer_build(name: str, model: str, store: str | None, **kw: Any) -> None:
    """mean(PLUS) - mean(MINUS) at the last position of the residual stream entering LAYER; stored as a node."""
    with open_catalog(store) as catalog:
        click.echo(catalog.steer_build(name, model, **kw).what)


@steer.command("decompose")
@_vector_options
@click.option("--sae", required=True, help="Dictionary at the vector's layer. " + SAE_HELP)
@click.option("--top-k", type=AT_LEAST_1, default=8, show_default=True, help="Features in the sparse fit.")
@output_options
def steer_decompose(name: str, model: str, store: str | None, sae: str, top_k: int, fmt: str | None) -> None:
    """Decompose the vector into SAE features (k-sparse OMP fit and the encoder's read-out); store DECOMPOSES_INTO."""
    with open_catalog(store, create=False) as catalog:
        render(catalog.steer_decompose(name, model, sae, top_k), fmt)


@steer.command("effects")
@_vector_options
@click.option("--sae", "saes", multiple=True, required=True, help="Dictionaries after the vector's layer. " + SAE_HELP)
@click.option("--on", required=True, help="Prompts to steer. " + PROMPTS_HELP)
@click.option("--coef", default=1.0, show_default=True, help="Add coef x vector at every position.")
@click.option("--top", type=AT_LEAST_1, default=10, show_default=True, help="Shifted features stored per dictionary.")
@click.option("--prompts", "n_prompts", type=PROMPTS, default=64, show_default=True)
@click.option("--seed", default=0, show_default=True)
@output_options
def steer_effects(name: str, model: str, store: str | None, saes: tuple[str, ...], fmt: str | None, **kw: Any) -> None:
    """Add the vector and measure which later features change (mean at the last position); store SHIFTS."""
    with open_catalog(store, create=False) as catalog:
        render(catalog.steer_effects(name, model, list(saes), **kw), fmt)


@steer.command("show")
@_vector_options
@output_options
def steer_show(name: str, model: str, store: str | None, fmt: str | None) -> None:
    """A stored steering vector with its decomposition and shifts."""
    with open_catalog(store, read_only=True) as catalog:
        render(catalog.steer_show(name, model), fmt)


@steer.command("list")
@store_option
@output_options
def steer_list(store: str | None, fmt: str | None) -> None:
    """All stored steering vectors."""
    with open_catalog(store, read_only=True) as catalog:
        render(catalog.steer_list(), fmt)
