"""Jaccard similarity matrix over runs, of component sets or edge sets, plain or weighted (sum min / sum max).

The store only lists each run's members (or edge keys) with their weights; the overlaps of all pairs of runs come
from sparse matrix products here, so time and memory grow with the memberships and the matrix, not with a join of
every pair of runs inside the database."""

from __future__ import annotations

from circuitdb.domain import parse_component
from circuitdb.lazy import np, pd
from circuitdb.queries import run_query
from circuitdb.queries.runs import batches
from circuitdb.queries.selection import RunInfo, labels
from circuitdb.store.base import Store

ITEMS_PER_QUERY = 1_000_000  # memberships (edges) per query: bounds the lists held at once
DENSE_SHARE = 16  # an item held by at least 1/16 of the runs goes through the dense product
DENSE_CELLS = 1 << 23  # cells of one dense block of the incidence matrix (32 MB)
SMALL_NODES = 1 << 29  # node numbers below this make edge keys of 63 bits as they are


def similarity(store: Store, runs: list[RunInfo], edges: bool = False, weighted: bool = False,
               every: bool = False, by_position: bool = True) -> pd.DataFrame:
    """Square matrix indexed by run labels; weighted uses |score| (|weight| for edges), a missing score counting 1.
    `every`: the runs are all the catalog holds; unless `by_position`, components are matched by name alone."""
    rows, items, weights = incidence(store, runs, edges, weighted, every, by_position)
    n = len(runs)
    size = np.bincount(rows, weights, minlength=n)
    holders = np.bincount(items)
    shared = holders[items] > 1  # an item only one run holds is in no overlap
    code = np.cumsum(holders > 1) - 1  # the shared items renumbered in the same order (no sort needed)
    rows, items, weights = rows[shared], code[items[shared]], weights[shared]
    common = shared_min(rows, items, weights, n) if weighted else shared_count(rows, items, n)
    union = size[:, None] + size[None, :] - common
    matrix = np.divide(common, union, out=np.ones_like(common), where=union > 0)
    np.fill_diagonal(matrix, 1.0)
    names = labels(runs)
    return pd.DataFrame(matrix, index=names, columns=names)


def incidence(store: Store, runs: list[RunInfo], edges: bool, weighted: bool, every: bool = False,
              by_position: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(run position, item code, weight) per membership (per edge; weight 1 unless `weighted`), fetched in batches of
    about ITEMS_PER_QUERY items. The store names items by its node numbers (an edge by its sender's, its receiver's
    and its input's): numbers arrive and are coded in bulk, where names would cost a string each. The edges of
    `every` run in one batch come from similarity_edges_all (a scan where the store has no index to join with)."""
    position = {r.id: i for i, r in enumerate(runs)}
    size = {r.id: r.n_edges if edges else r.n_nodes for r in runs}
    rows, keys, weights = [], [], []
    columns = ("senders", "receivers", "inputs") if edges else ("items",)
    parts = list(batches(list(position), size, ITEMS_PER_QUERY))
    query = "similarity_edges" + ("_all" if every and len(parts) == 1 else "") if edges else "similarity"
    for batch in parts:
        for row in run_query(store, query, run_ids=batch, weighted=weighted):
            if row["run"] not in position:  # written since the runs were listed
                continue
            count = len(row[columns[0]])
            rows.append(np.full(count, position[row["run"]], np.int64))
            keys.append([np.asarray(row[c], np.int64) for c in columns])
            weights.append(np.asarray(row["weights"], np.float64) if weighted else np.ones(count))
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    if edges:
        senders, receivers, inputs = (np.concatenate([k[c] for k in keys]) for c in range(3))
        ends = np.concatenate([senders, receivers])
        nodes = compact(ends) if by_position else np.unique(by_name(store, ends), return_inverse=True)[1]
        sender, receiver = nodes[: len(senders)], nodes[len(senders):]
        items = (sender * (int(nodes.max()) + 1) + receiver) * 4 + inputs
    else:
        items = np.concatenate([k[0] for k in keys])
        items = items if by_position else np.unique(by_name(store, items), return_inverse=True)[1]
    rows, weights = np.concatenate(rows), np.concatenate(weights)
    items = np.unique(items, return_inverse=True)[1].astype(np.int64)
    if by_position:
        return rows, items, weights
    # one item per run and name, however many positions it holds (weighted: the largest)
    merged = pd.DataFrame({"row": rows, "item": items, "weight": weights}).groupby(["row", "item"], sort=False).max()
    return (merged.index.get_level_values(0).to_numpy(np.int64), merged.index.get_level_values(1).to_numpy(np.int64),
            merged["weight"].to_numpy(np.float64))


def compact(numbers: np.ndarray) -> np.ndarray:
    """Non-negative node numbers as they are where they are below SMALL_NODES (an edge key of two then fits in 63
    bits); else renumbered 0..k-1 by a sort, the step that cost most where the numbers were small already."""
    if int(numbers.max()) < SMALL_NODES:
        return numbers
    return np.unique(numbers, return_inverse=True)[1]


def by_name(store: Store, nodes: np.ndarray) -> np.ndarray:
    """Each component's node number as a code of its name without its position (equal names, equal codes)."""
    numbers, where = np.unique(nodes, return_inverse=True)
    names = {r["node"]: r["name"] for r in run_query(store, "component_names", nodes=numbers.tolist())}
    bases = [parse_component(names[n]).base for n in numbers.tolist()]
    return np.unique(bases, return_inverse=True)[1][where]


def shared_count(rows: np.ndarray, items: np.ndarray, n: int) -> np.ndarray:
    """n x n: for each pair of runs, the number of items both hold (the incidence matrix times its transpose). Items
    held by many runs go through a dense product (BLAS, a few columns at a time), the rest through a sparse one: per
    item the dense product costs n^2 fast operations, the sparse one holders^2 slow ones."""
    from scipy import sparse

    holders = np.bincount(items, minlength=1)
    dense = holders[items] * DENSE_SHARE >= n
    common = np.zeros((n, n))
    heavy_rows, heavy = rows[dense], np.unique(items[dense], return_inverse=True)[1]
    step, columns = max(1, DENSE_CELLS // n), int(heavy.max(initial=-1)) + 1
    for start in range(0, columns, step):
        part = (heavy >= start) & (heavy < start + step)
        block = np.zeros((n, min(step, columns - start)), np.float32)  # exact: counts stay far below 2**24
        block[heavy_rows[part], heavy[part] - start] = 1
        common += block @ block.T
    light = sparse.csr_matrix((np.ones(int((~dense).sum())), (rows[~dense], items[~dense])), shape=(n, len(holders)))
    return common + (light @ light.T).toarray()


def shared_min(rows: np.ndarray, items: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """n x n: for each pair of runs, the sum over the items both hold of the smaller weight; the diagonal is 0.

    Sort each item's holders by weight and halve the sorted list recursively: across one split, every left holder
    has the smaller weight, so the pairs that split separates add up to one rank-one block (left weights times right
    ones). Each pair is separated by exactly one split, so one product over all blocks of all items sums it. A block
    pairing many runs (at least (2n / DENSE_SHARE)^2 pairs: the upper splits of items most runs hold) goes through a
    dense product (BLAS, a few blocks at a time), the rest through a sparse one: a sparse pair costs as much as some
    hundreds of dense cells, so only such blocks come out cheaper dense (at 2,000 runs of 300 members, 15% less work).
    """
    from scipy import sparse

    order = np.lexsort((weights, items))
    rows, items, weights = rows[order], items[order], weights[order]
    starts = np.flatnonzero(np.r_[True, items[1:] != items[:-1]]) if len(items) else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, len(items)])
    rank = np.arange(len(items)) - np.repeat(starts, sizes)  # position among the item's holders
    item = np.repeat(np.arange(len(starts)), sizes)
    size = sizes[item]
    left_parts, right_parts, dense_parts = [], [], []  # per level: the holders' (rows, blocks, weights) in each product
    blocks, dense_blocks, level = 0, 0, 0
    while len(sizes) and 1 << level < sizes.max():
        half = 1 << level  # a block covers 2 * half consecutive holders: its left half, then its right half
        per_item = -(-sizes // (2 * half))
        block = (np.cumsum(per_item) - per_item + blocks)[item] + rank // (2 * half)
        right = (rank & half).astype(bool)
        held = np.minimum(2 * half, size - (rank - rank % (2 * half)))  # holders in the block
        pairs = np.minimum(half, held) * np.maximum(held - half, 0)
        dense = pairs * float(DENSE_SHARE) ** 2 >= 4 * n * n  # float: DENSE_SHARE may be huge (all dense)
        if dense.any():
            code = np.unique(block[dense], return_inverse=True)[1] + dense_blocks
            dense_parts.append((rows[dense], code, weights[dense], right[dense]))
            dense_blocks = int(code.max()) + 1
        light = ~dense & (pairs > 0)
        on_left, on_right = light & ~right, light & right
        left_parts.append((rows[on_left], block[on_left], weights[on_left]))
        right_parts.append((rows[on_right], block[on_right]))
        blocks += int(per_item.sum())
        level += 1
    common = dense_min(*(np.concatenate(part) for part in zip(*dense_parts)), dense_blocks, n) if dense_parts else 0
    del dense_parts
    if not blocks:
        return np.zeros((n, n)) + common
    left_rows, left_blocks, left_weights = (np.concatenate(part) for part in zip(*left_parts))
    del left_parts
    left = sparse.csr_matrix((left_weights, (left_rows, left_blocks)), shape=(n, blocks))
    del left_rows, left_blocks, left_weights
    right_rows, right_blocks = (np.concatenate(part) for part in zip(*right_parts))
    del right_parts
    right = sparse.csr_matrix((np.ones(len(right_rows)), (right_blocks, right_rows)), shape=(blocks, n))
    del right_rows, right_blocks
    once = (left @ right).toarray() + common
    return once + once.T


def dense_min(rows: np.ndarray, blocks: np.ndarray, weights: np.ndarray, right: np.ndarray, count: int,
              n: int) -> np.ndarray:
    """n x n: the sum of shared_min's rank-one blocks (numbered 0..count-1; left holders with their weights, right
    ones) as dense products, a few blocks at a time."""
    order = np.argsort(blocks, kind="stable")
    rows, blocks, weights, right = rows[order], blocks[order], weights[order], right[order]
    step = max(1, DENSE_CELLS // (2 * n))  # two float64 blocks of DENSE_CELLS / 2 cells each
    cuts = np.searchsorted(blocks, np.arange(0, count + step, step))
    common = np.zeros((n, n))
    for start, first, last in zip(range(0, count, step), cuts, cuts[1:]):
        r, b, w, on_right = rows[first:last], blocks[first:last] - start, weights[first:last], right[first:last]
        left_block = np.zeros((n, min(step, count - start)))
        right_block = np.zeros_like(left_block)
        left_block[r[~on_right], b[~on_right]] = w[~on_right]
        right_block[r[on_right], b[on_right]] = 1
        common += left_block @ right_block.T
    return common
