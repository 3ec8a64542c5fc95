"""Server store: Neo4j 5 through the official driver; a run is written by batched `UNWIND $rows` in one transaction."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import neo4j
import pyarrow as pa
import pyarrow.compute as pc
from neo4j.exceptions import AuthError, ClientError, DriverError, IncompleteCommit, Neo4jError, TransientError

from circuitdb.errors import CircuitdbError, StoreError
from circuitdb.ingest.tables import RunTables, check_tables
from circuitdb.schema import neo4j_schema
from circuitdb.store.screen import refuse_plan, screen
from circuitdb.store.signals import signals_held
from circuitdb.store.writes import MERGE_COMPONENTS, Rows, SmallWrites, Steps, checked_batch, replace_run, run_steps

BATCH = 10_000
WRITERS = 2  # runs written at once by Neo4jStore.write_runs
TIMEOUT_S = 5  # connecting, and waiting for the server's first answer
DRIVER_RETRY_S = 10  # the driver retries a failed transaction this long, a lost server included
RETRY_S = 30  # deadlocks are retried on this long (16 writers on shared components of a loaded 2-core machine
# needed more than 10 s), while a lost server still fails after DRIVER_RETRY_S
logging.getLogger("neo4j").addHandler(logging.NullHandler())  # the driver's retry notices stay off stderr
SCHEMA_WAIT_S = 30  # how long to wait for another process's schema transaction, as the driver does for retries

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


OUTSIDE_OPERATORS = {"LoadCSV"}
READ_PROCEDURES = {"db.labels", "db.relationshipTypes", "db.propertyKeys", "db.schema.visualization",
                   "db.schema.nodeTypeProperties", "db.schema.relTypeProperties"}


def _batches(table: pa.Table) -> list[list[dict]]:
    return [table.slice(i, BATCH).to_pylist() for i in range(0, table.num_rows, BATCH)]


def _steps(tx: neo4j.ManagedTransaction, steps: Steps) -> Any:
    """Run shared write steps inside a managed transaction (re-created, so idempotent, on every retry)."""
    return run_steps(steps, lambda cypher, params: tx.run(cypher, params).data())


def _missing_schema(tx: neo4j.ManagedTransaction) -> list[str]:
    """The statements creating the constraints and indexes not yet on the server (a cheap read; usually none)."""
    missing = []
    for kind, statements in neo4j_schema().items():
        have = set(tx.run(f"SHOW {kind} YIELD name RETURN collect(name) AS names").single()["names"])
        missing += [statement for name, statement in statements.items() if name not in have]
    return missing


def _plan_parts(plan: dict | None) -> tuple[set[str], set[str]]:
    """The operator types (`LoadCSV`, ...) and the procedures called anywhere in an EXPLAIN plan."""
    operators, procedures = set(), set()
    stack = [plan] if plan else []
    while stack:
        node = stack.pop()
        operator = node["operatorType"].split("@")[0]
        operators.add(operator)
        if operator == "ProcedureCall":
            procedures.add(str(node.get("args", {}).get("Details", "")).split("(")[0].strip())
        stack += node.get("children", [])
    return operators, procedures


@contextmanager
def failures(url: str, what: str) -> Iterator[None]:
    """Driver and server failures other than a statement's own error as one line naming the cause."""
    try:
        yield
    except IncompleteCommit:
        raise StoreError(f"{what}: the connection to Neo4j at {url} broke during the commit, so it may or may not "
                         "have been written; run it again (writes replace)") from None
    except AuthError as exc:
        expired = "CredentialsExpired" in (exc.code or "")
        raise StoreError(f"Neo4j at {url}: the password has expired; set a new one (ALTER CURRENT USER SET PASSWORD) and "
                         "CIRCUITDB_NEO4J_PASSWORD" if expired else f"Neo4j at {url} refused the credentials (set "
                         f"CIRCUITDB_NEO4J_USER/_PASSWORD): {exc.message}") from None
    except TransientError as exc:
        if "MemoryPoolOutOfMemory" in (exc.code or ""):
            raise StoreError(f"{what}: Neo4j ran out of transaction memory; raise db.memory.transaction.total.max (or "
                             "dbms.memory.transaction.total.max) on the server, or ask about fewer runs") from None
        raise StoreError(f"{what} on Neo4j failed after retries: {exc.message}") from None
    except ClientError as exc:
        if exc.code == "Neo.ClientError.Security.CredentialsExpired":
            raise StoreError(f"Neo4j at {url}: the password has expired; set a new one (ALTER CURRENT USER SET "
                             "PASSWORD) and CIRCUITDB_NEO4J_PASSWORD") from None
        raise
    except (DriverError, OSError) as exc:
        raise StoreError(f"{what}: cannot reach Neo4j at {url} ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:160]})") from None


def _count(tx: neo4j.ManagedTransaction, cypher: str, **params: Any) -> int:
    return tx.run(cypher, **params).single()["n"]


class Neo4jStore(SmallWrites):
    """A team's shared catalog on a Neo4j 5 server."""

    backend = "neo4j"
    writers = WRITERS

    def __init__(self, url: str, user: str, password: str | None, read_only: bool = False) -> None:
        self.url = url
        self.read_only = read_only
        auth = (user, password) if password is not None else None
        try:
            self.driver = neo4j.GraphDatabase.driver(url, auth=auth, connection_timeout=TIMEOUT_S,
                                                     connection_acquisition_timeout=TIMEOUT_S,
                                                     max_transaction_retry_time=DRIVER_RETRY_S, notifications_min_severity="OFF")
        except (ValueError, DriverError) as exc:
            raise StoreError(f"bad Neo4j URL {url!r}: {exc}") from None
        with failures(url, "connecting"):
            self.driver.verify_connectivity()
            if not read_only:
                with self.driver.session() as session:
                    if session.execute_read(_missing_schema):
                        self.init()

    def init(self) -> None:
        """Create the missing constraints and indexes in one transaction; of processes racing to do so one wins, the
        others (deadlocked, or refused while the winner builds them) try again until they find them."""

        def create(tx: neo4j.ManagedTransaction) -> None:
            for statement in _missing_schema(tx):
                tx.run(statement).consume()

        deadline = time.monotonic() + SCHEMA_WAIT_S
        while True:
            try:
                with failures(self.url, "creating the schema"), self.driver.session() as session:
                    return session.execute_write(create)
            except ClientError as exc:
                if not exc.code.endswith("AlreadyExists") or time.monotonic() > deadline:
                    raise StoreError(f"creating the schema on Neo4j failed: {exc.message}") from None
            time.sleep(0.1)

    def read(self, cypher: str, params: dict[str, Any] | None = None) -> Rows:
        """Rows of plain values (named queries return no nodes): `dict(record)` skips the walk `.data()` makes through
        every value, most of the decoding time for long lists."""
        try:
            with failures(self.url, "reading"), self.driver.session(default_access_mode=neo4j.READ_ACCESS) as session:
                return session.execute_read(lambda tx: [dict(record) for record in tx.run(cypher, params or {})])
        except ClientError as exc:
            if exc.code == "Neo.ClientError.Statement.AccessMode":
                raise CircuitdbError("refused: the query writes, and queries run read-only") from None
            raise CircuitdbError(f"query failed on Neo4j: {exc.message}") from None

    def query(self, cypher: str, params: dict[str, Any] | None = None, timeout_s: float = 30) -> Rows:
        """User Cypher: one statement that only reads the catalog (by its words, then by the server's plan: a read
        query type, no LOAD CSV, only schema-reading procedures), in a read transaction the server stops after
        `timeout_s` seconds."""
        statement = screen(cypher, params)
        try:
            with failures(self.url, "planning the query"), self.driver.session(default_access_mode=neo4j.READ_ACCESS) as session:
                summary = session.run(f"EXPLAIN {statement}", params or {}).consume()
        except ClientError as exc:
            raise CircuitdbError(f"query failed on Neo4j: {exc.message}") from None
        if summary.query_type != "r":
            what = "is a schema or server procedure" if summary.query_type == "s" else "writes"
            raise CircuitdbError(f"refused: the query {what}, and queries only read the catalog")
        operators, procedures = _plan_parts(summary.plan)
        refuse_plan(operators & OUTSIDE_OPERATORS, "leaves the catalog")
        refuse_plan(procedures - READ_PROCEDURES, "calls a procedure that is not a schema read")
        try:
            with failures(self.url, "running the query"), self.driver.session(default_access_mode=neo4j.READ_ACCESS) as session:
                work = neo4j.unit_of_work(timeout=timeout_s)(lambda tx: tx.run(statement, params or {}).data())
                return session.execute_read(work)
        except ClientError as exc:
            if "Timeout" in exc.code or "terminated" in (exc.message or ""):
                raise CircuitdbError(f"query stopped after {timeout_s:g} s (raise --timeout to let it run longer)") from None
            raise CircuitdbError(f"query failed on Neo4j: {exc.message}") from None

    def _write(self, what: str, work: Callable[[neo4j.ManagedTransaction], Any]) -> Any:
        """`work` in one managed transaction, which the driver retries on transient errors; deadlocks, which many
        writers sharing components meet, are retried on until RETRY_S."""
        deadline = time.monotonic() + RETRY_S
        try:
            with failures(self.url, what), signals_held(what):
                while True:
                    try:
                        with self.driver.session() as session:
                            return session.execute_write(work)
                    except TransientError as exc:
                        if "Deadlock" not in (exc.code or "") or time.monotonic() > deadline:
                            raise
        except Neo4jError as exc:
            raise StoreError(f"{what} on Neo4j failed, nothing written: {exc.message}") from None

    def _small_write(self, what: str, make_steps: Callable[[], Steps]) -> Any:
        return self._write(what, lambda tx: _steps(tx, make_steps()))

    def write_runs(self, batch: list[RunTables]) -> None:
        """One transaction per run (the unit concurrent writers and retries work in), WRITERS runs at once: the server
        applies a transaction on one thread, so a second keeps another core busy (`writers`). A run waits for a run of the batch
        it nests in; after a failure no further run starts, and the first error is raised once the others end."""
        batch, names = checked_batch(batch)
        if len(batch) < 2 or self.writers < 2:
            for tables in batch:
                self.write_run(tables)
            return
        failed = threading.Event()
        done: dict[str, threading.Event] = {}

        def write(tables: RunTables, parent: threading.Event | None) -> None:
            try:
                if parent is not None:
                    parent.wait()
                if not failed.is_set():
                    self.write_run(tables)
            except BaseException:
                failed.set()
                raise
            finally:
                done[tables.run_id].set()

        with signals_held(f"writing runs {names}"), ThreadPoolExecutor(self.writers) as pool:
            futures = []
            for tables in batch:  # a parent later in the batch is not waited for (its child fails, as one by one)
                parent = done.get(tables.nests_in or "")
                done[tables.run_id] = threading.Event()
                futures.append(pool.submit(write, tables, parent))
        for future in futures:
            future.result()

    def write_run(self, tables: RunTables) -> None:
        check_tables(tables)
        self._write(f"writing run {tables.run_id}", lambda tx: self._write_run(tx, tables))

    @staticmethod
    def _write_run(tx: neo4j.ManagedTransaction, tables: RunTables) -> None:
        """The shared run steps, then the bulk rows: components merged, memberships and edges created in batches."""
        rid = tables.run_id
        _steps(tx, replace_run(tables, "neo4j"))
        components = tables.components.sort_by("id")  # new components locked in one order by concurrent writers
        for rows in _batches(components):
            tx.run(MERGE_COMPONENTS, rows=rows).consume()
        for rows in _batches(tables.includes):
            made = _count(tx, CREATE_INCLUDES, id=rid, rows=rows)
            if made != len(rows):
                raise StoreError(f"writing run {rid}: {len(rows) - made} membership rows name unknown components")
        ids = components.column("id")
        for i in range(0, tables.edges.num_rows, BATCH):
            part = tables.edges.slice(i, BATCH)
            made = _count(tx, CREATE_EDGES, id=rid, ids=ids.to_pylist(),
                          src=pc.index_in(part.column("from"), value_set=ids).to_pylist(),
                          dst=pc.index_in(part.column("to"), value_set=ids).to_pylist(),
                          weight=part.column("weight").to_pylist(), input=part.column("input").to_pylist())
            if made != part.num_rows:
                raise StoreError(f"writing run {rid}: {part.num_rows - made} edge rows name unknown components")

    def release(self) -> None:
        """Nothing to let go between writes: the server serves every client at once."""

    def close(self) -> None:
        self.driver.close()
