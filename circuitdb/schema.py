"""The one definition of the catalog's graph schema: Kuzu DDL, Neo4j constraints/indexes and Arrow row schemas."""

from __future__ import annotations

from dataclasses import dataclass

from circuitdb.lazy import pa

ARROW_TYPES = {"STRING": "string", "INT64": "int64", "DOUBLE": "float64"}  # Kuzu type -> pyarrow type factory


@dataclass(frozen=True)
class NodeTable:
    """A node label keyed by `id`; Neo4j holds `id` unique under the constraint `constraint`."""

    label: str
    properties: dict[str, str]  # name -> Kuzu type, `id` first
    constraint: str


@dataclass(frozen=True)
class RelTable:
    """A relationship type between two node labels, with typed properties."""

    type: str
    source: str
    target: str
    properties: dict[str, str]


@dataclass(frozen=True)
class Index:
    """A Neo4j index on properties of a node label or relationship type (Kuzu has none besides primary keys)."""

    name: str
    table: str
    properties: tuple[str, ...]


# properties added since the first catalogs: an older embedded file gains them on its next writable open
ADDED = {"Run": {"direction": "STRING", "faithfulness_normalised": "DOUBLE", "edge_faithfulness": "DOUBLE", "kl": "DOUBLE",
                 "accuracy": "DOUBLE", "cpr": "DOUBLE", "cmd": "DOUBLE", "scores": "STRING", "cut": "STRING"},
         "Component": {"position": "INT64", "base": "STRING"}}

NODES = {
    n.label: n
    for n in (
        NodeTable("Model", {"id": "STRING", "name": "STRING", "n_layers": "INT64", "n_heads": "INT64", "d_model": "INT64",
                            "source": "STRING"}, "model_id"),
        NodeTable("Task", {"id": "STRING", "name": "STRING", "family": "STRING", "description": "STRING",
                           "n_prompts": "INT64"}, "task_id"),
        NodeTable("Run", {"id": "STRING", "method": "STRING", "ablation": "STRING", "metric": "STRING", "threshold": "DOUBLE",
                          "faithfulness": "DOUBLE", "completeness": "DOUBLE", "n_nodes": "INT64", "n_edges": "INT64",
                          "params": "STRING", "dataset_hash": "STRING", "seed": "INT64", "versions": "STRING",
                          "created_at": "STRING", **ADDED["Run"]}, "run_id"),
        NodeTable("Component", {"id": "STRING", "model_id": "STRING", "name": "STRING", "kind": "STRING", "layer": "INT64",
                                "index": "INT64", "dictionary": "STRING", **ADDED["Component"]}, "component_id"),
        NodeTable("SteeringVector", {"id": "STRING", "model_id": "STRING", "name": "STRING", "layer": "INT64",
                                     "description": "STRING", "dim": "INT64", "norm": "DOUBLE", "vector": "STRING"},
                  "steering_id"),
    )
}
RELS = {
    r.type: r
    for r in (
        RelTable("ON_MODEL", "Run", "Model", {}),
        RelTable("FOR_TASK", "Run", "Task", {}),
        RelTable("INCLUDES", "Run", "Component", {"score": "DOUBLE"}),
        RelTable("EDGE", "Component", "Component", {"run_id": "STRING", "weight": "DOUBLE", "input": "STRING"}),
        RelTable("NESTS_IN", "Run", "Run", {}),
        RelTable("EVALUATED_ON", "Run", "Task", {"performance": "DOUBLE"}),
        RelTable("RELATES", "Component", "Component", {"kind": "STRING", "weight": "DOUBLE", "source": "STRING"}),
        RelTable("DECOMPOSES_INTO", "SteeringVector", "Component", {"coef": "DOUBLE", "method": "STRING"}),
        RelTable("SHIFTS", "SteeringVector", "Component", {"delta": "DOUBLE", "layer": "INT64", "coef": "DOUBLE"}),
    )
}
# The embedded store keeps an edge as a node of its own, `(a:Component)<-[:SENDER]-(e:Edge {run_id, weight, input})
# -[:RECEIVER]->(b:Component)`, and stores INCLUDES, SENDER and RECEIVER from their source side only. A new run's rows
# then land in node groups of their own; relationships between shared components made Kuzu rewrite those components'
# adjacency on every add, so an add cost time in proportion to the catalog. Neo4j keeps the EDGE relationship.
KUZU_EDGE = NodeTable("Edge", {"id": "INT64", "run_id": "STRING", "weight": "DOUBLE", "input": "STRING"}, "")
KUZU_EDGE_ENDS = ("SENDER", "RECEIVER")
KUZU_SOURCE_SIDE = ("INCLUDES", *KUZU_EDGE_ENDS)
# Kuzu's table names ignore case, so the Edge table is built beside an older file's EDGE under this name, then renamed
KUZU_EDGE_STAGING = "Edge_new"
# an edge `e` from `a` to `b` in Cypher on each store
EDGE_PATTERN = {"kuzu": "(a:Component)<-[:SENDER]-(e:Edge)-[:RECEIVER]->(b:Component)",
                "neo4j": "(a:Component)-[e:EDGE]->(b:Component)"}

INDEXES = (
    Index("component_kind", "Component", ("model_id", "kind")),
    Index("run_select", "Run", ("method", "threshold")),
    Index("edge_run", "EDGE", ("run_id",)),
    Index("relates_kind", "RELATES", ("kind",)),
)


def _columns(properties: dict[str, str]) -> str:
    return "".join(f", `{name}` {kind}" for name, kind in properties.items())  # quoted: ladybug reserves `index`


def _kuzu_node(node: NodeTable, label: str = "") -> str:
    return f"CREATE NODE TABLE IF NOT EXISTS {label or node.label}({_columns(node.properties)[2:]}, PRIMARY KEY(id))"


def kuzu_rel_ddl(rel: RelTable, name: str = "") -> str:
    """CREATE REL TABLE for `rel`, under `name` if given; stored from the source side where KUZU_SOURCE_SIDE says."""
    side = " WITH (storage_direction = 'fwd')" if rel.type in KUZU_SOURCE_SIDE else ""
    return (f"CREATE REL TABLE IF NOT EXISTS {name or rel.type}(FROM {rel.source} TO {rel.target}"
            f"{_columns(rel.properties)}){side}")


def kuzu_edge_ddl(label: str = KUZU_EDGE.label) -> list[str]:
    """The embedded store's edge tables, with the Edge node table named `label`."""
    return [_kuzu_node(KUZU_EDGE, label), *(kuzu_rel_ddl(RelTable(end, label, "Component", {})) for end in KUZU_EDGE_ENDS)]


def kuzu_ddl() -> list[str]:
    """CREATE NODE/REL TABLE statements, idempotent: the schema with the embedded store's edge layout."""
    nodes = [_kuzu_node(n) for n in NODES.values()]
    added = [f"ALTER TABLE {label} ADD IF NOT EXISTS {name} {kind}" for label, new in ADDED.items() for name, kind in new.items()]
    return nodes + added + [kuzu_rel_ddl(r) for r in RELS.values() if r.type != "EDGE"] + kuzu_edge_ddl()


def neo4j_schema() -> dict[str, dict[str, str]]:
    """Idempotent statements by name, under "CONSTRAINTS" and "INDEXES" (what SHOW lists them as); ingest MERGEs on
    the constrained keys."""
    constraints = {n.constraint: f"CREATE CONSTRAINT {n.constraint} IF NOT EXISTS FOR (n:{n.label}) REQUIRE n.id IS UNIQUE"
                   for n in NODES.values()}
    indexes = {}
    for index in INDEXES:
        pattern = f"(n:{index.table})" if index.table in NODES else f"()-[n:{index.table}]-()"
        on = ", ".join(f"n.{p}" for p in index.properties)
        indexes[index.name] = f"CREATE INDEX {index.name} IF NOT EXISTS FOR {pattern} ON ({on})"
    return {"CONSTRAINTS": constraints, "INDEXES": indexes}


def node_arrow_schema(label: str) -> pa.Schema:
    """Columns of a COPY into node table `label`."""
    return pa.schema([(name, getattr(pa, ARROW_TYPES[kind])()) for name, kind in NODES[label].properties.items()])


def rel_arrow_schema(rel_type: str) -> pa.Schema:
    """Columns of a COPY into relationship table `rel_type`: the endpoint ids, then the properties."""
    columns = {"from": "STRING", "to": "STRING", **RELS[rel_type].properties}
    return pa.schema([(name, getattr(pa, ARROW_TYPES[kind])()) for name, kind in columns.items()])
