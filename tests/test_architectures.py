"""Models researchers use, without downloads: tiny random Hugging Face models of GPT-2, GPT-NeoX (Pythia), Llama and
Qwen 2 saved as local folders with a word-level tokenizer trained here on the toy vocabulary; loaded through
`--model ./folder`, they must compute what the Hugging Face model computes, and every discovery method must match the
independent evaluator on them."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from independent import Independent
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

from circuitdb import Catalog
from circuitdb.cli import main
from circuitdb.discovery.edges import eap_scores, path_patch
from circuitdb.discovery.evaluate import Evaluator
from circuitdb.discovery.models import load_model
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


def tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer trained on the toy vocabulary (no download)."""
    words = [w for w in toy_vocab() if not w.startswith("<")]
    model = Tokenizer(models.WordLevel(unk_token="<unk>"))
    model.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    model.decoder = decoders.WordPiece(cleanup=False)  # words joined by spaces, punctuation kept apart
    model.train_from_iterator([" ".join(words)], trainers.WordLevelTrainer(special_tokens=["<bos>", "<unk>", "<pad>"]))
    return PreTrainedTokenizerFast(tokenizer_object=model, bos_token="<bos>", unk_token="<unk>", pad_token="<pad>")


@pytest.fixture(scope="module", params=list(CONFIGS))
def folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random model of one architecture, saved as a Hugging Face folder (named for its architecture, which
    TransformerLens must not read as the name of a known model)."""
    path = tmp_path_factory.mktemp("models") / f"tiny-{request.param}"
    words = tokenizer()
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(CONFIGS[request.param](len(words))).save_pretrained(path)
    words.save_pretrained(path)
    return path


def random_task(lm, n: int = 16, length: int = 6, seed: int = 0) -> TaskData:
    """Random word prompts (BOS first) whose answer is the model's top next word and distractor its bottom one."""
    rng = random.Random(seed)
    words = [w for w in toy_vocab() if not w.startswith("<")]
    texts = [" ".join(rng.choices(words, k=length)) for _ in range(2 * n)]
    clean, corrupt = lm.tokens(texts[:n]), lm.tokens(texts[n:])
    with torch.no_grad():
        last = lm.model(clean)[:, -1]
    return TaskData.from_tokens(clean, corrupt, last.argmax(-1), last.argmin(-1), name="random-words")


def test_a_folder_loads_as_the_model_it_holds_and_every_method_matches(folder: Path) -> None:
    lm = load_model(str(folder))
    hf = AutoModelForCausalLM.from_pretrained(folder).eval()
    data = random_task(lm)
    with torch.no_grad():
        ours, theirs = lm.model(data.clean).log_softmax(-1), hf(data.clean).logits.log_softmax(-1)
    assert (ours - theirs).abs().max() < 1e-4  # TransformerLens computes what the Hugging Face model computes
    ev, independent = Evaluator(lm, data, "patch"), Independent(lm.model, data, "patch")
    names = {"a0.h1", "a1.h2", "m0"}
    candidates = ev.graph.circuit_edges(names)
    ours_pp = path_patch(ev, ev.graph.mask(names), candidates)
    theirs_pp = independent.path_patching(ev.graph, names, [e.key for e in candidates])
    assert max(abs(ours_pp[k] - theirs_pp[k]) for k in theirs_pp) < 1e-5
    assert max(map(abs, ours_pp.values())) > 1e-3
    for ig_steps in (0, 2):
        ours_eap, theirs_eap = eap_scores(ev, ig_steps), independent.eap(ig_steps)
        assert max(abs(ours_eap[k] - theirs_eap[k]) for k in theirs_eap) < 1e-5


def test_discover_through_the_cli_on_a_folder(folder: Path, tmp_path: Path) -> None:
    """`circuitdb discover --model ./folder --task file.jsonl`: the runs name the model and hold when re-measured.
    The prompts are written as the model reads them, BOS included where it takes one: it is not added twice."""
    lm = load_model(str(folder))
    data = random_task(lm, seed=1)
    decode = lm.codec.decode
    rows = [{"prompt": decode(c), "corrupted": decode(k), "answer": decode([a]), "distractor": decode([d])}
            for c, k, a, d in zip(data.clean.tolist(), data.corrupt.tolist(), data.answers.tolist(),
                                  data.distractors.tolist())]
    task = tmp_path / "words.jsonl"
    task.write_text("\n".join(json.dumps(r) for r in rows))
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
