"""Copy a catalog that Kuzu 0.11.3 wrote into a new file of circuitdb's engine, ladybug: the two cannot open each
other's files or share a process. A child process on Kuzu brings the old file up to date (as any writable open does)
and writes each table to Parquet in the new schema's column order; this process COPYs them in, in one transaction,
and checks every table's row count.

    python -m circuitdb.store.move OLD_FILE FOLDER    (the child, run with CIRCUITDB_ENGINE=kuzu)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from circuitdb.errors import CircuitdbError, StoreError
from circuitdb.schema import KUZU_EDGE, KUZU_EDGE_ENDS, NODES, RELS
from circuitdb.store.engine import written_by
from circuitdb.store.kuzu import KuzuStore

# every table of the embedded schema: name -> (source, target) for relationships, None for nodes
TABLES: dict[str, tuple[str, str] | None] = {
    **dict.fromkeys([*NODES, KUZU_EDGE.label]),
    **{r.type: (r.source, r.target) for r in RELS.values() if r.type != "EDGE"},
    **dict.fromkeys(KUZU_EDGE_ENDS, (KUZU_EDGE.label, "Component")),
}


def pattern(table: str) -> str:
    """The Cypher pattern of one table's rows: `a` a node, or `r` a relationship from `a` to `b`."""
    ends = TABLES[table]
    return f"(a:{ends[0]})-[r:{table}]->(b:{ends[1]})" if ends else f"(a:{table})"


def columns(store: KuzuStore) -> dict[str, list[str]]:
    """Each table's properties in the store's own order (a relationship's two ends not included)."""
    return {t: [r["name"] for r in store.read(f"CALL table_info('{t}') RETURN name")] for t in TABLES}


def _export(old: Path, folder: Path, order: dict[str, list[str]]) -> dict[str, int]:
    """In the child: write each table of the old catalog to FOLDER/TABLE.parquet, columns in `order`; row counts."""
    store = KuzuStore(old, create=False)
    counts = {}
    try:
        for table in TABLES:
            ends = ["a.id AS `from`", "b.id AS `to`"] if TABLES[table] else []
            returned = ", ".join([*ends, *(f"{'r' if ends else 'a'}.`{c}` AS `{c}`" for c in order[table])])
            store.read(f"COPY (MATCH {pattern(table)} RETURN {returned}) TO '{folder / table}.parquet'")
            counts[table] = store.read(f"MATCH {pattern(table)} RETURN count(*) AS n")[0]["n"]
    finally:
        store.close()
    return counts


def copy_from_kuzu(store: KuzuStore, old: Path) -> dict[str, int]:
    """Copy the catalog in the Kuzu 0.11 file `old` into `store`, a ladybug catalog that holds nothing yet; the rows
    copied per table. When anything fails the new catalog stays empty (its schema only)."""
    if store.engine.__name__ != "ladybug":
        raise StoreError("from-kuzu writes a ladybug file: unset CIRCUITDB_ENGINE=kuzu")
    if written_by(old) != "kuzu":
        raise StoreError(f"{old} is not a file Kuzu 0.11 wrote" if old.exists() else f"no file {old}")
    store.init()
    held = store.read("MATCH (n) RETURN count(n) AS n")[0]["n"]
    if held:
        raise StoreError(f"{store.path} already holds {held} nodes: from-kuzu copies into a new, empty catalog")
    order = columns(store)
    with tempfile.TemporaryDirectory(prefix="circuitdb-move-") as folder:
        env = {**os.environ, "CIRCUITDB_ENGINE": "kuzu"}
        out = subprocess.run([sys.executable, "-m", "circuitdb.store.move", str(old), folder, json.dumps(order)],
                             capture_output=True, text=True, env=env)
        if out.returncode:
            said = (out.stderr.strip().splitlines() or ["no message"])[-1].removeprefix("error: ")
            raise StoreError(f"reading {old} with Kuzu 0.11 failed: {said}")
        counts = json.loads(out.stdout)
        store.load_tables({t: Path(folder, f"{t}.parquet") for t in TABLES if counts[t]})
    copied = {t: store.read(f"MATCH {pattern(t)} RETURN count(*) AS n")[0]["n"] for t in TABLES}
    if copied != counts:
        raise StoreError(f"copying {old} lost rows: {counts} read, {copied} in {store.path}")
    return counts


def main(argv: list[str]) -> int:
    """The child: export, then print the row counts as JSON."""
    old, folder, order = argv
    try:
        print(json.dumps(_export(Path(old), Path(folder), json.loads(order))))
    except CircuitdbError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
