"""Jaccard similarity matrix over runs, of component sets or edge sets, plain or weighted (sum min / sum max)."""

from __future__ import annotations

import numpy as np
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
    size = np.array([float(sizes.get(r, {}).get(field) or 0) for r in ids])
    common = np.zeros((len(ids), len(ids)))
    position = {r: i for i, r in enumerate(ids)}
    for (a, b), row in pairs.items():
        common[position[a], position[b]] = common[position[b], position[a]] = float(row[shared_field])
    union = size[:, None] + size[None, :] - common
    matrix = np.divide(common, union, out=np.ones_like(common), where=union > 0)
    np.fill_diagonal(matrix, 1.0)
    names = labels(runs)
    return pd.DataFrame(matrix, index=names, columns=names)
