"""Ingest as the catalog grows: the time to add one small run to an embedded catalog of 10 / 1,000 / 10,000 runs,
and the file's bytes per stored edge (the flat-ingest item of the reliability issue), on each embedded engine
(`--engines`, ladybug and Kuzu 0.11.3 by default: each in a process of its own, as the two cannot share one).

Each catalog is built in batch writes of 1,000 runs, then `--adds` more runs are added one at a time through
`Catalog.add` in the same process, as a discovery job does (median, mean and max), and `--processes` runs each by a
process of its own, as `circuitdb import` of one file does (open, add, close). Each figure is printed with its ratio
to the smallest catalog (the issue bounds the add at 2x). Runs hold `--members` memberships and `--edges` edges over
a model of `--components` components (a few hundred each, as SAE-feature circuits have).

With `--engine MODULE` (kuzu or ladybug) it measures the engine alone with the statements of circuitdb's write of
large batches (COPY of the edges and memberships in one transaction, then a checkpoint), splitting the time into
commit and checkpoint, for each layout: `relationships` (edges as relationships between the shared components,
memberships stored both ways: circuitdb before the Edge node layout) and `nodes` (the layout of `schema.kuzu_ddl`:
an edge is a node of its own, and memberships and edge ends are stored from their source side).

    .venv/bin/python benchmarks/growth.py [--sizes 10,1000,10000 --adds 200 --processes 3 --engines ladybug,kuzu]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from children import on_engine


def runs(args: argparse.Namespace, first: int, count: int, seed: int) -> list:
    """`count` runs (tasks t<first>...) of `members` features and `edges` random edges among them."""
    from circuitdb.domain import Edge, Model, Run, Task

    model = Model("growth", 12, 12, 768, "benchmark")
    rng = np.random.default_rng(seed)
    out = []
    for k in range(first, first + count):
        chosen = rng.choice(args.components, args.members, replace=False)
        names = [f"fresid{i % 12}/{i}" for i in chosen]
        pairs = divmod(rng.choice(args.members * args.members, args.edges, replace=False), args.members)
        out.append(Run(model, Task(f"t{k}"), "eap", 0.5, components=dict.fromkeys(names, 1.0),
                       edges=[Edge(names[a], names[b], 1.0) for a, b in zip(*pairs)]))
    return out


def catalog_growth(args: argparse.Namespace) -> list[dict]:
    from circuitdb import Catalog

    rows = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "g.kuzu"
            with Catalog(f"kuzu:{path}") as cat:
                for lo in range(0, size, 1000):  # built in batches of 1,000 runs
                    cat.add(runs(args, lo, min(1000, size - lo), lo))
                times = []
                for run in runs(args, size, args.adds, 10**6):
                    started = time.perf_counter()
                    cat.add(run)
                    times.append(time.perf_counter() - started)
            alone = [one_process(path, size + args.adds + k) for k in range(args.processes)]
            stored_edges = (size + args.adds + args.processes) * args.edges
            rows.append({"runs": size, "add_s": statistics.median(times), "mean_add_s": statistics.mean(times),
                         "max_add_s": max(times), "process_s": statistics.median(alone),
                         "file_bytes": path.stat().st_size, "bytes_per_edge": path.stat().st_size / stored_edges})
        row = rows[-1]
        print(f"catalog of {size:>6} runs: add one run {row['add_s']:.4f} s median, {row['mean_add_s']:.4f} s mean "
              f"(checkpoints included), {row['max_add_s']:.3f} s max, of {args.adds}; in a process of its own "
              f"(open, add, close) {row['process_s']:.3f} s; file {row['file_bytes'] / 1e6:.1f} MB, "
              f"{row['bytes_per_edge']:.0f} bytes per stored edge", flush=True)
    return rows


def one_process(path: Path, number: int) -> float:
    """Seconds a new process takes to open the catalog, add one run and close (as one `circuitdb import` does), timed
    inside that process."""
    out = subprocess.run([sys.executable, __file__, "--one", str(path), "--first", str(number)],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def add_one(args: argparse.Namespace) -> None:
    from circuitdb import Catalog

    run = runs(args, args.first, 1, 10**6 + args.first)
    started = time.perf_counter()
    with Catalog(f"kuzu:{args.one}") as cat:
        cat.add(run)
    print(time.perf_counter() - started)


LAYOUTS = {
    "relationships": ("CREATE REL TABLE I(FROM R TO C)", "CREATE REL TABLE E(FROM C TO C, run_id STRING)"),
    "nodes": ("CREATE REL TABLE I(FROM R TO C) WITH (storage_direction = 'fwd')",
              "CREATE NODE TABLE E(id INT64, run_id STRING, PRIMARY KEY(id))",
              "CREATE REL TABLE S(FROM E TO C) WITH (storage_direction = 'fwd')",
              "CREATE REL TABLE T(FROM E TO C) WITH (storage_direction = 'fwd')"),
}


def engine_growth(args: argparse.Namespace, layout: str) -> list[dict]:
    """The engine alone: components, runs, memberships and edges in tables of `layout`, one COPY transaction per
    run."""
    engine = importlib.import_module(args.engine)
    rng = np.random.default_rng(0)
    numbered = [0]  # edge nodes so far

    def tables(first: int, count: int) -> list[tuple[str, pa.Table]]:
        ids = [f"r{k}" for k in range(first, first + count)]
        members = np.concatenate([rng.choice(args.components, args.members, replace=False) for _ in ids])
        ends = rng.integers(0, args.components, (count * args.edges, 2))
        senders, receivers = [f"c{i}" for i in ends[:, 0]], [f"c{i}" for i in ends[:, 1]]
        out = [("R", pa.table({"id": ids})),
               ("I", pa.table({"from": np.repeat(ids, args.members), "to": [f"c{i}" for i in members]}))]
        if layout == "relationships":
            return [*out, ("E", pa.table({"from": senders, "to": receivers, "run_id": np.repeat(ids, args.edges)}))]
        edge = pa.array(range(numbered[0], numbered[0] + len(senders)), pa.int64())
        numbered[0] += len(senders)
        return [*out, ("E", pa.table({"id": edge, "run_id": np.repeat(ids, args.edges)})),
                ("S", pa.table({"from": edge, "to": senders})), ("T", pa.table({"from": edge, "to": receivers}))]

    rows = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "g.db"
            db = engine.Database(str(path))
            conn = engine.Connection(db)
            for ddl in ("CREATE NODE TABLE C(id STRING, PRIMARY KEY(id))", "CREATE NODE TABLE R(id STRING, PRIMARY KEY(id))",
                        *LAYOUTS[layout]):
                conn.execute(ddl)
            conn.execute("COPY C FROM $t", {"t": pa.table({"id": [f"c{i}" for i in range(args.components)]})})
            for name, table in tables(0, size):
                conn.execute(f"COPY {name} FROM $t", {"t": table})
            commits, checkpoints = [], []
            for k in range(size, size + args.adds):
                conn.execute("BEGIN TRANSACTION")
                for name, table in tables(k, 1):
                    conn.execute(f"COPY {name} FROM $t", {"t": table})
                started = time.perf_counter()
                conn.execute("COMMIT")
                committed = time.perf_counter()
                conn.execute("CHECKPOINT")
                commits.append(committed - started)
                checkpoints.append(time.perf_counter() - committed)
            db.close()
            rows.append({"runs": size, "commit_s": statistics.median(commits), "checkpoint_s": statistics.median(checkpoints),
                         "file_bytes": path.stat().st_size})
        print(f"{args.engine} {getattr(engine, '__version__', '')}, {layout} layout, {size:>6} runs: "
              f"commit {rows[-1]['commit_s']:.3f} s, checkpoint {rows[-1]['checkpoint_s']:.3f} s, "
              f"file {rows[-1]['file_bytes'] / 1e6:.1f} MB", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[10, 1000, 10000])
    parser.add_argument("--adds", type=int, default=200, help="runs added one at a time to each catalog")
    parser.add_argument("--processes", type=int, default=3, help="runs added each by a process of its own")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # internal: add one run to this catalog
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--edges", type=int, default=300)
    parser.add_argument("--components", type=int, default=20000)
    parser.add_argument("--engine", help="measure this engine module alone (kuzu, ladybug)")
    parser.add_argument("--layouts", type=lambda s: s.split(","), default=list(LAYOUTS), help="with --engine")
    parser.add_argument("--engines", type=lambda s: s.split(","), default=["ladybug", "kuzu"],
                        help="embedded engines whose catalog growth is measured, each in a child process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # internal: one engine, JSON last
    args = parser.parse_args()
    if args.one:
        return add_one(args)
    if args.engine:
        runs = {layout: engine_growth(args, layout) for layout in args.layouts}
        for layout, rows in runs.items():
            print(f"{layout} layout, commit: largest / smallest catalog {rows[-1]['commit_s'] / rows[0]['commit_s']:.2f}x")
        print(json.dumps(runs))
        return
    if args.child:
        print(json.dumps(catalog_growth(args)))
        return
    report: dict[str, dict] = {}
    for name in args.engines:
        if importlib.util.find_spec(name) is None:
            print(f"{name}: skipped, not installed (pip install 'circuitdb[{name}]')")
            continue
        print(f"== circuitdb on {name} ==", flush=True)
        report[name] = engine_child(name)
    for name, rows in report.items():
        for key in ("add_s", "mean_add_s", "process_s"):
            print(f"{name}, {key}: largest / smallest catalog {rows[-1][key] / rows[0][key]:.2f}x (bound: 2x)")
    print(json.dumps(report))


def engine_child(name: str) -> list[dict]:
    """This script's catalog measurement with CIRCUITDB_ENGINE=name, in a child."""
    code, rows = on_engine([sys.executable, __file__, *sys.argv[1:], "--child"], name)
    if code:
        sys.exit(f"the measurement on {name} failed")
    return rows

if __name__ == "__main__":
    main()
