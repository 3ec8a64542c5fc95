"""Embedded store: a Kuzu database file; bulk rows go in through COPY from Arrow tables inside one transaction."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kuzu
import pyarrow as pa

from circuitdb.errors import CircuitdbError, StoreError
from circuitdb.ingest.features import RelationRows, SteeringRows
from circuitdb.ingest.tables import RunTables, check_tables

DDL = [
    "CREATE NODE TABLE IF NOT EXISTS Model(id STRING, name STRING, n_layers INT64, n_heads INT64, d_model INT64,"
    " source STRING, PRIMARY KEY(id))",
    "CREATE NODE TABLE IF NOT EXISTS Task(id STRING, name STRING, family STRING, description STRING,"
    " n_prompts INT64, PRIMARY KEY(id))",
    "CREATE NODE TABLE IF NOT EXISTS Run(id STRING, method STRING, ablation STRING, metric STRING, threshold DOUBLE,"
    " faithfulness DOUBLE, completeness DOUBLE, n_nodes INT64, n_edges INT64, params STRING, dataset_hash STRING,"
    " seed INT64, versions STRING, created_at STRING, PRIMARY KEY(id))",
    "CREATE NODE TABLE IF NOT EXISTS Component(id STRING, model_id STRING, name STRING, kind STRING, layer INT64,"
    " index INT64, dictionary STRING, PRIMARY KEY(id))",
    "CREATE NODE TABLE IF NOT EXISTS SteeringVector(id STRING, model_id STRING, name STRING, layer INT64,"
    " description STRING, dim INT64, norm DOUBLE, vector STRING, PRIMARY KEY(id))",
    "CREATE REL TABLE IF NOT EXISTS ON_MODEL(FROM Run TO Model)",
    "CREATE REL TABLE IF NOT EXISTS FOR_TASK(FROM Run TO Task)",
    "CREATE REL TABLE IF NOT EXISTS INCLUDES(FROM Run TO Component, score DOUBLE)",
    "CREATE REL TABLE IF NOT EXISTS EDGE(FROM Component TO Component, run_id STRING, weight DOUBLE, input STRING)",
    "CREATE REL TABLE IF NOT EXISTS NESTS_IN(FROM Run TO Run)",
    "CREATE REL TABLE IF NOT EXISTS EVALUATED_ON(FROM Run TO Task, performance DOUBLE)",
    "CREATE REL TABLE IF NOT EXISTS RELATES(FROM Component TO Component, kind STRING, weight DOUBLE, source STRING)",
    "CREATE REL TABLE IF NOT EXISTS DECOMPOSES_INTO(FROM SteeringVector TO Component, coef DOUBLE, method STRING)",
    "CREATE REL TABLE IF NOT EXISTS SHIFTS(FROM SteeringVector TO Component, delta DOUBLE, layer INT64, coef DOUBLE)",
]

MERGE_MODEL = (
    "MERGE (m:Model {id: $id}) SET m.name = $name, m.n_layers = $n_layers, m.n_heads = $n_heads,"
    " m.d_model = $d_model, m.source = $source"
)
MERGE_TASK = (
    "MERGE (t:Task {id: $id}) SET t.name = $name, t.family = $family, t.description = $description, t.n_prompts = $n_prompts"
)
CREATE_RUN = (
    "MATCH (m:Model {id: $model}), (t:Task {id: $task}) "
    "CREATE (r:Run {id: $id, method: $method, ablation: $ablation, metric: $metric, threshold: $threshold,"
    " faithfulness: $faithfulness, completeness: $completeness, n_nodes: $n_nodes, n_edges: $n_edges,"
    " params: $params, dataset_hash: $dataset_hash, seed: $seed, versions: $versions, created_at: $created_at})"
    "-[:ON_MODEL]->(m), (r)-[:FOR_TASK]->(t)"
)
MERGE_COMPONENTS = (
    "UNWIND $rows AS r MERGE (c:Component {id: r.id}) ON CREATE SET c.model_id = r.model_id, c.name = r.name,"
    " c.kind = r.kind, c.layer = r.layer, c.index = r.index, c.dictionary = r.dictionary"
)
CREATE_RELATES = (
    "UNWIND $rows AS r MATCH (a:Component {id: r.from}), (b:Component {id: r.to}) "
    "CREATE (a)-[:RELATES {kind: r.kind, weight: r.weight, source: r.source}]->(b)"
)
MERGE_VECTOR = (
    "MERGE (s:SteeringVector {id: $id}) SET s.model_id = $model_id, s.name = $name, s.layer = $layer,"
    " s.description = $description, s.dim = $dim, s.norm = $norm, s.vector = $vector"
)
CREATE_LINKS = {
    "DECOMPOSES_INTO": "UNWIND $rows AS r MATCH (s:SteeringVector {id: $id}), (c:Component {id: r.to}) "
    "CREATE (s)-[:DECOMPOSES_INTO {coef: r.coef, method: r.method}]->(c)",
    "SHIFTS": "UNWIND $rows AS r MATCH (s:SteeringVector {id: $id}), (c:Component {id: r.to}) "
    "CREATE (s)-[:SHIFTS {delta: r.delta, layer: r.layer, coef: r.coef}]->(c)",
}


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the write has committed (a half-aborted COPY is what must never happen)."""
    signals = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class KuzuStore:
    """The embedded default: nothing to start, one file."""

    backend = "kuzu"

    def __init__(self, path: Path, read_only: bool = False) -> None:
        self.path = path
        try:
            self.db = kuzu.Database(str(path), read_only=read_only)
            self.conn = kuzu.Connection(self.db)
        except RuntimeError as exc:
            raise StoreError(f"cannot open Kuzu store at {path}: {exc}") from None
        if not read_only:
            self.init()

    def init(self) -> None:
        for statement in DDL:
            self.conn.execute(statement)

    def _exec(self, cypher: str, params: dict[str, Any] | None = None) -> kuzu.QueryResult:
        result = self.conn.execute(cypher, params or {})
        return result[-1] if isinstance(result, list) else result

    def read(self, cypher: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            result = self._exec(cypher, params)
        except RuntimeError as exc:
            if "read-only" in str(exc):
                raise CircuitdbError("refused: the query writes, and this store is opened read-only") from None
            raise CircuitdbError(f"query failed on Kuzu: {exc}") from None
        columns = result.get_column_names()
        rows = []
        while result.has_next():
            rows.append(dict(zip(columns, result.get_next())))
        return rows

    def _rollback(self) -> None:
        """Roll back the open transaction; Kuzu has already done so itself when a statement failed."""
        try:
            self._exec("ROLLBACK")
        except RuntimeError as exc:
            if "No active transaction" not in str(exc):
                raise

    def _copy(self, table_name: str, table: pa.Table) -> None:
        if table.num_rows:
            self._exec(f"COPY {table_name} FROM $rows", {"rows": table})

    def _delete(self, run_id: str) -> bool:
        found = self.read("MATCH (r:Run {id: $id}) RETURN count(r) AS n", {"id": run_id})[0]["n"]
        if found:
            self._exec("MATCH ()-[e:EDGE]->() WHERE e.run_id = $id DELETE e", {"id": run_id})
            self._exec("MATCH (r:Run {id: $id}) DETACH DELETE r", {"id": run_id})
        return bool(found)

    def delete_run(self, run_id: str) -> bool:
        self._exec("BEGIN TRANSACTION")
        try:
            found = self._delete(run_id)
        except BaseException:
            self._rollback()
            raise
        self._exec("COMMIT")
        return found

    def write_run(self, tables: RunTables) -> None:
        self.write_runs([tables])

    def write_runs(self, batch: list[RunTables]) -> None:
        """All runs of the batch in one transaction, each relationship table filled by one COPY.

        One transaction per batch, not per run: a Kuzu commit after a COPY costs time that grows with the table, so
        per-run commits make bulk ingest quadratic.
        """
        for tables in batch:
            check_tables(tables)
        batch = list({t.run_id: t for t in batch}.values())
        names = ", ".join(t.run_id for t in batch[:3]) + (" ..." if len(batch) > 3 else "")
        with _interrupts_deferred():
            self._exec("BEGIN TRANSACTION")
            try:
                for tables in batch:
                    self._write_nodes(tables)
                self._copy("Component", self._fresh_components(batch))
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, (RuntimeError, CircuitdbError)):
                    raise StoreError(f"writing run {names} to Kuzu failed, nothing written: {exc}") from None
                raise
            try:
                self._copy("INCLUDES", pa.concat_tables([t.includes for t in batch]))
                self._copy("EDGE", pa.concat_tables([t.edges for t in batch]))
                self._exec("COMMIT")
            except BaseException as exc:
                # Kuzu 0.11.3 empties a whole relationship table when a transaction holding a COPY into it is
                # rolled back or closed; crash recovery discards it safely. The rows were checked, so only I/O
                # errors get here: end the process and let recovery drop the transaction.
                sys.stderr.write(
                    f"error: writing run {names} to Kuzu failed mid-COPY ({exc}); exiting so that "
                    f"crash recovery discards the transaction\n"
                )
                sys.stderr.flush()
                os._exit(70)

    def _small_write(self, what: str, statements: list[tuple[str, dict[str, Any]]]) -> None:
        """A few parameterised statements in one transaction (no COPY, so a rollback is safe)."""
        with _interrupts_deferred():
            self._exec("BEGIN TRANSACTION")
            try:
                for cypher, params in statements:
                    if params.get("rows", True) != []:  # Kuzu cannot type an empty list parameter
                        self._exec(cypher, params)
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, RuntimeError):
                    raise StoreError(f"writing {what} to Kuzu failed, nothing written: {exc}") from None
                raise
            self._exec("COMMIT")

    def write_relations(self, rows: RelationRows) -> None:
        self._small_write("relations", [
            ("MATCH ()-[x:RELATES]->() WHERE x.source IN $sources DELETE x", {"sources": rows.sources}),
            (MERGE_COMPONENTS, {"rows": rows.components}),
            (CREATE_RELATES, {"rows": rows.relations}),
        ])

    def write_steering(self, rows: SteeringRows) -> None:
        statements = [(MERGE_VECTOR, rows.vector)]
        if rows.kind:
            statements += [
                (f"MATCH (:SteeringVector {{id: $id}})-[x:{rows.kind}]->() DELETE x", {"id": rows.vector["id"]}),
                (MERGE_COMPONENTS, {"rows": rows.components}),
                (CREATE_LINKS[rows.kind], {"id": rows.vector["id"], "rows": rows.links}),
            ]
        self._small_write(f"steering vector {rows.vector['id']}", statements)

    def _fresh_components(self, batch: list[RunTables]) -> pa.Table:
        """The batch's components not yet in the store, each once (an id lookup, not a scan of all components)."""
        table = pa.concat_tables([t.components for t in batch])
        ids = table.column("id").to_pylist()
        known = {r["id"] for r in self.read("UNWIND $ids AS i MATCH (c:Component {id: i}) RETURN c.id AS id",
                                            {"ids": sorted(set(ids))})}
        keep, seen = [], set()
        for i in ids:
            keep.append(i not in known and i not in seen)
            seen.add(i)
        return table.filter(pa.array(keep, pa.bool_()))

    def _write_nodes(self, tables: RunTables) -> None:
        """Everything but components and bulk relationships: old copy out, model, task, run, nesting, evaluations."""
        rid = tables.run_id
        children = [r["id"] for r in self.read("MATCH (c:Run)-[:NESTS_IN]->(:Run {id: $id}) RETURN c.id AS id", {"id": rid})]
        self._delete(rid)
        self._exec(MERGE_MODEL, tables.model)
        self._exec(MERGE_TASK, tables.task)
        self._exec(CREATE_RUN, {**tables.run, "model": tables.model["id"], "task": tables.task["id"]})
        for child in children:
            self._exec("MATCH (c:Run {id: $c}), (p:Run {id: $p}) CREATE (c)-[:NESTS_IN]->(p)", {"c": child, "p": rid})
        if tables.nests_in:
            made = self.read(
                "MATCH (c:Run {id: $c}), (p:Run {id: $p}) CREATE (c)-[:NESTS_IN]->(p) RETURN count(*) AS n",
                {"c": rid, "p": tables.nests_in},
            )
            if not made or made[0]["n"] != 1:
                raise StoreError(f"run {rid} nests in run {tables.nests_in}, which is not in the catalog")
        for ev in tables.evaluations:
            self._exec("MERGE (t:Task {id: $task}) ON CREATE SET t.name = $task", {"task": ev["task"]})
            self._exec(
                "MATCH (r:Run {id: $id}), (t:Task {id: $task}) CREATE (r)-[:EVALUATED_ON {performance: $p}]->(t)",
                {"id": rid, "task": ev["task"], "p": ev["performance"]},
            )

    def close(self) -> None:
        self.conn.close()
        self.db.close()
