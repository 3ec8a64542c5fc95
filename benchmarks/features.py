"""SAE feature figures on the toy model: SAE training (seconds, FVU, dead fraction, L0), attribution vs exact ablation,
feature edges vs exact patching, steering decomposition cosine, and permuted-dictionary matching. Not a test: it prints.

    .venv/bin/python benchmarks/features.py [--skip-training]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from circuitdb.discovery.features import FeatureEvaluator, node_name
from circuitdb.discovery.methods.sae_attr import select
from circuitdb.discovery.models import load_model
from circuitdb.discovery.relations import feature_activations, match_features
from circuitdb.discovery.sae import load_dictionary, train_toy_saes
from circuitdb.discovery.steering import build, decompose, prompt_groups
from circuitdb.discovery.tasks import build_task


def spearman(a: list[float], b: list[float]) -> float:
    return round(float(pd.DataFrame({"a": a, "b": b}).corr(method="spearman").iloc[0, 1]), 3)


def attribution_figures(lm, dicts, task: str, top: int = 30) -> dict:
    """Rank agreement of attribution with exact single-node ablation, and of feature edges with exact edge patching."""
    ev = FeatureEvaluator(lm, build_task(task, lm, 64), dicts)
    started = time.perf_counter()
    scores = ev.attribution()
    attribution_s = time.perf_counter() - started
    nodes = sorted(scores, key=lambda n: -abs(scores[n]))[:top]
    started = time.perf_counter()
    exact = ev.ablation_effects(nodes)
    exact_s = time.perf_counter() - started
    circuit = select(ev, scores, 0.8)
    edges = ev.edges(set(circuit))
    strongest = sorted(edges, key=lambda e: -abs(edges[e]))[:12]
    features_only = [e for e in sorted(edges, key=lambda e: -abs(edges[e])) if e[0][1] is not None and e[1][1] is not None][:12]
    return {
        "task": task, "prompts": ev.data.n, "attribution_seconds": round(attribution_s, 2),
        "exact_ablation_seconds_for_top": round(exact_s, 2), f"spearman_top{top}": spearman([scores[n] for n in nodes], exact),
        "circuit_at_0.8": len(circuit), "feature_edges": len(edges),
        "edge_spearman_top12": spearman([edges[e] for e in strongest], [ev.exact_edge(*e) for e in strongest]),
        "edge_spearman_top12_features_only": spearman([edges[e] for e in features_only],
                                                      [ev.exact_edge(*e) for e in features_only]),
        "top_nodes": [node_name(n) for n in nodes[:5]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-training", action="store_true", help="Use the shipped SAEs' reports instead of retraining.")
    args = parser.parse_args()
    torch.set_num_threads(1)
    lm = load_model("toy")
    if not args.skip_training:
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps({"sae_training": train_toy_saes(lm, folder=Path(folder))}), flush=True)
    dicts = [load_dictionary("toy:resid2", lm), load_dictionary("toy:resid3", lm)]
    for task in ("digits", "numwords", "months"):
        print(json.dumps(attribution_figures(lm, dicts, task)), flush=True)
    vector = build(lm, 2, prompt_groups("months", lm), prompt_groups("digits", lm))
    print(json.dumps({"steering": "months - digits @ resid2", **{
        f"k={k}": {"omp_cosine": round(d.omp_cosine, 3), "encoder_cosine": round(d.encoder_cosine, 3)}
        for k in (4, 8, 16, 32) for d in [decompose(vector, 2, dicts[0], k)]}}), flush=True)
    tokens = [g for s in ("digits", "months", "numwords") for g in prompt_groups(s, lm)]
    acts = torch.cat([feature_activations(lm, dicts[0], t) for t in tokens])
    perm = torch.randperm(acts.shape[1], generator=torch.Generator().manual_seed(0))
    index, score = match_features(acts, acts[:, perm])
    live = acts.amax(0) > 0
    print(json.dumps({"permuted_match": {"live_features": int(live.sum()),
                                         "recovered": float((perm[index] == torch.arange(len(perm)))[live].float().mean()),
                                         "min_correlation": round(float(score[live].min()), 5)}}), flush=True)


if __name__ == "__main__":
    main()
