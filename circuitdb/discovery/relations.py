"""Feature relations: decoder-direction cosine within and across dictionaries of one model, and cross-model matches
by activation correlation on the same prompts. Each relation is (sender, receiver, kind, weight, source)."""

from __future__ import annotations

from itertools import combinations_with_replacement

import torch

from circuitdb.discovery.models import LoadedModel
from circuitdb.discovery.sae import Dictionary
from circuitdb.domain import Relation
from circuitdb.errors import CircuitdbError


def cosine_relations(model: str, dictionaries: list[Dictionary], cutoff: float = 0.5, top: int = 5) -> list[Relation]:
    """Pairs of features whose decoder directions have |cosine| >= cutoff, at most `top` per feature and dictionary
    pair; within a dictionary each pair once. Same-model only: directions of different models share no basis."""
    if not 0 < cutoff <= 1:
        raise CircuitdbError(f"--cutoff must be in (0, 1], got {cutoff}")
    out = []
    for a, b in combinations_with_replacement(sorted(dictionaries, key=lambda d: d.layer), 2):
        if a.sae.cfg.d_in != b.sae.cfg.d_in or a.hook.split(".")[-1] != b.hook.split(".")[-1]:
            continue  # different spaces (e.g. resid vs attn z): no shared geometry
        cos = a.directions @ b.directions.T
        if a is b:
            cos.fill_diagonal_(0)
        values, index = cos.abs().topk(min(top, cos.shape[1]), dim=1)
        for i, row in enumerate(index.tolist()):
            for rank, j in enumerate(row):
                if values[i, rank] < cutoff or (a is b and j <= i and i in index[j].tolist()):
                    continue  # below the cut-off, or the same pair already kept from the other end
                out.append(Relation(model, f"f{a.name}/{i}", model, f"f{b.name}/{j}", "cosine",
                                    round(cos[i, j].item(), 6), f"decoder {a.name}~{b.name}"))
    return out


def feature_activations(lm: LoadedModel, dictionary: Dictionary, tokens: torch.Tensor) -> torch.Tensor:
    """Feature activations `[N * positions, d_sae]` on `tokens` (BOS position dropped), for matching."""
    with torch.no_grad():
        _, cache = lm.model.run_with_cache(tokens, names_filter=dictionary.hook, stop_at_layer=dictionary.layer + 1)
        return dictionary.encode(cache[dictionary.hook][:, 1:]).flatten(0, 1)


def match_features(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each feature of `a` `[T, Fa]`, its best match in `b` `[T, Fb]` by Pearson correlation over the same
    T token positions: (index `[Fa]`, correlation `[Fa]`); features never active correlate 0."""
    za, zb = a - a.mean(0), b - b.mean(0)
    norm_a, norm_b = za.norm(dim=0), zb.norm(dim=0)
    corr = ((za.T @ zb) / (norm_a[:, None] * norm_b[None, :]).clamp_min(1e-12)).clamp(-1, 1)  # float32 may overshoot 1
    corr[norm_a == 0] = 0
    corr[:, norm_b == 0] = 0
    score, index = corr.max(dim=1)
    return index, score.clamp(-1.0, 1.0)  # float32 rounding can pass 1 by a hair (1.000001)


def cross_model_relations(model_a: str, dict_a: Dictionary, acts_a: torch.Tensor, model_b: str, dict_b: Dictionary,
                          acts_b: torch.Tensor, min_score: float = 0.0) -> list[Relation]:
    """Each live feature of model A's dictionary and its top match in model B's, with the correlation as weight."""
    if acts_a.shape[0] != acts_b.shape[0]:
        raise CircuitdbError("the two models tokenize the matching prompts differently; matching needs aligned tokens")
    index, score = match_features(acts_a, acts_b)
    live = acts_a.amax(0) > 0
    return [
        Relation(model_a, f"f{dict_a.name}/{i}", model_b, f"f{dict_b.name}/{j}", "match", round(s, 6),
                 f"activation correlation {model_a}:{dict_a.name}~{model_b}:{dict_b.name}")
        for i, (j, s) in enumerate(zip(index.tolist(), score.tolist())) if live[i] and s >= min_score
    ]


def match_on_prompts(lm_a: LoadedModel, dict_a: Dictionary, lm_b: LoadedModel, dict_b: Dictionary, sources: list[str],
                     min_score: float = 0.0) -> list[Relation]:
    """Match A's features to B's on the prompt sets `sources` (tasks or prompt files), tokenized by each model."""
    from circuitdb.discovery.steering import prompt_groups

    acts = [torch.cat([feature_activations(lm, d, g) for source in sources for g in prompt_groups(source, lm)])
            for lm, d in ((lm_a, dict_a), (lm_b, dict_b))]
    return cross_model_relations(lm_a.name, dict_a, acts[0], lm_b.name, dict_b, acts[1], min_score)
