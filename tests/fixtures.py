"""A deterministic catalog for the tests: 5 tasks x 3 thresholds x 2 methods on a GPT-2-small-shaped model."""

from __future__ import annotations

import random

from circuitdb.domain import Edge, Model, Run, Task

MODEL = Model("gpt2-small", 12, 12, 768, "test")
TASKS = ("numerals", "numwords", "months", "days", "greater_than")
THRESHOLDS = (0.97, 0.9, 0.8)
METHODS = ("prune", "eap")
ALL_NODES = [f"a{layer}.h{head}" for layer in range(12) for head in range(12)] + [f"m{layer}" for layer in range(12)]
CORE = ["a4.h4", "a7.h11", "a9.h1", "m0", "m9"]  # in every circuit, so shared queries have an answer


def _edges(rng: random.Random, members: list[str]) -> list[Edge]:
    """Forward edges between members (plus input/logits), head receivers via a random q/k/v input."""
    layer = {n: int(n[1:].split(".")[0]) for n in members}
    edges = []
    for receiver in [*members, "logits"]:
        senders = ["input"] + [s for s in members if receiver == "logits" or layer[s] < layer[receiver]]
        for sender in rng.sample(senders, min(len(senders), 3)):
            qkv = rng.choice("qkv") if receiver.startswith("a") else ""
            edges.append(Edge(sender, receiver, round(rng.uniform(-1, 1), 6), qkv))
    return edges


def catalog_runs(seed: int = 0) -> list[Run]:
    """Lower thresholds keep a random subset of the stricter circuit (so ladders nest); 'eap' runs differ."""
    rng = random.Random(seed)
    runs = []
    for task in TASKS:
        for method in METHODS:
            pool = [n for n in ALL_NODES if n not in CORE]
            members = CORE + rng.sample(pool, 30)
            parent = None
            for threshold in THRESHOLDS:
                keep = CORE + [n for n in members if n not in CORE and rng.random() < 0.8]
                members = keep
                scores = {n: round(rng.uniform(0.01, 2.0), 6) for n in members}
                components = {"input": None, **scores, "logits": None}
                run = Run(
                    MODEL,
                    Task(task, family="seqcont"),
                    method,
                    threshold,
                    components=components,
                    edges=_edges(rng, members),
                    faithfulness=round(threshold + rng.uniform(0, 0.02), 6),
                    completeness=round(rng.uniform(0, 0.3), 6),
                    params={"seed": seed},
                    seed=seed,
                    nests_in=parent,
                    evaluations={"months": round(rng.uniform(0.3, 1.0), 6)},
                )
                runs.append(run)
                parent = run.id
    return runs
