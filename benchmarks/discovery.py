"""Discovery speed: node pruning (layer-cached and batched vs one full forward per candidate) and EAP over the full graph.

Measured on a GPT-2-small-shaped random model (12 layers x 12 heads, d_model 768, 32 prompts x 16 tokens) and on the
shipped toy model, in one run so the ratios compare like with like. Not a test: it prints figures.

    .venv/bin/python benchmarks/discovery.py [--threads 1] [--threshold 0.8] [--skip-gpt2]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from circuitdb.discovery.edges import eap_scores
from circuitdb.discovery.evaluate import Evaluator
from circuitdb.discovery.graph import all_edges
from circuitdb.discovery.models import LoadedModel, load_model, prepare
from circuitdb.discovery.pruning import prune, prune_plain
from circuitdb.discovery.tasks import TaskData, build_task


def gpt2_shaped(n_prompts: int = 32, n_tokens: int = 16, seed: int = 0) -> tuple[LoadedModel, TaskData]:
    """A random model of GPT-2 small's shape; answers are its own top tokens so the logit difference is positive."""
    torch.manual_seed(seed)
    cfg = HookedTransformerConfig(n_layers=12, d_model=768, n_heads=12, d_head=64, d_mlp=3072, d_vocab=50257,
                                  n_ctx=n_tokens, act_fn="gelu_new", normalization_type="LN", seed=seed)
    model = prepare(HookedTransformer(cfg))
    clean = torch.randint(0, cfg.d_vocab, (n_prompts, n_tokens))
    corrupt = clean.clone()
    corrupt[:, n_tokens // 2:] = torch.randint(0, cfg.d_vocab, (n_prompts, n_tokens - n_tokens // 2))
    with torch.no_grad():
        ranked = model(clean)[:, -1].argsort(-1, descending=True)
    data = TaskData("random", "benchmark", "random tokens", clean, corrupt, ranked[:, 0], ranked[:, 10])
    return LoadedModel("gpt2-shaped-random", model, None, "random"), data


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def measure(name: str, lm: LoadedModel, data: TaskData, threshold: float) -> dict:
    """Prune both ways (same circuit expected), then EAP over every edge of the full graph."""
    fast_ev, plain_ev = Evaluator(lm, data), Evaluator(lm, data)
    fast, fast_s = timed(lambda: prune(fast_ev, threshold))
    plain, plain_s = timed(lambda: prune_plain(plain_ev, threshold))
    eap_ev = Evaluator(lm, data)
    scores, eap_s = timed(lambda: eap_scores(eap_ev))
    figures = {
        "model": name, "prompts": data.n, "tokens": data.clean.shape[1], "threshold": threshold,
        "circuit_size": len(fast.names), "sweeps": fast.sweeps,
        "pruning_seconds": round(fast_s, 2), "pruning_variant_forwards": fast.passes,
        "pruning_blocks_run": fast_ev.blocks,
        "plain_seconds": round(plain_s, 2), "plain_forwards": plain.passes, "plain_blocks_run": plain_ev.blocks,
        "speedup": round(plain_s / fast_s, 2), "identical_circuits": fast.names == plain.names,
        "eap_edges": len(scores), "eap_seconds": round(eap_s, 2),
    }
    assert len(scores) == len(all_edges(lm.model.cfg))
    return figures


def report(figures: dict) -> None:
    print(f"\n== {figures['model']} ({figures['prompts']} prompts x {figures['tokens']} tokens, "
          f"threshold {figures['threshold']})")
    print(f"pruning, layer-cached + batched: {figures['pruning_seconds']:.2f} s, {figures['pruning_variant_forwards']} "
          f"circuit evaluations, {figures['pruning_blocks_run']} blocks run, {figures['sweeps']} sweeps, "
          f"{figures['circuit_size']} components kept")
    print(f"pruning, one full forward each:  {figures['plain_seconds']:.2f} s, {figures['plain_forwards']} forwards, "
          f"{figures['plain_blocks_run']} blocks run")
    verdict = "PASS" if figures["speedup"] >= 2 and figures["identical_circuits"] else "MISS"
    print(f"speed-up {figures['speedup']:.2f}x (target >= 2x), identical circuits: {figures['identical_circuits']}  [{verdict}]")
    print(f"EAP over all {figures['eap_edges']} edges: {figures['eap_seconds']:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--skip-gpt2", action="store_true", help="only the toy model (the GPT-2-shaped run takes minutes)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    results = []
    toy = load_model("toy")
    results.append(measure("toy", toy, build_task("digits", toy, n_prompts=64), args.threshold))
    report(results[-1])
    if not args.skip_gpt2:
        lm, data = gpt2_shaped()
        results.append(measure("gpt2-small-shaped random", lm, data, args.threshold))
        report(results[-1])
    print(json.dumps(results))


if __name__ == "__main__":
    main()
