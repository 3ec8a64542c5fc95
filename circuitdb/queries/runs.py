"""Read whole runs back out of the store (for `show` and the JSON export), many runs per query."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator

from circuitdb.domain import MEASURES, Edge, Model, Run, Task, parse_component, unpack_scores
from circuitdb.errors import CircuitdbError
from circuitdb.ingest.native import export_order
from circuitdb.lazy import pd
from circuitdb.queries import run_query
from circuitdb.queries.selection import RunInfo, label_of
from circuitdb.store.base import Store

ROWS_PER_BATCH = 250_000  # memberships + edges fetched per round of queries: bounds the memory of an export (each round
# scans all edges on Kuzu, which has no index on the run of an edge)


def fetch_run(store: Store, run_id: str) -> Run:
    """The run with this id, members, edges and evaluations included."""
    rows = run_query(store, "run", run_ids=[run_id])
    if not rows:
        raise CircuitdbError(f"unknown run {run_id!r}")
    return _runs(store, rows, "run_edges")[0]


def export_runs(store: Store, infos: list[RunInfo]) -> Iterator[Run]:
    """Whole runs in export order (parents first), fetched in batches of about ROWS_PER_BATCH memberships and edges."""
    heads = {row["id"]: row for row in run_query(store, "run", run_ids=[r.id for r in infos])}
    size = {r.id: r.n_nodes + r.n_edges for r in infos}
    for batch in batches(export_order(list(heads.values())), size, ROWS_PER_BATCH):
        yield from _runs(store, [heads[r] for r in batch], "run_edges_batch")


def batches(ids: list[str], rows: dict[str, int], limit: int) -> Iterator[list[str]]:
    """Consecutive slices of `ids` of at most `limit` rows together (a run larger than that alone)."""
    batch: list[str] = []
    total = 0
    for run_id in ids:
        if batch and total + rows[run_id] > limit:
            yield batch
            batch, total = [], 0
        batch.append(run_id)
        total += rows[run_id]
    if batch:
        yield batch


def _runs(store: Store, heads: list[dict], edge_query: str) -> list[Run]:
    """Runs from their `run.cypher` rows, with members, edges and evaluations fetched for all of them at once (as
    lists per run: far fewer records for a driver to decode than a row per member)."""
    ids = [h["id"] for h in heads]
    members = {row["run"]: row for row in run_query(store, "run_members", run_ids=ids)}
    edges = {row["run"]: row for row in run_query(store, edge_query, run_ids=ids)}
    evaluations = defaultdict(dict)
    for e in run_query(store, "evaluations", run_ids=ids):
        evaluations[e["run"]][e["task"]] = e["performance"]
    name = {node: n for row in members.values() for node, n in zip(row["nodes"], row["components"])}
    ends: set[int] = set()
    for row in edges.values():
        ends.update(row["senders"], row["receivers"])
    missing = ends - name.keys()
    if missing:  # an edge end that is not a member of its run (the write path refuses them; older catalogs)
        name.update((r["node"], r["name"]) for r in run_query(store, "component_names", nodes=sorted(missing)))
    for row in edges.values():  # the ends of edges by name
        for end in ("senders", "receivers"):
            row[end] = list(map(name.__getitem__, row[end]))
    place = {n: parse_component(n).sort_key() for n in set(name.values())}  # forward order, once per batch
    level = {key: i for i, key in enumerate(sorted(set(place.values())))}
    rank = {n: level[key] for n, key in place.items()}  # the same order as a number (equal places, equal numbers)
    return [_run(h, members.get(h["id"]), edges.get(h["id"]), evaluations[h["id"]], rank) for h in heads]


def _run(row: dict, members: dict | None, edges: dict | None, evaluations: dict[str, float], rank: dict[str, int]) -> Run:
    """A run as stored (its names were made canonical when it was written), members and edges in forward order (an
    edge by receiver, input, sender)."""
    scores = dict(zip(members["components"], members["scores"])) if members else {}
    found: list[Edge] = []
    if edges:
        senders, receivers, weights = edges["senders"], edges["receivers"], edges["weights"]
        inputs = [i or "" for i in edges["inputs"]]
        order = sorted(zip(map(rank.__getitem__, receivers), inputs, map(rank.__getitem__, senders), range(len(inputs))))
        found = [Edge(senders[k], receivers[k], weights[k], inputs[k]) for *_, k in order]
    return Run(
        model=Model(row["model"], row["n_layers"], row["n_heads"], row["d_model"], row["source"] or ""),
        task=Task(row["task"], row["family"] or "", row["description"] or "", row["n_prompts"]),
        method=row["method"],
        threshold=row["threshold"],
        ablation=row["ablation"],
        metric=row["metric"],
        components={name: scores[name] for name in sorted(scores, key=rank.__getitem__)},
        edges=found,
        **{measure: row[measure] for measure in MEASURES},
        direction=row["direction"] or "noising",
        params=json.loads(row["params"] or "{}"),
        dataset_hash=row["dataset_hash"] or "",
        seed=row["seed"],
        versions=json.loads(row["versions"] or "{}"),
        created_at=row["created_at"] or "",
        nests_in=row["nests_in"],
        evaluations=evaluations,
        scores=unpack_scores(row["scores"]),
        cut=row["cut"] or "",
    )


def curve_points(store: Store, runs: list[RunInfo]) -> pd.DataFrame:
    """Rows (run, percent, faithfulness) of the runs' stored faithfulness curves; CircuitdbError naming the runs
    that carry none."""
    stored = {row["run"]: json.loads(row["params"] or "{}").get("curve")
              for row in run_query(store, "curves", run_ids=[r.id for r in runs])}
    missing = [label_of(r) for r in runs if not stored.get(r.id)]
    if missing:
        raise CircuitdbError(f"no faithfulness curve on {', '.join(missing)} (runs of --method path, eap or eap-ig "
                             "carry one)")
    return pd.DataFrame([{"run": r.id, "percent": p, "faithfulness": f} for r in runs
                         for p, f in zip(stored[r.id]["percent"], stored[r.id]["faithfulness"])])
