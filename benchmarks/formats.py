"""Import speed of a full EAP-IG score file: GPT-2 small's 32,491 edges (every one scored, 200 in the graph), on the
embedded store and on Neo4j, beside two baselines measured in the same run: parsing the file with `json.load`, and
importing circuitdb's own JSON export of the same run (which carries the same score list). Also the cut of a top-n
circuit from the stored scores and the EAP-IG export of the run. Best of --repeat tries each.

    .venv/bin/python benchmarks/formats.py [--repeat 3 --skip-neo4j]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from store import neo4j_test_server

from circuitdb import Catalog, Selection
from circuitdb.domain import graph_edges

LAYERS, HEADS = 12, 12  # GPT-2 small


def full_graph(in_graph: int = 200, seed: int = 0) -> dict:
    """An EAP-IG Graph.to_json file of GPT-2 small: every edge with a score, the top `in_graph` by |score| in the graph."""
    rng = random.Random(seed)
    edges = {f"{s}->{r}" + (f"<{x}>" if x else ""): {"score": rng.gauss(0, 1), "in_graph": False}
             for s, r, x in graph_edges(LAYERS, HEADS)}
    for name in sorted(edges, key=lambda n: -abs(edges[n]["score"]))[:in_graph]:
        edges[name]["in_graph"] = True
    kept = {end for name, e in edges.items() if e["in_graph"] for end in name.split("<")[0].split("->")}
    nodes = {n: {"in_graph": n in kept} for n in ["input", *dict.fromkeys(r for _, r, _ in graph_edges(LAYERS, HEADS))]}
    return {"cfg": {"n_layers": LAYERS, "n_heads": HEADS, "parallel_attn_mlp": False, "d_model": 768},
            "nodes": nodes, "edges": edges}


def best(repeat: int, work: Callable[[], object]) -> float:
    """The fastest of `repeat` timed calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(url: str, path: Path, folder: Path, repeat: int) -> dict[str, float]:
    """Seconds of each step on the store at `url` (emptied between tries by deleting the runs)."""
    out: dict[str, float] = {}
    with Catalog(url) as catalog:
        def fresh_import(kind: str, file: Path) -> None:
            for run in catalog.runs():
                catalog.delete(run.id)
            catalog.import_file(kind, file, **({"model": "gpt2-small", "task": "ioi"} if kind != "json" else {}))

        out["import eap-ig"] = best(repeat, lambda: fresh_import("eap-ig", path))
        (info,) = catalog.runs()
        native = folder / "native.json"
        catalog.export(Selection(run_ids=(info.id,)), native)
        out["import circuitdb json"] = best(repeat, lambda: fresh_import("json", native))
        (info,) = catalog.runs()
        out["cut top-n 500"] = best(repeat, lambda: catalog.cut(info.id, top_n=500))
        out["export eap-ig"] = best(repeat, lambda: catalog.export(Selection(run_ids=(info.id,)), folder / "out.json",
                                                                   fmt="eap-ig"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-neo4j", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="circuitdb-formats-"))
    path = folder / "importances.json"
    path.write_text(json.dumps(full_graph()))
    parse = best(args.repeat, lambda: json.loads(path.read_text()))
    print(f"file: {path.stat().st_size / 1e6:.1f} MB, {len(graph_edges(LAYERS, HEADS)):,} edges; json.load {parse:.3f} s")
    stores = {"kuzu": f"kuzu:{folder / 'bench.kuzu'}"}
    server, proc = (None if args.skip_neo4j else neo4j_test_server()), None
    if server is not None:
        uri, proc = server.start()
        stores["neo4j"] = uri
    try:
        for backend, url in stores.items():
            results = measure(url, path, folder, args.repeat)
            native = results["import circuitdb json"]
            print(f"\n{backend}")
            for step, seconds in results.items():
                extra = ""
                if step.startswith("import"):
                    extra = (f"  {32491 / seconds:,.0f} scored edges/s, x{seconds / parse:.1f} json.load, "
                             f"x{seconds / native:.2f} circuitdb json")
                print(f"  {step:<22} {seconds:8.3f} s{extra}")
    finally:
        if proc is not None:
            server.stop(proc)


if __name__ == "__main__":
    main()
