"""The small interface both stores implement, and `open_store` that picks one from a URL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from circuitdb.errors import CircuitdbError
from circuitdb.ingest.features import RelationRows, SteeringRows
from circuitdb.ingest.tables import RunTables

DEFAULT_STORE = "kuzu:./circuitdb.kuzu"


class Store(Protocol):
    """A graph store holding the catalog schema of shared/DESIGN.md."""

    backend: str  # "kuzu" or "neo4j": picks the per-dialect query text where the two differ

    def init(self) -> None:
        """Create tables/constraints if missing (idempotent)."""

    def write_run(self, tables: RunTables) -> None:
        """Replace the run with this id by `tables`, atomically: all of it becomes visible or none."""

    def write_runs(self, batch: list[RunTables]) -> None:
        """Write several runs; each is atomic (Kuzu writes the whole batch in one transaction)."""

    def write_evaluations(self, run_id: str, evaluations: list[dict]) -> None:
        """Record a run's scores on other tasks ({task, performance} rows), replacing earlier scores on those tasks."""

    def write_relations(self, rows: RelationRows) -> None:
        """Replace the relations of `rows.sources` by `rows.relations`, atomically (components merged as needed)."""

    def write_steering(self, rows: SteeringRows) -> None:
        """Create or update a steering vector and replace its links of `rows.kind`, atomically."""

    def delete_run(self, run_id: str) -> bool:
        """Remove one run and its memberships/edges; True if it existed."""

    def query(self, cypher: str, params: dict[str, Any] | None = None, timeout_s: float = 30) -> list[dict[str, Any]]:
        """User Cypher: refused unless it is one statement that only reads the catalog; stopped after `timeout_s`."""

    def read(self, cypher: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a read query with parameters; rows as dicts keyed by the RETURN aliases."""

    def release(self) -> None:
        """Let other processes use the store until the next call (the embedded file is locked while open)."""

    def close(self) -> None:
        """Release the connection / file."""


def store_url(url: str | None) -> str:
    """The store URL from the argument, then CIRCUITDB_STORE, then the embedded default."""
    return url or os.environ.get("CIRCUITDB_STORE") or DEFAULT_STORE


def open_store(url: str | None = None, *, read_only: bool = False, create: bool = True, wait: float = 10) -> Store:
    """Open `kuzu:PATH` or `bolt://…`/`neo4j://…` (credentials from CIRCUITDB_NEO4J_USER/_PASSWORD).

    `read_only` makes the database itself refuse writes (read commands open so, and run beside each other);
    `create=False` refuses to create a new embedded file, so a typo in a path is an error rather than an empty catalog;
    `wait` is how long to wait for another process that holds the embedded file.
    """
    url = store_url(url)
    if url.startswith("kuzu:"):
        from circuitdb.store.kuzu import KuzuStore

        path = Path(url[len("kuzu:") :]).expanduser()
        if not str(path) or str(path) == ".":
            raise CircuitdbError(f"store {url!r}: give a file path, e.g. kuzu:./circuitdb.kuzu")
        if (read_only or not create) and not path.exists():
            raise CircuitdbError(f"store {url!r}: no catalog at {path} (run `circuitdb init` or import something first)")
        if (read_only or not create) and path.is_file() and path.stat().st_size == 0:
            raise CircuitdbError(f"store {url!r}: {path} is an empty file, not a catalog (run `circuitdb init` to make "
                                 "it one)")
        return KuzuStore(path, read_only=read_only, wait_s=wait, create=create)
    if url.split("://", 1)[0] in ("bolt", "neo4j", "bolt+s", "neo4j+s", "bolt+ssc", "neo4j+ssc"):
        from circuitdb.store.neo4j import Neo4jStore

        try:
            port = urlsplit(url).port
        except ValueError:
            raise CircuitdbError(f"store {url!r}: the port must be a number in 1..65535") from None
        if port == 0:
            raise CircuitdbError(f"store {url!r}: the port must be a number in 1..65535")

        user = os.environ.get("CIRCUITDB_NEO4J_USER", os.environ.get("NEO4J_USER", "neo4j"))
        password = os.environ.get("CIRCUITDB_NEO4J_PASSWORD", os.environ.get("NEO4J_PASSWORD"))
        return Neo4jStore(url, user, password, read_only=read_only)
    raise CircuitdbError(f"unknown store {url!r}: use kuzu:PATH, bolt://HOST:PORT or neo4j://HOST:PORT")
