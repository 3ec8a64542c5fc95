"""Jaccard similarity matrix over runs, of component sets or edge sets, plain or weighted (sum min / sum max)."""

from __future__ import annotations

import pandas as pd

from circuitdb.queries import run_query
from circuitdb.queries.selection import RunInfo, labels
from circuitdb.store.base import Store


def similarity(store: Store, runs: list[RunInfo], edges: bool = False, weighted: bool = False) -> pd.DataFrame:
    """Square matrix indexed by run labels; weighted uses |score| (|weight| for edges), a missing score counting 1."""
    ids = [r.id for r in runs]
    sizes_query, pairs_query = ("similarity_edge_sizes", "similarity_edges") if edges else ("similarity_sizes", "similarity")
    sizes = {row["run"]: row for row in run_query(store, sizes_query, run_ids=ids)}
    pairs = {(row["run_a"], row["run_b"]): row for row in run_query(store, pairs_query, run_ids=ids)}
    field = "mass" if weighted else "size"
    shared_field = "shared_min" if weighted else "shared"
    names = labels(runs)
    matrix = pd.DataFrame(1.0, index=names, columns=names)
    for i, a in enumerate(ids):
        for j, b in enumerate(ids):
            if i == j:
                continue
            row = pairs.get((min(a, b), max(a, b)))
            common = float(row[shared_field]) if row else 0.0
            union = float(sizes.get(a, {}).get(field) or 0) + float(sizes.get(b, {}).get(field) or 0) - common
            matrix.iloc[i, j] = common / union if union > 0 else 1.0
    return matrix
