"""Cross-circuit queries: shared subcircuit, Venn regions / UpSet table, diff of two runs, threshold ladder."""

from __future__ import annotations

from circuitdb.domain import parse_component
from circuitdb.errors import CircuitdbError
from circuitdb.lazy import pd
from circuitdb.queries import run_query, run_rows
from circuitdb.queries.selection import RunInfo, Selection, labels, resolve
from circuitdb.store.base import Store

EDGE_KEY = ["sender", "receiver", "input"]


def node_order(name: str) -> tuple:
    """Forward order of a component name (input, a0.h0, ..., m0, a1.h0, ..., logits)."""
    return parse_component(name).sort_key()


def edge_order(sender: str, receiver: str, input_: str) -> tuple:
    return (node_order(receiver), input_, node_order(sender))


def sort_frame(frame: pd.DataFrame, edges: bool) -> pd.DataFrame:
    """Rows in forward order of the model, so both stores print identical tables."""
    if frame.empty:
        return frame.reset_index(drop=True)
    if edges:
        keys = [edge_order(s, r, i) for s, r, i in zip(frame["sender"], frame["receiver"], frame["input"])]
    else:
        keys = [node_order(c) for c in frame["component"]]
    order = sorted(range(len(frame)), key=keys.__getitem__)
    return frame.iloc[order].reset_index(drop=True)


def _frame(rows: list[dict], columns: list[str], edges: bool) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    if "layer" in frame:  # integers, None for input/logits (pandas would make the column float)
        frame["layer"] = pd.Series([None if r.get("layer") is None else int(r["layer"]) for r in rows], dtype=object)
    return sort_frame(frame, edges)


def shared(store: Store, runs: list[RunInfo], edges: bool = False, by_position: bool = True) -> pd.DataFrame:
    """Components (or edges) present in every run; mean and min score (weight) over the runs. A component is its name
    and token position, or its name alone unless `by_position` (so does each end of an edge)."""
    ids = [r.id for r in runs]
    if edges:
        rows = run_query(store, "shared_edges", run_ids=ids, n=len(ids), by_position=by_position)
        return _frame(rows, [*EDGE_KEY, "mean_weight", "min_weight"], True)
    rows = run_query(store, "shared", run_ids=ids, n=len(ids), by_position=by_position)
    return _frame(rows, ["component", "kind", "layer", "mean_score", "min_score"], False)


def venn(store: Store, runs: list[RunInfo], edges: bool = False, by_position: bool = True) -> pd.DataFrame:
    """Which members fall in which region of the runs' Venn diagram: region (bitmask, bit i = run i), sets, count,
    members; every region for 2-4 runs, the non-empty ones by size (an UpSet table) past that."""
    if len(runs) < 2:
        raise CircuitdbError("venn needs at least 2 runs")
    bit = {r.id: 1 << i for i, r in enumerate(runs)}
    names = labels(runs)
    columns = [*EDGE_KEY, "runs"] if edges else ["component", "kind", "layer", "runs"]
    rows = run_rows(store, "venn_edges" if edges else "venn", columns, run_ids=list(bit), by_position=by_position)
    members: dict[int, list] = {}
    for row in rows:
        mask = sum(bit[r] for r in set(row["runs"]))
        key = (row["sender"], row["receiver"], row["input"]) if edges else row["component"]
        members.setdefault(mask, []).append(key)
    masks = range(1, 1 << len(runs)) if len(runs) <= 4 else sorted(members)
    table = []
    for mask in masks:
        found = members.get(mask, [])
        found.sort(key=(lambda e: edge_order(*e)) if edges else node_order)
        table.append(
            {
                "region": mask,
                "sets": "&".join(n for i, n in enumerate(names) if mask >> i & 1),
                "count": len(found),
                "members": [f"{s}->{r}" + (f"<{i}>" if i else "") for s, r, i in found] if edges else found,
            }
        )
    frame = pd.DataFrame(table, columns=["region", "sets", "count", "members"])
    if len(runs) > 4:
        frame = frame.sort_values(["count", "region"], ascending=[False, True]).reset_index(drop=True)
    return frame


def diff(store: Store, run_a: RunInfo, run_b: RunInfo, edges: bool = False, by_position: bool = True) -> pd.DataFrame:
    """Members only in A, only in B, and in both, with each side's score (weight) and the delta B - A."""
    params = {"run_a": run_a.id, "run_b": run_b.id, "by_position": by_position}
    value = "weight" if edges else "score"
    key = EDGE_KEY if edges else ["component", "kind", "layer"]
    rows = run_rows(store, "diff_edges" if edges else "diff", [*key, "in_a", "in_b", f"{value}_a", f"{value}_b"], **params)
    out = []
    for row in rows:
        side = "both" if row["in_a"] and row["in_b"] else ("only_a" if row["in_a"] else "only_b")
        a, b = row[f"{value}_a"], row[f"{value}_b"]
        delta = b - a if a is not None and b is not None else None
        out.append({**{k: row[k] for k in key}, "side": side, f"{value}_a": a, f"{value}_b": b, "delta": delta})
    frame = _frame(out, [*key, "side", f"{value}_a", f"{value}_b", "delta"], edges)
    rank = {"only_a": 0, "only_b": 1, "both": 2}
    return frame.sort_values("side", key=lambda s: s.map(rank), kind="stable").reset_index(drop=True)


def ladder(store: Store, model: str, task: str, methods: tuple[str, ...] = ()) -> pd.DataFrame:
    """For one model x task: per threshold (strictest first) the size, members and nesting against the stricter one."""
    runs = resolve(store, Selection(models=(model,), tasks=(task,), methods=methods))
    runs = [r for r in runs if r.threshold is not None]
    if not runs:
        raise CircuitdbError(f"{model}/{task} has no runs with a threshold")
    if len({(r.method, r.ablation, r.metric, r.direction) for r in runs}) > 1:
        raise CircuitdbError(f"{model}/{task} has runs of several methods/ablations/metrics/directions; pick one with "
                             "--method")
    runs.sort(key=lambda r: -r.threshold)
    members: dict[str, set[str]] = {r.id: set() for r in runs}
    for row in run_query(store, "members", run_ids=list(members)):
        members[row["run"]].add(row["component"])
    table, stricter = [], None
    for r in runs:
        mine = members[r.id]
        table.append(
            {
                "threshold": r.threshold,
                "run": r.id,
                "size": len(mine),
                "faithfulness": r.faithfulness,
                "members": sorted(mine, key=node_order),
                "contains_stricter": None if stricter is None else stricter <= mine,
                "within_stricter": None if stricter is None else mine <= stricter,
            }
        )
        stricter = mine
    return pd.DataFrame(table)
