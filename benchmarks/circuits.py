"""Circuits that hold: on the toy model, every circuit of digits / numwords / months at 0.97 / 0.9 / 0.8, found by
pruning (edges ranked by path patching, EAP or EAP-IG) and by ranking the full graph (path, eap, eap-ig), with its
recorded faithfulness and joint edge faithfulness beside the same edge set re-measured by the tests' independent
evaluator (tests/independent.py: plain TransformerLens hooks); then CPR / CMD per ranking method and task. Not a test:
it prints figures.

    .venv/bin/python benchmarks/circuits.py [--tasks digits,numwords,months] [--thresholds 0.97,0.9,0.8]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from circuitdb.discovery.jobs import discover
from circuitdb.discovery.models import load_model
from circuitdb.discovery.spec import JobSpec
from circuitdb.discovery.tasks import build_task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from independent import Independent  # the tests' evaluator: the check is the same one

JOBS = [("prune", "path"), ("prune", "eap"), ("prune", "eap-ig"), ("path", "none"), ("eap", "none"), ("eap-ig", "none")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="digits,numwords,months")
    parser.add_argument("--thresholds", default="0.97,0.9,0.8")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tasks, thresholds = args.tasks.split(","), [float(t) for t in args.thresholds.split(",")]
    lm = load_model("toy")
    independent = {task: Independent(lm.model, build_task(task, lm), "mean") for task in tasks}
    rows = []
    for method, edges in JOBS:
        started = time.perf_counter()
        runs = discover(JobSpec("toy", tasks, thresholds, methods=[method], edges=edges), on_run=lambda run: None, lm=lm)
        seconds = time.perf_counter() - started
        for run in runs:
            kept = {(e.sender, e.receiver, e.input) for e in run.edges}
            again = independent[run.task.name].faithfulness(kept)
            rows.append({"method": method if edges == "none" else f"prune+{edges}", "task": run.task.name,
                         "threshold": run.threshold, "nodes": len(run.components) - 2, "edges": len(run.edges),
                         "faithfulness": run.faithfulness, "normalised": run.faithfulness_normalised,
                         "edge_faithfulness": run.edge_faithfulness, "independent": again,
                         "gap": abs(again - run.edge_faithfulness), "holds": again >= run.threshold - 1e-6,
                         "kl": run.kl, "accuracy": run.accuracy, "cpr": run.cpr, "cmd": run.cmd,
                         "job_seconds": round(seconds, 1)})
    frame = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_rows", 200, "display.float_format", "{:.4f}".format):
        print(frame.drop(columns=["cpr", "cmd"]).to_string(index=False))
        print(f"\nlargest |independent - edge_faithfulness|: {frame.gap.max():.2e}; every edge circuit holds: "
              f"{bool(frame.holds.all())} ({len(frame)} runs)")
        ranked = frame[frame.cpr.notna()].drop_duplicates(["method", "task"])
        print("\nfaithfulness curves of the full-graph rankings (normalised faithfulness; CPR up, CMD down is better):")
        print(ranked.pivot(index="task", columns="method", values=["cpr", "cmd"]).to_string())


if __name__ == "__main__":
    main()
