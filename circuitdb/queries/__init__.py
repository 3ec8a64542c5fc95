"""Named Cypher queries (the .cypher files beside this module) and the functions that run and shape them."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from circuitdb.store.base import Store


@cache
def cypher(name: str, backend: str = "") -> str:
    """The text of query `name`: `cypher/<name>.<backend>.cypher` where the dialects differ, else `<name>.cypher`."""
    folder = resources.files("circuitdb.queries").joinpath("cypher")
    special = folder.joinpath(f"{name}.{backend}.cypher")
    return (special if backend and special.is_file() else folder.joinpath(f"{name}.cypher")).read_text()


def run_query(store: Store, name: str, **params: Any) -> list[dict[str, Any]]:
    """Run the named query on `store` with `params` passed as Cypher parameters."""
    return store.read(cypher(name, store.backend), params)


def run_rows(store: Store, name: str, columns: Sequence[str], **params: Any) -> list[dict[str, Any]]:
    """`run_query` of a query whose variant may pack its rows into one row `{"rows": [[value, ...], ...]}`, values in
    the order of `columns` (the Neo4j variants of large results: a record costs the driver far more to decode than a
    list does): rows as dicts either way."""
    rows = run_query(store, name, **params)
    if len(rows) == 1 and rows[0].keys() == {"rows"}:
        return [dict(zip(columns, values)) for values in rows[0]["rows"]]
    return rows
