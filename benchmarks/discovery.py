"""Discovery speed: node pruning (layer-cached and batched vs one full forward per candidate), and EAP and EAP-IG over the
full graph beside one plain forward+backward pass (target: EAP within 3x of it).

Measured on the shipped toy model and on a GPT-2-small-shaped random model with a planted copying circuit (12 layers x
12 heads, d_model 768, 32 prompts x 16 tokens; see `planted_gpt2_shaped`), in one run so the ratios compare like with
like. Not a test: it prints figures.

    .venv/bin/python benchmarks/discovery.py [--threads 1] [--threshold 0.8] [--skip-gpt2 | --eap-only]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import TypeVar

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from circuitdb.discovery.ablation import embed, logit_diff
from circuitdb.discovery.edges import eap_scores
from circuitdb.discovery.evaluate import Evaluator
from circuitdb.discovery.models import LoadedModel, load_model, prepare
from circuitdb.discovery.pruning import prune, prune_plain
from circuitdb.discovery.tasks import TaskData, build_task

T = TypeVar("T")

IG_STEPS = 5
EAP_TARGET = 3.0  # EAP's seconds over one forward+backward pass's


PLANTED_POSITION = 4  # the prompt position whose token is the answer
# mover heads (layer, head) -> output scale, chosen so each carries a similar share of the logit difference (later
# layers read a longer residual stream, so their movers write more)
MOVERS = {(3, 2): 0.7, (4, 10): 1.0, (5, 6): 1.2, (6, 9): 1.6, (7, 1): 2.2, (8, 4): 2.3, (9, 11): 2.4, (10, 0): 2.6,
          (11, 5): 2.9}
CHAIN_HEAD, CHAIN_MLP, CHAIN_SCALE = (1, 7), 5, 0.7
QUIET = 0.1  # scale of the random blocks' output weights


def planted_gpt2_shaped(n_prompts: int = 32, n_tokens: int = 16, seed: int = 0) -> tuple[LoadedModel, TaskData, list[str]]:
    """A random GPT-2-small-shaped model with a planted copying circuit, its task, and the planted components' names.

    Task: prompts of random tokens; the answer is the token at position 4, the distractor the token the corrupted
    prompt (identical except at position 4) has there. Random weights do not do this, so the logit difference is
    carried by planted components. Nine mover heads, one in each of layers 3-11, attend from every position to
    position 4 (their keys read a marker direction added to that position's embedding, their queries are a constant)
    and copy the token's embedding, each through its own 64-d subspace, into the stream the tied unembedding reads.
    A two-step path does the same through a1.h7, which writes the copy into a scratch subspace where it does not line
    up with the answer's unembedding, and m5, whose 64 planted hidden units (held in GELU's linear range) map it back.
    The random blocks' output weights are scaled by 0.1 so the copied token stays readable. With only the planted
    components kept the circuit scores about 1.4 (the random ones add noise); dropping the path costs about 0.4, one
    mover about 0.1, so at threshold 0.8 pruning must keep the path and a few movers and can drop every random one.
    """
    torch.manual_seed(seed)
    cfg = HookedTransformerConfig(n_layers=12, d_model=768, n_heads=12, d_head=64, d_mlp=3072, d_vocab=50257,
                                  n_ctx=n_tokens, act_fn="gelu_new", normalization_type="LN", seed=seed)
    model = HookedTransformer(cfg)
    d, dh = cfg.d_model, cfg.d_head
    generator = torch.Generator().manual_seed(seed + 1)
    # orthonormal directions orthogonal to (1, ..., 1), so LayerNorm's centering leaves them alone
    basis = torch.linalg.qr(torch.cat([torch.ones(d, 1), torch.randn(d, d - 1, generator=generator)], 1))[0][:, 1:]
    marker, subspaces = basis[:, 0], basis[:, 1:].split(dh, 1)
    select = torch.zeros(dh)
    select[0] = 8.0

    def mover(layer: int, head: int, source: torch.Tensor, target: torch.Tensor, scale: float) -> None:
        attn = model.blocks[layer].attn
        attn.W_Q[head], attn.b_Q[head] = 0.0, select  # a constant query ...
        attn.W_K[head], attn.b_K[head] = torch.outer(marker, select), 0.0  # ... matching only the marked position
        attn.W_V[head], attn.b_V[head] = source, 0.0
        attn.W_O[head] = scale * target.T

    with torch.no_grad():
        for block in model.blocks:
            block.attn.W_O.mul_(QUIET)
            block.mlp.W_out.mul_(QUIET)
        model.unembed.W_U.copy_(model.embed.W_E.T)
        model.pos_embed.W_pos[PLANTED_POSITION] += marker
        for i, ((layer, head), scale) in enumerate(MOVERS.items()):
            mover(layer, head, subspaces[i], subspaces[i], scale)
        own, scratch = subspaces[len(MOVERS)], subspaces[len(MOVERS) + 1]
        mover(*CHAIN_HEAD, own, scratch, CHAIN_SCALE)
        mlp, units = model.blocks[CHAIN_MLP].mlp, slice(0, dh)
        mlp.W_in[:, units], mlp.b_in[units] = scratch, 4.0
        mlp.W_out[units] = CHAIN_SCALE * own.T
        # minus what those units write for an empty input, so m5 does not add a large constant to the stream
        mlp.b_out -= mlp.W_out[units].T @ torch.nn.functional.gelu(mlp.b_in[units], approximate="tanh")
    clean = torch.randint(0, cfg.d_vocab, (n_prompts, n_tokens), generator=generator)
    corrupt = clean.clone()
    corrupt[:, PLANTED_POSITION] = torch.randint(0, cfg.d_vocab, (n_prompts,), generator=generator)
    data = TaskData("copy", "benchmark", f"copy the token at position {PLANTED_POSITION}", clean, corrupt,
                    clean[:, PLANTED_POSITION], corrupt[:, PLANTED_POSITION])
    planted = [f"a{layer}.h{head}" for layer, head in [*MOVERS, CHAIN_HEAD]] + [f"m{CHAIN_MLP}"]
    return LoadedModel("gpt2-shaped-planted", prepare(model), None, "random + planted"), data, planted


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """The result of `fn()` and the wall-clock seconds it took."""
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def clocked(fn: Callable[[], T]) -> tuple[T, float, float]:
    """The result of `fn()`, its wall-clock seconds and this process's CPU seconds (with one thread, its wall-clock
    time on an otherwise idle machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def forward_backward(lm: LoadedModel, data: TaskData) -> None:
    """One plain forward and backward pass on the clean prompts: the logit difference's gradient at the input
    embeddings, no hooks (EAP's floor: it needs at least this)."""
    model = lm.model
    x = embed(model, data.clean).detach().requires_grad_(True)
    final = model(x, start_at_layer=0, stop_at_layer=model.cfg.n_layers)
    logit_diff(model, final, data.answers, data.distractors).sum().backward()


def measure_eap(lm: LoadedModel, data: TaskData) -> dict:
    """EAP (fastest of 3) and EAP-IG over every edge of the full graph beside one forward+backward (fastest of 3),
    in the same run, in wall-clock and CPU seconds."""
    eap_ev = Evaluator(lm, data)
    fb_runs, eap_runs = [], []
    for _ in range(3):
        fb_runs.append(clocked(lambda: forward_backward(lm, data))[1:])
        scores, *seconds = clocked(lambda: eap_scores(eap_ev, 0))
        eap_runs.append(seconds)
    ig_scores, *ig = clocked(lambda: eap_scores(eap_ev, IG_STEPS))
    assert len(scores) == len(ig_scores) == len(lm.graph.edges)
    fb, eap = [min(column) for column in zip(*fb_runs)], [min(column) for column in zip(*eap_runs)]  # [wall, CPU]
    return {"eap_edges": len(scores), "eap_ig_steps": IG_STEPS, "threads": torch.get_num_threads(),
            "forward_backward_seconds": round(fb[0], 3), "forward_backward_cpu_seconds": round(fb[1], 3),
            "eap_seconds": round(eap[0], 2), "eap_cpu_seconds": round(eap[1], 2),
            "eap_ig_seconds": round(ig[0], 2), "eap_ig_cpu_seconds": round(ig[1], 2),
            "eap_ratio": round(eap[0] / fb[0], 2), "eap_cpu_ratio": round(eap[1] / fb[1], 2),
            "eap_ig_ratio": round(ig[0] / fb[0], 2), "eap_ig_cpu_ratio": round(ig[1] / fb[1], 2)}


def report_eap(f: dict) -> None:
    print(f"one forward+backward (logit difference to the input embeddings, no hooks), fastest of 3: "
          f"{f['forward_backward_seconds']:.3f} s wall-clock, {f['forward_backward_cpu_seconds']:.3f} s CPU")
    wall, cpu = ("PASS" if f[key] <= EAP_TARGET else "MISS" for key in ("eap_ratio", "eap_cpu_ratio"))
    print(f"EAP over all {f['eap_edges']} edges, fastest of 3: {f['eap_seconds']:.2f} s wall-clock = {f['eap_ratio']:.2f}x "
          f"forward+backward, {f['eap_cpu_seconds']:.2f} s CPU = {f['eap_cpu_ratio']:.2f}x (target <= {EAP_TARGET:g}x)  "
          f"[{wall} wall-clock, {cpu} CPU]")
    print(f"EAP-IG, {f['eap_ig_steps']} steps, one run: {f['eap_ig_seconds']:.2f} s wall-clock = {f['eap_ig_ratio']:.2f}x "
          f"forward+backward, {f['eap_ig_cpu_seconds']:.2f} s CPU = {f['eap_ig_cpu_ratio']:.2f}x")


def measure(name: str, lm: LoadedModel, data: TaskData, threshold: float, planted: list[str] | None = None) -> dict:
    """Prune three ways (the same circuit expected), then EAP and EAP-IG over every edge of the full graph beside one
    forward+backward pass: EAP and the pass three times each, interleaved so both see the same load on a shared
    machine, the fastest run counting (wall-clock and CPU separately); EAP-IG once.

    Layer-cached with lean blocks is `prune` as shipped; layer-cached through TransformerLens's forward shows what
    the caching alone gives; one full forward per candidate (`prune_plain`) is the baseline.
    """
    fast_ev, cached_ev, plain_ev = Evaluator(lm, data), Evaluator(lm, data, lean=False), Evaluator(lm, data)
    fast, fast_s = timed(lambda: prune(fast_ev, threshold))
    cached, cached_s = timed(lambda: prune(cached_ev, threshold))
    plain, plain_s = timed(lambda: prune_plain(plain_ev, threshold))
    return {
        "model": name, "prompts": data.n, "tokens": data.clean.shape[1], "threshold": threshold,
        "circuit": fast.names, "circuit_size": len(fast.names), "sweeps": fast.sweeps,
        "performance": round(plain.performance, 4),
        "planted": planted, "kept_planted": None if planted is None else len(set(fast.names) & set(planted)),
        "pruning_seconds": round(fast_s, 2), "pruning_variant_forwards": fast.passes, "pruning_blocks_run": fast_ev.blocks,
        "cached_tl_seconds": round(cached_s, 2), "cached_tl_blocks_run": cached_ev.blocks,
        "plain_seconds": round(plain_s, 2), "plain_forwards": plain.passes, "plain_blocks_run": plain_ev.blocks,
        "speedup": round(plain_s / fast_s, 2), "cached_tl_speedup": round(plain_s / cached_s, 2),
        "identical_circuits": fast.names == cached.names == plain.names, **measure_eap(lm, data),
    }


def report(f: dict) -> None:
    """Print one model's figures."""
    print(f"\n== {f['model']} ({f['prompts']} prompts x {f['tokens']} tokens, threshold {f['threshold']})")
    print(f"circuit: {f['circuit_size']} components {f['circuit']}, performance {f['performance']}, {f['sweeps']} sweeps")
    if f["planted"] is not None:
        print(f"planted: {len(f['planted'])} components; kept {f['kept_planted']} of them and "
              f"{f['circuit_size'] - f['kept_planted']} others")
    print(f"pruning, layer-cached + lean blocks: {f['pruning_seconds']:.2f} s, {f['pruning_variant_forwards']} circuit "
          f"evaluations, {f['pruning_blocks_run']} blocks entered")
    print(f"pruning, layer-cached, TL blocks:    {f['cached_tl_seconds']:.2f} s, {f['cached_tl_blocks_run']} blocks run "
          f"({f['cached_tl_speedup']:.2f}x)")
    print(f"pruning, one full forward each:      {f['plain_seconds']:.2f} s, {f['plain_forwards']} forwards, "
          f"{f['plain_blocks_run']} blocks run")
    verdict = "PASS" if f["speedup"] >= 2 and f["identical_circuits"] else "MISS"
    print(f"speed-up {f['speedup']:.2f}x (target >= 2x), identical circuits: {f['identical_circuits']}  [{verdict}]")
    report_eap(f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--skip-gpt2", action="store_true", help="only the toy model (the GPT-2-shaped run takes minutes)")
    parser.add_argument("--eap-only", action="store_true", help="only EAP / EAP-IG on the GPT-2-shaped model")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    if args.eap_only:
        lm, data, _ = planted_gpt2_shaped()
        figures = measure_eap(lm, data)
        report_eap(figures)
        print(json.dumps(figures))
        return
    results = []
    toy = load_model("toy")
    results.append(measure("toy", toy, build_task("digits", toy, n_prompts=64), args.threshold))
    report(results[-1])
    if not args.skip_gpt2:
        lm, data, planted = planted_gpt2_shaped()
        results.append(measure("gpt2-small-shaped random + planted circuit", lm, data, args.threshold, planted))
        report(results[-1])
    print(json.dumps(results))


if __name__ == "__main__":
    main()
