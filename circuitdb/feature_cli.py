"""`circuitdb features ...` and `circuitdb steer ...`: SAE feature circuits, feature relations and steering vectors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pandas as pd

from circuitdb.catalog import Catalog
from circuitdb.cli_common import emit, existing_run, json_option, print_frame, selection, selection_options, store_option
from circuitdb.domain import SteeringVector
from circuitdb.queries.selection import Selection

SAE_HELP = "SAE dictionary: toy:resid2, a local SAELens folder, or RELEASE/SAE_ID; NAME=SPEC renames it (repeatable)."
PROMPTS_HELP = ("A task (digits, months:bare, a .yaml/.jsonl task file) whose clean prompts are used, or a .txt file, "
                "one prompt a line.")


@click.group()
def features() -> None:
    """SAE features: discover feature circuits, relate features, match them across models."""


@features.command("discover")
@click.option("--model", required=True, help="toy, a local Hugging Face model folder, or a TransformerLens name.")
@click.option("--sae", "saes", multiple=True, required=True, help=SAE_HELP)
@click.option("--task", "tasks", multiple=True, required=True, help="Task (as for `discover`), repeatable.")
@click.option("--threshold", "thresholds", multiple=True, type=float, required=True, help="Performance threshold in (0, 1].")
@click.option("--top-k", type=int, default=None, help="At most this many features (and error nodes) per circuit.")
@click.option("--node-threshold", type=float, default=None,
              help="Only features whose attribution is at least this fraction of the full logit difference.")
@click.option("--min-edge", default=0.005, show_default=True, help="Keep feature edges with |weight| >= this fraction of the LD.")
@click.option("--check-top", default=20, show_default=True,
              help="Ablate the circuit's N strongest nodes exactly and record their rank agreement with attribution.")
@click.option("--ablation", default="mean", show_default=True, help="mean, zero or resample (over corrupted prompts).")
@click.option("--prompts", "n_prompts", default=64, show_default=True, help="Prompts per task before filtering.")
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@store_option
def features_discover(store: str | None, saes: tuple[str, ...], tasks: tuple[str, ...], thresholds: tuple[float, ...],
                      **kw: Any) -> None:
    """Feature circuits per task and threshold (attribution through the SAEs, checked by exact ablation), written as runs."""
    from circuitdb.discovery.jobs import JobSpec, discover
    from circuitdb.progress import RichReporter

    spec = JobSpec(methods=["sae-attr"], saes=list(saes), tasks=list(tasks), thresholds=list(thresholds), **kw).check()
    with Catalog(store) as catalog, RichReporter() as reporter:
        runs = discover(spec, on_run=catalog.add, existing=existing_run(catalog), reporter=reporter)
    click.echo(f"{len(runs)} feature runs written")


@features.command("cosine")
@click.option("--model", required=True)
@click.option("--sae", "saes", multiple=True, required=True, help=SAE_HELP)
@click.option("--cutoff", default=0.5, show_default=True, help="Keep pairs with |decoder cosine| >= this.")
@click.option("--top", default=5, show_default=True, help="At most this many partners per feature and dictionary pair.")
@store_option
def features_cosine(model: str, saes: tuple[str, ...], cutoff: float, top: int, store: str | None) -> None:
    """Store decoder-direction cosine relations within and across the model's dictionaries."""
    from circuitdb.discovery.models import load_model
    from circuitdb.discovery.relations import cosine_relations
    from circuitdb.discovery.sae import load_dictionary

    lm = load_model(model)
    relations = cosine_relations(lm.name, [load_dictionary(s, lm) for s in saes], cutoff, top)
    with Catalog(store) as catalog:
        n = catalog.add_relations(relations)
    click.echo(f"{n} cosine relations written (|cos| >= {cutoff:g})")


@features.command("match")
@click.option("--model", "models", multiple=True, required=True, help="Model A, then model B.")
@click.option("--sae", "saes", multiple=True, required=True, help="Model A's dictionary, then model B's. " + SAE_HELP)
@click.option("--prompts", "sources", multiple=True, required=True, help=PROMPTS_HELP + " Repeatable.")
@click.option("--min-score", default=0.0, show_default=True, help="Store matches with correlation >= this.")
@click.option("--top", default=10, show_default=True, help="Rows to print.")
@store_option
@json_option
def features_match(models: tuple[str, ...], saes: tuple[str, ...], sources: tuple[str, ...], min_score: float, top: int,
                   store: str | None, as_json: bool) -> None:
    """Match each feature of model A to its best-correlated feature of model B on the same prompts; store the matches."""
    from circuitdb.discovery.models import load_model
    from circuitdb.discovery.relations import match_on_prompts
    from circuitdb.discovery.sae import load_dictionary

    if len(models) != 2 or len(saes) != 2:
        raise click.UsageError("give exactly two --model and two --sae (A's, then B's)")
    lms = [load_model(m) for m in models]
    dicts = [load_dictionary(s, lm) for s, lm in zip(saes, lms)]
    if lms[0].name == lms[1].name and dicts[0].name == dicts[1].name:
        raise click.UsageError("matching a dictionary with itself: name one of them, e.g. --sae copy=PATH")
    relations = match_on_prompts(lms[0], dicts[0], lms[1], dicts[1], list(sources), min_score)
    with Catalog(store) as catalog:
        catalog.add_relations(relations)
    frame = pd.DataFrame([{"feature": r.sender, "match": r.receiver, "correlation": r.weight} for r in relations],
                         columns=["feature", "match", "correlation"])
    frame = frame.sort_values(["correlation", "feature"], ascending=[False, True]).reset_index(drop=True)
    summary = {"model_a": lms[0].name, "model_b": lms[1].name, "matched": len(frame),
               "mean_correlation": round(float(frame["correlation"].mean()), 6) if len(frame) else None,
               "matches": frame.to_dict("records")}
    title = (f"{len(frame)} features of {lms[0].name}:{dicts[0].name} matched in {lms[1].name}:{dicts[1].name} "
             f"(mean r {summary['mean_correlation']})")
    emit(summary, as_json, lambda: print_frame(frame.head(top), title))


@features.command("related")
@click.argument("feature")
@click.option("--model", default=None, help="Model of FEATURE, when its name alone is ambiguous.")
@click.option("--kind", "kinds", multiple=True, help="Only these relation kinds (cosine, match, co-member).")
@click.option("--min-weight", default=0.0, show_default=True, help="Only relations with |weight| >= this.")
@click.option("--limit", default=20, show_default=True, help="Strongest relations per kind.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Graphviz picture (.dot/.png/.svg).")
@store_option
@json_option
def features_related(feature: str, model: str | None, kinds: tuple[str, ...], min_weight: float, limit: int,
                     output: Path | None, store: str | None, as_json: bool) -> None:
    """A feature's relations: decoder cosine, cross-model matches, and co-membership in circuits."""
    from circuitdb.analysis.circuit_graph import relation_dot, write_picture

    with Catalog(store, create=False) as catalog:
        frame = catalog.related(feature, model, min_weight, limit)
        center = catalog.resolve_component(feature, model)
    if kinds:
        frame = frame[frame["kind"].isin(kinds)].reset_index(drop=True)
    if output:
        write_picture(relation_dot(center, frame.to_dict("records")), output)
    emit({"feature": center, "relations": frame.to_dict("records")}, as_json,
         lambda: print_frame(frame, f"relations of {center}"))


@features.command("across")
@selection_options
@click.option("--to-model", default=None, help="Model B (default: model A, e.g. with another dictionary).")
@click.option("--to-method", default=None, help="Method of B's runs, e.g. sae-attr:resid2 (default: any).")
@store_option
@json_option
def features_across(store: str | None, as_json: bool, to_model: str | None, to_method: str | None, **kw: Any) -> None:
    """Features shared by the selected runs (model A), their matches in model B, and whether B's runs for the same
    tasks and thresholds share the matches too."""
    sel_a = selection(**kw)
    if to_model is None and len(sel_a.models) != 1:
        raise click.UsageError("give one --model for A, or --to-model")
    sel_b = Selection(models=(to_model or sel_a.models[0],), tasks=sel_a.tasks, thresholds=sel_a.thresholds,
                      methods=(to_method,) if to_method else ())
    with Catalog(store, create=False) as catalog:
        frame = catalog.across(sel_a, sel_b)
    kept = int(frame["match_shared"].sum())
    summary = {"shared_in_a": len(frame), "matched": int(frame["match"].notna().sum()), "shared_in_b": kept,
               "features": frame.to_dict("records")}
    emit(summary, as_json, lambda: print_frame(frame, f"{len(frame)} features shared in A; {kept} of their matches "
                                                      f"shared in B"))


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
@click.option("--layer", required=True, type=int, help="Residual stream entering this block.")
@click.option("--plus", required=True, help=PROMPTS_HELP)
@click.option("--minus", required=True, help=PROMPTS_HELP)
@click.option("--description", default="", help="What the vector is meant to do.")
@click.option("--prompts", "n_prompts", default=64, show_default=True, help="Prompts per task source.")
@click.option("--seed", default=0, show_default=True)
def steer_build(name: str, model: str, store: str | None, layer: int, plus: str, minus: str, description: str,
                n_prompts: int, seed: int) -> None:
    """mean(PLUS) - mean(MINUS) at the last position of the residual stream entering LAYER; stored as a node."""
    from circuitdb.discovery.models import load_model
    from circuitdb.discovery.steering import build, prompt_groups

    lm = load_model(model)
    vector = build(lm, layer, prompt_groups(plus, lm, n_prompts, seed), prompt_groups(minus, lm, n_prompts, seed))
    stored = SteeringVector(lm.name, name, layer, vector.tolist(), description or f"{plus} - {minus}")
    with Catalog(store) as catalog:
        catalog.add_steering(stored)
    click.echo(f"wrote steering vector {stored.id}: layer {layer}, norm {stored.norm:.3f}")


def _load_vector(catalog: Catalog, model: str, name: str) -> tuple[Any, Any]:
    """(loaded model, stored vector with its values)."""
    from circuitdb.discovery.models import load_model

    lm = load_model(model)
    return lm, catalog.steering(lm.name, name)


@steer.command("decompose")
@_vector_options
@click.option("--sae", required=True, help="Dictionary at the vector's layer. " + SAE_HELP)
@click.option("--top-k", default=8, show_default=True, help="Features in the sparse fit.")
@json_option
def steer_decompose(name: str, model: str, store: str | None, sae: str, top_k: int, as_json: bool) -> None:
    """Decompose the vector into SAE features (k-sparse OMP fit and the encoder's read-out); store DECOMPOSES_INTO."""
    from circuitdb.discovery.sae import load_dictionary
    from circuitdb.discovery.steering import decompose

    with Catalog(store, create=False) as catalog:
        lm, info = _load_vector(catalog, model, name)
        dictionary = load_dictionary(sae, lm)
        dec = decompose(info.values, info.layer, dictionary, top_k)
        links = [{"name": f"f{dictionary.name}/{i}", "coef": c, "method": "omp"} for i, c in dec.omp.items()]
        links += [{"name": f"f{dictionary.name}/{i}", "coef": c, "method": "encoder"} for i, c in dec.encoder.items()]
        catalog.add_steering(SteeringVector(lm.name, name, info.layer, info.values, info.description), "DECOMPOSES_INTO", links)
    rows = pd.DataFrame(links).rename(columns={"name": "feature"})
    result = {"vector": info.id, "dictionary": dictionary.name, "top_k": top_k, "omp_cosine": round(dec.omp_cosine, 6),
              "encoder_cosine": round(dec.encoder_cosine, 6), "features": rows.to_dict("records")}
    title = (f"{info.id} in {dictionary.name}: reconstruction cosine {dec.omp_cosine:.3f} (OMP, k={top_k}), "
             f"{dec.encoder_cosine:.3f} (encoder top-k)")
    emit(result, as_json, lambda: print_frame(rows, title))


@steer.command("effects")
@_vector_options
@click.option("--sae", "saes", multiple=True, required=True, help="Dictionaries after the vector's layer. " + SAE_HELP)
@click.option("--on", "source", required=True, help="Prompts to steer. " + PROMPTS_HELP)
@click.option("--coef", default=1.0, show_default=True, help="Add coef x vector at every position.")
@click.option("--top", default=10, show_default=True, help="Shifted features stored per dictionary.")
@click.option("--prompts", "n_prompts", default=64, show_default=True)
@click.option("--seed", default=0, show_default=True)
@json_option
def steer_effects(name: str, model: str, store: str | None, saes: tuple[str, ...], source: str, coef: float, top: int,
                  n_prompts: int, seed: int, as_json: bool) -> None:
    """Add the vector and measure which later features change (mean at the last position); store SHIFTS."""
    from circuitdb.discovery.sae import load_dictionary
    from circuitdb.discovery.steering import effects, prompt_groups

    with Catalog(store, create=False) as catalog:
        lm, info = _load_vector(catalog, model, name)
        dictionaries = [load_dictionary(s, lm) for s in saes]
        deltas, tokens = effects(lm, info.values, info.layer, coef, prompt_groups(source, lm, n_prompts, seed), dictionaries, top)
        layers = {d.name: d.layer for d in dictionaries}
        links = []
        for dname, delta in deltas.items():
            for i in delta.abs().topk(min(top, delta.numel())).indices.tolist():
                links.append({"name": f"f{dname}/{i}", "delta": round(delta[i].item(), 6), "layer": layers[dname], "coef": coef})
        catalog.add_steering(SteeringVector(lm.name, name, info.layer, info.values, info.description), "SHIFTS", links)
    rows = pd.DataFrame(links, columns=["name", "layer", "delta", "coef"]).rename(columns={"name": "feature"})
    result = {"vector": info.id, "coef": coef, "on": source, "shifts": rows.to_dict("records"),
              "rising_tokens": [{"token": t, "logit_delta": v} for t, v in tokens]}
    emit(result, as_json, lambda: (print_frame(rows, f"{info.id} x {coef:g} on {source}: feature shifts"),
                                   click.echo("logits rising most: " + ", ".join(f"{t} (+{v:.2f})" for t, v in tokens))))


@steer.command("show")
@_vector_options
@json_option
def steer_show(name: str, model: str, store: str | None, as_json: bool) -> None:
    """A stored steering vector with its decomposition and shifts."""
    with Catalog(store, create=False) as catalog:
        info = catalog.steering(model, name)
    result = {"id": info.id, "layer": info.layer, "description": info.description, "norm": info.norm,
              "decomposition": info.decomposition.to_dict("records"), "shifts": info.shifts.to_dict("records")}
    emit(result, as_json, lambda: (print_frame(info.decomposition, f"{info.id} (layer {info.layer}, norm {info.norm:.3f}): "
                                               f"{info.description}"), print_frame(info.shifts, "shifts")))


@steer.command("list")
@store_option
@json_option
def steer_list(store: str | None, as_json: bool) -> None:
    """All stored steering vectors."""
    with Catalog(store, create=False) as catalog:
        frame = catalog.steering_vectors()
    emit(frame.to_dict("records"), as_json, lambda: print_frame(frame, "steering vectors"))
