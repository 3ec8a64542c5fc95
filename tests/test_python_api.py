"""Discovery from Python on a user's own model and data: a HookedTransformer object (no tokenizer, attention-only),
tasks as token ids or prompt lists, `--prompts` honoured by every task source; each circuit re-measured by the
independent evaluator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from independent import Independent
from transformer_lens import HookedTransformer, HookedTransformerConfig

from circuitdb import Catalog, CircuitdbError
from circuitdb.discovery.codec import WordCodec
from circuitdb.discovery.models import LoadedModel, load_model
from circuitdb.discovery.tasks import TaskData, build_task

torch.set_num_threads(1)
TINY = HookedTransformer(HookedTransformerConfig(n_layers=1, d_model=8, n_heads=2, d_head=4, d_vocab=20, n_ctx=6,
                                                 attn_only=True, act_fn="gelu"))  # no tokenizer


@pytest.fixture(scope="module")
def attention_only() -> tuple[HookedTransformer, TaskData]:
    """A random two-layer attention-only model without a tokenizer, and random prompts whose answer is its top token
    and distractor its bottom one."""
    model = HookedTransformer(HookedTransformerConfig(n_layers=2, d_model=32, n_heads=4, d_head=8, d_vocab=40, n_ctx=8,
                                                      attn_only=True, act_fn="gelu", normalization_type="LN", seed=1,
                                                      model_name="my-attn-only"))
    clean, corrupt = torch.randint(0, 40, (2, 24, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        last = model(clean)[:, -1]
    return model, TaskData.from_tokens(clean, corrupt, last.argmax(-1), last.argmin(-1), name="random-copy")


def test_a_model_object_and_token_data_make_runs_that_hold(tmp_path: Path, attention_only) -> None:
    model, data = attention_only
    with Catalog(f"kuzu:{tmp_path / 'c.kuzu'}") as catalog:
        runs = catalog.discover(model, [data], [0.9, 0.7], ablation="patch", n_prompts=16)
        stored = [catalog.run(r.id) for r in runs]
    assert [r.model.name for r in stored] == ["my-attn-only"] * 2 and {r.task.name for r in stored} == {"random-copy"}
    assert stored[0].task.n_prompts <= 16
    assert not any(c.startswith("m") for r in stored for c in r.components)  # attention-only: heads only
    chosen = build_task(data, LoadedModel.of(model), n_prompts=16)  # the prompts the runs were measured on
    independent = Independent(model, chosen, "patch")
    for run in stored:
        edges = {(e.sender, e.receiver, e.input) for e in run.edges}
        assert independent.faithfulness(edges) == pytest.approx(run.edge_faithfulness, abs=1e-4)
        assert run.edge_faithfulness >= run.threshold


def test_prompt_lists_with_or_without_bos_give_the_same_tokens() -> None:
    lm = load_model("toy")
    bare = ["1 2 3 4", "2 3 4 5", "3 4 5 6", "4 5 6 7"]
    answers, distractors = ["5", "6", "7", "8"], ["4", "5", "6", "7"]
    a = TaskData.from_prompts(lm, bare, bare[::-1], answers, distractors)
    b = TaskData.from_prompts(lm, [f"<bos> {p}" for p in bare], bare[::-1], answers, distractors)
    assert torch.equal(a.clean, b.clean) and (a.clean[:, 0] == lm.codec.bos).all() and (a.clean[:, 1:] != lm.codec.bos).all()
    assert WordCodec(["a", "b"], "no-bos").bos is None  # a vocabulary without <bos> is readable


def test_prompts_applies_to_task_files(tmp_path: Path) -> None:
    lm = load_model("toy")
    rows = [{"prompt": f"{i} {i + 1} {i + 2}", "answer": f"{i + 3}", "distractor": f"{i + 2}",
             "corrupted": f"{i + 2} {i + 1} {i}"} for i in range(1, 13)]
    path = tmp_path / "count.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    full, few = build_task(str(path), lm, n_prompts=64), build_task(str(path), lm, n_prompts=6)
    assert full.n > 6 >= few.n >= 4
    assert {tuple(r) for r in few.clean.tolist()} <= {tuple(r) for r in full.clean.tolist()}


@pytest.mark.parametrize(("make", "message"), [
    (lambda t: TaskData.from_tokens(t[:, :-1], t, t[:, 0], t[:, 1]), "two equal"),
    (lambda t: TaskData.from_tokens(t, t, t[:3, 0], t[:, 1]), "one id per prompt"),
    (lambda t: build_task(TaskData.from_tokens(t + 100, t, t[:, 0], t[:, 1]), LoadedModel.of(TINY), 8), "vocabulary"),
    (lambda t: TaskData.from_prompts(LoadedModel.of(TINY), ["a b"], ["b a"], ["a"], ["b"]), "no tokenizer"),
    (lambda t: LoadedModel.of(torch.nn.Linear(2, 2)), "takes a HookedTransformer or a TransformerBridge, not a Linear"),
])
def test_bad_task_data_is_one_clear_error(make, message: str) -> None:
    with pytest.raises(CircuitdbError, match=message):
        make(torch.randint(0, 10, (8, 5), generator=torch.Generator().manual_seed(0)))



def test_a_transformerlens_checkpoint_by_path_gives_the_runs_of_the_model_object(tmp_path: Path, attention_only) -> None:
    """`torch.save({"config": cfg.to_dict(), "state_dict": ...})` (numpy scalars in the config) loads weights-only by
    path: the same logits as the object, and discovery from the path stores the runs discovery from the object does."""
    model, data = attention_only
    path = tmp_path / "my-attn-only.pt"
    torch.save({"config": model.cfg.to_dict(), "state_dict": model.state_dict()}, path)
    loaded = load_model(str(path))
    assert loaded.name == "my-attn-only" and loaded.codec is None and loaded.model.cfg.attn_only
    with torch.no_grad():
        assert torch.equal(loaded.model(data.clean), model(data.clean))
    runs = {}
    for name, given in (("object", model), ("path", str(path))):
        with Catalog(f"kuzu:{tmp_path / name}.kuzu") as catalog:
            runs[name] = [catalog.run(r.id) for r in catalog.discover(given, [data], [0.8], ablation="patch", n_prompts=16)]
    assert [(r.id, r.components, r.edges) for r in runs["path"]] == [(r.id, r.components, r.edges) for r in runs["object"]]
    torch.save({"config": {"n_layers": 1}, "state_dict": {}}, tmp_path / "bad.pt")
    with pytest.raises(CircuitdbError, match="does not build a HookedTransformer"):
        load_model(str(tmp_path / "bad.pt"))
