"""Server store: Neo4j 5 through the official driver; a run is written by batched `UNWIND $rows` in one transaction."""

from __future__ import annotations

from importlib import resources
from typing import Any

import neo4j
import pyarrow as pa
import pyarrow.compute as pc
from neo4j.exceptions import AuthError, ClientError, Neo4jError, ServiceUnavailable

from circuitdb.errors import CircuitdbError, StoreError
from circuitdb.ingest.features import RelationRows, SteeringRows
from circuitdb.ingest.tables import RunTables, check_tables

BATCH = 10_000

DELETE_EDGES = "MATCH ()-[e:EDGE {run_id: $id}]->() WITH e LIMIT $batch DELETE e RETURN count(*) AS n"
DELETE_RUN = "MATCH (r:Run {id: $id}) DETACH DELETE r RETURN count(*) AS n"
MERGE_MODEL = "MERGE (m:Model {id: $id}) SET m += $props"
MERGE_TASK = "MERGE (t:Task {id: $id}) SET t += $props"
CREATE_RUN = (
    "MATCH (m:Model {id: $model}), (t:Task {id: $task}) "
    "CREATE (r:Run) SET r = $props CREATE (r)-[:ON_MODEL]->(m), (r)-[:FOR_TASK]->(t)"
)
MERGE_COMPONENTS = "UNWIND $rows AS row MERGE (c:Component {id: row.id}) ON CREATE SET c += row"
CREATE_INCLUDES = (
    "MATCH (r:Run {id: $id}) UNWIND $rows AS row MATCH (c:Component {id: row.to}) "
    "CREATE (r)-[:INCLUDES {score: row.score}]->(c) RETURN count(*) AS n"
)
# Edges travel as parallel lists with endpoints as positions in the run's component list: far less for the driver
# to encode than one map per row. The size check guards the positions (every component was merged just before).
CREATE_EDGES = (
    "UNWIND $ids AS cid MATCH (c:Component {id: cid}) WITH collect(c) AS nodes WHERE size(nodes) = size($ids) "
    "UNWIND range(0, size($src) - 1) AS i WITH nodes[$src[i]] AS a, nodes[$dst[i]] AS b, i "
    "CREATE (a)-[:EDGE {run_id: $id, weight: $weight[i], input: $input[i]}]->(b) RETURN count(*) AS n"
)

CREATE_RELATES = (
    "UNWIND $rows AS r MATCH (a:Component {id: r.from}), (b:Component {id: r.to}) "
    "CREATE (a)-[:RELATES {kind: r.kind, weight: r.weight, source: r.source}]->(b)"
)
MERGE_VECTOR = "MERGE (s:SteeringVector {id: $id}) SET s += $props"
CREATE_LINKS = "MATCH (s:SteeringVector {id: $id}) UNWIND $rows AS r MATCH (c:Component {id: r.to}) CREATE (s)-[x:%s]->(c) " \
    "SET x += r REMOVE x.to"


def schema_statements() -> list[str]:
    """The constraints and indexes of circuitdb/schema.cypher, one statement each."""
    text = resources.files("circuitdb").joinpath("schema.cypher").read_text()
    lines = [line for line in text.splitlines() if not line.strip().startswith("//")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _batches(table: pa.Table) -> list[list[dict]]:
    return [table.slice(i, BATCH).to_pylist() for i in range(0, table.num_rows, BATCH)]


class Neo4jStore:
    """A team's shared catalog on a Neo4j 5 server."""

    backend = "neo4j"

    def __init__(self, url: str, user: str, password: str | None, read_only: bool = False) -> None:
        self.url = url
        self.read_only = read_only
        auth = (user, password) if password is not None else None
        try:
            self.driver = neo4j.GraphDatabase.driver(url, auth=auth, connection_timeout=5, max_transaction_retry_time=30,
                                                     notifications_min_severity="OFF")
            self.driver.verify_connectivity()
        except (ServiceUnavailable, OSError) as exc:
            raise StoreError(f"cannot reach Neo4j at {url}: {exc}") from None
        except AuthError as exc:
            raise StoreError(
                f"Neo4j at {url} refused the credentials (set CIRCUITDB_NEO4J_USER/_PASSWORD): {exc.message}"
            ) from None
        except ValueError as exc:
            raise StoreError(f"bad Neo4j URL {url!r}: {exc}") from None
        if not read_only:
            self.init()

    def init(self) -> None:
        with self.driver.session() as session:
            for statement in schema_statements():
                session.run(statement).consume()

    def read(self, cypher: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            with self.driver.session(default_access_mode=neo4j.READ_ACCESS) as session:
                return session.execute_read(lambda tx: tx.run(cypher, params or {}).data())
        except ClientError as exc:
            if exc.code == "Neo.ClientError.Statement.AccessMode":
                raise CircuitdbError("refused: the query writes, and queries run read-only") from None
            raise CircuitdbError(f"query failed on Neo4j: {exc.message}") from None

    @staticmethod
    def _count(tx: neo4j.ManagedTransaction, cypher: str, **params: Any) -> int:
        return tx.run(cypher, **params).single()["n"]

    def _delete(self, tx: neo4j.ManagedTransaction, run_id: str) -> bool:
        while self._count(tx, DELETE_EDGES, id=run_id, batch=BATCH):
            pass
        return bool(self._count(tx, DELETE_RUN, id=run_id))

    def delete_run(self, run_id: str) -> bool:
        with self.driver.session() as session:
            return session.execute_write(self._delete, run_id)

    def _write(self, tx: neo4j.ManagedTransaction, tables: RunTables) -> None:
        rid = tables.run_id
        children = [r["id"] for r in tx.run("MATCH (c:Run)-[:NESTS_IN]->(:Run {id: $id}) RETURN c.id AS id", id=rid)]
        self._delete(tx, rid)
        tx.run(MERGE_MODEL, id=tables.model["id"], props=_present(tables.model)).consume()
        tx.run(MERGE_TASK, id=tables.task["id"], props=_present(tables.task)).consume()
        tx.run(CREATE_RUN, model=tables.model["id"], task=tables.task["id"], props=_present(tables.run)).consume()
        for rows in _batches(tables.components):
            tx.run(MERGE_COMPONENTS, rows=[_present(r) for r in rows]).consume()
        for rows in _batches(tables.includes):
            made = self._count(tx, CREATE_INCLUDES, id=rid, rows=rows)
            if made != len(rows):
                raise StoreError(f"writing run {rid}: {len(rows) - made} membership rows name unknown components")
        ids = tables.components.column("id")
        for i in range(0, tables.edges.num_rows, BATCH):
            part = tables.edges.slice(i, BATCH)
            made = self._count(tx, CREATE_EDGES, id=rid, ids=ids.to_pylist(),
                               src=pc.index_in(part.column("from"), value_set=ids).to_pylist(),
                               dst=pc.index_in(part.column("to"), value_set=ids).to_pylist(),
                               weight=part.column("weight").to_pylist(), input=part.column("input").to_pylist())
            if made != part.num_rows:
                raise StoreError(f"writing run {rid}: {part.num_rows - made} edge rows name unknown components")
        for child in children:
            tx.run("MATCH (c:Run {id: $c}), (p:Run {id: $p}) CREATE (c)-[:NESTS_IN]->(p)", c=child, p=rid).consume()
        if tables.nests_in:
            made = self._count(
                tx,
                "MATCH (c:Run {id: $c}), (p:Run {id: $p}) CREATE (c)-[:NESTS_IN]->(p) RETURN count(*) AS n",
                c=rid,
                p=tables.nests_in,
            )
            if made != 1:
                raise StoreError(f"run {rid} nests in run {tables.nests_in}, which is not in the catalog")
        for ev in tables.evaluations:
            tx.run(
                "MERGE (t:Task {id: $task}) ON CREATE SET t.name = $task WITH t MATCH (r:Run {id: $id}) "
                "CREATE (r)-[:EVALUATED_ON {performance: $p}]->(t)",
                task=ev["task"],
                id=rid,
                p=ev["performance"],
            ).consume()

    def write_runs(self, batch: list[RunTables]) -> None:
        """One transaction per run: a run is the unit concurrent writers and retries work in."""
        for tables in batch:
            check_tables(tables)
        for tables in batch:
            self.write_run(tables)

    def write_run(self, tables: RunTables) -> None:
        check_tables(tables)
        try:
            with self.driver.session() as session:
                session.execute_write(self._write, tables)
        except Neo4jError as exc:
            raise StoreError(f"writing run {tables.run_id} to Neo4j failed, nothing written: {exc.message}") from None

    def _small_write(self, what: str, statements: list[tuple[str, dict[str, Any]]]) -> None:
        """A few parameterised statements in one transaction."""

        def work(tx: neo4j.ManagedTransaction) -> None:
            for cypher, params in statements:
                tx.run(cypher, params).consume()

        try:
            with self.driver.session() as session:
                session.execute_write(work)
        except Neo4jError as exc:
            raise StoreError(f"writing {what} to Neo4j failed, nothing written: {exc.message}") from None

    def write_relations(self, rows: RelationRows) -> None:
        self._small_write("relations", [
            ("MATCH ()-[x:RELATES]->() WHERE x.source IN $sources DELETE x", {"sources": rows.sources}),
            (MERGE_COMPONENTS, {"rows": [_present(r) for r in rows.components]}),
            (CREATE_RELATES, {"rows": rows.relations}),
        ])

    def write_steering(self, rows: SteeringRows) -> None:
        vid = rows.vector["id"]
        statements = [(MERGE_VECTOR, {"id": vid, "props": _present(rows.vector)})]
        if rows.kind:
            statements += [
                (f"MATCH (:SteeringVector {{id: $id}})-[x:{rows.kind}]->() DELETE x", {"id": vid}),
                (MERGE_COMPONENTS, {"rows": [_present(r) for r in rows.components]}),
                (CREATE_LINKS % rows.kind, {"id": vid, "rows": rows.links}),
            ]
        self._small_write(f"steering vector {vid}", statements)

    def close(self) -> None:
        self.driver.close()


def _present(row: dict) -> dict:
    """Neo4j stores no nulls: leave absent what is unknown (reads give null either way)."""
    return {k: v for k, v in row.items() if v is not None}
