"""Models researchers use, without downloads: tiny random Hugging Face models of GPT-2, GPT-NeoX (Pythia), Llama,
Qwen 2 and Gemma 2 saved as local folders with a word-level tokenizer trained here on the toy vocabulary; loaded
through `--model ./folder` (converted to a HookedTransformer) or `--model bridge:./folder` (Hugging Face's modules
under TransformerLens's TransformerBridge), they must compute what the Hugging Face model computes, and every
discovery method must match the independent evaluator (plain hooks) on them."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from independent import Independent, feature_faithfulness
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    Gemma2Config,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

from circuitdb import Catalog, CircuitdbError
from circuitdb.cli import main
from circuitdb.discovery.bridge import BridgeModel
from circuitdb.discovery.edges import eap_scores, path_patch
from circuitdb.discovery.evaluate import Evaluator
from circuitdb.discovery.lens import HookedTransformer, HookedTransformerConfig, hooked
from circuitdb.discovery.models import LoadedModel, load_model, prepare
from circuitdb.discovery.sae import load_dictionary
from circuitdb.discovery.sae_format import FolderSAE, SAEConfig, write_folder
from circuitdb.discovery.tasks import TaskData, build_task
from circuitdb.discovery.toy import toy_vocab

torch.set_num_threads(1)
# weights drawn wider than the default 0.02, so the random model prefers some words clearly (tasks keep only prompts
# whose answer is at least twice as likely as the distractor)
SHAPE = {"num_hidden_layers": 2, "num_attention_heads": 4, "hidden_size": 32, "intermediate_size": 64,
         "num_key_value_heads": 4, "max_position_embeddings": 32, "initializer_range": 0.3}
CONFIGS = {
    "gpt2": lambda v: GPT2Config(vocab_size=v, n_embd=32, n_layer=2, n_head=4, n_positions=32, initializer_range=0.3),
    "gpt-neox": lambda v: GPTNeoXConfig(**{**SHAPE, "vocab_size": v}),
    "llama": lambda v: LlamaConfig(**{**SHAPE, "vocab_size": v}),
    "qwen2": lambda v: Qwen2Config(**{**SHAPE, "vocab_size": v}),
}
# Gemma 2 (post-attention norms, logit soft-capping) only through the bridge: TransformerLens converts it too, but the
# conversion is the same code the GPT-2 to Qwen 2 folders already exercise
# TransformerLens 4 has no HookedTransformer: there, folders load through the bridge and these tests do not apply
needs_hooked = pytest.mark.skipif(HookedTransformer is None, reason="TransformerLens 4 has no HookedTransformer")
BRIDGED = {**CONFIGS, "gemma2": lambda v: Gemma2Config(**{**SHAPE, "vocab_size": v, "head_dim": 8})}


def tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer trained on the toy vocabulary (no download)."""
    words = [w for w in toy_vocab() if not w.startswith("<")]
    model = Tokenizer(models.WordLevel(unk_token="<unk>"))
    model.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    model.decoder = decoders.WordPiece(cleanup=False)  # words joined by spaces, punctuation kept apart
    model.train_from_iterator([" ".join(words)], trainers.WordLevelTrainer(special_tokens=["<bos>", "<unk>", "<pad>"]))
    return PreTrainedTokenizerFast(tokenizer_object=model, bos_token="<bos>", unk_token="<unk>", pad_token="<pad>")


def save(architecture: str, parent: Path, **config) -> Path:
    """A tiny random model of one architecture (config fields overridden by `config`), saved as a Hugging Face folder
    named for its architecture, which TransformerLens must not read as the name of a known model."""
    path = parent / f"tiny-{architecture}"
    words = tokenizer()
    torch.manual_seed(0)
    model_config = BRIDGED[architecture](len(words))
    for key, value in config.items():
        setattr(model_config, key, value)
    AutoModelForCausalLM.from_config(model_config).save_pretrained(path)
    words.save_pretrained(path)
    return path


@pytest.fixture(scope="module", params=list(CONFIGS))
def folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(request.param, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module", params=list(BRIDGED))
def bridged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(request.param, tmp_path_factory.mktemp("bridged"))


def random_task(lm, n: int = 16, length: int = 6, seed: int = 0) -> TaskData:
    """Random word prompts (BOS first) whose answer is the model's top next word and distractor its bottom one."""
    rng = random.Random(seed)
    words = [w for w in toy_vocab() if not w.startswith("<")]
    texts = [" ".join(rng.choices(words, k=length)) for _ in range(2 * n)]
    clean, corrupt = lm.tokens(texts[:n]), lm.tokens(texts[n:])
    with torch.no_grad():
        last = lm.model(clean)[:, -1]
    return TaskData.from_tokens(clean, corrupt, last.argmax(-1), last.argmin(-1), name="random-words")


def task_file(lm, data: TaskData) -> str:
    """The task as JSONL rows of text, written as the model reads them (BOS included where it takes one)."""
    decode = lm.codec.decode
    rows = [{"prompt": decode(c), "corrupted": decode(k), "answer": decode([a]), "distractor": decode([d])}
            for c, k, a, d in zip(data.clean.tolist(), data.corrupt.tolist(), data.answers.tolist(),
                                  data.distractors.tolist())]
    return "\n".join(json.dumps(r) for r in rows)


def edge_methods_match(ev: Evaluator, names: set[str]) -> None:
    """Path patching of the node circuit `names` and EAP / EAP-IG of every edge match the independent evaluator."""
    independent = Independent(ev.lm.model, ev.data, "patch")
    candidates = ev.graph.circuit_edges(names)
    ours_pp = path_patch(ev, ev.graph.mask(names), candidates)
    theirs_pp = independent.path_patching(ev.graph, names, [e.key for e in candidates])
    assert max(abs(ours_pp[k] - theirs_pp[k]) for k in theirs_pp) < 1e-5
    assert max(map(abs, ours_pp.values())) > 1e-3
    for ig_steps in (0, 2):
        ours_eap, theirs_eap = eap_scores(ev, ig_steps), independent.eap(ig_steps)
        assert max(abs(ours_eap[k] - theirs_eap[k]) for k in theirs_eap) < 1e-5


@needs_hooked
def test_a_folder_loads_as_the_model_it_holds_and_every_method_matches(folder: Path) -> None:
    lm = load_model(str(folder))
    hf = AutoModelForCausalLM.from_pretrained(folder).eval()
    data = random_task(lm)
    with torch.no_grad():
        ours, theirs = lm.model(data.clean).log_softmax(-1), hf(data.clean).logits.log_softmax(-1)
    assert (ours - theirs).abs().max() < 1e-4  # TransformerLens computes what the Hugging Face model computes
    edge_methods_match(Evaluator(lm, data, "patch"), {"a0.h1", "a1.h2", "m0"})


@needs_hooked
def test_discover_through_the_cli_on_a_folder(folder: Path, tmp_path: Path) -> None:
    """`circuitdb discover --model ./folder --task file.jsonl`: the runs name the model and hold when re-measured.
    The prompts are written as the model reads them, BOS included where it takes one: it is not added twice."""
    lm = load_model(str(folder))
    task = tmp_path / "words.jsonl"
    task.write_text(task_file(lm, random_task(lm, seed=1)))
    store = f"kuzu:{tmp_path / 'c.kuzu'}"
    result = CliRunner().invoke(main, ["discover", "--model", str(folder), "--task", str(task), "--threshold", "0.8",
                                       "--ablation", "patch", "--store", store])
    assert result.exit_code == 0, result.output
    with Catalog(store, read_only=True) as catalog:
        (info,) = catalog.runs()
        run = catalog.run(info.id)
    assert run.model.name == folder.name and run.model.n_layers == 2
    independent = Independent(lm.model, build_task(str(task), lm), "patch")  # the prompts the run was measured on
    edges = {(e.sender, e.receiver, e.input) for e in run.edges}
    assert independent.faithfulness(edges) == pytest.approx(run.edge_faithfulness, abs=1e-4)
    assert run.edge_faithfulness >= 0.8


def node_faithfulness(bridge, data: TaskData, kept: set[str]) -> float:
    """A node circuit measured on the bare TransformerBridge with plain hooks: every head (hook_z) and MLP
    (hook_mlp_out) not in `kept` takes its value on the prompt's corrupted twin; logits as the bridge outputs them."""
    cfg = bridge.cfg
    names = [f"blocks.{layer}.{point}" for layer in range(cfg.n_layers) for point in ("attn.hook_z", "hook_mlp_out")]
    with torch.no_grad():
        _, corrupt = bridge.run_with_cache(data.corrupt, names_filter=lambda n: n in names)

    def patch(act, hook):
        layer, point = int(hook.name.split(".")[1]), hook.name.split(".", 2)[2]
        if point == "attn.hook_z":
            drop = [h for h in range(cfg.n_heads) if f"a{layer}.h{h}" not in kept]
            act[:, :, drop] = corrupt[hook.name][:, :, drop]
        elif f"m{layer}" not in kept:
            act[:] = corrupt[hook.name]
        return act

    def logit_diff(logits):
        last, rows = logits[:, -1], torch.arange(data.n)
        return (last[rows, data.answers] - last[rows, data.distractors]).mean()

    with torch.no_grad():
        full = logit_diff(bridge(data.clean))
        hooks = [(name, patch) for name in names]
        circuit = logit_diff(bridge.run_with_hooks(data.clean, fwd_hooks=hooks))
    return (circuit / full).item()


def test_a_folder_through_the_bridge_computes_what_hugging_face_does_and_every_method_matches(bridged: Path) -> None:
    """Through the bridge every method matches plain hook edits, node circuits what hooks on the bare bridge measure;
    in Gemma 2, which normalizes the attention output, a head's output is its share of the normalized sum."""
    lm = load_model(f"bridge:{bridged}")
    assert isinstance(lm.model, BridgeModel)
    hf = AutoModelForCausalLM.from_pretrained(bridged).eval()
    data = random_task(lm)
    with torch.no_grad():
        ours, theirs = lm.model(data.clean).log_softmax(-1), hf(data.clean).logits.log_softmax(-1)
    assert (ours - theirs).abs().max() < 1e-4
    ev = Evaluator(lm, data, "patch")
    names = {"a0.h1", "a1.h2", "m0"}
    assert ev.faithfulness(names) == pytest.approx(node_faithfulness(lm.model.bridge, data, names), abs=1e-5)
    edge_methods_match(ev, names)


def test_discover_through_the_cli_on_a_bridge_folder(bridged: Path, tmp_path: Path) -> None:
    """`circuitdb discover --model bridge:./folder`: pruning with path-patched edges and EAP-IG, the runs holding when
    re-measured on the bare bridge (nodes) and by the independent evaluator (edges)."""
    lm = load_model(f"bridge:{bridged}")
    task = tmp_path / "words.jsonl"
    task.write_text(task_file(lm, random_task(lm, seed=1)))
    store = f"kuzu:{tmp_path / 'c.kuzu'}"
    result = CliRunner().invoke(main, ["discover", "--model", f"bridge:{bridged}", "--task", str(task), "--threshold",
                                       "0.8", "--ablation", "patch", "--method", "prune", "--method", "eap-ig",
                                       "--ig-steps", "2", "--store", store])
    assert result.exit_code == 0, result.output
    with Catalog(store, read_only=True) as catalog:
        runs = {info.method: catalog.run(info.id) for info in catalog.runs()}
    assert set(runs) == {"prune", "eap-ig"}
    data = build_task(str(task), lm)
    independent = Independent(lm.model, data, "patch")
    for run in runs.values():
        assert run.model.name == bridged.name and run.model.n_layers == 2
        kept = {(e.sender, e.receiver, e.input) for e in run.edges}
        assert independent.faithfulness(kept) == pytest.approx(run.edge_faithfulness, abs=1e-4)
        assert run.edge_faithfulness >= 0.8
    pruned = runs["prune"]
    assert node_faithfulness(lm.model.bridge, data, set(pruned.components)) == pytest.approx(pruned.faithfulness, abs=1e-4)
    assert pruned.faithfulness >= 0.8


def test_an_sae_saved_on_a_bridge_reads_its_hook_and_finds_features_through_it(tmp_path: Path) -> None:
    """An SAELens folder naming the bridge's own hook point (`blocks.1.hook_in`, as SAELens on a bridge saves it)
    reads the residual stream entering block 1 on the bridge and on the converted model; a feature circuit found
    through the bridge holds when re-measured with plain hooks on the bare bridge."""
    folder = save("llama", tmp_path)
    torch.manual_seed(0)
    sae = FolderSAE(SAEConfig(d_in=32, d_sae=64, hook_name="blocks.1.hook_in"))
    with torch.no_grad():
        for parameter in (sae.W_enc, sae.W_dec):
            parameter.normal_()
        sae.W_dec /= sae.W_dec.norm(dim=-1, keepdim=True)
    write_folder(sae, tmp_path / "sae")
    lm = load_model(f"bridge:{folder}")
    for model in (lm, load_model(str(folder))):
        dictionary = load_dictionary(str(tmp_path / "sae"), model)
        assert (dictionary.hook, dictionary.name) == ("blocks.1.hook_resid_pre", "resid1")
    task = tmp_path / "words.jsonl"
    task.write_text(task_file(lm, random_task(lm, seed=2)))
    with Catalog(f"kuzu:{tmp_path / 'c.kuzu'}") as catalog:
        (info,) = catalog.features_discover(f"bridge:{folder}", [str(tmp_path / "sae")], [str(task)], [0.8])
        run = catalog.run(info.id)
    kept = {n for n in run.components if n != "logits"}
    assert any(n.startswith("fresid1/") and n != "fresid1/err" for n in kept)
    measured = feature_faithfulness(lm.model.bridge, [load_dictionary(str(tmp_path / "sae"), lm)],
                                    build_task(str(task), lm), kept)
    assert measured == pytest.approx(run.faithfulness, abs=1e-4) and measured >= 0.8


def test_a_plain_folder_loads_as_the_installed_transformer_lens_can(tmp_path: Path) -> None:
    """`--model ./folder` converts to a HookedTransformer under TransformerLens 3 and goes through the bridge under 4,
    where the toy model (a HookedTransformer) is refused in one line."""
    lm = load_model(str(save("gpt2", tmp_path)))
    if HookedTransformer is not None:
        assert hooked(lm.model)
        return
    assert isinstance(lm.model, BridgeModel)
    result = CliRunner().invoke(main, ["discover", "--model", "toy", "--task", "digits", "--threshold", "0.8",
                                       "--store", f"kuzu:{tmp_path / 'c.kuzu'}"])
    assert result.exit_code == 1 and "the toy model is a HookedTransformer" in result.output


@needs_hooked
def test_edge_methods_refuse_a_model_whose_heads_do_not_add_up() -> None:
    """A LayerNorm after attention centres the heads' sum, so no share of it is a head's own: the edge methods say so
    in one line instead of scoring edges that mean nothing. (TransformerLens builds post-attention norms as RMSNorm
    only, so the LayerNorm is put in by hand.)"""
    from transformer_lens.components import LayerNorm

    cfg = HookedTransformerConfig(n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=64, d_vocab=40, n_ctx=8,
                                  act_fn="gelu", normalization_type="RMS", use_normalization_before_and_after=True, seed=0)
    model = HookedTransformer(cfg)
    for block in model.blocks:
        block.ln1_post = LayerNorm(cfg)
    lm = LoadedModel("post-ln", prepare(model), None, "test")
    clean, corrupt = torch.randint(0, 40, (2, 8, 6), generator=torch.Generator().manual_seed(0))
    data = TaskData.from_tokens(clean, corrupt, clean[:, 0], clean[:, 1], name="random")
    ev = Evaluator(lm, data, "patch")
    with pytest.raises(CircuitdbError, match="do not add up to what attention adds"):
        eap_scores(ev)


def test_grouped_query_attention_through_the_bridge_prunes_nodes_and_refuses_edges(tmp_path: Path) -> None:
    """The bridge keeps keys and values grouped (no per-head k/v input): node circuits still measure what hooks on the
    bare bridge do, and the edge methods say in one line how to get edges (TransformerLens's conversion ungroups)."""
    path = save("llama", tmp_path, num_key_value_heads=2)
    lm = load_model(f"bridge:{path}")
    data = random_task(lm)
    ev = Evaluator(lm, data, "patch")
    names = {"a0.h1", "a1.h2", "m0"}
    assert ev.faithfulness(names) == pytest.approx(node_faithfulness(lm.model.bridge, data, names), abs=1e-5)
    with pytest.raises(CircuitdbError, match="does not ungroup"):
        eap_scores(ev)


def test_a_bridge_object_from_python_makes_runs_that_hold(tmp_path: Path) -> None:
    """`Catalog.discover` takes a TransformerBridge booted in Python (named by its folder) and tasks as token ids."""
    from transformer_lens.model_bridge import TransformerBridge

    folder = save("llama", tmp_path)
    words = PreTrainedTokenizerFast.from_pretrained(folder)
    bridge = TransformerBridge.boot_transformers(str(folder), tokenizer=words, device="cpu")
    lm = LoadedModel.of(bridge)
    data = random_task(lm, seed=3)
    with Catalog(f"kuzu:{tmp_path / 'c.kuzu'}") as catalog:
        (info,) = catalog.discover(bridge, [data], [0.8], ablation="patch")
        run = catalog.run(info.id)
    assert run.model.name == "tiny-llama" and run.task.name == "random-words"
    kept = {(e.sender, e.receiver, e.input) for e in run.edges}
    assert Independent(lm.model, data, "patch").faithfulness(kept) == pytest.approx(run.edge_faithfulness, abs=1e-4)
    assert run.edge_faithfulness >= 0.8
