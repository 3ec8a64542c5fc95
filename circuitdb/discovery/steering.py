"""Steering vectors: mean-difference directions in the residual stream, their SAE decompositions and their effects.

`build` takes the mean residual (at each prompt's last position) entering block L over one prompt set minus another;
`decompose` explains a vector with a dictionary's decoder directions (encoder read-out, and a k-sparse fit by orthogonal
matching pursuit, with the reconstruction cosine); `effects` adds coef x vector and reports which later features move.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from circuitdb.discovery.models import LoadedModel
from circuitdb.discovery.sae import Dictionary
from circuitdb.discovery.tasks import build_task
from circuitdb.errors import CircuitdbError
from circuitdb.ingest.files import read_text


@dataclass
class Decomposition:
    """A vector explained by features: OMP coefficients on unit decoder directions, the encoder's read-out, cosines."""

    omp: dict[int, float]
    omp_cosine: float
    encoder: dict[int, float]
    encoder_cosine: float


def prompt_groups(spec: str, lm: LoadedModel, n_prompts: int = 64, seed: int = 0) -> list[torch.Tensor]:
    """Token batches of one prompt set: a task's solved clean prompts, or a text file with one prompt per line
    (grouped by token length, so prompts may differ in length)."""
    path = Path(spec)
    if path.suffix == ".txt" or path.is_file():
        if not path.is_file():
            raise CircuitdbError(f"{spec}: no such prompt file")
        lines = [line.strip() for line in read_text(path).splitlines() if line.strip()]
        if not lines:
            raise CircuitdbError(f"{spec}: no prompts (one per line)")
        groups: dict[int, list[torch.Tensor]] = {}
        for line in lines:
            ids = lm.tokens([line])
            groups.setdefault(ids.shape[1], []).append(ids)
        return [torch.cat(rows) for rows in groups.values()]
    return [build_task(spec, lm, n_prompts, seed).clean]


def mean_last(lm: LoadedModel, groups: list[torch.Tensor], layer: int) -> torch.Tensor:
    """Mean over prompts of the residual stream entering block `layer` at the last position `[d_model]`."""
    total, count = torch.zeros(lm.model.cfg.d_model, device=lm.device), 0
    with torch.no_grad():
        for tokens in groups:
            resid = lm.model(tokens, stop_at_layer=layer)
            total += resid[:, -1].sum(0)
            count += tokens.shape[0]
    return total / count


def build(lm: LoadedModel, layer: int, plus: list[torch.Tensor], minus: list[torch.Tensor]) -> torch.Tensor:
    """mean(plus) - mean(minus) at the last position of the residual stream entering block `layer`."""
    if not 0 <= layer < lm.model.cfg.n_layers:
        raise CircuitdbError(f"--layer must be in 0..{lm.model.cfg.n_layers - 1} for model {lm.name}, got {layer}")
    return mean_last(lm, plus, layer) - mean_last(lm, minus, layer)


def _check(layer: int, dictionary: Dictionary) -> None:
    """A vector can only be explained by a dictionary of the same residual stream."""
    if not dictionary.hook.endswith("hook_resid_pre") or dictionary.layer != layer:
        raise CircuitdbError(f"the vector lives in the residual stream entering block {layer}; dictionary {dictionary.name} "
                             f"reads {dictionary.hook}")


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two vectors."""
    return torch.nn.functional.cosine_similarity(a, b, dim=0).item()


def decompose(vector: torch.Tensor | list[float], layer: int, dictionary: Dictionary, k: int) -> Decomposition:
    """OMP with `k` unit decoder directions (coefficients least-squares refit each step), and the encoder read-out
    (v @ W_enc) whose top-k directions, least-squares fitted, give the encoder's cosine."""
    vector = torch.as_tensor(vector, dtype=torch.float32, device=dictionary.sae.W_dec.device)
    _check(layer, dictionary)
    if not 1 <= k <= dictionary.size:
        raise CircuitdbError(f"--top-k must be in 1..{dictionary.size}, got {k}")
    atoms = dictionary.directions  # [F, d]
    chosen: list[int] = []
    residual, coefs = vector.clone(), torch.zeros(0)
    for _ in range(k):
        scores = (atoms @ residual).abs()
        scores[chosen] = -1
        chosen.append(int(scores.argmax()))
        coefs = _fit(atoms[chosen], vector)
        residual = vector - coefs @ atoms[chosen]
    read = vector @ dictionary.sae.W_enc.detach()
    top = read.abs().topk(k).indices.tolist()
    enc_coefs = _fit(atoms[top], vector)
    return Decomposition(
        {i: c for i, c in zip(chosen, coefs.tolist())}, cosine(coefs @ atoms[chosen], vector),
        {i: read[i].item() for i in top}, cosine(enc_coefs @ atoms[top], vector),
    )


def _fit(atoms: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """Least-squares coefficients of `vector` on the rows of `atoms`."""
    return torch.linalg.lstsq(atoms.T, vector[:, None]).solution[:, 0]


def effects(lm: LoadedModel, vector: torch.Tensor | list[float], layer: int, coef: float, groups: list[torch.Tensor],
            dictionaries: list[Dictionary], top: int = 10) -> tuple[dict[str, torch.Tensor], list[tuple[str, float]]]:
    """Add coef x vector to the residual entering block `layer` at every position; per later dictionary the mean change
    of each feature at the last position `[d_sae]`, and the `top` tokens whose last-position logits rise most."""
    vector = torch.as_tensor(vector, dtype=torch.float32, device=lm.device)
    later = [d for d in dictionaries if d.layer > layer or (d.layer == layer and not d.hook.endswith("resid_pre"))]
    if not later:
        raise CircuitdbError(f"no dictionary reads after the steering point (block {layer}); give a later --sae")
    hooks = [d.hook for d in later]
    deltas = {d.name: torch.zeros(d.size, device=lm.device) for d in later}
    logit_delta, count = torch.zeros(lm.model.cfg.d_vocab, device=lm.device), 0

    def steer(x: torch.Tensor, hook: object) -> torch.Tensor:
        return x + coef * vector

    with torch.no_grad():
        for tokens in groups:
            clean_logits, clean = lm.model.run_with_cache(tokens, names_filter=lambda n: n in hooks)
            with lm.model.hooks(fwd_hooks=[(lm.graph.blocks[layer].resid_pre, steer)]):
                steered_logits, steered = lm.model.run_with_cache(tokens, names_filter=lambda n: n in hooks)
            for d in later:
                deltas[d.name] += (d.encode(steered[d.hook][:, -1]) - d.encode(clean[d.hook][:, -1])).sum(0)
            logit_delta += (steered_logits[:, -1] - clean_logits[:, -1]).sum(0)
            count += tokens.shape[0]
    rising = (logit_delta / count).topk(top)
    codec_words = [lm.codec.decode([i]) for i in rising.indices.tolist()]
    return {n: v / count for n, v in deltas.items()}, list(zip(codec_words, [round(v, 4) for v in rising.values.tolist()]))


def shift_links(deltas: dict[str, torch.Tensor], dictionaries: list[Dictionary], top: int, coef: float) -> list[dict]:
    """The `top` most shifted features per dictionary as SHIFTS link rows (name, delta, layer, coef)."""
    layers = {d.name: d.layer for d in dictionaries}
    return [{"name": f"f{name}/{i}", "delta": round(delta[i].item(), 6), "layer": layers[name], "coef": coef}
            for name, delta in deltas.items() for i in delta.abs().topk(min(top, delta.numel())).indices.tolist()]
