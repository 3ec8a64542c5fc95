"""Denoising circuits: the circuit's heads and MLPs restored to their clean values in each prompt's corrupted run,
checked against plain TransformerLens hooks written here."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch
from fixtures import catalog_runs

from circuitdb import Catalog, CircuitdbError, Selection
from circuitdb.discovery.evaluate import Evaluator
from circuitdb.discovery.jobs import JobSpec, discover
from circuitdb.discovery.tasks import build_task
from circuitdb.domain import run_id

torch.set_num_threads(1)


def restored(model, data, names: set[str]) -> float:
    """(LD(corrupted run, `names` at their clean values) - LD(corrupted)) / (LD(clean) - LD(corrupted))."""
    _, cache = model.run_with_cache(data.clean)
    rows = torch.arange(data.n)

    def ld(logits: torch.Tensor) -> float:
        last = logits[:, -1]
        return (last[rows, data.answers] - last[rows, data.distractors]).mean().item()

    def head(layer: int, index: int):
        def hook(z, hook):
            z[:, :, index] = cache[f"blocks.{layer}.attn.hook_z"][:, :, index]
            return z
        return f"blocks.{layer}.attn.hook_z", hook

    hooks = []
    for name in names:
        if name.startswith("a"):
            layer, index = name[1:].split(".h")
            hooks.append(head(int(layer), int(index)))
        else:
            hooks.append((f"blocks.{name[1:]}.hook_mlp_out", lambda x, hook: cache[hook.name]))
    with torch.no_grad():
        clean, corrupt = ld(model(data.clean)), ld(model(data.corrupt))
        return (ld(model.run_with_hooks(data.corrupt, fwd_hooks=hooks)) - corrupt) / (clean - corrupt)


def test_denoising_scores_match_plain_hooks(lm, digits) -> None:
    ev = Evaluator(lm, digits, "patch", direction="denoising")
    nodes = sorted(lm.graph.components(set(lm.graph.nodes)))
    circuits = [set(random.Random(seed).sample(nodes, size)) for seed, size in enumerate((2, 5, 10, 20))]
    ours = [ev.faithfulness(c) for c in circuits]
    for circuit, score in zip(circuits, ours):
        assert score == pytest.approx(restored(lm.model, digits, circuit), abs=1e-5)
    assert max(ours) - min(ours) > 0.2  # different circuits restore differently: not a constant
    assert ev.faithfulness(set()) == pytest.approx(0, abs=1e-6) and ev.faithfulness(set(nodes)) == pytest.approx(1, abs=1e-4)


def test_denoising_runs_hold_and_are_kept_apart_from_noising_runs(lm) -> None:
    spec = JobSpec(model="toy", tasks=["digits"], thresholds=[0.9, 0.8], ablation="patch", edges="none",
                   direction="denoising", n_prompts=32)
    runs = discover(spec, on_run=lambda run: None, lm=lm)
    data = build_task("digits", lm, n_prompts=32)
    for run in runs:
        assert run.direction == "denoising" and run.params["direction"] == "denoising" and not run.edges
        assert run.id != run_id("toy", "digits", run.method, "patch", run.metric, run.threshold)
        assert run.faithfulness >= run.threshold
        assert restored(lm.model, data, lm.graph.components(run.components)) == pytest.approx(run.faithfulness, abs=1e-5)


@pytest.mark.parametrize("options", [{"ablation": "mean", "edges": "none"}, {"ablation": "patch", "edges": "path"},
                                     {"ablation": "patch", "edges": "none", "methods": ["eap"]}])
def test_denoising_outside_paired_node_pruning_is_refused(options: dict) -> None:
    with pytest.raises(CircuitdbError, match="denoising"):
        JobSpec(model="toy", tasks=["digits"], thresholds=[0.9], direction="denoising", **options).check()


def test_noising_and_denoising_twins_are_both_kept_and_selectable(tmp_path) -> None:
    noising = catalog_runs()[0]
    denoising = dataclasses.replace(noising, direction="denoising")
    with Catalog(f"kuzu:{tmp_path / 'c.kuzu'}") as catalog:
        catalog.add([noising, denoising])
        assert len(catalog.runs()) == 2
        picked = catalog.select(Selection(tasks=(noising.task.name,), directions=("denoising",)))
        assert [r.id for r in picked] == [denoising.id] and picked[0].direction == "denoising"
        assert catalog.run(denoising.id).direction == "denoising"
