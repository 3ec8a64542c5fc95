"""Discovery across architectures, on tiny random models (no download): Hugging Face folders of GPT-2, GPT-NeoX,
Llama and Qwen 2 loaded through `--model ./folder` (converted to a HookedTransformer), the same and Gemma 2 through
`--model bridge:./folder` (TransformerBridge), and HookedTransformers that are attention-only, LayerNorm-free,
parallel, rotary, gated with RMSNorm, or grouped-query. Per architecture and method: whether it works, its largest
difference from the tests' independent evaluator (and, for folders, the log-probs against the Hugging Face model's),
and its seconds; then pruning with lean blocks against TransformerLens's forward (where lean blocks apply) and
against the bridge. Not a test: it prints figures.

    .venv/bin/python benchmarks/architectures.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from independent import Independent  # the tests' evaluator and fixtures: the checks are the same ones
from test_architectures import BRIDGED, CONFIGS, node_faithfulness, random_task, save, tokenizer
from test_edge_circuits import ARCHITECTURES
from transformers import AutoModelForCausalLM

from circuitdb.discovery.bridge import BridgeModel
from circuitdb.discovery.edges import eap_scores, path_patch
from circuitdb.discovery.evaluate import Evaluator, lean_fits
from circuitdb.discovery.models import LoadedModel, load_model, prepare
from circuitdb.discovery.pruning import prune
from circuitdb.errors import CircuitdbError


def hooked(config: dict) -> LoadedModel:
    """A tiny random HookedTransformer of one shape, without a tokenizer (tasks as token ids)."""
    cfg = HookedTransformerConfig(**{"n_layers": 2, "d_model": 32, "n_heads": 4, "d_head": 8, "d_mlp": 64,
                                     "d_vocab": len(tokenizer()), "n_ctx": 8, "act_fn": "gelu",
                                     "normalization_type": "LN", "seed": 0, "initializer_range": 0.3, **config})
    return LoadedModel("tiny", prepare(HookedTransformer(cfg)), None, "benchmark")


def words_task(lm: LoadedModel):
    """random_task's prompts as token ids, for models without a tokenizer."""
    if lm.codec is not None:
        return random_task(lm)
    from circuitdb.discovery.tasks import TaskData

    generator = torch.Generator().manual_seed(0)
    clean, corrupt = torch.randint(3, lm.model.cfg.d_vocab, (2, 16, 6), generator=generator)
    with torch.no_grad():
        last = lm.model(clean)[:, -1]
    return TaskData.from_tokens(clean, corrupt, last.argmax(-1), last.argmin(-1), name="random-words")


def timed(fn: Callable) -> tuple[object, float]:
    started = time.perf_counter()
    return fn(), time.perf_counter() - started


def measure(name: str, lm: LoadedModel, hf=None) -> list[dict]:
    """One row per method: works, largest difference from the independent evaluator, seconds."""
    data = words_task(lm)
    ev = Evaluator(lm, data, "patch")
    # the independent evaluator splits q/k/v inputs per head, which a bridge's grouped-query attention does not have
    independent = None if ev.graph.grouped else Independent(lm.model, data, "patch")
    rows = []
    if hf is not None:
        with torch.no_grad():
            gap = (lm.model(data.clean).log_softmax(-1) - hf(data.clean).logits.log_softmax(-1)).abs().max().item()
        rows.append({"architecture": name, "method": "load (log-probs vs HF)", "works": True, "error": gap,
                     "seconds": None})
    names = {"a0.h1", "a1.h2"} | ({"m0"} if ev.graph.has_mlps else set())
    pruned, seconds = timed(lambda: prune(ev, 0.8))
    kept = set(pruned.names)
    if isinstance(lm.model, BridgeModel):  # node ablation by plain hooks on the bare bridge (heads may not add up)
        error = abs(ev.faithfulness(kept) - node_faithfulness(lm.model.bridge, data, kept))
    else:
        edges = {e.key for e in ev.graph.circuit_edges(kept)}
        error = None if independent is None else abs(ev.faithfulness(kept) - independent.faithfulness(edges))
    rows.append({"architecture": name, "method": "prune (nodes)", "works": True, "seconds": seconds, "error": error})

    def path() -> dict:
        candidates = ev.graph.circuit_edges(names)
        ours = path_patch(ev, ev.graph.mask(names), candidates)
        theirs = independent.path_patching(ev.graph, names, [e.key for e in candidates])
        return max(abs(ours[k] - theirs[k]) for k in theirs)

    for method, run in (("path patching", path), ("EAP", lambda: eap_gap(ev, independent, 0)),
                        ("EAP-IG (5 steps)", lambda: eap_gap(ev, independent, 5))):
        try:
            error, seconds = timed(run)
            rows.append({"architecture": name, "method": method, "works": True, "error": error, "seconds": seconds})
        except CircuitdbError as exc:
            rows.append({"architecture": name, "method": method, "works": False, "error": None, "seconds": None,
                         "why": str(exc)[:70]})
    return rows


def eap_gap(ev: Evaluator, independent: Independent, steps: int) -> float:
    ours, theirs = eap_scores(ev, steps), independent.eap(steps)
    return max(abs(ours[k] - theirs[k]) for k in theirs)


def lean_against_tl(name: str, lm: LoadedModel, bridged: LoadedModel | None = None) -> dict:
    """Pruning with lean blocks against TransformerLens's forward on the same model (same circuit expected), and
    against the same folder through the bridge."""
    data = words_task(lm)
    (lean, lean_s), (plain, plain_s) = (timed(lambda lean=lean: prune(Evaluator(lm, data, "patch", lean=lean), 0.8))
                                        for lean in (True, False))
    row = {"architecture": name, "lean blocks": lean_fits(lm.model), "lean s": lean_s, "TL forward s": plain_s,
           "TL forward / lean": plain_s / lean_s, "same circuit": lean.names == plain.names}
    if bridged is not None:
        bridge, row["bridge s"] = timed(lambda: prune(Evaluator(bridged, data, "patch"), 0.8))
        row["bridge / TL forward"] = row["bridge s"] / plain_s
        row["bridge: same circuit"] = bridge.names == plain.names
    return row


def main() -> None:
    torch.set_num_threads(1)
    rows, lean_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in BRIDGED:
            folder = save(arch, Path(tmp))
            hf = AutoModelForCausalLM.from_pretrained(folder).eval()
            bridged = load_model(f"bridge:{folder}")
            if arch in CONFIGS:
                lm = load_model(str(folder))
                rows += measure(f"{arch} (folder)", lm, hf)
                lean_rows.append(lean_against_tl(f"{arch} (folder)", lm, bridged))
            rows += measure(f"{arch} (bridge)", bridged, hf)
    for name, config in ARCHITECTURES.items():
        lm = hooked(config)
        rows += measure(name, lm)
        lean_rows.append(lean_against_tl(name, lm))
    with pd.option_context("display.width", 200, "display.max_rows", 200, "display.float_format", "{:.3g}".format):
        print(pd.DataFrame(rows).to_string(index=False, na_rep=""))
        print("\npruning at 0.8, lean blocks (where they apply) against TransformerLens's forward:")
        print(pd.DataFrame(lean_rows).to_string(index=False))


if __name__ == "__main__":
    main()
