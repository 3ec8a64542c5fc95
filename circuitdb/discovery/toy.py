"""The toy sequence-continuation model: a small word-level HookedTransformer trained in about a minute on CPU.

It gives discovery a model whose circuits can be found and checked without downloading anything.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from circuitdb.discovery.codec import WordCodec
from circuitdb.discovery.lens import HookedTransformer, HookedTransformerConfig, require_hooked
from circuitdb.discovery.tasks.sequences import NAMES, PUNCTUATION, SEQUENCES, TEMPLATES, VERBS, WORDS, fillers, render
from circuitdb.errors import CircuitdbError
from circuitdb.progress import Reporter

TOY_NAME = "toy-seqcont"
TOY_PATH = Path(__file__).parent / "data" / "toy_seqcont.pt"

# the model's shape; the hook flags are what discovery patches (hook_result, hook_q/k/v_input, hook_mlp_in)
SHAPE: dict[str, Any] = {
    "n_layers": 4, "d_model": 64, "n_heads": 4, "d_head": 16, "d_mlp": 256, "n_ctx": 48, "act_fn": "gelu",
    "normalization_type": "LN", "positional_embedding_type": "standard", "model_name": TOY_NAME,
    "use_attn_result": True, "use_split_qkv_input": True, "use_hook_mlp_in": True,
}
# training runs without the per-head result and split-input hooks, which cost 5-10x per step; the weights are the same
FAST = {"use_attn_result": False, "use_split_qkv_input": False}

STEPS = (1, 2, 3)  # the strides of the training sequences, in both directions
SHOWN = (3, 4, 5)  # how many members a prompt shows before the one to predict
FILLER_DRAWS = 2  # random filler draws per sequence run and template
HELDOUT_FRACTION = 0.1
TASK_SEQUENCES = ("digits", "numwords", "months")  # the discovery tasks' sequences: 4 shown, increasing, step 1
TASK_HELDOUT = 2  # prompts of each task sequence x template shape forced into the held-out set

MAX_STEPS = 6000
THREADS = 1  # pinned: fastest on a small shared CPU, and weights depend on it
EVAL_EVERY = 50
BATCH = 128
LR = 3e-3
WARMUP = 100
WEIGHT_DECAY = 0.01


@dataclass(frozen=True)
class Example:
    """One prompt ("<bos> ..." up to the answer) with its next-member target and the shape it was drawn from."""

    prompt: str
    target: str
    sequence: str
    template: str | None
    shown: int
    step: int  # signed: negative for decreasing sequences

    def is_task_shape(self) -> bool:
        """Whether this is the shape the discovery tasks use: 4 shown members, increasing, step 1."""
        return self.shown == 4 and self.step == 1


def toy_vocab() -> list[str]:
    """The toy vocabulary: "<bos>", "<pad>", then every sequence member, filler and template word, each once, in order."""
    words = ["<bos>", "<pad>", *(m for members in SEQUENCES.values() for m in members), *WORDS, *NAMES, *VERBS, *PUNCTUATION]
    return list(dict.fromkeys(words))


def toy_codec() -> WordCodec:
    """The toy model's tokenizer."""
    return WordCodec(toy_vocab(), TOY_NAME)


def toy_config(n_vocab: int, seed: int) -> HookedTransformerConfig:
    """The toy model's config for a vocabulary of `n_vocab` words, initialised from `seed`."""
    return HookedTransformerConfig(**SHAPE, d_vocab=n_vocab, seed=seed)


def _runs(members: list[str]) -> list[tuple[list[str], str, int]]:
    """Every (shown members, next member, signed step) inside the list, for each stride, direction and length."""
    runs = []
    for step in (*STEPS, *(-s for s in STEPS)):
        for shown in SHOWN:
            for start in range(len(members)):
                idx = [start + step * i for i in range(shown + 1)]
                if all(0 <= i < len(members) for i in idx):
                    runs.append(([members[i] for i in idx[:-1]], members[idx[-1]], step))
    return runs


def _examples(rng: np.random.Generator) -> list[Example]:
    """All bare and templated prompts of every sequence, fillers drawn from `rng`, duplicates dropped."""
    examples = []
    for name, members in SEQUENCES.items():
        for shown, target, step in _runs(members):
            examples.append(Example("<bos> " + render(None, shown, []), target, name, None, len(shown), step))
            for template, text in TEMPLATES.items():
                for _ in range(FILLER_DRAWS):
                    words = [str(w) for w in rng.choice(fillers(text), size=len(shown) + 1, replace=False)]
                    examples.append(Example("<bos> " + render(text, shown, words), target, name, template, len(shown), step))
    return list({e.prompt: e for e in examples}.values())


def toy_dataset(seed: int) -> tuple[list[Example], list[Example]]:
    """(train, held-out): a random 10 % held out, plus a few task-shape prompts of every task sequence and template."""
    rng = np.random.default_rng(seed)
    examples = _examples(rng)
    order = rng.permutation(len(examples))
    heldout = set(order[: round(HELDOUT_FRACTION * len(examples))].tolist())
    for name in TASK_SEQUENCES:
        for template in (None, *TEMPLATES):
            group = [i for i in order.tolist() if examples[i].sequence == name and examples[i].template == template
                     and examples[i].is_task_shape()]
            missing = TASK_HELDOUT - len(heldout.intersection(group))
            heldout.update([i for i in group if i not in heldout][: max(missing, 0)])
    train = [e for i, e in enumerate(examples) if i not in heldout]
    return train, [examples[i] for i in sorted(heldout)]


def _tensors(codec: WordCodec, prompts: list[str], targets: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(tokens right-padded with <pad>, lengths, target ids) for a list of prompts."""
    encoded = [codec.encode(p) for p in prompts]
    tokens = torch.full((len(encoded), max(map(len, encoded))), codec.token_id("<pad>"), dtype=torch.long)
    for row, ids in enumerate(encoded):
        tokens[row, : len(ids)] = torch.tensor(ids)
    lengths = torch.tensor([len(ids) for ids in encoded])
    return tokens, lengths, torch.tensor([codec.token_id(t) for t in targets])


def _last_logits(model: HookedTransformer, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The logits at each prompt's last real position (the model is causal, so the padding after it is ignored)."""
    logits = model(tokens[:, : int(lengths.max())], return_type="logits")
    return logits[torch.arange(len(tokens)), lengths - 1]


@torch.no_grad()
def _accuracy(model: HookedTransformer, tokens: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor) -> float:
    """Top-1 accuracy of the target at the last real position, in batches."""
    hits = 0
    for lo in range(0, len(tokens), 1024):
        rows = slice(lo, lo + 1024)
        hits += int((_last_logits(model, tokens[rows], lengths[rows]).argmax(-1) == targets[rows]).sum())
    return hits / len(tokens)


def _eval_accuracy(model: HookedTransformer, split: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> float:
    """`_accuracy` measured in eval mode, leaving the model in the mode it was in."""
    was_training = model.training
    model.eval()
    accuracy = _accuracy(model, *split)
    model.train(was_training)
    return accuracy


def evaluate_toy(model: HookedTransformer, codec: WordCodec, prompts: list[str], targets: list[str]) -> float:
    """Top-1 accuracy of `model` predicting each target word right after its prompt."""
    return _eval_accuracy(model, _tensors(codec, prompts, targets))


def example_tensors(codec: WordCodec, examples: list[Example]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The tensors of a list of examples."""
    return _tensors(codec, [e.prompt for e in examples], [e.target for e in examples])


def train_toy(seed: int = 0, steps: int | None = None,
              progress: Callable[[int, int, float], None] | None = None) -> tuple[HookedTransformer, WordCodec, dict]:
    """Train the toy model from `seed` (same seed, same weights) and return it with its codec and training report.

    With `steps` None it stops at the first check where every held-out prompt is right (at most MAX_STEPS);
    with a number it trains exactly that many steps. `progress(step, total, loss)` is called at every check.
    """
    require_hooked("the toy model")
    started, threads = time.perf_counter(), torch.get_num_threads()
    torch.set_num_threads(THREADS)  # the thread count changes float reduction order, hence the weights
    try:
        codec = toy_codec()
        train, heldout = toy_dataset(seed)
        train_t, heldout_t = example_tensors(codec, train), example_tensors(codec, heldout)
        torch.manual_seed(seed)
        model = HookedTransformer(HookedTransformerConfig(**{**SHAPE, **FAST}, d_vocab=len(codec.vocab), seed=seed))
        done = _fit(model, train_t, heldout_t, np.random.default_rng(seed), steps, progress)
        # scored before the hooks discovery needs are switched on: same weights, a fraction of the cost
        accuracy = {"train_accuracy": _accuracy(model.eval(), *train_t), "heldout_accuracy": _accuracy(model, *heldout_t)}
        model = _hooked(model)
        report = {
            "seed": seed, "steps": done, "seconds": round(time.perf_counter() - started, 1), **accuracy,
            "n_train": len(train), "n_heldout": len(heldout), "torch": str(torch.__version__), "threads": THREADS,
        }
    finally:
        torch.set_num_threads(threads)
    return model, codec, report


def _fit(model: HookedTransformer, train: tuple[torch.Tensor, ...], heldout: tuple[torch.Tensor, ...], rng: np.random.Generator,
         steps: int | None, progress: Callable[[int, int, float], None] | None) -> int:
    """AdamW on the last-position cross-entropy; returns the number of steps taken (see `train_toy` for `steps`)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / WARMUP))
    total = MAX_STEPS if steps is None else steps
    tokens, lengths, targets = train
    for step, rows in enumerate(itertools.islice(_batches(lengths.numpy(), rng), total), 1):
        loss = torch.nn.functional.cross_entropy(_last_logits(model, tokens[rows], lengths[rows]), targets[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % EVAL_EVERY == 0 or step == total:
            if progress:
                progress(step, total, float(loss))
            if steps is None and _eval_accuracy(model, heldout) == 1.0:
                return step
    return total


def _batches(lengths: np.ndarray, rng: np.random.Generator) -> Iterator[torch.Tensor]:
    """Endless epochs of row batches, each batch of prompts of one length (little padding), in random order."""
    while True:
        epoch = []
        for length in np.unique(lengths):
            rows = rng.permutation(np.flatnonzero(lengths == length))
            epoch += [torch.from_numpy(rows[lo : lo + BATCH]) for lo in range(0, len(rows), BATCH)]
        yield from (epoch[i] for i in rng.permutation(len(epoch)))


def _hooked(trained: HookedTransformer) -> HookedTransformer:
    """The trained weights in a model built from `toy_config`, with every hook discovery needs, in eval mode."""
    model = HookedTransformer(toy_config(trained.cfg.d_vocab, trained.cfg.seed))
    model.load_state_dict(trained.state_dict())
    return model.eval()


def save_toy(model: HookedTransformer, codec: WordCodec, report: dict, path: Path = TOY_PATH) -> None:
    """Write the model's config, weights, vocabulary and training report to `path`."""
    config = {key: getattr(model.cfg, key) for key in [*SHAPE, "d_vocab", "seed"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": config, "state_dict": model.state_dict(), "vocab": codec.vocab, "report": report}, path)


def load_toy(path: Path | None = None, saved: dict | None = None) -> tuple[HookedTransformer, WordCodec, dict]:
    """The saved toy model in eval mode, its codec and its training report (from `saved`, the file's contents,
    when the caller has read it already); CircuitdbError if it cannot be read."""
    require_hooked("the toy model")
    path = path or TOY_PATH
    if saved is None and not path.is_file():
        raise CircuitdbError(f"no toy model at {path}: run `circuitdb toy train`")
    try:
        saved = saved if saved is not None else torch.load(path, map_location="cpu", weights_only=True)
        model = HookedTransformer(HookedTransformerConfig(**saved["config"]))
        model.load_state_dict(saved["state_dict"])
        codec, report = WordCodec(saved["vocab"], TOY_NAME), saved["report"]
    except Exception as exc:  # any unpickling, key or shape failure means the same thing: the file is unusable
        reason = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0].split('. ')[0]}"
        raise CircuitdbError(f"toy model {path} is unreadable ({reason}): run `circuitdb toy train`") from exc
    model.eval()
    return model, codec, report


def train_and_save(seed: int = 0, path: Path | None = None, reporter: Reporter | None = None,
                   steps: int | None = None) -> tuple[Path, dict]:
    """`toy train`: retrain the toy model (`steps`: exactly so many, else until it is right on held-out prompts) and
    save it to `path` (default: the shipped checkpoint)."""
    if steps is not None and steps < 1:
        raise CircuitdbError(f"--steps must be at least 1, got {steps}")
    advance = (reporter or Reporter()).start("training the toy model")
    model, codec, report = train_toy(seed, steps, progress=lambda step, total, accuracy: advance(1))
    path = path or TOY_PATH
    save_toy(model, codec, report, path)
    return path, report
