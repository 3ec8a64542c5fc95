"""The write statements of both stores, once: each write is a generator of `(cypher, params)` steps, which a store
runs in its own transaction, sending each step's rows back. Bulk rows (components, memberships, edges) are per store."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from circuitdb.errors import StoreError
from circuitdb.ingest.features import RelationRows, SteeringRows
from circuitdb.ingest.tables import RunTables, check_tables
from circuitdb.schema import NODES, RELS

Rows = list[dict[str, Any]]
Steps = Generator[tuple[str, dict[str, Any]], Rows, Any]


def _value(source: str, name: str) -> str:
    """`$a` (source `$`) or ``row.`a` `` (source `row.`): property names quoted, as ladybug reserves `index`."""
    return f"{source}{name}" if source == "$" else f"{source}`{name}`"


def _props(names: list[str], source: str) -> str:
    """`a: $a, b: $b` (source `$`) or `a: row.a, ...` (source `row.`)."""
    return ", ".join(f"`{p}`: {_value(source, p)}" for p in names)


def _assign(var: str, names: list[str], source: str) -> str:
    """`n.a = $a, n.b = $b`: every property set, so a rewrite leaves no stale value."""
    return ", ".join(f"{var}.`{p}` = {_value(source, p)}" for p in names)


def _set_changed(values: dict[str, str]) -> str:
    """`WITH n WHERE <some value differs> SET n.p = value, ...`: a node already as written is not written again, so
    concurrent writers of one model or task only share it (a SET locks it until the commit, even to the same value)."""
    same = " AND ".join(f"coalesce(n.`{p}` = {v}, n.`{p}` IS NULL AND {v} IS NULL)" for p, v in values.items())
    return f"WITH n WHERE NOT ({same}) SET " + ", ".join(f"n.`{p}` = {v}" for p, v in values.items())


def _merge_node(label: str) -> str:
    return f"MERGE (n:{label} {{id: $id}}) " + _set_changed({p: f"${p}" for p in list(NODES[label].properties)[1:]})


def _create_links(rel_type: str) -> str:
    """Relationships of `rel_type` from the node `$id` to the components `row.to` of `$rows`."""
    rel = RELS[rel_type]
    return (f"UNWIND $rows AS row MATCH (a:{rel.source} {{id: $id}}), (b:Component {{id: row.to}}) "
            f"CREATE (a)-[:{rel_type} {{{_props(list(rel.properties), 'row.')}}}]->(b)")


# a model's shape and source, once known, are kept when a run from a file without them (seqcont, say) arrives
MERGE_MODEL = "MERGE (n:Model {id: $id}) " + _set_changed({
    "name": "$name", "n_layers": "coalesce($n_layers, n.n_layers)", "n_heads": "coalesce($n_heads, n.n_heads)",
    "d_model": "coalesce($d_model, n.d_model)", "source": "CASE WHEN $source = '' THEN coalesce(n.source, '') ELSE $source END"})
MERGE_TASK = _merge_node("Task")
MERGE_VECTOR = _merge_node("SteeringVector")
CREATE_RUN = (
    f"MATCH (m:Model {{id: $model}}), (t:Task {{id: $task}}) CREATE (r:Run {{{_props(list(NODES['Run'].properties), '$')}}})"
    "-[:ON_MODEL]->(m), (r)-[:FOR_TASK]->(t)"
)
# components of relations and steering links (features of a dictionary: no token position, and a list of rows whose
# positions are all null would reach Kuzu as text)
MERGE_COMPONENTS = (
    "UNWIND $rows AS row MERGE (n:Component {id: row.id}) "
    f"ON CREATE SET {_assign('n', [p for p in list(NODES['Component'].properties)[1:] if p != 'position'], 'row.')}"
)
CREATE_RELATES = (
    "UNWIND $rows AS row MATCH (a:Component {id: row.from}), (b:Component {id: row.to}) "
    f"CREATE (a)-[:RELATES {{{_props(list(RELS['RELATES'].properties), 'row.')}}}]->(b)"
)
CREATE_LINKS = {kind: _create_links(kind) for kind in ("DECOMPOSES_INTO", "SHIFTS")}
RUN_EXISTS = "MATCH (r:Run {id: $id}) RETURN count(r) AS n"
# a run's edges: relationships on Neo4j, nodes of their own on the embedded store (`schema.KUZU_EDGE`)
DELETE_EDGES = {"neo4j": "MATCH ()-[e:EDGE]->() WHERE e.run_id = $id DELETE e",
                "kuzu": "MATCH (e:Edge) WHERE e.run_id = $id DETACH DELETE e"}
DELETE_RUN = "MATCH (r:Run {id: $id}) DETACH DELETE r"
CHILDREN = "MATCH (c:Run)-[:NESTS_IN]->(:Run {id: $id}) RETURN c.id AS id"
NEST = "MATCH (c:Run {id: $c}), (p:Run {id: $p}) CREATE (c)-[:NESTS_IN]->(p) RETURN count(*) AS n"
EVALUATE = (
    "MERGE (t:Task {id: $task}) ON CREATE SET t.name = $task WITH t MATCH (r:Run {id: $id}) "
    "CREATE (r)-[:EVALUATED_ON {performance: $performance}]->(t)"
)


def _count(rows: Rows) -> int:
    return rows[0]["n"] if rows else 0


class SmallWrites:
    """The writes without bulk rows, the same on every store: each runs its steps in one transaction of the store's
    `_small_write(what, make_steps)` (`make_steps` builds them anew, since a store may retry a transaction)."""

    backend: str  # "kuzu" or "neo4j": where the layouts differ (DELETE_EDGES)

    def _small_write(self, what: str, make_steps: Callable[[], Steps]) -> Any:
        raise NotImplementedError

    def delete_run(self, run_id: str) -> bool:
        return self._small_write(f"deleting run {run_id}", lambda: delete_run(run_id, self.backend))

    def write_evaluations(self, run_id: str, evaluations: list[dict]) -> None:
        self._small_write(f"writing scores of run {run_id}", lambda: replace_evaluations(run_id, evaluations))

    def write_relations(self, rows: RelationRows) -> None:
        self._small_write("writing relations", lambda: replace_relations(rows))

    def write_steering(self, rows: SteeringRows) -> None:
        self._small_write(f"writing steering vector {rows.vector['id']}", lambda: replace_steering(rows))


def checked_batch(batch: list[RunTables]) -> tuple[list[RunTables], str]:
    """A batch's tables checked, each run once (a run given twice: its last copy), and its first run ids for messages."""
    for tables in batch:
        check_tables(tables)
    batch = list({t.run_id: t for t in batch}.values())
    return batch, ", ".join(t.run_id for t in batch[:3]) + (" ..." if len(batch) > 3 else "")


def run_steps(steps: Steps, execute: Callable[[str, dict[str, Any]], Rows]) -> Any:
    """Execute each step with `execute`, sending its rows back; the generator's return value."""
    rows: Rows | None = None
    while True:
        try:
            cypher, params = steps.send(rows)
        except StopIteration as done:
            return done.value
        rows = execute(cypher, params)


def delete_run(run_id: str, backend: str) -> Steps:
    """Remove a run, its memberships and its edges (laid out as on `backend`); returns whether it existed."""
    if not _count((yield RUN_EXISTS, {"id": run_id})):
        return False
    yield DELETE_EDGES[backend], {"id": run_id}
    yield DELETE_RUN, {"id": run_id}
    return True


def replace_run(tables: RunTables, backend: str) -> Steps:
    """A run's nodes and small relationships, replacing an earlier copy (its NESTS_IN children stay attached). Model
    first: writers of one model then queue on its node rather than deadlock on shared components."""
    rid = tables.run_id
    yield MERGE_MODEL, tables.model
    yield MERGE_TASK, tables.task
    children = [r["id"] for r in (yield CHILDREN, {"id": rid})]
    yield from delete_run(rid, backend)
    yield CREATE_RUN, {**tables.run, "model": tables.model["id"], "task": tables.task["id"]}
    for child in children:
        yield NEST, {"c": child, "p": rid}
    if tables.nests_in and _count((yield NEST, {"c": rid, "p": tables.nests_in})) != 1:
        raise StoreError(f"run {rid} nests in run {tables.nests_in}, which is not in the catalog")
    for ev in tables.evaluations:
        yield EVALUATE, {"id": rid, **ev}


def replace_evaluations(run_id: str, evaluations: list[dict]) -> Steps:
    """A run's scores on other tasks (EVALUATED_ON), replacing its earlier scores on those tasks; the run stays as it is."""
    if not _count((yield RUN_EXISTS, {"id": run_id})):
        raise StoreError(f"unknown run {run_id!r}")
    for ev in evaluations:
        yield "MATCH (:Run {id: $id})-[x:EVALUATED_ON]->(:Task {id: $task}) DELETE x", {"id": run_id, "task": ev["task"]}
        yield EVALUATE, {"id": run_id, **ev}


def replace_relations(rows: RelationRows) -> Steps:
    """Relations replacing the stored ones of the same sources, components merged as needed."""
    if rows.sources:
        yield "MATCH ()-[x:RELATES]->() WHERE x.source IN $sources DELETE x", {"sources": rows.sources}
    if rows.components:  # Kuzu cannot type an empty list parameter
        yield MERGE_COMPONENTS, {"rows": rows.components}
    if rows.relations:
        yield CREATE_RELATES, {"rows": rows.relations}


def replace_steering(rows: SteeringRows) -> Steps:
    """A steering vector, and with `rows.kind` its links of that kind replaced."""
    vid = rows.vector["id"]
    yield MERGE_VECTOR, rows.vector
    if rows.kind:
        yield f"MATCH (:SteeringVector {{id: $id}})-[x:{rows.kind}]->() DELETE x", {"id": vid}
        if rows.components:
            yield MERGE_COMPONENTS, {"rows": rows.components}
        if rows.links:
            yield CREATE_LINKS[rows.kind], {"id": vid, "rows": rows.links}
