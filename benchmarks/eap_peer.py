"""circuitdb's EAP against auto-circuit 1.0.1's on identical weights: the GPT-2-small-shaped planted model of
`discovery.py` (32,491 edges), its 32 paired clean/corrupted prompts, the logit difference. Each side is timed on its
score computation alone (auto-circuit's wrapping of the model into a patchable one comes before), with the same
threads, in one run, in wall-clock and CPU seconds (the process's own, less disturbed by other work on a shared
machine); then the two score lists are compared edge by edge.

auto-circuit's EAP is `mask_gradient_prune_scores` at mask 0 with the logit difference (what its `prune_algos`
registers as "EAP"); its resample ablation on the corrupted batch is circuitdb's `patch` intervention, so its score
is circuitdb's (a drop over the full model's logit difference) times that logit difference. It needs TransformerLens
< 3, so it runs in its own environment, in a subprocess (this file again, with `--peer FILE`), on the weights, config
and prompts this script saves from circuitdb's. That environment (auto-circuit asks for transformer-lens >= 1.13 with
no upper bound; TransformerLens 2 pins numpy < 2, which datasets >= 4 and pyarrow >= 20 do not work with):

    python3 -m venv /work/peer-venv && /work/peer-venv/bin/pip install torch==2.13.0 auto-circuit==1.0.1 \
        'transformer-lens<3' 'datasets<4' 'pyarrow<20'

Then, from the repository root, in circuitdb's environment (not a test: it prints figures):

    .venv/bin/python benchmarks/eap_peer.py [--peer-python /work/peer-venv/bin/python] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

T = TypeVar("T")

PEER_PYTHON = "/work/peer-venv/bin/python"
PEER_CHECK = ("import auto_circuit, torch; from importlib.metadata import version; "
              "print(version('auto-circuit'), version('transformer-lens'), torch.__version__)")


def peer_versions(python: str) -> tuple[str | None, str]:
    """auto-circuit's, TransformerLens's and torch's versions in the peer environment, or None and why not."""
    if not Path(python).exists():
        return None, f"no Python at {python}; create the environment as this script's docstring says"
    found = subprocess.run([python, "-c", PEER_CHECK], capture_output=True, text=True)
    if found.returncode:
        return None, f"auto-circuit does not import in {python}: {(found.stderr.strip().splitlines() or ['?'])[-1]}"
    return found.stdout.strip(), ""


def timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """The result of `fn()`, its wall-clock seconds and this process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def run_peer(file: Path, threads: int) -> None:
    """In auto-circuit's environment: its EAP on the saved model and prompts; writes its seconds, its full-model logit
    difference and its score per edge name to FILE.json."""
    import dataclasses

    import transformer_lens as tl
    from auto_circuit.data import PromptDataLoader, PromptDataset
    from auto_circuit.prune_algos.mask_gradient import mask_gradient_prune_scores
    from auto_circuit.types import AblationType
    from auto_circuit.utils.graph_utils import patchable_model
    from auto_circuit.utils.tensor_ops import batch_avg_answer_diff

    torch.set_num_threads(threads)
    saved = torch.load(file, weights_only=False)
    known = {field.name for field in dataclasses.fields(tl.HookedTransformerConfig)}
    model = tl.HookedTransformer(tl.HookedTransformerConfig(**{k: v for k, v in saved["config"].items() if k in known}))
    missing, unexpected = model.load_state_dict(saved["weights"], strict=False)  # parameters only: buffers differ
    assert not unexpected and not set(missing) & dict(model.named_parameters()).keys(), (missing, unexpected)
    # what auto-circuit's graph of edges into q, k, v separately needs (its load_tl_model adds use_attn_in: more work)
    model.cfg.use_attn_result = model.cfg.use_split_qkv_input = model.cfg.use_hook_mlp_in = True
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    n = len(saved["clean"])
    dataset = PromptDataset(saved["clean"], saved["corrupt"], list(saved["answers"][:, None]),
                            list(saved["distractors"][:, None]))
    loader = PromptDataLoader(dataset, seq_len=None, diverge_idx=0, batch_size=n, shuffle=False)
    patchable = patchable_model(model, factorized=True, slice_output="last_seq", separate_qkv=True)
    with torch.no_grad():
        batch = next(iter(loader))
        full = batch_avg_answer_diff(patchable(batch.clean)[patchable.out_slice], batch).item()
    scores, wall, cpu = timed(lambda: mask_gradient_prune_scores(
        patchable, loader, None, grad_function="logit", answer_function="avg_diff", mask_val=0.0,
        ablation_type=AblationType.RESAMPLE, clean_corrupt="corrupt"))
    by_name = {edge.name: edge.prune_score(scores).item() for edge in patchable.edges}
    file.with_suffix(".json").write_text(json.dumps({"wall": wall, "cpu": cpu, "full": full, "scores": by_name}))


def peer_name(sender: str, receiver: str, qkv: str) -> str:
    """auto-circuit's name of a circuitdb edge: `a3.h2` -> `A3.2` (`A3.2.Q` as a receiver's q), `m3` -> `MLP 3`,
    `input` -> `Resid Start`, `logits` -> `Resid End`."""

    def node(name: str) -> str:
        if name in ("input", "logits"):
            return "Resid Start" if name == "input" else "Resid End"
        if name.startswith("m"):
            return f"MLP {name[1:]}"
        layer, head = name[1:].split(".h")
        return f"A{layer}.{head}"

    return f"{node(sender)}->{node(receiver)}" + (f".{qkv.upper()}" if qkv else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer-python", default=PEER_PYTHON, help="the Python of auto-circuit's environment")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--peer", type=Path, help=argparse.SUPPRESS)  # the subprocess's role
    args = parser.parse_args()
    if args.peer:
        run_peer(args.peer, args.threads)
        return
    versions, why = peer_versions(args.peer_python)
    if versions is None:
        sys.exit(f"auto-circuit comparison not run: {why}")
    from discovery import planted_gpt2_shaped
    from scipy.stats import spearmanr

    from circuitdb.discovery.edges import eap_scores
    from circuitdb.discovery.evaluate import Evaluator

    torch.set_num_threads(args.threads)
    lm, data, _ = planted_gpt2_shaped()
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "model.pt"
        torch.save({"config": lm.model.cfg.to_dict(), "weights": dict(lm.model.named_parameters()), "clean": data.clean,
                    "corrupt": data.corrupt, "answers": data.answers, "distractors": data.distractors}, file)
        subprocess.run([args.peer_python, __file__, "--peer", str(file), "--threads", str(args.threads)], check=True)
        peer = json.loads(file.with_suffix(".json").read_text())
    ev = Evaluator(lm, data, "patch")
    ours, wall, cpu = timed(lambda: eap_scores(ev))
    keys = list(ours)
    names = [peer_name(*key) for key in keys]
    assert len(peer["scores"]) == len(keys) and set(names) == set(peer["scores"])
    theirs = torch.tensor([peer["scores"][name] for name in names], dtype=torch.float64)
    scaled = torch.tensor([ours[key] for key in keys], dtype=torch.float64) * (ev.full - ev.base)
    print(f"auto-circuit, transformer-lens, torch in its environment: {versions}; here: torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)")
    print(f"full-model logit difference: circuitdb {ev.full:.6f}, auto-circuit {peer['full']:.6f}")
    for kind, ours_s, theirs_s in (("wall-clock", wall, peer["wall"]), ("CPU", cpu, peer["cpu"])):
        print(f"EAP over {len(keys)} edges, {kind}: circuitdb {ours_s:.2f} s, auto-circuit {theirs_s:.2f} s, "
              f"auto-circuit / circuitdb = {theirs_s / ours_s:.2f}x")
    print(f"scores: Spearman {spearmanr(scaled, theirs).statistic:.6f}, largest difference "
          f"{(scaled - theirs).abs().max().item():.2e} (largest score {theirs.abs().max().item():.2e})")


if __name__ == "__main__":
    main()
