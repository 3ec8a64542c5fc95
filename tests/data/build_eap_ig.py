"""Build EAP-IG graph fixtures for circuitdb's importer tests with EAP-IG's own `Graph` (it is not on PyPI).

Run with circuitdb's venv and a checkout of hannamw/EAP-IG (read at commit 795f560):

    .venv/bin/python tests/data/build_eap_ig.py PATH/TO/EAP-IG

For a small model's graph (2 layers, 4 heads; sequential and parallel attention/MLP) it sets seeded random edge
scores, keeps the top 20 edges by |score| with EAP-IG's own `apply_topn` (which then prunes edges that reach no
logits), and writes, under tests/data/eap_ig/:
    graph{,_parallel}.json / .pt   `Graph.to_json` and `Graph.to_pt`, as EAP-IG writes them
    truth{,_parallel}.json         every edge as EAP-IG's Edge objects name and hold it: {name: [score, in_graph]}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).parent / "eap_ig"


def main(checkout: str) -> None:
    sys.path.insert(0, str(Path(checkout) / "src"))
    from eap.graph import Graph

    HERE.mkdir(exist_ok=True)
    for parallel, suffix in ((False, ""), (True, "_parallel")):
        graph = Graph.from_model({"n_layers": 2, "n_heads": 4, "parallel_attn_mlp": parallel, "d_model": 32})
        generator = torch.Generator().manual_seed(0)
        graph.scores[:] = torch.randn(graph.scores.shape, generator=generator)
        graph.apply_topn(20, absolute=True)
        graph.to_json(str(HERE / f"graph{suffix}.json"))
        graph.to_pt(str(HERE / f"graph{suffix}.pt"))
        truth = {name: [float(edge.score), bool(edge.in_graph)] for name, edge in graph.edges.items()}
        (HERE / f"truth{suffix}.json").write_text(json.dumps(truth, indent=0))


if __name__ == "__main__":
    main(sys.argv[1])
