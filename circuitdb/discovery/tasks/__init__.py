"""Tasks: clean and corrupted token batches with answer and distractor ids, built for one model's tokenizer.

`build_task(spec, lm)` takes a built-in name (`digits`, `numwords`, `months`, `days`, with options `:bare`, `:down`,
`:repeatLast`, `:switchLast`, e.g. `months:bare:down`; `greater_than`) or a path to a YAML/JSONL task file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from circuitdb.discovery.ablation import embed, last_logits, logit_diff
from circuitdb.discovery.models import LoadedModel
from circuitdb.domain import Task
from circuitdb.errors import CircuitdbError


@dataclass
class Prompts:
    """Text form of a task before tokenizing: one answer and one distractor per prompt."""

    name: str
    family: str
    description: str
    clean: list[str]
    corrupt: list[str]
    answers: list[str]
    distractors: list[str]
    templates: list[str] | None = None  # each prompt's template (for means per template); None: one template


@dataclass
class TaskData:
    """Token batches of one task for one model: clean/corrupt `[N, pos]`, answer/distractor ids `[N]`, each prompt's
    template as a number `[N]` when known."""

    name: str
    family: str
    description: str
    clean: torch.Tensor
    corrupt: torch.Tensor
    answers: torch.Tensor
    distractors: torch.Tensor
    templates: torch.Tensor | None = None  # None: one template
    baseline_accuracy: float = 1.0

    @classmethod
    def from_tokens(cls, clean: torch.Tensor, corrupt: torch.Tensor, answers: torch.Tensor | list[int],
                    distractors: torch.Tensor | list[int], name: str = "custom", description: str = "",
                    templates: torch.Tensor | list[int] | None = None) -> TaskData:
        """A task from token ids a user already has: clean and corrupted prompts `[N, pos]` (BOS included where the
        model wants one), answer and distractor ids `[N]`, optionally each prompt's template number `[N]`."""
        clean, corrupt = torch.as_tensor(clean, dtype=torch.long), torch.as_tensor(corrupt, dtype=torch.long)
        answers, distractors = torch.as_tensor(answers, dtype=torch.long), torch.as_tensor(distractors, dtype=torch.long)
        if clean.ndim != 2 or clean.shape != corrupt.shape or clean.shape[1] == 0:
            raise CircuitdbError(f"task {name}: clean and corrupted tokens must be two equal [N, pos] tensors, got "
                                 f"{tuple(clean.shape)} and {tuple(corrupt.shape)}")
        if answers.shape != (clean.shape[0],) or distractors.shape != (clean.shape[0],):
            raise CircuitdbError(f"task {name}: answers and distractors need one id per prompt ({clean.shape[0]}), got "
                                 f"{tuple(answers.shape)} and {tuple(distractors.shape)}")
        groups = None if templates is None else torch.as_tensor(templates, dtype=torch.long)
        if groups is not None and groups.shape != answers.shape:
            raise CircuitdbError(f"task {name}: templates need one number per prompt ({clean.shape[0]})")
        return cls(name, "user", description or "from token ids", clean, corrupt, answers, distractors, groups)

    @classmethod
    def from_prompts(cls, lm: LoadedModel, clean: list[str], corrupt: list[str], answers: list[str],
                     distractors: list[str], name: str = "custom", description: str = "") -> TaskData:
        """A task from prompt texts, tokenized for `lm` (a BOS is added where the model takes one and the prompt does
        not already start with it); answers and distractors must be single tokens."""
        return tokenize(lm, Prompts(name, "user", description or "from prompt lists", clean, corrupt, answers,
                                    distractors))

    def sample(self, n: int, seed: int = 0) -> TaskData:
        """At most `n` prompts, a seeded choice kept in order (every task source honours --prompts)."""
        if self.n <= n:
            return self
        rows = torch.randperm(self.n, generator=torch.Generator().manual_seed(seed))[:n].sort().values
        pick = lambda t: None if t is None else t[rows]  # noqa: E731
        return replace(self, clean=self.clean[rows], corrupt=self.corrupt[rows], answers=self.answers[rows],
                       distractors=self.distractors[rows], templates=pick(self.templates))

    @property
    def n(self) -> int:
        return self.clean.shape[0]

    @property
    def meta(self) -> Task:
        return Task(self.name, self.family, self.description, self.n)

    def dataset_hash(self) -> str:
        """Identity of the exact tokens used, for provenance."""
        digest = hashlib.sha1()
        for tensor in (self.clean, self.corrupt, self.answers, self.distractors):
            digest.update(tensor.numpy().tobytes())
        return digest.hexdigest()[:16]


def tokenize(lm: LoadedModel, prompts: Prompts) -> TaskData:
    """Token ids for `prompts`; answers must be single tokens and all prompts one length."""
    if not prompts.clean:
        raise CircuitdbError(f"task {prompts.name}: the dataset is empty")
    if len({len(prompts.clean), len(prompts.corrupt), len(prompts.answers), len(prompts.distractors)}) != 1:
        raise CircuitdbError(f"task {prompts.name}: prompts, corrupted prompts, answers and distractors differ in number")
    clean, corrupt = lm.tokens(prompts.clean), lm.tokens(prompts.corrupt)
    if clean.shape != corrupt.shape:
        raise CircuitdbError(f"task {prompts.name}: corrupted prompts are {corrupt.shape[1]} tokens, clean ones {clean.shape[1]}")
    answers = torch.tensor([lm.codec.token_id(a) for a in prompts.answers])
    distractors = torch.tensor([lm.codec.token_id(d) for d in prompts.distractors])
    labels = prompts.templates or [""] * len(prompts.clean)
    templates = torch.tensor([sorted(set(labels)).index(label) for label in labels])
    return TaskData(prompts.name, prompts.family, prompts.description, clean, corrupt, answers, distractors, templates)


def keep_solved(lm: LoadedModel, data: TaskData, min_prompts: int = 4) -> TaskData:
    """Keep prompts the model solves (top-1 is the answer and p(answer) > 2 p(distractor)); fail clearly if too few."""
    with torch.no_grad():
        logits = last_logits(lm.model, lm.model(data.clean, stop_at_layer=lm.model.cfg.n_layers))
    probs = logits.softmax(-1)
    rows = torch.arange(data.n)
    top1 = logits.argmax(-1) == data.answers
    solved = top1 & (probs[rows, data.answers] > 2 * probs[rows, data.distractors])
    accuracy = top1.float().mean().item()
    if int(solved.sum()) < min_prompts:
        raise CircuitdbError(
            f"model {lm.name} fails task {data.name}: baseline top-1 accuracy {accuracy:.0%}, "
            f"{int(solved.sum())} of {data.n} prompts solved (need {min_prompts})"
        )
    keep = solved.nonzero()[:, 0]
    templates = None if data.templates is None else data.templates[keep]
    return replace(data, clean=data.clean[keep], corrupt=data.corrupt[keep], answers=data.answers[keep],
                   distractors=data.distractors[keep], templates=templates, baseline_accuracy=accuracy)


def full_logit_diff(lm: LoadedModel, data: TaskData) -> float:
    """Mean logit difference of the whole model on the clean prompts (the denominator of performance)."""
    with torch.no_grad():
        resid = lm.model(embed(lm.model, data.clean), start_at_layer=0, stop_at_layer=lm.model.cfg.n_layers)
        return logit_diff(lm.model, resid, data.answers, data.distractors).item()


def build_task(spec: str | Prompts | TaskData, lm: LoadedModel, n_prompts: int = 64, seed: int = 0,
               min_prompts: int = 4) -> TaskData:
    """A validated task: built-in by name, from a file, or given as prompts or tokens; tokenized, at most `n_prompts`
    prompts, filtered to those the model solves."""
    from circuitdb.discovery.tasks.greater_than import greater_than_prompts
    from circuitdb.discovery.tasks.seqcont import seqcont_prompts
    from circuitdb.discovery.tasks.user import read_task_file

    if isinstance(spec, TaskData | Prompts):
        given = spec
    elif spec.endswith((".yaml", ".yml", ".jsonl")) or Path(spec).is_file():
        given = read_task_file(Path(spec))
    elif spec.split(":")[0] == "greater_than":
        given = greater_than_prompts(n_prompts, seed)
    else:
        given = seqcont_prompts(spec, n_prompts, seed)
    tokens = given if isinstance(given, TaskData) else tokenize(lm, given)
    if int(tokens.clean.max()) >= lm.model.cfg.d_vocab or int(tokens.answers.max()) >= lm.model.cfg.d_vocab:
        raise CircuitdbError(f"task {tokens.name}: token ids beyond the vocabulary of {lm.name} ({lm.model.cfg.d_vocab})")
    data = keep_solved(lm, tokens.sample(n_prompts, seed), min_prompts)
    if full_logit_diff(lm, data) <= 0:
        raise CircuitdbError(f"model {lm.name} does not prefer the answers of task {data.name} (mean logit difference <= 0)")
    return data
