"""Sweep benchmark: the toy sweep (3 tasks x 3 thresholds x 2 methods, 18 runs) with the local executor and on a local
Ray cluster of 1 and of 2 workers, each into a fresh embedded store; wall times and ratios against the local executor
measured in the same run. Ray's start is timed apart from the sweep it serves. Ray runs its workers at nice 15 unless
told otherwise; here they run at the driver's priority, so a busy machine slows both executors alike.

    .venv/bin/python benchmarks/sweep.py [--tasks digits,numwords,months --methods prune,eap --workers 1,2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from circuitdb import Catalog


def timed_sweep(folder: Path, name: str, sweep: Path, executor: str) -> tuple[float, int]:
    """Seconds for one sweep into a fresh store, and the runs it wrote."""
    start = time.perf_counter()
    with Catalog(f"kuzu:{folder / name}.kuzu") as catalog:
        written = catalog.sweep(sweep, executor=executor)
    return time.perf_counter() - start, len(written)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="digits,numwords,months")
    parser.add_argument("--methods", default="prune,eap")
    parser.add_argument("--workers", default="1,2", help="Ray cluster sizes (CPUs, one ladder each)")
    args = parser.parse_args()
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sweep = folder / "sweep.yaml"
        sweep.write_text(f"models: [toy]\ntasks: [{args.tasks}]\nthresholds: [0.97, 0.9, 0.8]\n"
                         f"methods: [{args.methods}]\nedges: none\nprompts: 16\n")
        local, runs = timed_sweep(folder, "local", sweep, "local")
        print(f"local executor: {local:.1f} s, {runs} runs", flush=True)
        summary = {"local_s": local, "runs": runs}
        for workers in (int(n) for n in args.workers.split(",")):
            start = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, logging_level="error", log_to_driver=False,
                     _system_config={"worker_niceness": 0})
            started = time.perf_counter() - start
            seconds, written = timed_sweep(folder, f"ray{workers}", sweep, "ray")
            ray.shutdown()
            print(f"ray, {workers} worker(s): {seconds:.1f} s ({local / seconds:.2f}x the local executor's speed), "
                  f"{written} runs; Ray's own start {started:.1f} s", flush=True)
            summary[f"ray{workers}_s"] = seconds
            summary[f"ray{workers}_start_s"] = started
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
