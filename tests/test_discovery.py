"""Discovery on the shipped toy model: TransformerLens equivalence, EAP vs exact patching, stored circuits re-measured
independently, ladder nesting, sweeps that resume, and clear errors that write nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from independent import Independent
from transformer_lens import HookedTransformerConfig, patching
from transformer_lens.utilities import get_act_name

from circuitdb import Catalog, CircuitdbError, Run, Selection
from circuitdb.discovery.ablation import activations, embed, logit_diff, run_blocks
from circuitdb.discovery.edges import eap_scores, path_patch
from circuitdb.discovery.evaluate import Evaluator
from circuitdb.discovery.graph import Masks, ModelGraph
from circuitdb.discovery.jobs import JobSpec, discover
from circuitdb.discovery.models import load_model
from circuitdb.discovery.pruning import _without, prune, prune_plain, random_order_circuits, survival
from circuitdb.discovery.tasks import build_task
from circuitdb.progress import Reporter

torch.set_num_threads(1)


def test_patching_equals_transformer_lens(lm, digits) -> None:
    """Per-component patching of clean activations into the corrupted run, ours batched vs TL's utilities."""
    model, cfg = lm.model, lm.model.cfg
    rows = torch.arange(digits.n)

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return (logits[rows, -1, digits.answers] - logits[rows, -1, digits.distractors]).mean()

    _, clean_cache = model.run_with_cache(digits.clean)
    tl_heads = patching.get_act_patch_attn_head_out_all_pos(model, digits.corrupt, clean_cache, metric)
    tl_mlps = patching.generic_activation_patch(model, digits.corrupt, clean_cache, metric,
                                                patch_setter=lambda act, index, source: source.clone(),
                                                activation_name="mlp_out", index_axis_names=("layer",))
    source = activations(lm, digits.clean)
    n_l, n_h = cfg.n_layers, cfg.n_heads
    k = n_l * n_h + n_l  # one variant per head, then one per MLP, all in one batched forward
    heads = torch.ones(k, n_l, n_h, dtype=torch.bool)
    mlps = torch.ones(k, n_l, dtype=torch.bool)
    for i in range(n_l * n_h):
        heads[i, i // n_h, i % n_h] = False
    for layer in range(n_l):
        mlps[n_l * n_h + layer, layer] = False
    with torch.no_grad():
        final = run_blocks(lm, embed(model, digits.corrupt), 0, Masks(heads, mlps), source)
        ours = logit_diff(model, final, digits.answers, digits.distractors)
    assert torch.allclose(ours[: n_l * n_h].view(n_l, n_h), tl_heads, atol=1e-5)
    assert torch.allclose(ours[n_l * n_h:], tl_mlps, atol=1e-5)
    assert (tl_heads - tl_heads.mean()).abs().max() > 1e-3  # the comparison is not between constants


def test_full_graph_size_matches_eap_ig() -> None:
    gpt2 = HookedTransformerConfig(n_layers=12, d_model=768, n_heads=12, d_head=64, n_ctx=8, d_vocab=10, act_fn="gelu")
    assert len(ModelGraph.from_config(gpt2).edges) == 32491


@pytest.mark.parametrize("ig_steps", [0, 5])
def test_eap_rank_correlates_with_exact_patching(lm, ig_steps: int) -> None:
    """On the repeatLast corruption ("1 2 3 3"), a small change where the first-order estimate is meant to hold.
    (With randAll the Spearman is ~0.7 while the Pearson of EAP-IG stays ~0.98: the near-zero edges reorder.)"""
    ev = Evaluator(lm, build_task("digits:repeatLast", lm, n_prompts=32))
    edges = lm.graph.edges
    exact = path_patch(ev, Masks.full(lm.graph), edges)
    estimate = eap_scores(ev, ig_steps)
    frame = pd.DataFrame({"exact": [exact[e.key] for e in edges], "eap": [estimate[e.key] for e in edges]})
    rho = frame.corr(method="spearman").loc["exact", "eap"]
    assert rho >= 0.8, rho


@pytest.mark.parametrize("ablation", ["mean", "resample"])
def test_lean_blocks_score_like_transformer_lens(lm, digits, ablation: str) -> None:
    """The lean runner (kept components only, last position only where nothing reads the rest) against TL's forward:
    cached layer inputs, and one layer's pruning candidates scored from there, for random circuits."""
    ev, ref = Evaluator(lm, digits, ablation), Evaluator(lm, digits, ablation, lean=False)
    assert ev.runner is not None and ref.runner is None
    n_l, n_h = lm.model.cfg.n_layers, lm.model.cfg.n_heads
    generator = torch.Generator().manual_seed(0)
    scores = []
    for trial in range(24):
        keep = 0.3 + 0.6 * torch.rand(1, generator=generator).item()  # sparse to nearly full circuits
        base = Masks(torch.rand(1, n_l, n_h, generator=generator) < keep, torch.rand(1, n_l, generator=generator) < keep)
        inputs, reference_inputs = ev.layer_inputs(base), ref.layer_inputs(base)
        assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(inputs, reference_inputs))
        layer = trial % n_l
        candidates = [(layer, h) for h in range(n_h) if base.heads[0, layer, h]] + [(layer, None)] * bool(base.mlps[0, layer])
        variants = _without(base, candidates) if candidates else base
        lean = ev.performance_from(variants, layer, inputs[layer])
        assert torch.allclose(lean, ref.performance(variants), atol=1e-4)
        assert torch.allclose(lean, ref.performance_from(variants, layer, reference_inputs[layer]), atol=1e-4)
        scores += lean.tolist()
    assert max(scores) - min(scores) > 0.5  # the circuits score differently: the comparison is not between constants


@pytest.mark.parametrize("ablation", ["mean", "resample"])
def test_layer_cached_pruning_finds_the_plain_circuit(lm, digits, ablation: str) -> None:
    """Lean, TL-forward layer-cached and plain pruning take the same decisions, also from a stricter circuit."""
    strict = None
    for threshold in (0.9, 0.8):
        start = None if strict is None else lm.graph.mask(set(strict))
        fast = prune(Evaluator(lm, digits, ablation), threshold, start)
        cached = prune(Evaluator(lm, digits, ablation, lean=False), threshold, start, batch=4)
        plain = prune_plain(Evaluator(lm, digits, ablation), threshold, start)
        assert fast.names == cached.names == plain.names
        assert plain.performance >= threshold and fast.performance == pytest.approx(plain.performance, abs=1e-4)
        assert len(fast.names) < lm.model.cfg.n_layers * (lm.model.cfg.n_heads + 1)  # it did prune
        assert strict is None or set(fast.names) <= set(strict)
        strict = fast.names


def test_random_order_survival(lm, digits) -> None:
    """Robustness mode: frequencies are the per-order circuits' counts, and each per-order circuit meets the threshold
    under TL's forward and is minimal (its last sweep removed nothing, so dropping any member falls below)."""
    threshold, orders = 0.8, 4
    ref = Evaluator(lm, digits, lean=False)
    circuits = random_order_circuits(Evaluator(lm, digits), threshold, orders, seed=1)
    frequencies = survival(Evaluator(lm, digits), threshold, orders, seed=1)
    everything = set(lm.graph.names(Masks.full(lm.graph)))
    assert set(frequencies) == everything and all(0.0 <= f <= 1.0 for f in frequencies.values())
    assert all(f == sum(name in c for c in circuits) / orders for name, f in frequencies.items())
    assert {n for n, f in frequencies.items() if f == 1.0} == set.intersection(*map(set, circuits))
    assert {n for n, f in frequencies.items() if f == 0.0} == everything - set.union(*map(set, circuits))
    assert len({tuple(c) for c in circuits}) > 1  # the orders matter here, so the check above is not vacuous
    for circuit in circuits:
        assert ref.faithfulness(set(circuit)) >= threshold - 1e-5
        assert all(ref.faithfulness(set(circuit) - {name}) < threshold + 1e-5 for name in circuit)


def independent_performance(lm, data, names: set[str]) -> float:
    """Faithfulness re-measured with plain TransformerLens hooks and full logits, none of circuitdb's ablation code."""
    model = lm.model
    _, cache = model.run_with_cache(data.corrupt)
    hooks = []
    for layer in range(model.cfg.n_layers):
        dropped = [h for h in range(model.cfg.n_heads) if f"a{layer}.h{h}" not in names]
        mean_z = cache[get_act_name("z", layer)].mean(0)

        def heads_hook(z, hook, dropped=dropped, mean_z=mean_z):
            z = z.clone()
            z[:, :, dropped] = mean_z[:, dropped]
            return z

        hooks.append((get_act_name("z", layer), heads_hook))
        if f"m{layer}" not in names:
            mean_mlp = cache[get_act_name("mlp_out", layer)].mean(0)
            hooks.append((get_act_name("mlp_out", layer), lambda out, hook, m=mean_mlp: m.expand_as(out)))
    rows = torch.arange(data.n)

    def ld(logits: torch.Tensor) -> float:
        return (logits[rows, -1, data.answers] - logits[rows, -1, data.distractors]).mean().item()

    with torch.no_grad():
        return ld(model.run_with_hooks(data.clean, fwd_hooks=hooks)) / ld(model(data.clean))


def test_the_demos_circuits_hold_when_measured_independently(lm, tmp_path: Path) -> None:
    """The demo's job (examples/demo.sh): every stored run's node circuit and its stored edge set, re-measured with
    plain TransformerLens hooks (`independent.py`), reach the threshold and match the recorded faithfulness and
    edge_faithfulness; the ladders nest."""
    tasks = ["digits", "numwords", "months"]
    spec = JobSpec("toy", tasks, [0.97, 0.9, 0.8], methods=["prune"], edges="path")
    with Catalog(f"kuzu:{tmp_path / 'c.kuzu'}") as catalog:
        runs = discover(spec, on_run=catalog.add, lm=lm)
        assert len(runs) == 9 and len(catalog.runs()) == 9
        data = {name: build_task(name, lm) for name in tasks}
        independents = {name: Independent(lm.model, task, "mean") for name, task in data.items()}
        for info in catalog.runs():
            run = catalog.run(info.id)
            nodes = {n for n in run.components if n not in ("input", "logits")}
            measured = independent_performance(lm, data[run.task.name], nodes)
            assert measured >= run.threshold - 1e-6
            assert measured == pytest.approx(run.faithfulness, abs=1e-4)
            joint = independents[run.task.name].faithfulness({(e.sender, e.receiver, e.input) for e in run.edges})
            assert joint >= run.threshold - 1e-6
            assert joint == pytest.approx(run.edge_faithfulness, abs=1e-4)
            assert run.faithfulness_normalised is not None and run.kl >= 0 and 0 <= run.accuracy <= 1
            assert set(run.evaluations) == set(tasks) - {run.task.name}
        for task in tasks:
            ladder = catalog.ladder("toy", task).rungs
            assert list(ladder["threshold"]) == [0.97, 0.9, 0.8]
            assert ladder["within_stricter"].iloc[1:].all()  # nested: each circuit sits inside the stricter one
            low = catalog.run(ladder["run"].iloc[2])
            assert low.nests_in == ladder["run"].iloc[1]


@pytest.mark.parametrize("method", ["path", "eap", "eap-ig"])
def test_edge_methods_store_the_fewest_edges_that_hold_jointly(lm, method: str) -> None:
    """The demo's ranked-edge circuits (digits@0.9): the stored edges hold jointly (independently re-measured), one
    edge fewer from the top of the ranking does not, and the curve ends at the full model."""
    independent = Independent(lm.model, build_task("digits", lm), "mean")
    (run,) = discover(JobSpec("toy", ["digits"], [0.9], methods=[method]), on_run=lambda r: None, lm=lm)
    kept = [(e.sender, e.receiver, e.input) for e in run.edges]
    assert independent.faithfulness(set(kept)) == pytest.approx(run.edge_faithfulness, abs=1e-4)
    assert run.edge_faithfulness >= 0.9
    weakest = min(kept, key=lambda key: abs(next(e.weight for e in run.edges if (e.sender, e.receiver, e.input) == key)))
    assert independent.faithfulness(set(kept) - {weakest}) < 0.9
    curve = run.params["curve"]
    assert curve["faithfulness"][-1] == pytest.approx(1.0, abs=1e-5) and 0 < run.cpr <= 1 and run.cmd >= 0


def test_interrupted_sweep_keeps_finished_runs_and_resumes(lm, tmp_path: Path) -> None:
    spec = JobSpec("toy", ["digits"], [0.97, 0.9, 0.8], edges="none", n_prompts=16)
    notes: list[str] = []

    class Notes(Reporter):
        def note(self, text: str) -> None:
            notes.append(text)

    with Catalog(f"kuzu:{tmp_path / 'c.kuzu'}") as catalog:
        written: list[Run] = []

        def crash_after_first(run: Run) -> None:
            if written:
                raise KeyboardInterrupt
            catalog.add(run)
            written.append(run)

        with pytest.raises(KeyboardInterrupt):
            discover(spec, on_run=crash_after_first, lm=lm)
        assert [r.id for r in catalog.runs()] == [written[0].id]

        def existing(rid: str) -> Run | None:
            return catalog.run(rid) if catalog.has_run(rid) else None

        resumed = discover(spec, on_run=catalog.add, existing=existing, reporter=Notes(), lm=lm)
        assert len(resumed) == 2 and len(catalog.runs()) == 3
        assert any(n.startswith("skipped") for n in notes)
        assert resumed[0].nests_in == written[0].id


@pytest.mark.parametrize(("text", "suffix", "message"), [
    ("name: t\nprompts:\n  - {prompt: '1 2 3', answer: ' 4', distractor: ' 3'}\n", ".yaml",
     r"prompts\[0\]: missing or empty corrupted"),
    ("name: t\nprompts: [\n", ".yaml", r":3: malformed YAML"),
    ('{"prompt": "1 2 3", "answer": " 4 5", "distractor": " 3", "corrupted": "1 2 9"}\n', ".jsonl", "not a single token"),
    ('{"prompt": "1 2 3", "answer": " 4", "distractor": " 3", "corrupted": "1 2 9"}\n'
     '{"prompt": "1 2 3 4", "answer": " 5", "distractor": " 4", "corrupted": "1 2 9 9"}\n', ".jsonl", "unequal token lengths"),
    ('{"prompt": "1 2 3", "answer": " 4"\n', ".jsonl", r":1: malformed JSON"),
    ("", ".jsonl", "has no prompts"),
    ('{"prompt": "1 2 3", "answer": " 9", "distractor": " 3", "corrupted": "1 2 9"}\n' * 8, ".jsonl", "fails task"),
    ('{"prompt": "1 2 zebra", "answer": " 4", "distractor": " 3", "corrupted": "1 2 9"}\n', ".jsonl", "zebra"),
])
def test_bad_task_files_are_clear_errors(lm, tmp_path: Path, text: str, suffix: str, message: str) -> None:
    path = tmp_path / f"task{suffix}"
    path.write_text(text)
    with pytest.raises(CircuitdbError, match=message):
        build_task(str(path), lm)


def test_user_task_template_form(lm, tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    rows = "\n".join(f"  - {{a: '{i}', b: '{i + 1}', c: '{i + 2}', d: '{i + 3}', x: '{i + 7}'}}" for i in range(1, 9))
    path.write_text(f"name: mine\ntemplate: '{{a}} {{b}} {{c}}'\nanswer: ' {{d}}'\ndistractor: ' {{c}}'\n"
                    f"corrupted: '{{a}} {{b}} {{x}}'\nrows:\n{rows}\n")
    data = build_task(str(path), lm)
    assert data.name == "mine" and data.n >= 4


def test_bad_models_fail_fast_and_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(CircuitdbError, match="HF_HUB_OFFLINE"):
        load_model("gpt2-small")
    with pytest.raises(CircuitdbError, match="HF_HUB_OFFLINE"):
        load_model("bridge:openai-community/gpt2")  # the same through the TransformerBridge
    assert time.monotonic() - started < 1.0
    with pytest.raises(CircuitdbError, match="not a Hugging Face model folder"):
        load_model("bridge:./no/such/folder")
    with pytest.raises(CircuitdbError, match="unknown model"):
        load_model("no-such-model-xyz")
    with pytest.raises(CircuitdbError, match="not a Hugging Face model folder"):
        load_model("./no/such/folder")


def test_failed_jobs_write_nothing(lm, tmp_path: Path) -> None:
    with Catalog(f"kuzu:{tmp_path / 'c.kuzu'}") as catalog:
        for spec, message in [
            (JobSpec("toy", ["digits", "greater_than"], [0.8]), "'The' is not"),
            (JobSpec("toy", ["digits", "nope"], [0.8]), "unknown task 'nope'"),
            (JobSpec("toy", ["digits"], [1.3]), "threshold must be in"),
            (JobSpec("toy", ["digits"], [0.8], methods=["magic"]), "unknown method"),
        ]:
            with pytest.raises(CircuitdbError, match=message):
                discover(spec, on_run=catalog.add, lm=lm)
        assert len(catalog.runs()) == 0


def test_mask_names_round_trip(lm) -> None:
    names = {"a0.h1", "m2", "a3.h0"}
    assert set(lm.graph.names(lm.graph.mask(names))) == names


def test_toy_training_is_deterministic() -> None:
    from circuitdb.discovery.toy import train_toy

    a, _, _ = train_toy(seed=3, steps=20)
    b, _, _ = train_toy(seed=3, steps=20)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_discover_cli_writes_runs(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from circuitdb.cli import main

    store = f"kuzu:{tmp_path / 'c.kuzu'}"
    result = CliRunner().invoke(main, ["discover", "--model", "toy", "--task", "numwords", "--threshold", "0.8",
                                       "--prompts", "16", "--store", store], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with Catalog(store) as catalog:
        (info,) = catalog.runs(Selection(tasks=("numwords",)))
        assert info.faithfulness >= 0.8 and info.n_edges > 0
    bad = CliRunner().invoke(main, ["discover", "--model", "gpt2-small", "--task", "digits", "--threshold", "0.8",
                                    "--store", store], env={"HF_HUB_OFFLINE": "1"})
    assert bad.exit_code == 1 and "HF_HUB_OFFLINE" in bad.stderr
