"""Embedded store: a database file of ladybug (the maintained fork of Kuzu) or Kuzu 0.11.3; bulk rows go in through COPY
from Arrow tables inside one transaction."""

from __future__ import annotations

import fcntl
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from circuitdb.errors import CircuitdbError, StoreError
from circuitdb.ingest.tables import RunTables
from circuitdb.lazy import pa
from circuitdb.schema import ADDED, KUZU_EDGE, KUZU_EDGE_STAGING, RELS, kuzu_ddl, kuzu_edge_ddl, kuzu_rel_ddl
from circuitdb.store.engine import engine, refuse_other_engine
from circuitdb.store.locks import situation
from circuitdb.store.screen import refuse_plan, screen
from circuitdb.store.signals import signals_held
from circuitdb.store.writes import Rows, SmallWrites, Steps, checked_batch, replace_run, run_steps

# a process that is not circuitdb's holds the file
BUSY = re.compile(r"Could not set lock")
NOT_KUZU = re.compile(r"not a valid (Kuzu|Lbug) database file")
PLAN_OPERATOR = re.compile(r"([A-Z][A-Z_]+)\[\d+\]")
PLAN_FUNCTION = re.compile(r"Function: (\w+)")
# plan operators that write files, load extensions, switch databases or open transactions
OUTSIDE_OPERATORS = {"COPY_TO", "COPY_FROM", "EXPORT_DATABASE", "IMPORT_DATABASE", "INSTALL_EXTENSION", "LOAD_EXTENSION",
                     "ATTACH_DATABASE", "DETACH_DATABASE", "USE_DATABASE", "TRANSACTION", "STANDALONE_CALL"}
# table functions that read the catalog itself (READ_FTABLE is Kuzu's own intermediate result); file readers are not here
READ_FUNCTIONS = {"READ_FTABLE", "TABLE_INFO", "CURRENT_SETTING", "DB_VERSION", "STORAGE_INFO"}
READ_FUNCTION_PREFIXES = ("SHOW_",)
NO_CATALOG = "{path} is a database without a circuitdb catalog in it (run `circuitdb init` to add one)"
# Kuzu's write journal (not part of the catalog schema): staging ids of run writes not yet published
JOURNAL = "Unfinished"
JOURNAL_DDL = f"CREATE NODE TABLE IF NOT EXISTS {JOURNAL}(id STRING, PRIMARY KEY(id))"
# runs published per transaction (`KuzuStore._publish`)
PUBLISH_RUNS = 100
CREATE_INCLUDES = (
    "LOAD FROM $rows MATCH (r:Run {id: $id}), (c:Component {id: to}) CREATE (r)-[:INCLUDES {score: score}]->(c)"
)


class KuzuStore(SmallWrites):
    """The embedded default: nothing to start, one file."""

    backend = "kuzu"

    def __init__(self, path: Path, read_only: bool = False, wait_s: float = 10, create: bool = True) -> None:
        """Opens an existing file at once; a new one is created by the first use that needs it, so a command refused
        later (a bad model name, say) leaves no empty catalog behind. `create=False` (and `read_only`) refuses a
        database that holds no catalog rather than adding one to it."""
        self.path, self.read_only, self.wait_s = path, read_only, wait_s
        self.engine = engine()
        self._conn: Any = None
        self._schema = read_only
        self._current = False  # a read-only open has checked the file has every column of the schema
        self._must_hold_catalog = read_only or not create
        if not path.parent.is_dir():
            raise StoreError(f"cannot create an embedded store at {path}: no folder {path.parent}")
        if read_only or path.exists():
            self.conn  # noqa: B018 - opens now: a busy or broken file is reported before any work

    def _open(self) -> None:
        """Take the sidecar lock (shared to read, exclusive to write) before Kuzu touches any file, then open; while
        another process holds what this needs, wait (saying so once) up to `wait_s`. Kuzu's own lock alone lets a
        process that opens race one that checkpoints or closes (its WAL and shadow files come and go)."""
        refuse_other_engine(self.path, self.engine.__name__)
        deadline, said = time.monotonic() + self.wait_s, False
        new_lock = not os.path.exists(f"{self.path}.lock")
        try:
            lock = open(f"{self.path}.lock", "a")  # noqa: SIM115 - held until release()
        except OSError as exc:
            raise StoreError(f"cannot open the embedded store at {self.path}: {exc.strerror} ({exc.filename})") from None
        while True:
            try:
                fcntl.flock(lock, (fcntl.LOCK_SH if self.read_only else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                if self._must_hold_catalog and not self.read_only and not self._holds_catalog():
                    lock.close()
                    raise StoreError(NO_CATALOG.format(path=self.path))
                self.db = self.engine.Database(str(self.path), read_only=self.read_only)
                self._conn, self._lock = self.engine.Connection(self.db), lock
                return
            except BlockingIOError:
                pass
            except RuntimeError as exc:
                fcntl.flock(lock, fcntl.LOCK_UN)
                if not BUSY.search(str(exc)):
                    lock.close()
                    if NOT_KUZU.search(str(exc)):
                        if new_lock:  # no circuitdb process uses a lock beside a file that is not a database
                            Path(lock.name).unlink(missing_ok=True)
                        raise StoreError(f"{self.path} is not a catalog: the file is not a database") from None
                    raise StoreError(f"cannot open the embedded store at {self.path}: {exc}") from None
            if time.monotonic() >= deadline:
                lock.close()
                raise StoreError(f"{self.path} is in use by another process: {situation(self.path, lock.name)}; "
                                 f"waited {self.wait_s:g} s: try again, or give --wait more seconds")
            if not said:
                sys.stderr.write(f"waiting up to {self.wait_s:g} s for {self.path}: {situation(self.path, lock.name)}\n")
                said = True
            time.sleep(0.1)

    def release(self) -> None:
        """Let other processes in until the next use (a long job between its writes)."""
        if self._conn is not None:
            self._conn.close()
            self.db.close()
            self._conn = None
            self._lock.close()  # closing the file drops the lock

    @property
    def conn(self) -> Any:
        if self._conn is None:
            self._open()
            if self._must_hold_catalog:
                self._check_catalog()
            if not self._schema:
                self._schema = True
                self.init()
            elif self.read_only and not self._current:
                self._check_current()
            if not self.read_only:
                self._recover()
        return self._conn

    def _check_catalog(self) -> None:
        """Refuse a database without a catalog in it (once), rather than adding one to it."""
        if "Run" not in {r["name"] for r in self._rows("CALL show_tables() RETURN name")}:
            self.release()
            raise StoreError(NO_CATALOG.format(path=self.path))
        self._must_hold_catalog = False

    def _check_current(self) -> None:
        """Refuse (once) to read a catalog written before the columns of `schema.ADDED` or the Edge layout: a
        read-only open cannot add them, and the queries name them."""
        missing = []
        for label, added in ADDED.items():
            columns = {r["name"] for r in self._rows(f"CALL table_info('{label}') RETURN name")}
            missing += [f"{label} column {name}" for name in added if name not in columns] if columns else []
        if self._old_layout():
            missing.append("the Edge node layout")
        if missing:
            self.release()
            raise StoreError(f"{self.path} was written by an older circuitdb (it lacks {', '.join(missing)}): "
                             f"open it once to write, e.g. `circuitdb init --store kuzu:{self.path}`")
        self._current = True

    def _holds_catalog(self) -> bool:
        """Whether the file holds a catalog, looked at read-only: opening another program's database to write
        may rewrite it on close."""
        probe = self.engine.Database(str(self.path), read_only=True)
        try:
            tables = self.engine.Connection(probe).execute("CALL show_tables() RETURN name").get_as_df()["name"]
        finally:
            probe.close()
        self._must_hold_catalog = "Run" not in set(tables)
        return not self._must_hold_catalog

    def init(self) -> None:
        if self._old_layout():
            self._migrate()
        for statement in [*kuzu_ddl(), JOURNAL_DDL]:
            self.conn.execute(statement)

    def _old_layout(self) -> bool:
        """Whether the file keeps edges as EDGE relationships (circuitdb before the Edge node layout)."""
        return any(r["name"].upper() == "EDGE" and r["type"] == "REL"
                   for r in self._rows("CALL show_tables() RETURN name, type"))

    def _migrate(self) -> None:
        """Move a catalog to the Edge node layout (`schema.KUZU_EDGE`) and source-side memberships. The new tables
        are filled and checkpointed beside the old ones, then one small transaction drops the old and renames the
        new: a migration killed at any moment is redone whole on the next open."""
        sys.stderr.write(f"note: moving {self.path} to the current edge layout (once)\n")
        made = {r["name"] for r in self._rows("CALL show_tables() RETURN name")}
        self._exec("BEGIN TRANSACTION")  # what a killed migration left
        for table in ("SENDER", "RECEIVER", "INCLUDES_new", KUZU_EDGE_STAGING):
            if table in made:
                self._exec(f"DROP TABLE {table}")
        self._exec("COMMIT")
        edges = self._exec("MATCH (a:Component)-[e:EDGE]->(b:Component) RETURN a.id, b.id, e.run_id, e.weight, e.input")
        edges = edges.get_as_arrow().rename_columns(["from", "to", "run_id", "weight", "input"])
        includes = self._exec("MATCH (r:Run)-[i:INCLUDES]->(c:Component) RETURN r.id, c.id, i.score").get_as_arrow()
        self._exec("BEGIN TRANSACTION")
        for statement in kuzu_edge_ddl(KUZU_EDGE_STAGING):
            self._exec(statement)
        self._exec(kuzu_rel_ddl(RELS["INCLUDES"], "INCLUDES_new"))
        self._copy_edges(KUZU_EDGE_STAGING, edges, 0)
        self._copy("INCLUDES_new", includes.rename_columns(["from", "to", "score"]))
        self._exec("COMMIT")
        self._exec("CHECKPOINT")
        self._exec("BEGIN TRANSACTION")
        for statement in ("DROP TABLE EDGE", "DROP TABLE INCLUDES", f"ALTER TABLE {KUZU_EDGE_STAGING} RENAME TO "
                          f"{KUZU_EDGE.label}", "ALTER TABLE INCLUDES_new RENAME TO INCLUDES"):
            self._exec(statement)
        self._exec("COMMIT")
        self._exec("CHECKPOINT")

    def _exec(self, cypher: str, params: dict[str, Any] | None = None) -> Any:
        result = self.conn.execute(cypher, params or {})
        return result[-1] if isinstance(result, list) else result

    def _rows(self, cypher: str, params: dict[str, Any] | None = None) -> Rows:
        result = self._exec(cypher, params)
        columns = result.get_column_names()
        rows = []
        while result.has_next():
            rows.append(dict(zip(columns, result.get_next())))
        return rows

    def read(self, cypher: str, params: dict[str, Any] | None = None) -> Rows:
        if self._conn is None and not self.path.exists():
            return []  # a catalog not created yet holds nothing; reading it does not create it
        try:
            return self._rows(cypher, params)
        except RuntimeError as exc:
            if "read-only" in str(exc):
                raise CircuitdbError("refused: the query writes, and this store is opened read-only") from None
            raise CircuitdbError(f"query failed on the embedded store: {exc}") from None

    def query(self, cypher: str, params: dict[str, Any] | None = None, timeout_s: float = 30) -> Rows:
        """User Cypher: one statement that only reads the catalog (by its words, then by Kuzu's plan), stopped after
        `timeout_s` seconds."""
        statement = screen(cypher, params)
        plan = "".join(str(v) for row in self.read(f"EXPLAIN {statement}", params) for v in row.values())
        refuse_plan(set(PLAN_OPERATOR.findall(plan)) & OUTSIDE_OPERATORS, "leaves the catalog")
        functions = {f for f in PLAN_FUNCTION.findall(plan) if not f.startswith(READ_FUNCTION_PREFIXES)}
        refuse_plan(functions - READ_FUNCTIONS, "calls a function that reads outside the catalog")
        self.conn.set_query_timeout(int(timeout_s * 1000))
        try:
            return self.read(statement, params)
        except CircuitdbError as exc:
            if "Interrupted" in str(exc):
                raise CircuitdbError(f"query stopped after {timeout_s:g} s (raise --timeout to let it run longer)") from None
            raise
        finally:
            self.conn.set_query_timeout(0)

    def _rollback(self) -> None:
        """Roll back the open transaction; Kuzu has already done so itself when a statement failed."""
        try:
            self._exec("ROLLBACK")
        except RuntimeError as exc:
            if "No active transaction" not in str(exc):
                raise

    def _copy(self, table_name: str, table: pa.Table) -> None:
        """COPY the rows, as one chunk per column: Kuzu 0.11.3 and ladybug 0.22 both drop the rows after an empty chunk
        (a batch whose first run has no edges, say, a run of scores only)."""
        if table.num_rows:
            self._exec(f"COPY {table_name} FROM $rows", {"rows": table.combine_chunks()})

    def _copy_edges(self, label: str, edges: pa.Table, first: int) -> None:
        """Edge rows (`EDGE_SCHEMA`: from, to, run_id, weight, input) as Edge nodes numbered from `first`, with their
        SENDER and RECEIVER relationships."""
        ids = pa.array(range(first, first + edges.num_rows), pa.int64())
        self._copy(label, pa.table({"id": ids, **{c: edges.column(c) for c in KUZU_EDGE.properties if c != "id"}}))
        self._copy("SENDER", pa.table({"from": ids, "to": edges.column("from")}))
        self._copy("RECEIVER", pa.table({"from": ids, "to": edges.column("to")}))

    def write_run(self, tables: RunTables) -> None:
        self.write_runs([tables])

    def write_runs(self, batch: list[RunTables]) -> None:
        """The runs of the batch, each atomic even under kill -9 during a checkpoint.

        First the bulk rows (new components, edges) are COPYed under a staging id, journaled in `Unfinished`, and
        checkpointed: Kuzu loses a COPY's rows when killed while checkpointing it, so nothing may refer to them
        before that. Then small, logged transactions create each run's node and memberships (replacing the old
        copy), give the staged edges the run's id and clear the journal: a run, new or replaced, becomes visible whole
        in one step. A writer that opens the file removes what a killed one left staged (`_recover`). One COPY for
        the batch, not one per run: a commit after a COPY costs time that grows with the table. (CREATE instead of
        COPY would spare that commit's checkpoint, but ladybug 0.22 took 2.4 s to CREATE the two ends of 300 edges.)
        """
        batch, names = checked_batch(batch)
        with signals_held(f"writing run {names}"):
            self._check_parents(batch)
            self._publish(batch, self._stage(batch, names), names)

    def _stage(self, batch: list[RunTables], names: str) -> dict[str, str]:
        """Transaction 1: journal, components and edges, then a checkpoint; each run's staging id (its own id when
        no copy of it is stored, so a new run's edges need no renaming)."""
        ids = [t.run_id for t in batch]
        stored = {r["id"] for r in self.read("MATCH (r:Run) WHERE r.id IN $ids RETURN r.id AS id", {"ids": ids})}
        stage = {rid: f"{rid}~{uuid.uuid4().hex[:12]}" if rid in stored else rid for rid in ids}
        edges = pa.concat_tables([t.edges for t in batch])
        edges = edges.set_column(edges.schema.get_field_index("run_id"), "run_id",
                                 pa.array([stage[r] for r in edges.column("run_id").to_pylist()], pa.string()))
        self._exec("BEGIN TRANSACTION")
        try:
            components = self._fresh_components(batch)
            for staged in stage.values():
                self._exec(f"CREATE (:{JOURNAL} {{id: $id}})", {"id": staged})
        except BaseException as exc:
            self._rollback()
            if isinstance(exc, RuntimeError):
                raise StoreError(f"writing run {names} to the embedded store failed, nothing written: {exc}") from None
            raise
        try:
            self._copy("Component", components)
            first = self._rows(f"MATCH (e:{KUZU_EDGE.label}) RETURN max(e.id) AS n")[0]["n"]
            self._copy_edges(KUZU_EDGE.label, edges, 0 if first is None else first + 1)
            self._exec("COMMIT")
            self._exec("CHECKPOINT")
        except BaseException as exc:
            if self.engine.__name__ == "kuzu":
                # Kuzu 0.11.3 empties a whole relationship table when a transaction holding a COPY into it is rolled
                # back or closed; crash recovery discards it safely and the journal names what to remove. The rows
                # were checked, so only I/O errors get here: end the process.
                sys.stderr.write(f"error: writing run {names} to Kuzu failed mid-COPY ({exc}); exiting so that crash "
                                 f"recovery discards the transaction\n")
                sys.stderr.flush()
                os._exit(70)
            self._rollback()  # ladybug keeps the tables whole (tests/test_engine.py)
            self._discard(list(stage.values()))  # what a commit before a failed checkpoint left
            if isinstance(exc, RuntimeError):
                raise StoreError(f"writing run {names} to the embedded store failed, nothing written: {exc}") from None
            raise
        return stage

    def _check_parents(self, batch: list[RunTables]) -> None:
        """Refuse, before anything is written (components, once in, stay), a run nesting in a run that neither the
        catalog nor the batch holds."""
        parents = sorted({t.nests_in for t in batch if t.nests_in} - {t.run_id for t in batch})
        stored = {r["id"] for r in self.read("MATCH (r:Run) WHERE r.id IN $ids RETURN r.id AS id", {"ids": parents})}
        for tables in batch:
            if tables.nests_in in set(parents) - stored:
                raise StoreError(f"run {tables.run_id} nests in run {tables.nests_in}, which is not in the catalog; "
                                 f"nothing written")

    def _publish(self, batch: list[RunTables], stage: dict[str, str], names: str) -> None:
        """Transactions 2, 3, ... (no COPY, so a rollback is safe), each of up to `PUBLISH_RUNS` runs in batch order:
        run nodes, memberships and links replace the old copies, staged edges take their run's id, the journal
        entries go. Each part runs on a fresh connection (`_reconnect`), so a batch of thousands of runs stays within
        ladybug's buffer pool. On failure the runs not yet published are discarded, staged edges and all."""
        for start in range(0, len(batch), PUBLISH_RUNS):
            part = batch[start : start + PUBLISH_RUNS]
            self._exec("BEGIN TRANSACTION")
            try:
                for tables in part:
                    rid = tables.run_id
                    run_steps(replace_run(tables, self.backend), self._rows)
                    if tables.includes.num_rows:
                        self._exec(CREATE_INCLUDES, {"id": rid, "rows": tables.includes})
                    if stage[rid] != rid:
                        self._exec("MATCH (e:Edge) WHERE e.run_id = $stage SET e.run_id = $id",
                                   {"stage": stage[rid], "id": rid})
                self._exec(f"MATCH (u:{JOURNAL}) WHERE u.id IN $ids DELETE u", {"ids": [stage[t.run_id] for t in part]})
                self._exec("COMMIT")
                self._reconnect()
            except BaseException as exc:
                self._rollback()
                try:
                    self._discard([stage[t.run_id] for t in batch[start:]])
                except RuntimeError as cleanup:
                    exc = RuntimeError(f"{exc}; removing its staged rows failed too ({cleanup}): the next writer "
                                       f"to open the file removes them")
                if isinstance(exc, (RuntimeError, CircuitdbError)):
                    done = f"the first {start} of {len(batch)} runs are written, no other" if start else "no run written"
                    raise StoreError(f"writing run {names} to the embedded store failed, {done}: {exc}") from None
                raise

    def _reconnect(self) -> None:
        """Replace the connection: ladybug keeps buffer-pool memory for each statement given Arrow rows until its
        connection closes, so one long-lived connection ran out of its pool after about 4,000 of them."""
        self._conn.close()
        self._conn = self.engine.Connection(self.db)

    def load_tables(self, files: dict[str, Path]) -> None:
        """COPY Parquet files (columns in each table's order) into their tables, in one transaction: node tables
        first. Only on ladybug, which keeps its tables whole when such a transaction is rolled back."""
        with signals_held(f"copying tables into {self.path}"):
            with self._transaction(f"copying tables into {self.path} failed"):
                for table, file in files.items():
                    self._exec(f"COPY {table} FROM '{file}'")
            self._exec("CHECKPOINT")

    @contextmanager
    def _transaction(self, failed: str) -> Iterator[None]:
        """BEGIN, the body, COMMIT; an engine error in the body is rolled back and becomes one line, `{failed},
        nothing written: ...` (only where a rollback is safe: no COPY on Kuzu 0.11.3)."""
        self._exec("BEGIN TRANSACTION")
        try:
            yield
        except BaseException as exc:
            self._rollback()
            if isinstance(exc, RuntimeError):
                raise StoreError(f"{failed}, nothing written: {exc}") from None
            raise
        self._exec("COMMIT")

    def _discard(self, staged: list[str]) -> None:
        """Remove what a failed write (or one a killed process left) staged: its edges and journal entries. The
        components it brought stay, as components of their model that no run includes: Kuzu cannot delete a node
        that relationships stored from their source side point to (the Edge layout, `schema.KUZU_SOURCE_SIDE`)."""
        self._exec("BEGIN TRANSACTION")
        self._exec("MATCH (e:Edge) WHERE e.run_id IN $ids DETACH DELETE e", {"ids": staged})
        self._exec(f"MATCH (u:{JOURNAL}) WHERE u.id IN $ids DELETE u", {"ids": staged})
        self._exec("COMMIT")

    def _recover(self) -> None:
        """On opening to write: discard what a killed writer staged but never published."""
        staged = [r["id"] for r in self._rows(f"MATCH (u:{JOURNAL}) RETURN u.id AS id")]
        if staged:
            self._discard(staged)
            sys.stderr.write(f"note: removed the staged rows of {len(staged)} run write(s) that a killed process "
                             f"left unfinished in {self.path}\n")

    def _small_write(self, what: str, make_steps: Callable[[], Steps]) -> Any:
        """Steps in one transaction (no COPY, so a rollback is safe); the generator's result. On Kuzu 0.11.3 after a
        checkpoint: it crashes (segfault) deleting relationships created since the last checkpoint once a few such
        deletes have followed checkpoints (add, delete, add, delete ... of runs); ladybug does not
        (test_runs_added_and_deleted_over_and_over_leave_a_working_file)."""
        with signals_held(what):
            if self.engine.__name__ == "kuzu":
                self._exec("CHECKPOINT")
            with self._transaction(f"{what} on the embedded store failed"):
                result = run_steps(make_steps(), self._rows)
        return result

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

    def close(self) -> None:
        self.release()
