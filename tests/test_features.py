"""SAE features on the toy model: reconstruction, attribution vs exact ablation, feature circuits re-measured
independently, feature edges vs exact patching, steering decomposition and effects, cross-model matching, the same
feature query answers on Kuzu and Neo4j, and clear errors that write nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from independent import feature_faithfulness
from safetensors.torch import load_file, save_file

from circuitdb import Catalog, CircuitdbError, Selection
from circuitdb.cli import main
from circuitdb.discovery.ablation import logit_diff
from circuitdb.discovery.features import FeatureEvaluator, node_name
from circuitdb.discovery.jobs import JobSpec, discover
from circuitdb.discovery.relations import cosine_relations, cross_model_relations, feature_activations
from circuitdb.discovery.sae import TOY_SAE_DIR, fvu, load_dictionary, residuals, train_sae
from circuitdb.discovery.steering import build, decompose, effects, prompt_groups
from circuitdb.discovery.tasks import build_task
from circuitdb.discovery.toy import example_tensors, toy_codec, toy_dataset
from circuitdb.domain import SteeringVector, parse_component

torch.set_num_threads(1)
MONTHS = {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
          "December"}


@pytest.fixture(scope="module")
def dicts(lm):
    return [load_dictionary("toy:resid2", lm), load_dictionary("toy:resid3", lm)]


@pytest.fixture(scope="module")
def heldout():
    return example_tensors(toy_codec(), toy_dataset(0)[1])


@pytest.fixture(scope="module")
def feature_runs(lm):
    """Feature circuits of digits and months at 0.9 and 0.8, discovered once for the module."""
    runs = []
    spec = JobSpec(model="toy", methods=["sae-attr"], saes=["toy:resid2", "toy:resid3"], tasks=["digits", "months"],
                   thresholds=[0.9, 0.8], n_prompts=32)
    discover(spec, on_run=runs.append, lm=lm)
    return runs


def test_toy_saes_reconstruct_held_out_activations(lm, dicts, heldout) -> None:
    for d in dicts:
        unexplained, dead, l0 = fvu(d, residuals(lm, heldout[0], heldout[1], d.hook))
        report = json.loads((TOY_SAE_DIR / d.name / "report.json").read_text())
        assert unexplained <= 0.1 and dead <= 0.05 and 1 < l0 < d.size / 4
        assert unexplained == pytest.approx(report["fvu"], abs=1e-3)  # the shipped report is what the files do


def test_sae_training_is_deterministic(lm, heldout) -> None:
    x = residuals(lm, heldout[0], heldout[1], "blocks.2.hook_resid_pre")
    a, report = train_sae(lm, 2, x, x, seed=1, steps=150)
    b, _ = train_sae(lm, 2, x, x, seed=1, steps=150)
    assert torch.equal(a.sae.W_dec, b.sae.W_dec) and torch.equal(a.sae.b_enc, b.sae.b_enc)
    assert 0 < report["fvu"] < 1 and a.name == "resid2"


@pytest.mark.parametrize("task", ["digits", "months"])
def test_attribution_ranks_like_exact_ablation(lm, dicts, task: str) -> None:
    """Plain attribution patching (one step) and integrated gradients (Marks et al.'s 10 steps) both rank the
    strongest nodes like exact ablation; IG also gives every error node the sign exact ablation gives it."""
    ev = FeatureEvaluator(lm, build_task(task, lm, 48), dicts)
    for steps, floor in ((1, 0.8), (10, 0.7)):
        scores = ev.attribution(steps)
        top = sorted(scores, key=lambda n: -abs(scores[n]))[:30]
        frame = pd.DataFrame({"attribution": [scores[n] for n in top], "exact": ev.ablation_effects(top)})
        assert frame.corr(method="spearman").loc["attribution", "exact"] >= floor, steps
    errors = [(d.name, None) for d in dicts]
    assert all(s > 0 for s in ev.ablation_effects(errors)) and all(scores[n] > 0 for n in errors)


def test_integrated_gradients_match_an_independent_implementation(lm, dicts) -> None:
    """IG over each dictionary written here with plain hooks and autograd: the dictionary's features and error moved
    k/steps of the way to their mean over the corrupted prompts, the gradient averaged, times (clean - mean)."""
    data = build_task("months", lm, 24)
    steps, model = 4, lm.model
    ours = FeatureEvaluator(lm, data, dicts).attribution(steps)
    _, corrupt = model.run_with_cache(data.corrupt, names_filter=lambda n: n in {d.hook for d in dicts})
    with torch.no_grad():
        full = logit_diff(model, model(data.clean, stop_at_layer=model.cfg.n_layers), data.answers, data.distractors)
    for d in dicts:
        x_c = corrupt[d.hook]
        f_ref, err_ref = d.sae.encode(x_c).mean(0), (x_c - d.sae.decode(d.sae.encode(x_c))).mean(0)
        grads, clean = [], {}
        for k in range(steps):
            point = {}

            def hook(x, hook, alpha=k / steps, point=point, sae=d.sae, f_ref=f_ref, err_ref=err_ref, clean=clean):
                f = sae.encode(x).detach()
                err = (x - sae.decode(f)).detach()
                clean["f"], clean["err"] = f, err
                point["f"] = (f + alpha * (f_ref - f)).requires_grad_()
                point["err"] = (err + alpha * (err_ref - err)).requires_grad_()
                return sae.decode(point["f"]) + point["err"]

            resid = model.run_with_hooks(data.clean, fwd_hooks=[(d.hook, hook)], stop_at_layer=model.cfg.n_layers)
            rows = torch.arange(data.n)
            logits = model.unembed(model.ln_final(resid))[:, -1]
            (logits[rows, data.answers] - logits[rows, data.distractors]).mean().backward()
            grads.append((point["f"].grad, point["err"].grad))
        g_f = sum(g[0] for g in grads) / steps
        g_err = sum(g[1] for g in grads) / steps
        theirs = ((g_f * (clean["f"] - f_ref)).sum((0, 1)) / full).tolist()
        assert max(abs(ours[d.name, i] - v) for i, v in enumerate(theirs)) < 1e-5
        assert ours[d.name, None] == pytest.approx(((g_err * (clean["err"] - err_ref)).sum() / full).item(), abs=1e-5)
        assert max(map(abs, theirs)) > 1e-3


def test_feature_circuits_meet_thresholds_when_remeasured(lm, dicts, feature_runs) -> None:
    assert len(feature_runs) == 4
    by_key = {(r.task.name, r.threshold): r for r in feature_runs}
    for run in feature_runs:
        data = build_task(run.task.name, lm, 32)
        kept = {n for n in run.components if n != "logits"}
        assert all(parse_component(n).kind in ("sae_feature", "error") for n in kept)
        measured = feature_faithfulness(lm.model, dicts, data, kept)
        assert measured >= run.threshold - 1e-6
        assert measured == pytest.approx(run.faithfulness, abs=1e-4)
        assert run.completeness < run.faithfulness
    for task in ("digits", "months"):  # the ladder nests: the 0.8 circuit is a prefix of the 0.9 one
        assert set(by_key[(task, 0.8)].components) <= set(by_key[(task, 0.9)].components)
        assert by_key[(task, 0.8)].nests_in == by_key[(task, 0.9)].id


def test_feature_edges_agree_with_exact_patching(lm, dicts) -> None:
    ev = FeatureEvaluator(lm, build_task("digits", lm, 48), dicts)
    scores = ev.attribution()
    members = set(sorted(scores, key=lambda n: -abs(scores[n]))[:40])
    edges = {e: w for e, w in ev.edges(members).items() if e[0][1] is not None and e[1][1] is not None}
    top = sorted(edges, key=lambda e: -abs(edges[e]))[:12]
    frame = pd.DataFrame({"attribution": [edges[e] for e in top], "exact": [ev.exact_edge(*e) for e in top]})
    assert frame.corr(method="spearman").loc["attribution", "exact"] >= 0.7
    assert (frame["attribution"].abs() > 0).all()


def test_steering_vector_decomposes_and_steers(lm, dicts) -> None:
    digits_prompts = prompt_groups("digits", lm, 32)
    vector = build(lm, 2, prompt_groups("months", lm, 32), digits_prompts)
    small, large = decompose(vector, 2, dicts[0], 8), decompose(vector, 2, dicts[0], 16)
    assert small.omp_cosine >= 0.9 and large.omp_cosine >= small.omp_cosine and len(small.omp) == 8
    deltas, rising = effects(lm, vector, 2, 1.0, digits_prompts, dicts)
    assert set(deltas) == {"resid3"} and deltas["resid3"].abs().max() > 0.5
    assert len({token for token, _ in rising[:5]} & MONTHS) >= 3  # digits prompts now lean towards month names
    with pytest.raises(CircuitdbError, match="reads blocks.3"):
        decompose(vector, 2, dicts[1], 8)


def _permuted_copy(folder: Path, perm: torch.Tensor) -> Path:
    """The resid2 SAE with its features in another order (same dictionary, shuffled)."""
    source = TOY_SAE_DIR / "resid2"
    weights = load_file(source / "sae_weights.safetensors")
    weights = {"W_enc": weights["W_enc"][:, perm].contiguous(), "b_enc": weights["b_enc"][perm].contiguous(),
               "W_dec": weights["W_dec"][perm].contiguous(), "b_dec": weights["b_dec"]}
    folder.mkdir()
    save_file(weights, folder / "sae_weights.safetensors")
    (folder / "cfg.json").write_text((source / "cfg.json").read_text())
    return folder


def test_cross_model_matching_finds_the_same_feature(lm, dicts, tmp_path: Path) -> None:
    perm = torch.randperm(256, generator=torch.Generator().manual_seed(0))
    other = load_dictionary(f"perm2={_permuted_copy(tmp_path / 'perm', perm)}", lm)
    tokens = [g for s in ("digits", "months", "numwords") for g in prompt_groups(s, lm, 32)]
    acts_a = torch.cat([feature_activations(lm, dicts[0], t) for t in tokens])
    acts_b = torch.cat([feature_activations(lm, other, t) for t in tokens])
    relations = cross_model_relations("toy", dicts[0], acts_a, "toy-copy", other, acts_b)
    assert len(relations) == int((acts_a.amax(0) > 0).sum()) > 200
    for rel in relations:
        i, j = (int(name.split("/")[1]) for name in (rel.sender, rel.receiver))
        assert perm[j] == i and rel.weight > 0.999


def _feature_graph(catalog: Catalog, feature_runs, dicts) -> list:
    catalog.add(feature_runs)
    relations = cosine_relations("toy", dicts, cutoff=0.6, top=3)
    catalog.add_relations(relations)
    vector = SteeringVector("toy", "m-d", 2, [float(i % 7) for i in range(64)], "months - digits")
    catalog.add_steering(vector)
    catalog.add_steering(vector, "DECOMPOSES_INTO", [{"name": "fresid2/3", "coef": 0.5, "method": "omp"},
                                                     {"name": "fresid2/9", "coef": -1.5, "method": "omp"}])
    catalog.add_steering(vector, "SHIFTS", [{"name": "fresid3/4", "delta": 2.0, "layer": 3, "coef": 1.0}])
    catalog.add_steering(vector, "SHIFTS", [{"name": "fresid3/5", "delta": -1.0, "layer": 3, "coef": 2.0}])  # replaces
    return relations


def test_feature_queries_on_each_store(catalog: Catalog, feature_runs, dicts) -> None:
    relations = _feature_graph(catalog, feature_runs, dicts)
    runs_08 = [r for r in feature_runs if r.threshold == 0.8]
    expected_shared = set.intersection(*(set(r.components) for r in runs_08))
    shared = catalog.shared(Selection(thresholds=(0.8,), methods=("sae-attr:resid2+resid3",))).members
    assert set(shared["component"]) == expected_shared
    feature = max(expected_shared - {"logits"}, key=lambda n: sum(1 for r in feature_runs if n in r.components))
    frame = catalog.features_related(feature, model="toy", limit=50).rows
    co = frame[frame["kind"] == "co-member"]
    own = [r for r in feature_runs if feature in r.components]
    for row in co.itertuples():
        name = row.other.split("/", 1)[1]
        assert row.weight == pytest.approx(sum(name in r.components for r in own) / len(own))
    stored = {(r.sender, r.receiver) for r in relations}
    cos = frame[frame["kind"] == "cosine"]
    expected_cos = {r.receiver if r.sender == feature else r.sender for r in relations if feature in (r.sender, r.receiver)}
    assert {o.split("/", 1)[1] for o in cos["other"]} == expected_cos and len(stored) == len(relations)
    info = catalog.steer_show("m-d", "toy")
    assert info.decomposition.to_dict("records") == [{"feature": "fresid2/9", "method": "omp", "coef": -1.5},
                                                     {"feature": "fresid2/3", "method": "omp", "coef": 0.5}]
    assert info.shifts.to_dict("records") == [{"feature": "fresid3/5", "layer": 3, "delta": -1.0, "coef": 2.0}]
    assert info.values[:8] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]
    catalog.add_relations(relations[:1])  # a re-run replaces its source's relations, it does not add to them
    source = relations[0].source
    count = catalog.query("MATCH ()-[x:RELATES]->() WHERE x.source = $s RETURN count(*) AS n", {"s": source}).records()[0]["n"]
    assert count == 1


def test_feature_queries_identical_on_kuzu_and_neo4j(tmp_path: Path, neo4j_url: str, feature_runs, dicts) -> None:
    from conftest import wipe_neo4j

    wipe_neo4j(neo4j_url)
    answers = []
    for url in (f"kuzu:{tmp_path / 'k.kuzu'}", neo4j_url):
        with Catalog(url) as catalog:
            _feature_graph(catalog, feature_runs, dicts)
            feature = next(n for n in feature_runs[0].components if n.startswith("fresid2/") and n != "fresid2/err")
            info = catalog.steer_show("m-d", "toy")
            answers.append(json.dumps({
                "related": catalog.features_related(feature, "toy", limit=50).rows.to_dict("records"),
                "shared": catalog.shared(Selection(thresholds=(0.8,))).members.to_dict("records"),
                "venn": catalog.venn(Selection(thresholds=(0.9,))).regions.to_dict("records"),
                "steering": [info.decomposition.to_dict("records"), info.shifts.to_dict("records"), info.values],
                "vectors": catalog.steer_list().rows.to_dict("records"),
            }, sort_keys=True, default=str))
    # means are summed in store order: equal to 1e-9, not bit for bit
    assert json.loads(answers[0], parse_float=lambda x: round(float(x), 9)) == \
        json.loads(answers[1], parse_float=lambda x: round(float(x), 9))


def _cli(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


def test_feature_cli_end_to_end_and_errors(tmp_path: Path) -> None:
    store = f"kuzu:{tmp_path / 'f.kuzu'}"
    ok = _cli("features", "discover", "--model", "toy", "--sae", "toy:resid2", "--task", "digits", "--threshold", "0.8",
              "--prompts", "24", "--store", store)
    assert ok.exit_code == 0, ok.output
    with Catalog(store) as catalog:
        (info,) = catalog.runs()
        assert info.method == "sae-attr:resid2" and info.faithfulness >= 0.8
        run = catalog.run(info.id)
    check = run.params["attribution_check"]
    assert check["spearman"] >= 0.7 and check["nodes"] == min(20, len(run.components) - 1)
    picture = tmp_path / "top.dot"
    assert _cli("export", "--run", info.id, "--top", "5", "-o", str(picture), "--store", store).exit_code == 0
    strongest = sorted((n for n, s in run.components.items() if s is not None), key=lambda n: -abs(run.components[n]))[:5]
    lines = picture.read_text().splitlines()
    drawn = {line.split()[0].strip('"') for line in lines if "fillcolor" in line and "layer_" not in line}
    assert drawn == {*strongest, "logits"}
    job = ["features", "discover", "--model", "toy", "--task", "months"]
    for args, message in [
        ([*job, "--sae", "toy:resid9", "--threshold", "0.8"], "no toy SAE"),
        ([*job, "--sae", "toy:resid2", "--threshold", "0.9", "--top-k", "2"], "raise --top-k"),
        ([*job, "--sae", "toy:resid2", "--threshold", "1.5"], "threshold"),
        (["features", "related", "fresid2/999999"], "unknown component"),
        (["steer", "show", "nope", "--model", "toy"], "unknown steering vector"),
        (["steer", "build", "v", "--model", "toy", "--layer", "9", "--plus", "months", "--minus", "digits"], "--layer"),
    ]:
        bad = _cli(*args, "--store", store)
        assert bad.exit_code == 1 and message in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.output
    with Catalog(store) as catalog:  # the failed jobs wrote nothing
        assert len(catalog.runs()) == 1 and catalog.steer_list().rows.empty
    assert _cli("steer", "build", "md", "--model", "toy", "--layer", "2", "--plus", "months", "--minus", "digits",
                "--store", store).exit_code == 0
    dec = _cli("steer", "decompose", "md", "--model", "toy", "--sae", "toy:resid2", "--top-k", "8", "--json", "--store", store)
    assert dec.exit_code == 0 and json.loads(dec.stdout)["omp_cosine"] >= 0.9
    eff = _cli("steer", "effects", "md", "--model", "toy", "--sae", "toy:resid3", "--on", "digits", "--json", "--store", store)
    assert eff.exit_code == 0 and len(json.loads(eff.stdout)["shifts"]) == 10
    shown = json.loads(_cli("steer", "show", "md", "--model", "toy", "--json", "--store", store).stdout)
    assert len(shown["decomposition"]) == 16 and len(shown["shifts"]) == 10
    picture = tmp_path / "rel.dot"
    related = _cli("features", "related", shown["shifts"][0]["feature"], "--model", "toy", "-o", str(picture), "--json",
                   "--store", store)
    assert related.exit_code == 0 and json.loads(related.stdout)["feature"].startswith("toy/fresid3/")
    assert picture.read_text().startswith("graph")


def test_pretrained_sae_fails_fast_offline(lm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CircuitdbError, match="HF_HUB_OFFLINE"):  # refused before any download is tried
        load_dictionary("gpt2-small-res-jb/blocks.8.hook_resid_pre", lm)
    with pytest.raises(CircuitdbError, match="not an SAELens folder"):
        load_dictionary(str(TOY_SAE_DIR.parent), lm)


def test_logit_diff_helper_is_what_the_evaluator_scores(lm, dicts) -> None:
    data = build_task("digits", lm, 16)
    ev = FeatureEvaluator(lm, data, dicts)
    with torch.no_grad():
        resid = lm.model(data.clean, stop_at_layer=lm.model.cfg.n_layers)
    assert ev.full == pytest.approx(logit_diff(lm.model, resid, data.answers, data.distractors).item())
    assert ev.performance(ev.keep_all()).item() == pytest.approx(1.0, abs=1e-5)  # SAE + error node is exact
    assert node_name(("resid2", None)) == "fresid2/err"


def test_shared_features_carry_across_to_a_permuted_dictionary(lm, dicts, tmp_path: Path) -> None:
    """Model B = the same model read through a shuffled copy of the dictionary: A's shared features must map, through
    stored matches, onto B's shared features."""
    perm = torch.randperm(256, generator=torch.Generator().manual_seed(1))
    folder = _permuted_copy(tmp_path / "perm", perm)
    other = load_dictionary(f"perm2={folder}", lm)
    store = f"kuzu:{tmp_path / 'x.kuzu'}"
    with Catalog(store) as catalog:
        for sae in ("toy:resid2", f"perm2={folder}"):
            spec = JobSpec(model="toy", methods=["sae-attr"], saes=[sae], tasks=["digits"], thresholds=[0.8], n_prompts=32)
            discover(spec, on_run=catalog.add, lm=lm)
        tokens = [g for s in ("digits", "months") for g in prompt_groups(s, lm, 32)]
        acts = [torch.cat([feature_activations(lm, d, t) for t in tokens]) for d in (dicts[0], other)]
        catalog.add_relations(cross_model_relations("toy", dicts[0], acts[0], "toy", other, acts[1]))
        a = Selection(models=("toy",), tasks=("digits",), thresholds=(0.8,), methods=("sae-attr:resid2",))
        b = Selection(models=("toy",), tasks=("digits",), thresholds=(0.8,), methods=("sae-attr:perm2",))
        frame = catalog.features_across(a, to_method="sae-attr:perm2").rows
        shared_b = set(catalog.shared(b).members["component"])
    assert len(frame) >= 10 and frame["match"].notna().all()
    for row in frame.itertuples():
        assert perm[int(row.match.split("/")[1])] == int(row.feature.split("/")[1])
        assert row.match_shared == (row.match in shared_b)
    assert frame["match_shared"].mean() >= 0.8  # float-order noise may move a feature at the margin, not many
    cli = _cli("features", "across", "--model", "toy", "--task", "digits", "--threshold", "0.8",
               "--method", "sae-attr:resid2", "--to-method", "sae-attr:perm2", "--json", "--store", store)
    assert cli.exit_code == 0 and json.loads(cli.stdout)["shared_in_b"] == int(frame["match_shared"].sum())


def test_features_match_across_two_trained_models(tmp_path: Path) -> None:
    """A second toy model (another seed, briefly trained) with its own SAE, matched through the CLI."""
    assert _cli("toy", "train", "--seed", "1", "--steps", "30", "-o", str(tmp_path / "toy_b.pt")).exit_code == 0
    assert _cli("toy", "train-sae", "--model", str(tmp_path / "toy_b.pt"), "--steps", "100",
                "-o", str(tmp_path / "sae_b")).exit_code == 0
    (tmp_path / "prompts.txt").write_text("1 2 3 4\none two three four\nJanuary February March\nMonday Tuesday\n")
    store = f"kuzu:{tmp_path / 'm.kuzu'}"
    result = _cli("features", "match", "--model", "toy", "--model", str(tmp_path / "toy_b.pt"), "--sae", "toy:resid2",
                  "--sae", str(tmp_path / "sae_b" / "resid2"), "--prompts", str(tmp_path / "prompts.txt"), "--json",
                  "--store", store)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["model_b"] == "toy_b" and out["matched"] > 100
    assert all(-1 <= m["correlation"] <= 1 and m["match"].startswith("fresid2/") for m in out["matches"])
    best = out["matches"][0]
    related = json.loads(_cli("features", "related", best["feature"], "--model", "toy", "--json", "--store", store).stdout)
    assert {"other": f"toy_b/{best['match']}", "kind": "match"}.items() <= {**related["relations"][0]}.items()
    wrong = _cli("features", "match", "--model", "toy", "--model", str(tmp_path / "toy_b.pt"), "--sae", "toy:resid2",
                 "--sae", "toy:resid2", "--prompts", str(tmp_path / "prompts.txt"), "--store", store)
    assert wrong.exit_code == 1 and "belongs to the toy model" in wrong.stderr
