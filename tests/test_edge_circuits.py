"""Edge circuits, path patching, EAP and EAP-IG against the independent implementation of `independent.py` (plain
TransformerLens hooks and autograd, TL's own per-head results, a loop per removed edge), compared edge by edge, under
each intervention; a mutation (head outputs filed under the next head) must break every comparison."""

from __future__ import annotations

import random

import pytest
import torch
from independent import Independent
from transformer_lens import HookedTransformer, HookedTransformerConfig

from circuitdb.discovery import edge_circuits, edges
from circuitdb.discovery.edge_circuits import measure_edges
from circuitdb.discovery.edges import eap_scores, path_patch
from circuitdb.discovery.evaluate import Evaluator
from circuitdb.discovery.models import LoadedModel, prepare
from circuitdb.discovery.tasks import TaskData, build_task
from circuitdb.errors import CircuitdbError

torch.set_num_threads(1)
INTERVENTIONS = ("mean", "zero", "patch", "mean-per-template")


@pytest.fixture(scope="module")
def digits(lm):
    return build_task("digits", lm, n_prompts=24)


@pytest.fixture(scope="module")
def evaluators(lm, digits):
    return {i: Evaluator(lm, digits, i) for i in INTERVENTIONS}


@pytest.fixture(scope="module")
def independents(lm, digits):
    return {i: Independent(lm.model, digits, i) for i in INTERVENTIONS}


def random_edge_sets(graph, count: int, seed: int = 0) -> list[set]:
    rng = random.Random(seed)
    keys = [e.key for e in graph.edges]
    return [set(rng.sample(keys, int(len(keys) * share))) for share in (0.05, 0.2, 0.5, 0.8, 0.95)[:count]]


def edge_circuit_gap(ev: Evaluator, independent: Independent) -> float:
    """Largest difference between circuitdb's joint edge evaluator and the independent one over random edge sets."""
    graph = ev.graph
    return max(abs(measure_edges(ev, kept).faithfulness - independent.faithfulness(kept))
               for kept in random_edge_sets(graph, 5))


def path_patching_gap(ev: Evaluator, independent: Independent, names: set[str]) -> float:
    """Largest difference of the two path patchings over 30 of the circuit's edges (seeded sample)."""
    graph = ev.graph
    candidates = random.Random(1).sample(graph.circuit_edges(names), 30)
    ours = path_patch(ev, graph.mask(names), candidates)
    theirs = independent.path_patching(graph, names, [e.key for e in candidates])
    return max(abs(ours[key] - theirs[key]) for key in theirs)


def eap_gap(ev: Evaluator, independent: Independent, ig_steps: int) -> float:
    ours, theirs = eap_scores(ev, ig_steps), independent.eap(ig_steps)
    assert ours.keys() == theirs.keys()
    return max(abs(ours[key] - theirs[key]) for key in theirs)


CIRCUIT = {"a0.h1", "a0.h3", "a1.h0", "a1.h2", "m0", "m1", "a2.h1", "m2", "a3.h0", "a3.h2", "m3"}


@pytest.mark.parametrize("intervention", INTERVENTIONS)
def test_joint_edge_circuits_match_an_independent_evaluator(evaluators, independents, intervention: str) -> None:
    ev, independent = evaluators[intervention], independents[intervention]
    scores = [measure_edges(ev, kept).faithfulness for kept in random_edge_sets(ev.graph, 5)]
    assert edge_circuit_gap(ev, independent) < 1e-4
    assert max(scores) - min(scores) > 0.2  # the edge sets score differently: not a comparison of constants


def test_means_per_template_differ_from_pooled_means(evaluators, digits) -> None:
    """The digits prompts come from three templates, whose means differ: not a relabelled pooled mean."""
    assert len(digits.templates.unique()) == 3
    pooled, grouped = evaluators["mean"].repl.mlp[0], evaluators["mean-per-template"].repl.mlp[0]
    assert grouped.shape[0] == digits.n and (grouped - pooled).abs().max() > 1e-2


@pytest.mark.parametrize("intervention", INTERVENTIONS[:3])
def test_path_patching_matches_an_independent_implementation(evaluators, independents, intervention: str) -> None:
    ev = evaluators[intervention]
    assert path_patching_gap(ev, independents[intervention], CIRCUIT) < 1e-5
    drops = path_patch(ev, ev.graph.mask(CIRCUIT), ev.graph.circuit_edges(CIRCUIT))
    assert max(map(abs, drops.values())) > 1e-2


@pytest.mark.parametrize(("intervention", "ig_steps"), [("mean", 0), ("patch", 0), ("mean", 3)])
def test_eap_matches_independent_autograd(evaluators, independents, intervention: str, ig_steps: int) -> None:
    ev = evaluators[intervention]
    assert eap_gap(ev, independents[intervention], ig_steps) < 1e-5
    assert max(map(abs, eap_scores(ev, ig_steps).values())) > 1e-2


@pytest.mark.parametrize("metric", ["prob", "kl"])
def test_other_metrics_match_the_independent_evaluator(lm, digits, metric: str) -> None:
    """Joint edge circuits and EAP-IG under --metric prob and kl (kl normalised by the empty circuit)."""
    ev, independent = Evaluator(lm, digits, "mean", metric=metric), Independent(lm.model, digits, "mean", metric)
    assert edge_circuit_gap(ev, independent) < 1e-4
    assert eap_gap(ev, independent, 2) < 1e-5


def tiny(**config) -> Evaluator:
    """A tiny random HookedTransformer of some architecture (random ln1 weights and biases, so neither is the
    identity), random prompts whose answer is the model's top token and distractor its bottom one (a clear logit
    difference), under paired patching."""
    cfg = HookedTransformerConfig(**{"n_layers": 2, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32, "d_vocab": 20,
                                     "n_ctx": 6, "act_fn": "gelu", "normalization_type": "LN", "seed": 0, **config})
    model = HookedTransformer(cfg)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".ln1." in name and name.endswith(".w"):
                parameter.uniform_(0.5, 1.5)
            elif ".ln1." in name:
                parameter.normal_(0, 0.3)
    generator = torch.Generator().manual_seed(0)
    clean, corrupt = torch.randint(0, 20, (2, 8, 6), generator=generator)
    with torch.no_grad():
        last = model(clean)[:, -1]
    data = TaskData("random", "test", "random tokens", clean, corrupt, last.argmax(-1), last.argmin(-1))
    return Evaluator(LoadedModel("tiny", prepare(model), None, "random"), data, "patch")


@pytest.mark.parametrize("normalization", ["LN", "LNPre", "RMS", "RMSPre"])
def test_eap_matches_independent_autograd_under_each_normalization(normalization: str) -> None:
    """EAP pulls head gradients back through ln1 in closed form: check it under each kind of normalization."""
    ev = tiny(normalization_type=normalization)
    independent = Independent(ev.lm.model, ev.data, "patch")
    for ig_steps in (0, 2):
        assert eap_gap(ev, independent, ig_steps) < 1e-5
    assert max(map(abs, eap_scores(ev).values())) > 1e-2


ARCHITECTURES = {
    "attention-only": {"attn_only": True},
    "LayerNorm-free": {"normalization_type": None},
    "parallel attention and MLP": {"parallel_attn_mlp": True},
    "rotary": {"positional_embedding_type": "rotary", "rotary_dim": 8},
    "gated MLP, RMSNorm": {"gated_mlp": True, "act_fn": "silu", "normalization_type": "RMS"},
    "grouped-query attention": {"n_key_value_heads": 1},  # ungrouped on loading: each head its own k and v input
}


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_method_matches_the_independent_evaluator_on_each_architecture(architecture: str) -> None:
    """Node circuits, joint edge circuits, path patching, EAP and EAP-IG on HookedTransformers of other shapes: the
    graphs have the same edges (no MLP nodes without MLPs, no edge from a layer's heads into its parallel MLP) and
    every number matches the independent evaluator."""
    ev = tiny(**ARCHITECTURES[architecture])
    independent = Independent(ev.lm.model, ev.data, "patch")
    assert {e.key for e in ev.graph.edges} == set(independent.all_edges())
    assert edge_circuit_gap(ev, independent) < 1e-4
    names = {"a0.h1", "a1.h0"} | ({"m0"} if ev.graph.has_mlps else set())
    edges_in = {e.key for e in ev.graph.circuit_edges(names)}
    assert ev.faithfulness(names) == pytest.approx(independent.faithfulness(edges_in), abs=1e-5)
    candidates = ev.graph.circuit_edges(names)
    ours = path_patch(ev, ev.graph.mask(names), candidates)
    theirs = independent.path_patching(ev.graph, names, [e.key for e in candidates])
    assert max(abs(ours[key] - theirs[key]) for key in theirs) < 1e-5
    for ig_steps in (0, 2):
        assert eap_gap(ev, independent, ig_steps) < 1e-5
    assert max(map(abs, ours.values())) > 1e-3


def test_eap_scores_follow_the_intervention(evaluators) -> None:
    mean, patch = eap_scores(evaluators["mean"]), eap_scores(evaluators["patch"])
    assert max(abs(mean[k] - patch[k]) for k in mean) > 1e-2


def test_node_circuits_are_edge_circuits_of_all_their_edges(evaluators) -> None:
    """Node ablation (hook_z replaced) and the joint edge evaluator agree, and the empty circuit is the reference run."""
    for ev in evaluators.values():
        node, edge = ev.measure_nodes(CIRCUIT), measure_edges(ev, [e.key for e in ev.graph.circuit_edges(CIRCUIT)])
        assert edge.faithfulness == pytest.approx(node.faithfulness, abs=1e-5)
        assert edge.kl == pytest.approx(node.kl, abs=1e-5)
        assert measure_edges(ev, []).normalised == pytest.approx(0.0, abs=1e-5)
        assert measure_edges(ev, [e.key for e in ev.graph.edges]).normalised == pytest.approx(1.0, abs=1e-5)


def test_head_outputs_filed_under_the_wrong_head_fail_the_comparisons(evaluators, independents, monkeypatch) -> None:
    """The mutation check: roll each layer's head outputs by one head inside circuitdb; every comparison above
    must then see it."""
    ev, independent = evaluators["mean"], independents["mean"]
    real_outputs, real_refs = edges.node_outputs, edge_circuits.sender_references

    def rolled(named: dict) -> dict:
        out = dict(named)
        for layer in range(ev.graph.n_layers):
            names = [f"a{layer}.h{h}" for h in range(ev.graph.n_heads)]
            out.update(zip(names, [named[n] for n in names[1:] + names[:1]]))
        return out

    def wrong_outputs(*args, **kw):
        outputs, streams = real_outputs(*args, **kw)
        return rolled(outputs), streams

    def wrong_refs(e):
        refs = real_refs(e)
        names = [s.name for s in e.graph.senders]
        moved = rolled(dict(zip(names, refs)))
        return [moved[n] for n in names]

    monkeypatch.setattr(edges, "node_outputs", wrong_outputs)
    monkeypatch.setattr(edges, "sender_references", wrong_refs)
    monkeypatch.setattr(edge_circuits, "sender_references", wrong_refs)
    assert path_patching_gap(ev, independent, CIRCUIT) > 1e-3
    assert eap_gap(ev, independent, 0) > 1e-3
    assert edge_circuit_gap(ev, independent) > 1e-3



def test_a_task_the_model_does_not_prefer_is_refused(lm, digits) -> None:
    """Swapped answers and distractors: LD(full) < 0, so no ratio of it means anything."""
    from dataclasses import replace


    swapped = replace(digits, answers=digits.distractors, distractors=digits.answers)
    with pytest.raises(CircuitdbError, match="not above 0"):
        Evaluator(lm, swapped)
    Evaluator(lm, swapped, metric="kl")  # KL needs no preference, only a gap between the full and the empty circuit
