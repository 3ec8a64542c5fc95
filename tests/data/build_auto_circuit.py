"""Build auto-circuit ``PruneScores`` fixtures for circuitdb's importer tests.

Run with the peer venv that has the real auto-circuit installed (NOT the circuitdb
venv):

    /work/peer-venv/bin/python tests/data/build_auto_circuit.py

Produced with auto-circuit 1.0.1, transformer-lens 2.18.0, torch 2.13.0 (CPU, 1 thread);
the versions are also recorded in each edges*.json.

What it does
------------
* builds a tiny TransformerLens ``HookedTransformer`` with seeded random weights
  (n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=64, d_vocab=40, n_ctx=8,
  act_fn='gelu', normalization_type='LN', seed=0), with the config flags the
  factorized auto-circuit graph asserts on (use_attn_result, use_hook_mlp_in,
  use_split_qkv_input for separate_qkv=True, use_attn_in for separate_qkv=False);
* wraps it with ``auto_circuit.utils.graph_utils.patchable_model`` (factorized=True,
  slice_output='last_seq', seq_len=None, i.e. no per-token edges);
* computes prune scores with the real ``mask_gradient_prune_scores`` (grad_function
  'logit', answer_function 'avg_diff', mask_val=0.0, i.e. Edge Attribution Patching)
  on 6 seeded random clean/corrupt prompts;
* writes, under tests/data/auto_circuit/:
    prune_scores.pt        torch.save of the PruneScores dict exactly as returned
                           (values moved to CPU float32), separate_qkv=True
    edges.json             sidecar listing every auto-circuit Edge of the patchable
                           model with its src/dest names, dest module_name,
                           patch_idx and score read through auto-circuit's own
                           ``Edge.prune_score`` (independent truth for the importer)
    prune_scores_noqkv.pt  / edges_noqkv.json: the same for separate_qkv=False

The outputs are deterministic for a given torch/auto-circuit version (seeded weights
and prompts, one CPU thread). Dict key order of the saved PruneScores follows
auto-circuit's ``model.dest_wrappers`` *set* iteration order, so it is NOT stable;
the importer must not depend on it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from importlib.metadata import version
from pathlib import Path

import torch as t

t.set_num_threads(1)

from auto_circuit.data import PromptDataLoader, PromptDataset  # noqa: E402
from auto_circuit.prune_algos.mask_gradient import (  # noqa: E402
    mask_gradient_prune_scores,
)
from auto_circuit.utils.graph_utils import patchable_model  # noqa: E402
from transformer_lens import HookedTransformer, HookedTransformerConfig  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent / "auto_circuit"

MODEL_CFG = dict(
    n_layers=2,
    d_model=32,
    n_heads=4,
    d_head=8,
    d_mlp=64,
    d_vocab=40,
    n_ctx=8,
    act_fn="gelu",
    normalization_type="LN",
    seed=0,
)
N_PROMPTS = 6
SEQ = 8


def build_model(separate_qkv: bool) -> HookedTransformer:
    cfg = HookedTransformerConfig(
        **MODEL_CFG,
        device="cpu",
        default_prepend_bos=False,
    )
    model = HookedTransformer(cfg)  # weights are initialised from cfg.seed
    model.set_use_attn_result(True)
    model.set_use_hook_mlp_in(True)
    if separate_qkv:
        model.set_use_split_qkv_input(True)
    else:
        model.set_use_attn_in(True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def build_loader() -> PromptDataLoader:
    g = t.Generator().manual_seed(1234)
    clean = t.randint(0, MODEL_CFG["d_vocab"], (N_PROMPTS, SEQ), generator=g)
    corrupt = clean.clone()
    # corrupt the last three positions so the pair differs
    corrupt[:, -3:] = t.randint(0, MODEL_CFG["d_vocab"], (N_PROMPTS, 3), generator=g)
    answers = t.randint(0, MODEL_CFG["d_vocab"], (N_PROMPTS, 1), generator=g)
    wrong = (answers + 1 + t.randint(0, 5, (N_PROMPTS, 1), generator=g)) % MODEL_CFG[
        "d_vocab"
    ]
    ds = PromptDataset(clean, corrupt, list(answers), list(wrong))
    return PromptDataLoader(ds, seq_len=None, diverge_idx=0, batch_size=3, shuffle=False)


def run_case(separate_qkv: bool, pt_name: str, json_name: str) -> None:
    t.manual_seed(0)
    model = build_model(separate_qkv)
    pmodel = patchable_model(
        model,
        factorized=True,
        slice_output="last_seq",
        seq_len=None,
        separate_qkv=separate_qkv,
        device=t.device("cpu"),
    )
    loader = build_loader()
    ps = mask_gradient_prune_scores(
        pmodel,
        loader,
        official_edges=None,
        grad_function="logit",
        answer_function="avg_diff",
        mask_val=0.0,
    )
    # exactly the dict auto-circuit returned, tensors on CPU as float32
    ps = {k: v.detach().to("cpu", t.float32).contiguous() for k, v in ps.items()}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    t.save(ps, OUT_DIR / pt_name)

    edges = []
    for e in pmodel.edges:
        edges.append(
            {
                "src": e.src.name,
                "dest": e.dest.name,
                "dest_module": e.dest.module_name,
                "src_idx": e.src.src_idx,
                "patch_idx": list(e.patch_idx),
                "score": float(e.prune_score(ps)),
            }
        )
    # Edge set iteration order is arbitrary; sort for a stable, diffable file.
    edges.sort(key=lambda d: (d["dest_module"], d["patch_idx"]))
    sidecar = {
        "model_config": {k: v for k, v in MODEL_CFG.items()},
        "auto_circuit_version": version("auto-circuit"),
        "transformer_lens_version": version("transformer-lens"),
        "torch_version": t.__version__,
        "separate_qkv": separate_qkv,
        "factorized": True,
        "seq_len": None,
        "algorithm": "mask_gradient_prune_scores(grad_function='logit', "
        "answer_function='avg_diff', mask_val=0.0)",
        "n_edges": pmodel.n_edges,
        "shapes": {k: list(v.shape) for k, v in sorted(ps.items())},
        "edges": edges,
    }
    # one edge per line keeps the file small and diffable
    head = {k: v for k, v in sidecar.items() if k != "edges"}
    lines = [json.dumps(e, separators=(",", ":")) for e in edges]
    text = json.dumps(head, indent=1)
    # collapse the short integer lists of "shapes" onto one line
    text = re.sub(r"\[\s*([0-9,\s]*?)\s*\]", lambda m: "[" + re.sub(r"\s+", "", m.group(1)) + "]", text)
    text = text[:-2] + ',\n "edges": [\n  '
    text += ",\n  ".join(lines) + "\n ]\n}\n"
    json.loads(text)  # sanity: still valid JSON
    with open(OUT_DIR / json_name, "w") as f:
        f.write(text)
    print(
        f"separate_qkv={separate_qkv}: {len(edges)} edges, "
        f"{len(ps)} dest modules -> {OUT_DIR / pt_name} "
        f"({os.path.getsize(OUT_DIR / pt_name)} B), {json_name}"
    )


def main() -> int:
    run_case(True, "prune_scores.pt", "edges.json")
    run_case(False, "prune_scores_noqkv.pt", "edges_noqkv.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
